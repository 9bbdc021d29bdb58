//! Which backend a command works against: a profile's, or with no profile the embedded
//! default (SQLite + a directory in the platform's data folder), so Metasync runs with
//! nothing configured.

use metasync_engine::config::{self, AwsProfile, BackendProfile};
use metasync_target::credentials::{self, CredentialsError, Kind};
use std::path::{Path, PathBuf};

pub struct Chosen {
    /// "profile staging", or "the embedded default".
    pub label: String,
    pub name: Option<String>,
    pub backend: BackendProfile,
}

pub fn choose(profile: Option<&str>, config_file: Option<&Path>) -> Result<Chosen, String> {
    let Some(name) = profile else {
        return Ok(Chosen {
            label: "the embedded default".into(),
            name: None,
            backend: BackendProfile::Local {
                data_dir: None,
                max_receive_count: 5,
            },
        });
    };
    let path = config::locate(config_file);
    let p =
        config::load_profile(&path, name, |k| std::env::var(k).ok()).map_err(|e| e.to_string())?;
    let marker = if p.production { " [PRODUCTION]" } else { "" };
    Ok(Chosen {
        label: format!("profile {name}{marker}"),
        name: Some(name.to_string()),
        backend: p.backend,
    })
}

/// The embedded backend's folder: the profile's `data_dir`, else `$METASYNC_DATA_DIR`,
/// else the platform's data folder (`~/.local/share/metasync` on Linux).
pub fn local_dir(data_dir: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(d) = data_dir {
        return Ok(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os("METASYNC_DATA_DIR") {
        return Ok(PathBuf::from(d));
    }
    dirs::data_dir().map(|d| d.join("metasync")).ok_or_else(|| {
        "no data folder on this system: set data_dir in the profile or METASYNC_DATA_DIR".into()
    })
}

pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Runtime::new().map_err(|e| format!("cannot start: {e}"))
}

/// The SDK clients of an aws profile: with the profile's AWS keys from the OS keychain
/// when `metasync credentials set --aws` stored some, else the AWS chain (env, ~/.aws,
/// SSO). A keychain that cannot be reached (a headless server) means the chain.
pub async fn aws_clients(
    name: Option<&str>,
    profile: &AwsProfile,
) -> Result<metasync_aws::Clients, String> {
    let keys = match name.map(|n| credentials::find(n, Kind::Aws)) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(c))) => Some(metasync_aws::StaticKeys {
            access_key_id: c.key.expose().to_string(),
            secret_access_key: c.secret.expose().to_string(),
        }),
        Some(Err(CredentialsError::Keychain(e))) => {
            eprintln!("note: the OS keychain is not available ({e}); using the AWS chain");
            None
        }
        Some(Err(e)) => return Err(e.to_string()),
    };
    metasync_aws::Clients::new(profile, keys)
        .await
        .map_err(|e| e.to_string())
}
