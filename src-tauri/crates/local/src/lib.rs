//! The embedded backend: the engine's storage ports on one machine, with nothing to
//! configure. Queues and state live in one SQLite database (WAL); objects are files
//! under a directory. Same semantics as the AWS adapters (the contract suite runs
//! against both), and durable across a crash: a call that returned has committed.

mod db;
mod objects;
mod queue;
mod state;

pub use objects::DirObjects;
pub use queue::LocalQueue;
pub use state::LocalState;

use metasync_engine::ports::{Backend, Clock, SystemClock};
use metasync_engine::EntityType;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot create the data directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the local database {path}: {message}")]
    Db { path: PathBuf, message: String },
}

/// Queue settings the AWS side keeps in its redrive policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// A message received more often than this moves to the dead-letter queue.
    pub max_receive_count: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            max_receive_count: 5,
        }
    }
}

/// Open (creating if needed) the embedded backend under `dir`:
/// `dir/metasync.db` and `dir/objects/`.
pub fn open(dir: &Path, settings: QueueSettings) -> Result<Backend, LocalError> {
    open_with_clock(dir, settings, Arc::new(SystemClock))
}

/// As [`open`], with the clock that visibility timeouts and the dedup window read.
pub fn open_with_clock(
    dir: &Path,
    settings: QueueSettings,
    clock: Arc<dyn Clock>,
) -> Result<Backend, LocalError> {
    std::fs::create_dir_all(dir).map_err(|source| LocalError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    let db = Arc::new(db::Db::open(&dir.join("metasync.db"), clock)?);
    let objects = Arc::new(DirObjects::open(&dir.join("objects"))?);
    let queue = |e: EntityType| -> Arc<dyn metasync_engine::ports::Queue> {
        Arc::new(LocalQueue::new(db.clone(), e, settings))
    };
    Ok(Backend {
        objects,
        queues: EntityType::ALL.map(queue),
        state: Arc::new(LocalState::new(db.clone())),
    })
}

/// Remove everything the embedded backend holds under `dir`.
pub fn destroy(dir: &Path) -> std::io::Result<()> {
    for name in ["metasync.db", "metasync.db-wal", "metasync.db-shm"] {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    match std::fs::remove_dir_all(dir.join("objects")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
