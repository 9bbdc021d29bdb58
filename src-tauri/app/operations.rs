//! The operations room's commands: each calls `metasync_runtime::operations` (the plan,
//! or a method of the window's [`Desk`]) and turns its error into text. Progress goes
//! back over a channel.

use metasync_runtime::logging::{self, LogLine, Tail};
use metasync_runtime::operations::{
    self, DashboardView, Desk, FailureGroupView, FailureView, FieldEdit, FieldProblem, PlanScreen,
    RunDetail, RunView, SyncDone, SyncForm, SyncUpdate, TriageDone, TriageTarget,
};
use metasync_runtime::workbench::{Saved, Workbench};
use std::sync::Arc;
use tauri::ipc::Channel;
use tauri::State;

pub use operations::scratch_root;

type D<'a> = State<'a, Arc<Desk>>;

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Tell staff through the desktop's notifications (the window may be hidden). A
/// desktop without a notification service only loses the popup: the app still shows
/// the message and the triage badge.
fn notify(app: &tauri::AppHandle, body: Option<String>) {
    use tauri_plugin_notification::NotificationExt;
    if let Some(body) = body {
        if let Err(e) = app
            .notification()
            .builder()
            .title("Metasync")
            .body(&body)
            .show()
        {
            tracing::warn!("cannot show a notification: {e}");
        }
    }
}

fn ended(app: &tauri::AppHandle, done: Result<SyncDone, String>) -> Result<SyncDone, String> {
    if let Ok(d) = &done {
        notify(app, d.alert());
    }
    done
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
    app: tauri::AppHandle,
    wb: State<'_, Arc<Workbench>>,
    desk: D<'_>,
    form: SyncForm,
    on_update: Channel<SyncUpdate>,
) -> Result<SyncDone, String> {
    let done = desk
        .sync_open_files(Arc::clone(&wb), form, sender(on_update))
        .await
        .map_err(text);
    ended(&app, done)
}

/// Stop the running sync (true when one was running).
#[tauri::command]
pub fn operations_cancel(desk: D<'_>) -> bool {
    desk.cancel_sync()
}

/// Finish a sync the app did not see end; `None` when there was none.
#[tauri::command]
pub async fn operations_resume(
    app: tauri::AppHandle,
    desk: D<'_>,
    on_update: Channel<SyncUpdate>,
) -> Result<Option<SyncDone>, String> {
    let done = desk.resume(sender(on_update)).await.map_err(text)?;
    if let Some(d) = &done {
        notify(&app, d.alert());
    }
    Ok(done)
}

/// Send what a cancelled sync left in the header's profile's queues.
#[tauri::command]
pub async fn operations_send_queued(
    app: tauri::AppHandle,
    desk: D<'_>,
    on_update: Channel<SyncUpdate>,
) -> Result<SyncDone, String> {
    let done = desk.send_queued(sender(on_update)).await.map_err(text);
    ended(&app, done)
}

/// Close the window although a sync runs (it resumes at the next start).
#[tauri::command]
pub fn operations_quit(app: tauri::AppHandle) {
    app.exit(0);
}

#[tauri::command]
pub async fn dashboard_get(app: tauri::AppHandle, desk: D<'_>) -> Result<DashboardView, String> {
    let view = desk.dashboard().await.map_err(text)?;
    notify(&app, view.alert.clone());
    Ok(view)
}

#[tauri::command]
pub async fn runs_list(desk: D<'_>, limit: usize) -> Result<Vec<RunView>, String> {
    desk.runs(limit).await.map_err(text)
}

#[tauri::command]
pub async fn run_detail(desk: D<'_>, id: String) -> Result<RunDetail, String> {
    desk.run_detail(&id).await.map_err(text)
}

/// Export a run's records as CSV where staff choose (`None`: the dialog was closed).
#[tauri::command]
pub async fn run_export(
    app: tauri::AppHandle,
    desk: D<'_>,
    id: String,
) -> Result<Option<Saved>, String> {
    let name = format!("run-{id}.csv");
    let Some(to) =
        tauri::async_runtime::spawn_blocking(move || crate::commands::pick_save(&app, &name))
            .await
            .map_err(text)?
    else {
        return Ok(None);
    };
    let n = desk.export_run(&id, &to).await.map_err(text)?;
    Ok(Some(Saved {
        path: to.display().to_string(),
        bytes: n,
    }))
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

/// The live log: the kept lines first, then new ones in batches (at most five a
/// second) until the window stops listening or watches again.
#[tauri::command]
pub fn logs_watch(tail: State<'_, Tail>, on_lines: Channel<Vec<LogLine>>) {
    let (kept, mut rx, watch) = tail.watch();
    let tail = tail.inner().clone();
    if on_lines
        .send(kept.iter().map(|l| logging::parse_line(l)).collect())
        .is_err()
    {
        return;
    }
    tauri::async_runtime::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let mut batch = Vec::new();
            match rx.recv().await {
                Ok(l) => batch.push(logging::parse_line(&l)),
                Err(RecvError::Lagged(n)) => batch.push(logging::parse_line(&format!(
                    "({n} lines went by too fast to show; the log file has them)"
                ))),
                Err(RecvError::Closed) => return,
            }
            // The page watched again (a reload): this watch's channel has no reader.
            if !tail.is_current(watch) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            while let Ok(l) = rx.try_recv() {
                batch.push(logging::parse_line(&l));
            }
            if on_lines.send(batch).is_err() {
                return;
            }
        }
    });
}

/// The window test's stand-in for the window manager's close button (WebDriver has
/// none): a close request, made only while a sync runs so that it is always asked
/// about. Compiled only with the `test-hooks` feature.
#[cfg(feature = "test-hooks")]
#[tauri::command]
pub fn test_request_close(window: tauri::WebviewWindow, desk: D<'_>) -> bool {
    desk.sync_running() && window.close().is_ok()
}
