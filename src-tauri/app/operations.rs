//! The operations room's commands: each calls `metasync_runtime::operations`. The plan
//! reads the workbench's open files (edits included) for the header's profile.

use metasync_runtime::operations::{self, PlanScreen};
use metasync_runtime::settings::Profiles;
use metasync_runtime::workbench::Workbench;
use std::path::PathBuf;
use std::sync::Arc;
use tauri::State;

/// This process's scratch folder (removed when the app exits).
pub fn scratch_root() -> PathBuf {
    std::env::temp_dir().join(format!("metasync-desktop-{}", std::process::id()))
}

/// What a sync of the open files would change; nothing is sent.
#[tauri::command]
pub async fn operations_plan(
    wb: State<'_, Arc<Workbench>>,
    ps: State<'_, Arc<Profiles>>,
) -> Result<PlanScreen, String> {
    // Edited files are written corrected here, once per plan; never the originals.
    let scratch = scratch_root().join("plan");
    operations::plan_open_files(Arc::clone(&wb), &ps, &scratch)
        .await
        .map_err(|e| e.to_string())
}
