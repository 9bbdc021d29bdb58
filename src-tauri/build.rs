//! Tauri's build step: the app's commands get generated permissions, granted by the
//! capability files under src-tauri/capabilities (the app package sits at the root).

/// Every command the window may call; nothing else is granted.
const COMMANDS: &[&str] = &[
    "workbench_watch",
    "workbench_mapping",
    "workbench_save_mapping",
    "workbench_open_dialog",
    "workbench_files",
    "workbench_close",
    "workbench_cancel",
    "workbench_revalidate",
    "workbench_rows",
    "workbench_row_findings",
    "workbench_next_error",
    "workbench_position",
    "workbench_edit",
    "workbench_preview_fix",
    "workbench_apply_fix",
    "workbench_undo",
    "workbench_save",
    "workbench_export_errors",
    "settings_get",
    "settings_profile",
    "settings_save",
    "credentials_status",
    "credentials_set",
    "credentials_delete",
    "connection_test",
    "profile_active",
    "profile_select",
    "operations_plan",
    "operations_sync",
    "operations_cancel",
    "operations_resume",
    "operations_send_queued",
    "operations_quit",
    "dashboard_get",
    "runs_list",
    "triage_groups",
    "triage_failure",
    "triage_check",
    "triage_retry",
    "triage_discard",
    "logs_watch",
    "run_detail",
    "run_export",
    "test_open_paths",
    "test_request_close",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern("src-tauri/capabilities/**/*")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        eprintln!("tauri build step failed: {e:#}");
        std::process::exit(1);
    }
}
