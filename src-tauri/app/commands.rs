//! The window's commands: each checks its arguments' shape and calls the runtime's
//! workbench; nothing else happens here. Paths never come from the page: they come
//! from a drop, a native dialog or the command line.

use metasync_runtime::workbench::{
    FileSummary, FindingView, FixArg, FixPreviewView, MappingRequest, MappingView, SaveFormatArg,
    Saved, ScopeArg, ViewArg, Workbench, WorkbenchEvent,
};
use std::path::PathBuf;
use std::sync::Arc;
use tauri::ipc::{Channel, Response};
use tauri::{AppHandle, State};

type Wb<'a> = State<'a, Arc<Workbench>>;

/// What the page sees of a refusal: the message staff act on.
fn msg(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The page's progress and results channel (one per window load).
#[tauri::command]
pub fn workbench_watch(wb: Wb<'_>, on_event: Channel<WorkbenchEvent>) {
    wb.listen(move |e| {
        let _ = on_event.send(e);
    });
}

/// Pick files in the native dialog and open them.
#[tauri::command]
pub async fn workbench_open_dialog(app: AppHandle, wb: Wb<'_>) -> Result<Vec<OpenResult>, String> {
    let picked = pick_open(&app);
    Ok(open(&wb, &picked))
}

#[derive(serde::Serialize)]
pub struct OpenResult {
    ok: Option<FileSummary>,
    error: Option<String>,
}

pub fn open(wb: &Arc<Workbench>, paths: &[PathBuf]) -> Vec<OpenResult> {
    wb.open_paths(paths)
        .into_iter()
        .map(|r| match r {
            Ok(s) => OpenResult {
                ok: Some(s),
                error: None,
            },
            Err(e) => OpenResult {
                ok: None,
                error: Some(e),
            },
        })
        .collect()
}

#[cfg(not(feature = "test-hooks"))]
fn pick_open(app: &AppHandle) -> Vec<PathBuf> {
    use tauri_plugin_dialog::DialogExt;
    app.dialog()
        .file()
        .add_filter("CSV", &["csv", "tsv", "txt"])
        .blocking_pick_files()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.into_path().ok())
        .collect()
}

#[cfg(feature = "test-hooks")]
fn pick_open(_: &AppHandle) -> Vec<PathBuf> {
    Vec::new()
}

#[tauri::command]
pub fn workbench_files(wb: Wb<'_>) -> Vec<FileSummary> {
    wb.files()
}

#[tauri::command]
pub fn workbench_close(wb: Wb<'_>, id: u32) -> Result<(), String> {
    wb.close(id).map_err(msg)
}

#[tauri::command]
pub fn workbench_cancel(wb: Wb<'_>) {
    wb.cancel();
}

/// Validate every open file again (after a cancel).
#[tauri::command]
pub fn workbench_revalidate(wb: Wb<'_>) {
    wb.revalidate();
}

/// A window of rows, as bytes (see `encode_window`).
#[tauri::command]
pub async fn workbench_rows(
    wb: Wb<'_>,
    id: u32,
    view: ViewArg,
    start: u64,
    count: u32,
) -> Result<Response, String> {
    wb.rows(id, &view, start, count)
        .map(Response::new)
        .map_err(msg)
}

#[tauri::command]
pub async fn workbench_row_findings(
    wb: Wb<'_>,
    id: u32,
    row: u64,
) -> Result<Vec<FindingView>, String> {
    wb.row_findings(id, row).map_err(msg)
}

#[tauri::command]
pub async fn workbench_next_error(
    wb: Wb<'_>,
    id: u32,
    from: Option<u64>,
    forward: bool,
) -> Result<Option<u64>, String> {
    wb.next_error(id, from, forward).map_err(msg)
}

#[tauri::command]
pub async fn workbench_position(
    wb: Wb<'_>,
    id: u32,
    view: ViewArg,
    row: u64,
) -> Result<Option<u64>, String> {
    wb.position_in_view(id, &view, row).map_err(msg)
}

#[tauri::command]
pub async fn workbench_edit(
    wb: Wb<'_>,
    id: u32,
    row: u64,
    column: u32,
    value: String,
) -> Result<u64, String> {
    wb.edit(id, row, column, value).map_err(msg)
}

#[tauri::command]
pub async fn workbench_preview_fix(
    wb: Wb<'_>,
    id: u32,
    fix: FixArg,
    scope: ScopeArg,
) -> Result<FixPreviewView, String> {
    wb.preview_fix(id, &fix, &scope).map_err(msg)
}

#[tauri::command]
pub async fn workbench_apply_fix(
    wb: Wb<'_>,
    id: u32,
    fix: FixArg,
    scope: ScopeArg,
) -> Result<u64, String> {
    wb.apply_fix(id, &fix, &scope).map_err(msg)
}

#[tauri::command]
pub async fn workbench_undo(wb: Wb<'_>, id: u32) -> Result<u64, String> {
    wb.undo(id).map_err(msg)
}

/// The mapping editor's view of a file's header.
#[tauri::command]
pub async fn workbench_mapping(wb: Wb<'_>, id: u32) -> Result<MappingView, String> {
    wb.mapping(id).map_err(msg)
}

/// Save the editor's choices as the header set's profile and apply it.
#[tauri::command]
pub async fn workbench_save_mapping(
    wb: Wb<'_>,
    id: u32,
    request: MappingRequest,
) -> Result<String, String> {
    wb.save_mapping(id, &request).map_err(msg)
}

/// Save the corrected file where the user chooses. `None`: the dialog was dismissed.
#[tauri::command]
pub async fn workbench_save(
    app: AppHandle,
    wb: Wb<'_>,
    id: u32,
    format: SaveFormatArg,
) -> Result<Option<Saved>, String> {
    let name = suggested_name(&wb, id, "corrected")?;
    let Some(to) = pick_save(&app, &name) else {
        return Ok(None);
    };
    // Writing a large file takes seconds: off the async workers.
    let wb = Arc::clone(&wb);
    tauri::async_runtime::spawn_blocking(move || wb.save(id, &to, format))
        .await
        .map_err(msg)?
        .map(Some)
        .map_err(msg)
}

/// Export the rows with errors (annotated) where the user chooses.
#[tauri::command]
pub async fn workbench_export_errors(
    app: AppHandle,
    wb: Wb<'_>,
    id: u32,
) -> Result<Option<Saved>, String> {
    let name = suggested_name(&wb, id, "errors")?;
    let Some(to) = pick_save(&app, &name) else {
        return Ok(None);
    };
    // A full validation pass: off the async workers.
    let (wb, path) = (Arc::clone(&wb), to.clone());
    let rows = tauri::async_runtime::spawn_blocking(move || wb.export_errors(id, &path))
        .await
        .map_err(msg)?
        .map_err(msg)?;
    Ok(Some(Saved {
        path: to.display().to_string(),
        bytes: rows,
    }))
}

fn suggested_name(wb: &Workbench, id: u32, what: &str) -> Result<String, String> {
    let f = wb
        .files()
        .into_iter()
        .find(|f| f.id == id)
        .ok_or_else(|| format!("no open file has id {id}"))?;
    let stem = f
        .name
        .rsplit_once('.')
        .map_or(f.name.as_str(), |(s, _)| s)
        .to_string();
    Ok(format!("{stem}.{what}.csv"))
}

#[cfg(not(feature = "test-hooks"))]
pub(crate) fn pick_save(app: &AppHandle, name: &str) -> Option<PathBuf> {
    use tauri_plugin_dialog::DialogExt;
    app.dialog()
        .file()
        .set_file_name(name)
        .add_filter("CSV", &["csv"])
        .blocking_save_file()
        .and_then(|p| p.into_path().ok())
}

/// The window test saves into the folder it names (no native dialog to click).
#[cfg(feature = "test-hooks")]
pub(crate) fn pick_save(_: &AppHandle, name: &str) -> Option<PathBuf> {
    std::env::var_os("METASYNC_TEST_SAVE_DIR").map(|d| PathBuf::from(d).join(name))
}

/// The window test's stand-in for a drop (WebDriver cannot drop OS files): the same
/// path as a drop. Compiled only with the `test-hooks` feature.
#[cfg(feature = "test-hooks")]
#[tauri::command]
pub fn test_open_paths(wb: Wb<'_>, paths: Vec<PathBuf>) -> Vec<OpenResult> {
    open(&wb, &paths)
}
