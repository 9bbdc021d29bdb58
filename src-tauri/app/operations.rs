//! The operations room's commands: each calls `metasync_runtime::operations` (the plan,
//! or a method of the window's [`Desk`]) and turns its error into text. Progress goes
//! back over a channel.

use metasync_runtime::operations::{
    self, DashboardView, Desk, FailureGroupView, FailureView, FieldEdit, FieldProblem, PlanScreen,
    RunView, SyncDone, SyncForm, SyncUpdate, TriageDone, TriageTarget,
};
use metasync_runtime::workbench::Workbench;
use std::sync::Arc;
use tauri::ipc::Channel;
use tauri::State;

pub use operations::scratch_root;

type D<'a> = State<'a, Arc<Desk>>;

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn sender(channel: Channel<SyncUpdate>) -> Arc<dyn Fn(SyncUpdate) + Send + Sync> {
    Arc::new(move |u| {
        // A closed window stops listening; the sync goes on and records its run.
        let _ = channel.send(u);
    })
}

/// What a sync of the open files would change; nothing is sent.
#[tauri::command]
pub async fn operations_plan(
    wb: State<'_, Arc<Workbench>>,
    desk: D<'_>,
) -> Result<PlanScreen, String> {
    // Edited files are written corrected in the scratch folder, never the originals.
    desk.plan_open_files(Arc::clone(&wb)).await.map_err(text)
}

/// Sync the open files to the header's profile; updates arrive on `on_update`.
#[tauri::command]
pub async fn operations_sync(
    wb: State<'_, Arc<Workbench>>,
    desk: D<'_>,
    form: SyncForm,
    on_update: Channel<SyncUpdate>,
) -> Result<SyncDone, String> {
    desk.sync_open_files(Arc::clone(&wb), form, sender(on_update))
        .await
        .map_err(text)
}

/// Stop the running sync (true when one was running).
#[tauri::command]
pub fn operations_cancel(desk: D<'_>) -> bool {
    desk.cancel_sync()
}

/// Finish a sync the app did not see end; `None` when there was none.
#[tauri::command]
pub async fn operations_resume(
    desk: D<'_>,
    on_update: Channel<SyncUpdate>,
) -> Result<Option<SyncDone>, String> {
    desk.resume(sender(on_update)).await.map_err(text)
}

/// Send what a cancelled sync left in the header's profile's queues.
#[tauri::command]
pub async fn operations_send_queued(
    desk: D<'_>,
    on_update: Channel<SyncUpdate>,
) -> Result<SyncDone, String> {
    desk.send_queued(sender(on_update)).await.map_err(text)
}

/// Close the window although a sync runs (it resumes at the next start).
#[tauri::command]
pub fn operations_quit(app: tauri::AppHandle) {
    app.exit(0);
}

#[tauri::command]
pub async fn dashboard_get(desk: D<'_>) -> Result<DashboardView, String> {
    desk.dashboard().await.map_err(text)
}

#[tauri::command]
pub async fn runs_list(desk: D<'_>, limit: usize) -> Result<Vec<RunView>, String> {
    desk.runs(limit).await.map_err(text)
}

#[tauri::command]
pub async fn triage_groups(desk: D<'_>) -> Result<Vec<FailureGroupView>, String> {
    desk.failure_groups().await.map_err(text)
}

#[tauri::command]
pub async fn triage_failure(desk: D<'_>, record: String) -> Result<FailureView, String> {
    desk.failure(&record).await.map_err(text)
}

#[tauri::command]
pub async fn triage_check(
    desk: D<'_>,
    record: String,
    edits: Vec<FieldEdit>,
) -> Result<Vec<FieldProblem>, String> {
    desk.check_failure_edits(&record, &edits)
        .await
        .map_err(text)
}

#[tauri::command]
pub async fn triage_retry(
    desk: D<'_>,
    target: TriageTarget,
    edits: Vec<FieldEdit>,
) -> Result<TriageDone, String> {
    desk.retry_failures(&target, &edits).await.map_err(text)
}

#[tauri::command]
pub async fn triage_discard(
    desk: D<'_>,
    target: TriageTarget,
    reason: String,
) -> Result<TriageDone, String> {
    desk.discard_failures(&target, &reason).await.map_err(text)
}
