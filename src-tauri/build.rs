fn main() {
    // The app package sits at the workspace root (beside tauri.conf.json); its
    // capabilities live under src-tauri/.
    let attributes =
        tauri_build::Attributes::new().capabilities_path_pattern("src-tauri/capabilities/**/*");
    if let Err(e) = tauri_build::try_build(attributes) {
        eprintln!("tauri build step failed: {e:#}");
        std::process::exit(1);
    }
}
