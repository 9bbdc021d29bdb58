//! The desktop shell: a thin Tauri layer over the engine. Commands delegate; no
//! business logic lives here.

use tauri::Manager;

pub fn run() {
    let result = tauri::Builder::default()
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
