//! The settings screen's and the profile switcher's commands: each checks its
//! arguments' shape and calls `metasync_runtime::settings`. Keychain and file calls
//! block, so they run on the blocking pool. Secrets arrive once, go to the keychain and are
//! never returned, logged or kept.

use metasync_runtime::settings::{
    self, ActiveProfile, ConnectionReport, CredentialKind, CredentialsView, ProfileForm, Profiles,
    Secret, SettingsError, SettingsView,
};
use std::sync::Arc;
use tauri::State;

type Ps<'a> = State<'a, Arc<Profiles>>;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SettingsError> + Send + 'static,
) -> Result<T, SettingsError> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(|e| SettingsError {
            message: e.to_string(),
            field: None,
        })?
}

/// The profiles of the user's metasync.toml.
#[tauri::command]
pub async fn settings_get(ps: Ps<'_>) -> Result<SettingsView, SettingsError> {
    let ps = Arc::clone(&ps);
    blocking(move || Ok(settings::settings(ps.path()))).await
}

#[tauri::command]
pub async fn settings_profile(ps: Ps<'_>, name: String) -> Result<ProfileForm, SettingsError> {
    let ps = Arc::clone(&ps);
    blocking(move || settings::profile_form(ps.path(), &name)).await
}

/// Save the form: a new profile (`create`) or an edit of one.
#[tauri::command]
pub async fn settings_save(
    ps: Ps<'_>,
    form: ProfileForm,
    create: bool,
) -> Result<SettingsView, SettingsError> {
    let ps = Arc::clone(&ps);
    blocking(move || settings::save_profile(ps.path(), &form, create)).await
}

#[tauri::command]
pub async fn credentials_status(profile: String) -> Result<CredentialsView, SettingsError> {
    blocking(move || Ok(settings::credentials_status(&profile))).await
}

#[tauri::command]
pub async fn credentials_set(
    profile: String,
    kind: CredentialKind,
    key: String,
    secret: String,
) -> Result<CredentialsView, SettingsError> {
    let (key, secret) = (Secret::new(key), Secret::new(secret));
    blocking(move || settings::set_credentials(&profile, kind, key, secret)).await
}

#[tauri::command]
pub async fn credentials_delete(
    profile: String,
    kind: CredentialKind,
) -> Result<CredentialsView, SettingsError> {
    blocking(move || settings::delete_credentials(&profile, kind)).await
}

/// The target check and the backend's resources; changes nothing.
#[tauri::command]
pub async fn connection_test(
    ps: Ps<'_>,
    profile: String,
) -> Result<ConnectionReport, SettingsError> {
    settings::test_connection(ps.path(), &profile).await
}

#[tauri::command]
pub async fn profile_active(ps: Ps<'_>) -> Result<ActiveProfile, SettingsError> {
    let ps = Arc::clone(&ps);
    blocking(move || Ok(ps.active())).await
}

/// Switch the window's profile (`None`: the embedded default).
#[tauri::command]
pub async fn profile_select(
    ps: Ps<'_>,
    name: Option<String>,
) -> Result<ActiveProfile, SettingsError> {
    let ps = Arc::clone(&ps);
    blocking(move || ps.select(name.as_deref())).await
}
