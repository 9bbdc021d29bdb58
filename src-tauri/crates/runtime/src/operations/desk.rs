//! The operations room's state, one per window: the profile choice, the opened stores
//! of the profile in use (kept while it stays the same), the sync running now, and the
//! folders the desktop keeps its own files in.

use crate::env::{open, Chosen, Env, RuntimeError};
use crate::settings::Profiles;
use metasync_catalog_client::credentials::Credentials;
use metasync_engine::pipeline::sync::Cancel;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Where the desktop keeps its own files.
#[derive(Debug, Clone)]
pub struct Places {
    /// Corrected copies of edited files, read by a plan or a sync (see
    /// [`scratch_root`](super::scratch_root)).
    pub scratch: PathBuf,
    /// The interrupted-sync marker and each profile's depth and throughput history.
    pub state: PathBuf,
}

impl Places {
    /// The user's: the cache folder's scratch, and `metasync/desktop` in the platform's
    /// data folder (`~/.local/share` on Linux).
    pub fn user() -> Self {
        Self {
            scratch: super::scratch_root(),
            state: dirs::data_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("metasync")
                .join("desktop"),
        }
    }
}

/// The operations room: what every screen after the workbench works through.
pub struct Desk {
    pub profiles: Arc<Profiles>,
    pub places: Places,
    /// The profile opened last, by what it was opened from (a profile edited since is
    /// opened again).
    opened: tokio::sync::Mutex<Option<(String, Arc<Env>)>>,
    /// The sync running now (one at a time).
    running: Mutex<Option<Cancel>>,
    /// Target credentials to use instead of the keychain's (an in-process sandbox's).
    credentials: Option<Credentials>,
    /// Dead letters last seen per profile, to tell when they grow.
    dead_seen: Mutex<std::collections::HashMap<String, u64>>,
}

/// Holds the one-sync slot until dropped.
pub(crate) struct Running<'a>(&'a Desk);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        *self.0.lock_running() = None;
    }
}

impl Desk {
    pub fn new(profiles: Arc<Profiles>, places: Places) -> Self {
        Self {
            profiles,
            places,
            opened: tokio::sync::Mutex::new(None),
            running: Mutex::new(None),
            credentials: None,
            dead_seen: Mutex::default(),
        }
    }

    /// Record the dead letters seen now on a profile; an alert when they grew since the
    /// last look (the first look only sets the baseline).
    pub(crate) fn dead_letters_seen(&self, profile: &str, dead: u64) -> Option<String> {
        let mut seen = self.dead_seen.lock().unwrap_or_else(|p| p.into_inner());
        match seen.insert(profile.to_string(), dead) {
            Some(before) if dead > before => Some(format!(
                "Dead letters on {profile} grew from {before} to {dead}: records gave up after every retry. See Triage."
            )),
            _ => None,
        }
    }

    /// Call the target with these credentials, not the keychain's (a sandbox started
    /// in-process, as the demo does).
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, Option<Cancel>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a sync runs now (closing the window asks first).
    pub fn sync_running(&self) -> bool {
        self.lock_running().is_some()
    }

    /// Ask the running sync to stop; false when none runs.
    pub fn cancel_sync(&self) -> bool {
        match &*self.lock_running() {
            Some(c) => {
                c.cancel();
                true
            }
            None => false,
        }
    }

    pub(crate) fn start_sync(&self, cancel: Cancel) -> Result<Running<'_>, RuntimeError> {
        let mut slot = self.lock_running();
        if slot.is_some() {
            return Err(RuntimeError::Unusable(
                "a sync is already running: wait for it, or cancel it first".into(),
            ));
        }
        *slot = Some(cancel);
        Ok(Running(self))
    }

    /// The header's profile, as the file says now.
    pub async fn chosen(&self) -> Result<Chosen, RuntimeError> {
        let profiles = Arc::clone(&self.profiles);
        tokio::task::spawn_blocking(move || profiles.chosen())
            .await
            .map_err(RuntimeError::failed)?
            .map_err(RuntimeError::unusable)
    }

    /// The header's profile, opened (an embedded backend is made if missing).
    pub async fn env(&self) -> Result<Arc<Env>, RuntimeError> {
        let chosen = self.chosen().await?;
        self.open(chosen).await
    }

    /// A chosen profile, opened; the last one is kept while nothing in it changes.
    pub async fn open(&self, chosen: Chosen) -> Result<Arc<Env>, RuntimeError> {
        // Chosen holds the profile's settings, never a secret (those stay in the keychain).
        let id = format!("{chosen:?}");
        if let Some((was, env)) = &*self.opened.lock().await {
            if *was == id {
                return Ok(Arc::clone(env));
            }
        }
        // Opened without the lock held: a slow open (a locked SQLite file, the AWS
        // config) does not stall the other screens' reads. Two opens at once both
        // work; the last one is kept.
        let mut env = open(chosen).await?;
        env.credentials.clone_from(&self.credentials);
        let env = Arc::new(env);
        *self.opened.lock().await = Some((id, Arc::clone(&env)));
        Ok(env)
    }
}
