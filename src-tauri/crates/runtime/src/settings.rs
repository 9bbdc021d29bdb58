//! Profiles and credentials, as the settings screen and the header's profile switcher
//! use them (no UI here):
//!
//! - a profile of `metasync.toml` read into a form and written back: only the keys the
//!   form knows change, comments and other profiles stay, and the result must pass the
//!   CLI's own validation (`config::parse_profile`) before anything is written;
//! - a profile's credentials set into the OS keychain; only "set" or "not set" ever
//!   comes back;
//! - a connection test: the target check (`metasync target check`) and the backend's
//!   resources (`metasync infra check`).

use crate::env::{choose, embedded_default, Chosen, RuntimeError};
use crate::infra::{infra, made_on_first_use, Action, InfraAction};
use metasync_catalog_client::credentials::{self, Credentials, Kind};
pub use metasync_catalog_client::Secret;
use metasync_engine::config::{self, ConfigError, Dialect};
use metasync_engine::target::CallError;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use toml_edit::{DocumentMut, Item, Table};
use ts_rs::TS;

/// Why a settings action did nothing, in the CLI's words. `field` names the form's
/// input at fault (`bucket`, `target.quota`, …) when there is one.
#[derive(Debug, Clone, Serialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    pub message: String,
    pub field: Option<String>,
}

impl SettingsError {
    fn new(message: impl std::fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            field: None,
        }
    }
}

impl From<ConfigError> for SettingsError {
    fn from(e: ConfigError) -> Self {
        let field = match &e {
            ConfigError::Field { field, .. } => Some((*field).to_string()),
            _ => None,
        };
        Self {
            message: e.to_string(),
            field,
        }
    }
}

impl From<RuntimeError> for SettingsError {
    fn from(e: RuntimeError) -> Self {
        Self::new(e)
    }
}

/// The profiles of the file, each with whether the CLI would accept it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SettingsView {
    /// The file the profiles live in (written by Save).
    pub path: String,
    pub exists: bool,
    pub profiles: Vec<ProfileSummary>,
    /// Why the file as a whole cannot be read, as the CLI says it.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct ProfileSummary {
    pub name: String,
    pub production: bool,
    /// `local` or `aws`.
    pub backend: String,
    /// The target's URL, when the profile has one.
    pub target: Option<String>,
    /// Why the CLI would refuse the profile.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum BackendChoice {
    #[default]
    Local,
    Aws,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum DialectChoice {
    MediaManager,
    Rest,
}

/// One profile as the form edits it. Text fields are as typed: empty means "not set"
/// (the default applies); numbers are checked when saved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct ProfileForm {
    pub name: String,
    pub production: bool,
    pub backend: BackendChoice,
    pub data_dir: String,
    pub region: String,
    pub endpoint_url: String,
    pub aws_profile: String,
    pub bucket: String,
    pub table: String,
    pub queue_prefix: String,
    pub kms_key_id: String,
    pub max_receive_count: String,
    pub target: Option<TargetForm>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct TargetForm {
    pub dialect: DialectChoice,
    /// Media Manager only: `station` (the default) or `pbs`; empty for the default.
    pub access: String,
    pub url: String,
    pub token_url: String,
    pub quota: String,
    pub burst: String,
    pub concurrency: String,
    pub timeout_seconds: String,
    pub max_retries: String,
    pub base_delay_seconds: String,
}

/// How a form field is written to TOML.
#[derive(Clone, Copy)]
enum FieldKind {
    Text,
    Whole,
    Number,
}

/// The user's own `metasync.toml`: `$METASYNC_CONFIG`, else `metasync/metasync.toml` in
/// the platform's config folder (`~/.config` on Linux). The desktop reads and writes
/// this one; the CLI finds it when there is no `./metasync.toml`.
pub fn user_config_path() -> Option<PathBuf> {
    std::env::var_os("METASYNC_CONFIG")
        .map(PathBuf::from)
        .or_else(|| dirs::config_dir().map(|d| d.join("metasync").join("metasync.toml")))
}

fn read_text(path: &Path) -> Result<Option<String>, SettingsError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SettingsError::new(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn parse_doc(path: &Path, text: &str) -> Result<DocumentMut, SettingsError> {
    text.parse::<DocumentMut>().map_err(|e| {
        SettingsError::new(format!(
            "{}: {}; fix the file by hand, nothing was written",
            path.display(),
            e.to_string().trim().replace('\n', " ")
        ))
    })
}

fn env_var(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// The profiles of `path` (none when the file does not exist yet).
pub fn settings(path: &Path) -> SettingsView {
    let mut view = SettingsView {
        path: path.display().to_string(),
        exists: false,
        profiles: Vec::new(),
        problem: None,
    };
    let text = match read_text(path) {
        Ok(Some(t)) => t,
        Ok(None) => return view,
        Err(e) => {
            view.problem = Some(e.message);
            return view;
        }
    };
    view.exists = true;
    let doc = match parse_doc(path, &text) {
        Ok(d) => d,
        Err(e) => {
            view.problem = Some(e.message);
            return view;
        }
    };
    let Some(profiles) = doc.get("profiles").and_then(Item::as_table_like) else {
        return view;
    };
    for (name, item) in profiles.iter() {
        let get = |k: &str| item.get(k);
        let backend = get("backend").and_then(Item::as_str).unwrap_or("local");
        let problem = config::parse_profile(path, &text, name, env_var)
            .err()
            .map(|e| e.to_string());
        view.profiles.push(ProfileSummary {
            name: name.to_string(),
            production: get("production").and_then(Item::as_bool).unwrap_or(false),
            backend: backend.to_string(),
            target: get("target")
                .and_then(|t| t.get("url"))
                .and_then(Item::as_str)
                .map(str::to_string),
            problem,
        });
    }
    view
}

fn text_of(item: Option<&Item>) -> String {
    match item.and_then(Item::as_value) {
        Some(toml_edit::Value::String(s)) => s.value().clone(),
        Some(toml_edit::Value::Integer(i)) => i.value().to_string(),
        Some(toml_edit::Value::Float(f)) => f.value().to_string(),
        Some(toml_edit::Value::Boolean(b)) => b.value().to_string(),
        _ => String::new(),
    }
}

/// A profile of `path` as the form shows it.
pub fn profile_form(path: &Path, name: &str) -> Result<ProfileForm, SettingsError> {
    let text = read_text(path)?.unwrap_or_default();
    let doc = parse_doc(path, &text)?;
    let Some(p) = doc
        .get("profiles")
        .and_then(|ps| ps.get(name))
        .filter(|p| p.is_table_like())
    else {
        return Err(SettingsError::new(format!(
            "{}: there is no profile {name:?}",
            path.display()
        )));
    };
    let t = |k: &str| text_of(p.get(k));
    let target = p.get("target").filter(|t| t.is_table_like()).map(|tg| {
        let t = |k: &str| text_of(tg.get(k));
        TargetForm {
            dialect: if t("dialect") == "rest" {
                DialectChoice::Rest
            } else {
                DialectChoice::MediaManager
            },
            access: t("access"),
            url: t("url"),
            token_url: t("token_url"),
            quota: t("quota"),
            burst: t("burst"),
            concurrency: t("concurrency"),
            timeout_seconds: t("timeout_seconds"),
            max_retries: t("max_retries"),
            base_delay_seconds: t("base_delay_seconds"),
        }
    });
    Ok(ProfileForm {
        name: name.to_string(),
        production: p.get("production").and_then(Item::as_bool).unwrap_or(false),
        backend: if t("backend") == "aws" {
            BackendChoice::Aws
        } else {
            BackendChoice::Local
        },
        data_dir: t("data_dir"),
        region: t("region"),
        endpoint_url: t("endpoint_url"),
        aws_profile: t("aws_profile"),
        bucket: t("bucket"),
        table: t("table"),
        queue_prefix: t("queue_prefix"),
        kms_key_id: t("kms_key_id"),
        max_receive_count: t("max_receive_count"),
        target,
    })
}

/// The first lines of a file the settings screen makes.
const NEW_FILE_HEADER: &str =
    "# Metasync profiles. The desktop's settings screen writes this file; the\n\
    # metasync CLI reads it too. Secrets are never here: they are in the OS keychain.\n\n";

/// Profile names the keychain can hold: letters, digits, `-` and `_`.
fn check_name(name: &str) -> Result<(), SettingsError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(SettingsError {
            message: "a profile name is 1 to 64 letters, digits, - and _".into(),
            field: Some("name".into()),
        })
    }
}

/// Set `key` to `value`, keeping the comments around the key and after its value; an
/// unchanged value is left exactly as written.
fn keep(table: &mut Table, key: &str, value: toml_edit::Value) {
    match table.get_mut(key).and_then(Item::as_value_mut) {
        Some(old) if old.to_string().trim() == value.to_string().trim() => {}
        Some(old) => {
            let decor = old.decor().clone();
            *old = value;
            *old.decor_mut() = decor;
        }
        None => {
            table.insert(key, Item::Value(value));
        }
    }
}

/// Write one form field: empty removes the key (the default applies); a value that
/// reads back as typed is left as it is (`1.0` stays `1.0`).
fn put(
    table: &mut Table,
    key: &'static str,
    field: &'static str,
    raw: &str,
    kind: FieldKind,
    invalid: &dyn Fn(&'static str, &str) -> SettingsError,
) -> Result<(), SettingsError> {
    let raw = raw.trim();
    if raw.is_empty() {
        table.remove(key);
        return Ok(());
    }
    if text_of(table.get(key)) == raw {
        return Ok(());
    }
    // `_` groups digits as in TOML; a comma is refused rather than guessed at (is
    // "1,5" one and a half, or fifteen?).
    let plain = raw.replace('_', "");
    let value: toml_edit::Value = match kind {
        FieldKind::Text => raw.into(),
        FieldKind::Whole => match plain.parse::<u32>() {
            Ok(n) => i64::from(n).into(),
            Err(_) => return Err(invalid(field, "must be a whole number, 0 or more")),
        },
        FieldKind::Number => match plain.parse::<i64>() {
            Ok(n) => n.into(),
            Err(_) => match plain.parse::<f64>() {
                Ok(n) if n.is_finite() => n.into(),
                _ => {
                    return Err(invalid(
                        field,
                        "must be a number (with a dot for decimals: 2.5)",
                    ))
                }
            },
        },
    };
    keep(table, key, value);
    Ok(())
}

/// The table at `key` of `parent`, an inline one (`target = { … }`) made a normal
/// table first; `None` when `key` holds something else.
fn table_at<'a>(parent: &'a mut Table, key: &str) -> Option<&'a mut Table> {
    let slot = parent.get_mut(key)?;
    if !slot.is_table() {
        match std::mem::take(slot).into_table() {
            Ok(t) => *slot = Item::Table(t),
            Err(other) => {
                *slot = other;
                return None;
            }
        }
    }
    slot.as_table_mut()
}

/// The aws backend's keys and the form's values for them.
fn aws_fields(form: &ProfileForm) -> [(&'static str, &str); 7] {
    [
        ("region", &form.region),
        ("endpoint_url", &form.endpoint_url),
        ("aws_profile", &form.aws_profile),
        ("bucket", &form.bucket),
        ("table", &form.table),
        ("queue_prefix", &form.queue_prefix),
        ("kms_key_id", &form.kms_key_id),
    ]
}

fn apply(
    p: &mut Table,
    form: &ProfileForm,
    invalid: &dyn Fn(&'static str, &str) -> SettingsError,
) -> Result<(), SettingsError> {
    use FieldKind::{Number, Text, Whole};
    if form.production || p.contains_key("production") {
        keep(p, "production", form.production.into());
    }
    if form.backend == BackendChoice::Aws {
        keep(p, "backend", "aws".into());
        p.remove("data_dir");
        for (key, raw) in aws_fields(form) {
            put(p, key, key, raw, Text, invalid)?;
        }
    } else {
        if p.contains_key("backend") {
            keep(p, "backend", "local".into());
        }
        for (key, _) in aws_fields(form) {
            p.remove(key);
        }
        put(p, "data_dir", "data_dir", &form.data_dir, Text, invalid)?;
    }
    put(
        p,
        "max_receive_count",
        "max_receive_count",
        &form.max_receive_count,
        Whole,
        invalid,
    )?;
    let Some(t) = &form.target else {
        p.remove("target");
        return Ok(());
    };
    if t.url.trim().is_empty() {
        return Err(invalid(
            "target.url",
            "the target needs its URL (or untick Target catalog)",
        ));
    }
    if !p.contains_key("target") {
        p.insert("target", Item::Table(Table::new()));
    }
    let Some(tt) = table_at(p, "target") else {
        return Err(invalid(
            "target",
            "is not a table; fix the file by hand, nothing was written",
        ));
    };
    let dialect = match t.dialect {
        DialectChoice::MediaManager => "media_manager",
        DialectChoice::Rest => "rest",
    };
    keep(tt, "dialect", dialect.into());
    // Keys the form does not show (`templates`) stay as the file has them.
    let fields: [(&'static str, &'static str, &str, FieldKind); 9] = [
        ("access", "target.access", &t.access, Text),
        ("url", "target.url", &t.url, Text),
        ("token_url", "target.token_url", &t.token_url, Text),
        ("quota", "target.quota", &t.quota, Number),
        ("burst", "target.burst", &t.burst, Whole),
        ("concurrency", "target.concurrency", &t.concurrency, Whole),
        (
            "timeout_seconds",
            "target.timeout_seconds",
            &t.timeout_seconds,
            Number,
        ),
        ("max_retries", "target.max_retries", &t.max_retries, Whole),
        (
            "base_delay_seconds",
            "target.base_delay_seconds",
            &t.base_delay_seconds,
            Number,
        ),
    ];
    for (key, field, raw, kind) in fields {
        put(tt, key, field, raw, kind, invalid)?;
    }
    Ok(())
}

/// Save a profile from the form: a new one (`create`) or an existing one. The whole
/// file must still parse and the profile must pass the CLI's validation; only then is
/// it written (a temporary file renamed into place, so a crash leaves the old file).
pub fn save_profile(
    path: &Path,
    form: &ProfileForm,
    create: bool,
) -> Result<SettingsView, SettingsError> {
    let name = form.name.trim();
    check_name(name)?;
    let old = read_text(path)?;
    let mut doc = parse_doc(path, old.as_deref().unwrap_or(""))?;
    if !doc.contains_key("profiles") {
        let mut t = Table::new();
        t.set_implicit(true);
        doc.insert("profiles", Item::Table(t));
    }
    let Some(profiles) = table_at(doc.as_table_mut(), "profiles") else {
        return Err(SettingsError::new(format!(
            "{}: `profiles` is not a table; fix the file by hand, nothing was written",
            path.display()
        )));
    };
    let exists = profiles.contains_key(name);
    if create && exists {
        return Err(SettingsError {
            message: format!("there is already a profile {name}"),
            field: Some("name".into()),
        });
    }
    if !create && !exists {
        return Err(SettingsError::new(format!(
            "{}: there is no profile {name:?} any more; it was removed outside Metasync",
            path.display()
        )));
    }
    if !exists {
        profiles.insert(name, Item::Table(Table::new()));
    }
    let Some(p) = table_at(profiles, name) else {
        return Err(SettingsError::new(format!(
            "{}: profiles.{name} is not a table; fix the file by hand, nothing was written",
            path.display()
        )));
    };
    let invalid = |field: &'static str, message: &str| {
        SettingsError::from(ConfigError::Field {
            path: path.to_path_buf(),
            profile: name.to_string(),
            field,
            message: message.to_string(),
        })
    };
    apply(p, form, &invalid)?;
    let text = match old {
        Some(_) => doc.to_string(),
        None => format!("{NEW_FILE_HEADER}{doc}"),
    };
    config::parse_profile(path, &text, name, env_var)?;
    write_atomically(path, &text)
        .map_err(|e| SettingsError::new(format!("cannot write {}: {e}", path.display())))?;
    Ok(settings(path))
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    // Through a symlinked dotfile to the file it names, keeping its permissions.
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let permissions = std::fs::metadata(&path).ok().map(|m| m.permissions());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".saving-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        if let Some(p) = permissions {
            f.set_permissions(p)?;
        }
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Which credentials a profile has in the OS keychain; never their values.
#[derive(Debug, Clone, Serialize, TS)]
pub struct CredentialsView {
    pub target: bool,
    pub aws: bool,
    /// Why the keychain could not be asked.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    Target,
    Aws,
}

impl From<CredentialKind> for Kind {
    fn from(k: CredentialKind) -> Self {
        match k {
            CredentialKind::Target => Kind::Target,
            CredentialKind::Aws => Kind::Aws,
        }
    }
}

/// Whether the profile's target credentials and AWS keys are set (blocks on the
/// keychain: call it off the async workers).
pub fn credentials_status(profile: &str) -> CredentialsView {
    let target = credentials::is_set(profile, Kind::Target);
    let aws = credentials::is_set(profile, Kind::Aws);
    let problem = [&target, &aws]
        .iter()
        .find_map(|r| r.as_ref().err().map(ToString::to_string));
    CredentialsView {
        target: target.unwrap_or(false),
        aws: aws.unwrap_or(false),
        problem,
    }
}

/// Store a key and secret in the keychain (blocks).
pub fn set_credentials(
    profile: &str,
    kind: CredentialKind,
    key: Secret,
    secret: Secret,
) -> Result<CredentialsView, SettingsError> {
    if key.expose().trim().is_empty() || secret.expose().is_empty() {
        return Err(SettingsError::new(
            "the key and the secret must not be empty; nothing was stored",
        ));
    }
    let creds = Credentials {
        key: Secret::new(key.expose().trim()),
        secret,
    };
    credentials::store(profile, kind.into(), &creds).map_err(SettingsError::new)?;
    tracing::info!(
        stage = "credentials",
        profile,
        "credentials stored in the OS keychain"
    );
    Ok(credentials_status(profile))
}

/// Remove a key and secret from the keychain (blocks).
pub fn delete_credentials(
    profile: &str,
    kind: CredentialKind,
) -> Result<CredentialsView, SettingsError> {
    credentials::delete(profile, kind.into()).map_err(SettingsError::new)?;
    Ok(credentials_status(profile))
}

/// The answer of a target check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetCheck {
    /// Reached, and the credentials were accepted.
    Accepted(String),
    /// Reached, and the credentials were refused.
    Refused(String),
    /// No usable answer (unreachable, timeouts, server errors).
    NoAnswer(String),
}

/// `metasync target check`: connect with the profile's credentials (the keychain's,
/// else `METASYNC_TARGET_KEY` / `_SECRET`) and look up a slug that does not exist;
/// nothing changes. An error: the profile has no target, or no credentials.
pub async fn target_check(chosen: &Chosen) -> Result<TargetCheck, RuntimeError> {
    let name = chosen.name.clone().unwrap_or_default();
    let Some(target) = &chosen.target else {
        return Err(RuntimeError::Unusable(format!(
            "profile {name} has no [profiles.{name}.target] section"
        )));
    };
    let owned = name.clone();
    let (creds, _) = tokio::task::spawn_blocking(move || credentials::resolve(&owned, env_var))
        .await
        .map_err(RuntimeError::failed)?
        .map_err(RuntimeError::unusable)?;
    let called = metasync_catalog_client::check_connection(target, &creds)
        .await
        .map_err(RuntimeError::unusable)?;
    let marker = if chosen.production {
        " [PRODUCTION]"
    } else {
        ""
    };
    let dialect = match target.dialect {
        Dialect::MediaManager => "Media Manager v1",
        Dialect::Rest => "REST + OAuth2",
    };
    Ok(match called.result {
        Ok(_) => TargetCheck::Accepted(format!(
            "Profile {name}{marker}: connected to {} ({dialect}); the credentials were accepted.",
            target.url
        )),
        Err(e @ CallError::Auth { .. }) => TargetCheck::Refused(format!("profile {name}: {e}")),
        Err(e) => TargetCheck::NoAnswer(format!(
            "profile {name}: {} did not answer as expected after {} attempt(s): {e}",
            target.url, called.attempts
        )),
    })
}

/// One line of a connection test.
#[derive(Debug, Clone, Serialize, TS)]
pub struct CheckLine {
    pub ok: bool,
    /// `target`, `bucket`, `queue`, `table`, `database`, …
    pub what: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct ConnectionReport {
    pub profile: String,
    pub production: bool,
    /// `None`: the profile has no target.
    pub target: Option<CheckLine>,
    pub backend: Vec<CheckLine>,
}

/// Test a profile: the target check, then what of the backend's resources exists.
/// Changes nothing anywhere.
pub async fn test_connection(path: &Path, name: &str) -> Result<ConnectionReport, SettingsError> {
    let chosen = choose(Some(name), Some(path))?;
    let target = match &chosen.target {
        None => None,
        Some(_) => Some(match target_check(&chosen).await {
            Ok(TargetCheck::Accepted(m)) => line(true, "target", m),
            Ok(TargetCheck::Refused(m) | TargetCheck::NoAnswer(m)) => line(false, "target", m),
            Err(e) => line(false, "target", e.to_string()),
        }),
    };
    let local = made_on_first_use(&chosen);
    let backend = match infra(&chosen, InfraAction::Check).await {
        Ok(changes) => changes
            .into_iter()
            .map(|c| match c.action {
                Action::Absent if local => line(
                    true,
                    c.kind,
                    format!("{} (not there yet: made on first use)", c.name),
                ),
                Action::Absent => line(
                    false,
                    c.kind,
                    format!(
                        "{} is missing: `metasync infra up --profile {name}` creates it",
                        c.name
                    ),
                ),
                _ => line(true, c.kind, c.name),
            })
            .collect(),
        Err(e) => vec![line(false, "backend", e.to_string())],
    };
    Ok(ConnectionReport {
        profile: name.to_string(),
        production: chosen.production,
        target,
        backend,
    })
}

fn line(ok: bool, what: &str, detail: impl Into<String>) -> CheckLine {
    CheckLine {
        ok,
        what: what.to_string(),
        detail: detail.into(),
    }
}

/// The profile the window works with, shown in the header.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ActiveProfile {
    /// `None`: the embedded default.
    pub name: Option<String>,
    /// "profile staging [PRODUCTION]", or "the embedded default".
    pub label: String,
    pub production: bool,
}

/// The window's profile choice. Each launch starts on the embedded default: a
/// production profile is never chosen by itself.
pub struct Profiles {
    path: PathBuf,
    active: Mutex<Option<String>>,
}

impl Profiles {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            active: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The active profile, as the file says now. A profile edited into something the
    /// CLI refuses, or removed, falls back to the embedded default.
    pub fn active(&self) -> ActiveProfile {
        let mut active = self.lock();
        match choose(active.as_deref(), Some(&self.path)) {
            Ok(chosen) => view(chosen),
            Err(_) => {
                *active = None;
                view(embedded_default())
            }
        }
    }

    /// The active profile, validated now (an error when it no longer is valid).
    pub fn chosen(&self) -> Result<Chosen, SettingsError> {
        let active = self.lock().clone();
        Ok(choose(active.as_deref(), Some(&self.path))?)
    }

    /// Switch to `name` (`None`: the embedded default); refused when the CLI would
    /// refuse the profile.
    pub fn select(&self, name: Option<&str>) -> Result<ActiveProfile, SettingsError> {
        let chosen = choose(name, Some(&self.path))?;
        *self.lock() = chosen.name.clone();
        Ok(view(chosen))
    }
}

fn view(c: Chosen) -> ActiveProfile {
    ActiveProfile {
        name: c.name,
        label: c.label,
        production: c.production,
    }
}

/// The TypeScript declarations of the settings types (see `workbench::typescript_bindings`).
pub fn typescript_decls(cfg: &ts_rs::Config) -> Vec<String> {
    vec![
        SettingsError::decl(cfg),
        SettingsView::decl(cfg),
        ProfileSummary::decl(cfg),
        BackendChoice::decl(cfg),
        DialectChoice::decl(cfg),
        ProfileForm::decl(cfg),
        TargetForm::decl(cfg),
        CredentialsView::decl(cfg),
        CredentialKind::decl(cfg),
        CheckLine::decl(cfg),
        ConnectionReport::decl(cfg),
        ActiveProfile::decl(cfg),
    ]
}

#[cfg(test)]
mod tests;
