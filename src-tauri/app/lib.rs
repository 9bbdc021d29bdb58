//! The desktop shell: a thin Tauri layer over the engine. Commands delegate; no
//! business logic lives here.

use tauri::webview::PageLoadEvent;
use tauri::Manager;

/// With this variable set the app quits once its page has loaded: the smoke test
/// that a real window opens and shows the UI.
const SMOKE_ENV: &str = "METASYNC_SMOKE_EXIT";

pub fn run() {
    let result = tauri::Builder::default()
        .on_page_load(|webview, payload| {
            if payload.event() == PageLoadEvent::Finished && std::env::var_os(SMOKE_ENV).is_some() {
                println!(
                    "metasync-desktop: page loaded in window {}",
                    webview.label()
                );
                webview.app_handle().exit(0);
            }
        })
        .setup(|app| {
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.set_title(&format!("Metasync {}", env!("CARGO_PKG_VERSION")));
            }
            Ok(())
        })
        .run(tauri::generate_context!("tauri.conf.json"));
    if let Err(e) = result {
        eprintln!("Metasync could not start: {e}");
        std::process::exit(1);
    }
}
