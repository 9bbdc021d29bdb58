//! A profile, opened: which backend (a profile's, or with none the embedded default in
//! the platform's data folder, so Metasync runs with nothing configured), and the
//! target client with its limiter and credentials.

use metasync_catalog_client::credentials::{self, CredentialsError, Kind, Source};
use metasync_catalog_client::AnyTarget;
use metasync_engine::config::{self, AwsProfile, BackendProfile, TargetProfile};
use metasync_engine::ports::{Backend, QuotaStore};
use metasync_engine::ratelimit::{RateLimiter, SharedQuota};
use metasync_engine::retry::RetryPolicy;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why an operation could not start or finish, in words staff can act on.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Configuration, credentials, unusable input: nothing was done (exit 2).
    #[error("{0}")]
    Unusable(String),
    /// The operation started and stopped on an error (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl RuntimeError {
    pub fn unusable(e: impl std::fmt::Display) -> Self {
        Self::Unusable(e.to_string())
    }
    pub fn failed(e: impl std::fmt::Display) -> Self {
        Self::Failed(e.to_string())
    }
}

/// Who is at the keyboard, for run records and triage actions: `$METASYNC_USER`, else
/// the OS user.
pub fn who() -> String {
    std::env::var("METASYNC_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "metasync".into())
}

/// A profile chosen, before anything is opened.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// "profile staging [PRODUCTION]", or "the embedded default".
    pub label: String,
    pub name: Option<String>,
    pub production: bool,
    pub backend: BackendProfile,
    pub target: Option<TargetProfile>,
}

/// No profile: the embedded backend in the platform's data folder, no target.
pub fn embedded_default() -> Chosen {
    Chosen {
        label: "the embedded default".into(),
        name: None,
        production: false,
        backend: BackendProfile::Local {
            data_dir: None,
            max_receive_count: 5,
        },
        target: None,
    }
}

pub fn choose(profile: Option<&str>, config_file: Option<&Path>) -> Result<Chosen, RuntimeError> {
    let Some(name) = profile else {
        return Ok(embedded_default());
    };
    let path = config_path(config_file);
    let p = config::load_profile(&path, name, |k| std::env::var(k).ok())
        .map_err(RuntimeError::unusable)?;
    let marker = if p.production { " [PRODUCTION]" } else { "" };
    Ok(Chosen {
        label: format!("profile {name}{marker}"),
        name: Some(name.to_string()),
        production: p.production,
        backend: p.backend,
        target: p.target,
    })
}

/// Where profiles are read from: `--config`, then `$METASYNC_CONFIG`, then
/// `./metasync.toml`, then the user's own file (what the desktop's settings screen
/// writes: `metasync/metasync.toml` in the platform's config folder). With none of
/// them there, `./metasync.toml`, which the error then names.
pub fn config_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("METASYNC_CONFIG") {
        return PathBuf::from(p);
    }
    let here = PathBuf::from("metasync.toml");
    if here.exists() {
        return here;
    }
    crate::settings::user_config_path()
        .filter(|p| p.exists())
        .unwrap_or(here)
}

/// The embedded backend's folder: the profile's `data_dir`, else `$METASYNC_DATA_DIR`,
/// else the platform's data folder (`~/.local/share/metasync` on Linux).
pub fn local_dir(data_dir: Option<&Path>) -> Result<PathBuf, RuntimeError> {
    if let Some(d) = data_dir {
        return Ok(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os("METASYNC_DATA_DIR") {
        return Ok(PathBuf::from(d));
    }
    dirs::data_dir().map(|d| d.join("metasync")).ok_or_else(|| {
        RuntimeError::Unusable(
            "no data folder on this system: set data_dir in the profile or METASYNC_DATA_DIR"
                .into(),
        )
    })
}

/// An opened profile: its stores, and its target once connected.
pub struct Env {
    pub chosen: Chosen,
    pub backend: Backend,
    /// The data folder: the embedded backend's files, and the logs of every profile.
    pub data_dir: Option<PathBuf>,
    /// Credentials given by the caller (the demo's sandbox), used instead of the
    /// keychain and the environment.
    pub credentials: Option<credentials::Credentials>,
}

/// The target of a profile, ready to call.
pub struct Connected {
    pub client: AnyTarget,
    pub limiter: Arc<RateLimiter>,
    pub retry: RetryPolicy,
    /// What the credentials may write.
    pub access: metasync_engine::target::Access,
    pub source: Source,
}

impl Env {
    pub fn profile_name(&self) -> &str {
        self.chosen.name.as_deref().unwrap_or("")
    }

    /// Whether this process works the queues (else the deployed Lambda consumers do,
    /// and a sync only enqueues: `consumers = "lambda"`).
    pub fn consumers_here(&self) -> bool {
        !matches!(
            &self.chosen.backend,
            BackendProfile::Aws(a) if a.consumers == config::Consumers::Lambda
        )
    }

    /// What the profile's target credentials may write (everything without a target).
    pub fn access(&self) -> metasync_engine::target::Access {
        self.chosen
            .target
            .as_ref()
            .map_or(metasync_engine::target::Access::Full, |t| t.access)
    }

    /// Connect to the profile's target with its credentials (keychain first, then
    /// `METASYNC_TARGET_KEY` / `METASYNC_TARGET_SECRET`). The source is logged, never
    /// the values.
    pub async fn connect(&self) -> Result<Connected, RuntimeError> {
        let Some(target) = self.chosen.target.clone() else {
            return Err(RuntimeError::Unusable(format!(
                "{} has no target: add a [profiles.NAME.target] section to metasync.toml and pass --profile NAME",
                self.chosen.label
            )));
        };
        if let Some(c) = &self.credentials {
            return connect_with(&target, c, Source::Environment, self.shared_quota(&target));
        }
        let name = self.chosen.name.clone().unwrap_or_default();
        // The keychain client blocks: keep it off the async workers.
        let (creds, source) = tokio::task::spawn_blocking(move || {
            credentials::resolve(&name, |k| std::env::var(k).ok())
        })
        .await
        .map_err(RuntimeError::failed)?
        .map_err(RuntimeError::unusable)?;
        tracing::info!(
            stage = "connect",
            profile = self.profile_name(),
            credentials = source.as_str(),
            "target credentials from {}",
            source.as_str()
        );
        connect_with(&target, &creds, source, self.shared_quota(&target))
    }

    /// With a known quota, this profile's consumers share it through the state store
    /// with every other consumer of the same target (other desktops, the CLI, the
    /// Lambda consumers): one bucket per target URL.
    pub fn shared_quota(&self, target: &TargetProfile) -> Option<Arc<SharedQuota>> {
        let quota = target.limiter.quota?;
        let store: Arc<dyn QuotaStore> = self.backend.state.clone();
        Some(Arc::new(SharedQuota::new(
            store,
            target.url.clone(),
            quota,
            target.limiter.burst,
        )))
    }
}

/// A target client of a validated profile with explicit credentials, its limiter
/// drawing from `shared` when given.
pub fn connect_with(
    target: &TargetProfile,
    creds: &credentials::Credentials,
    source: Source,
    shared: Option<Arc<SharedQuota>>,
) -> Result<Connected, RuntimeError> {
    let limiter = Arc::new(match shared {
        Some(q) => RateLimiter::with_shared(target.limiter, q),
        None => RateLimiter::new(target.limiter),
    });
    let client = metasync_catalog_client::connect(target, creds, Some(limiter.clone()))
        .map_err(RuntimeError::unusable)?;
    Ok(Connected {
        client,
        limiter,
        retry: target.retry,
        access: target.access,
        source,
    })
}

/// Open the chosen profile's stores (creating the embedded ones if needed).
pub async fn open(chosen: Chosen) -> Result<Env, RuntimeError> {
    match &chosen.backend {
        BackendProfile::Local {
            data_dir,
            max_receive_count,
        } => {
            let dir = local_dir(data_dir.as_deref())?;
            let backend = metasync_local::open(
                &dir,
                metasync_local::QueueSettings {
                    max_receive_count: *max_receive_count,
                },
            )
            .map_err(RuntimeError::unusable)?;
            Ok(Env {
                chosen,
                backend,
                data_dir: Some(dir),
                credentials: None,
            })
        }
        BackendProfile::Aws(profile) => {
            let clients = aws_clients(chosen.name.as_deref(), profile).await?;
            open_aws(chosen, &clients)
        }
    }
}

/// Open an aws profile's stores through clients the caller built (the Lambda
/// handlers: the function's role; tests: an emulator's keys).
pub fn open_aws(chosen: Chosen, clients: &metasync_aws::Clients) -> Result<Env, RuntimeError> {
    let BackendProfile::Aws(profile) = &chosen.backend else {
        return Err(RuntimeError::Unusable(format!(
            "{} is not an aws profile",
            chosen.label
        )));
    };
    let retry = RetryPolicy::from_env().map_err(RuntimeError::unusable)?;
    let backend = metasync_aws::backend(clients, profile, retry);
    Ok(Env {
        chosen,
        backend,
        data_dir: local_dir(None).ok(),
        credentials: None,
    })
}

/// The SDK clients of an aws profile: with the profile's AWS keys from the OS keychain
/// when `metasync credentials set --aws` stored some, else the AWS chain (env, ~/.aws,
/// SSO). A keychain that cannot be reached (a headless server) means the chain.
pub async fn aws_clients(
    name: Option<&str>,
    profile: &AwsProfile,
) -> Result<metasync_aws::Clients, RuntimeError> {
    let owned = name.map(String::from);
    let found =
        tokio::task::spawn_blocking(move || owned.map(|n| credentials::find(&n, Kind::Aws)))
            .await
            .map_err(RuntimeError::failed)?;
    let keys = match found {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(c))) => Some(metasync_aws::StaticKeys {
            access_key_id: c.key.expose().to_string(),
            secret_access_key: c.secret.expose().to_string(),
        }),
        Some(Err(CredentialsError::Keychain(e))) => {
            tracing::info!(
                stage = "connect",
                "the OS keychain is not available ({e}); using the AWS chain"
            );
            None
        }
        Some(Err(e)) => return Err(RuntimeError::unusable(e)),
    };
    metasync_aws::Clients::new(profile, keys)
        .await
        .map_err(RuntimeError::unusable)
}
