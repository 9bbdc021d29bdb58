//! The desktop shell: a thin Tauri layer over the runtime. Commands delegate; no
//! business logic lives here. Files reach the workbench one way (`commands::open`)
//! from a drop, the dialog or the command line.

mod commands;
mod operations;
mod settings;

/// Every command the window may call (build.rs grants the same list), plus `extra`.
macro_rules! app_commands {
    ($($extra:path),*) => {
        tauri::generate_handler![
            $($extra,)*
            commands::workbench_watch,
            commands::workbench_mapping,
            commands::workbench_save_mapping,
            commands::workbench_open_dialog,
            commands::workbench_files,
            commands::workbench_close,
            commands::workbench_cancel,
            commands::workbench_revalidate,
            commands::workbench_rows,
            commands::workbench_row_findings,
            commands::workbench_next_error,
            commands::workbench_position,
            commands::workbench_edit,
            commands::workbench_preview_fix,
            commands::workbench_apply_fix,
            commands::workbench_undo,
            commands::workbench_save,
            commands::workbench_export_errors,
            settings::settings_get,
            settings::settings_profile,
            settings::settings_save,
            settings::credentials_status,
            settings::credentials_set,
            settings::credentials_delete,
            settings::connection_test,
            settings::profile_active,
            settings::profile_select,
            operations::operations_plan,
            operations::operations_sync,
            operations::operations_cancel,
            operations::operations_resume,
            operations::operations_send_queued,
            operations::operations_quit,
            operations::dashboard_get,
            operations::runs_list,
            operations::triage_groups,
            operations::triage_failure,
            operations::triage_check,
            operations::triage_retry,
            operations::triage_discard,
            operations::logs_watch,
            operations::run_detail,
            operations::run_export
        ]
    };
}

use metasync_runtime::operations::{Desk, Places};
use metasync_runtime::settings::{user_config_path, Profiles};
use metasync_runtime::workbench::{default_mappings_dir, Workbench};
use std::path::PathBuf;
use std::sync::Arc;
use tauri::{DragDropEvent, Emitter, Manager, WindowEvent};

pub fn run() {
    let mut workbench = Workbench::default();
    if let Some(dir) = default_mappings_dir() {
        workbench = workbench.with_mappings_dir(dir);
    }
    let workbench = Arc::new(workbench);
    // Profiles live in the user's metasync.toml (the CLI finds it too).
    let profiles = Arc::new(Profiles::new(
        user_config_path().unwrap_or_else(|| PathBuf::from("metasync.toml")),
    ));
    // `metasync-desktop FILE...`: how "Open with" and file associations arrive.
    let argv: Vec<PathBuf> = std::env::args_os()
        .skip(1)
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect();
    let desk = Arc::new(Desk::new(Arc::clone(&profiles), Places::user()));
    // The log file every surface writes (the data folder's logs/), and its live tail.
    let (log_guard, tail) = metasync_runtime::logging::init_with_tail(
        metasync_runtime::local_dir(None).ok().as_deref(),
    );
    let closing = Arc::clone(&desk);
    let dropped = Arc::clone(&workbench);
    let builder = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .manage(Arc::clone(&workbench))
        .manage(profiles)
        .manage(desk)
        .manage(tail)
        .setup(move |app| {
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.set_title(&format!("Metasync {}", env!("CARGO_PKG_VERSION")));
            }
            if !argv.is_empty() {
                // Opening decodes non-UTF-8 files whole: never on the UI thread.
                let wb = Arc::clone(&workbench);
                std::thread::spawn(move || commands::open(&wb, &argv));
            }
            Ok(())
        })
        .on_window_event(move |window, event| match event {
            WindowEvent::DragDrop(DragDropEvent::Drop { paths, .. }) => {
                let (wb, paths) = (Arc::clone(&dropped), paths.clone());
                std::thread::spawn(move || commands::open(&wb, &paths));
            }
            // Closing during a sync asks first (the page shows the question; "close
            // anyway" calls operations_quit, and the sync resumes at the next start).
            WindowEvent::CloseRequested { api, .. } if closing.sync_running() => {
                api.prevent_close();
                let _ = window.emit("sync-close-requested", ());
            }
            _ => {}
        });
    #[cfg(not(feature = "test-hooks"))]
    let builder = builder.invoke_handler(app_commands!());
    #[cfg(feature = "test-hooks")]
    let builder = builder.invoke_handler(app_commands!(
        commands::test_open_paths,
        operations::test_request_close
    ));
    match builder.build(tauri::generate_context!("tauri.conf.json")) {
        Ok(app) => app.run(move |_, event| {
            let _flushing = &log_guard;
            if let tauri::RunEvent::Exit = event {
                // Corrected copies a plan read; the originals are elsewhere.
                let _ = std::fs::remove_dir_all(operations::scratch_root());
            }
        }),
        Err(e) => {
            eprintln!("Metasync could not start: {e}");
            std::process::exit(1);
        }
    }
}
