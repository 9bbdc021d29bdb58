//! The operations room's commands: each calls `metasync_runtime::operations`. The plan
//! reads the workbench's open files (edits included) for the header's profile.

use metasync_runtime::operations::{self, PlanScreen};
use metasync_runtime::settings::Profiles;
use metasync_runtime::workbench::Workbench;
use std::sync::Arc;
use tauri::State;

pub use operations::scratch_root;

/// What a sync of the open files would change; nothing is sent.
#[tauri::command]
pub async fn operations_plan(
    wb: State<'_, Arc<Workbench>>,
    ps: State<'_, Arc<Profiles>>,
) -> Result<PlanScreen, String> {
    // Edited files are written corrected here, once per plan; never the originals.
    operations::plan_open_files(Arc::clone(&wb), Arc::clone(&ps), &scratch_root())
        .await
        .map_err(|e| e.to_string())
}
