//! One SQLite connection shared by the queues and the state store of a backend.

use crate::LocalError;
use metasync_engine::gen::Rng;
use metasync_engine::ports::{jitter_seed, CallCounter, Clock, ErrorKind, Service, StoreError};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT    NOT NULL,
    lane          INTEGER NOT NULL,      -- 0 main, 1 dead-letter
    id            TEXT    NOT NULL UNIQUE,
    group_id      TEXT    NOT NULL,
    dedup_id      TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    visible_at    INTEGER NOT NULL,      -- ms since the epoch
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT                   -- of the latest receive
);
-- A group's messages in send order, and the groups that hold messages, oldest first:
-- a receive visits groups, not the messages of groups that are blocked.
CREATE INDEX IF NOT EXISTS messages_group ON messages (queue, lane, group_id, seq);
CREATE INDEX IF NOT EXISTS messages_flight ON messages (queue, lane, visible_at);
CREATE TABLE IF NOT EXISTS groups (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    queue    TEXT    NOT NULL,
    lane     INTEGER NOT NULL,
    group_id TEXT    NOT NULL,
    UNIQUE (queue, lane, group_id)
);
CREATE INDEX IF NOT EXISTS groups_order ON groups (queue, lane, id);
-- Dedup ids outlive their messages for the 5-minute window, as on SQS.
CREATE TABLE IF NOT EXISTS dedup (
    queue      TEXT    NOT NULL,
    dedup_id   TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (queue, dedup_id)
);
-- Each send drops the expired ids first: without this, a scan of the whole window.
CREATE INDEX IF NOT EXISTS dedup_expiry ON dedup (queue, expires_at);
CREATE TABLE IF NOT EXISTS records (
    id            TEXT PRIMARY KEY,      -- {type}#{key}
    hash          TEXT NOT NULL,
    target_id     TEXT,
    status        TEXT NOT NULL,
    version       INTEGER NOT NULL,
    lease_owner   TEXT,
    lease_until   INTEGER,
    payload       TEXT,
    error_code    TEXT NOT NULL,         -- '' when there is no error
    error_message TEXT,
    attempts      INTEGER,
    run_id        TEXT,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_status ON records (status, error_code, id);
-- Shared quota buckets (GCRA), one row per target: see the engine's QuotaStore.
CREATE TABLE IF NOT EXISTS quotas (
    name            TEXT PRIMARY KEY,
    tat_us          INTEGER NOT NULL,
    paused_until_us INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    writer          INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id         TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL,
    doc        TEXT NOT NULL
);
";

pub(crate) struct Db {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Wakes long polls when a message is sent or made visible in this process
    /// (another process's sends are seen by polling).
    pub(crate) arrivals: Notify,
    rng: Mutex<Rng>,
}

/// How long an opener or a call waits for another process's lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Journal, durability and schema: idempotent, so it can run again after "locked".
fn setup(conn: &Connection) -> rusqlite::Result<()> {
    // WAL with a full sync at each commit: a call that returned survives kill -9 and
    // power loss alike.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // macOS's fsync leaves data in the drive's cache; F_FULLFSYNC does not (SQLite's
    // `fullfsync` pragma, for commits and checkpoints).
    #[cfg(target_os = "macos")]
    {
        conn.pragma_update(None, "fullfsync", "ON")?;
        conn.pragma_update(None, "checkpoint_fullfsync", "ON")?;
    }
    conn.execute_batch(SCHEMA)?;
    upgrade(conn)
}

/// The schema's version (`PRAGMA user_version`) this code writes.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// Bring a folder written by an older version up to [`SCHEMA_VERSION`], in one
/// transaction (another process may be doing the same).
fn upgrade(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    // Rolled back if dropped on an error.
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "-- 1: groups of the messages already queued, in the order of their oldest.
         INSERT OR IGNORE INTO groups (queue, lane, group_id)
             SELECT queue, lane, group_id FROM messages
             GROUP BY queue, lane, group_id ORDER BY MIN(seq);
         DROP INDEX IF EXISTS messages_order;
         PRAGMA user_version = 1;",
    )?;
    tx.commit()
}

/// SQLite's busy handler: wait in short naps so a lock held for a millisecond costs
/// about that (SQLite's own `busy_timeout` naps up to 100 ms, and a poller that keeps
/// missing the lock waits hundreds of ms), giving up after [`LOCK_WAIT`].
fn wait_for_lock(tries: i32) -> bool {
    const SHORT: std::time::Duration = std::time::Duration::from_micros(200);
    const LONG: std::time::Duration = std::time::Duration::from_millis(2);
    // 200 naps of 0.2 ms (40 ms), then 2 ms naps up to LOCK_WAIT.
    let short_tries = 200;
    let long_tries = (LOCK_WAIT.as_millis() / LONG.as_millis()) as i32;
    if tries < short_tries {
        std::thread::sleep(SHORT);
        true
    } else if tries < short_tries + long_tries {
        std::thread::sleep(LONG);
        true
    } else {
        false
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl Db {
    pub(crate) fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, LocalError> {
        let err = |e: rusqlite::Error| LocalError::Db {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let conn = Connection::open(path).map_err(err)?;
        // First the wait for a lock: switching a fresh file to WAL takes one.
        conn.busy_handler(Some(wait_for_lock)).map_err(err)?;
        // SQLite answers "locked" at once, without waiting, where waiting could
        // deadlock (two connections switching one fresh file to WAL, or upgrading to
        // write the schema): start the setup again until the wait is used up, so
        // processes opening one new folder together all get in.
        let started = std::time::Instant::now();
        loop {
            match setup(&conn) {
                Ok(()) => break,
                Err(e) if is_busy(&e) && started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(err(e)),
            }
        }
        Ok(Self {
            path: path.to_owned(),
            conn: Arc::new(Mutex::new(conn)),
            clock,
            arrivals: Notify::new(),
            rng: Mutex::new(Rng::new(jitter_seed())),
        })
    }

    /// Run `f` on the connection off the async threads, counting one call.
    pub(crate) async fn run<T, F>(
        &self,
        calls: &CallCounter,
        service: Service,
        operation: &'static str,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        calls.add(service, operation);
        let conn = self.conn.clone();
        let path = self.path.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await;
        match joined {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(sql_error(service, operation, &path, &e)),
            Err(e) => Err(StoreError::new(
                ErrorKind::Other,
                service,
                operation,
                format!("the database task stopped: {e}"),
            )),
        }
    }

    /// A random id (128 bits, hex).
    pub(crate) fn new_id(&self) -> String {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64())
    }
}

fn sql_error(
    service: Service,
    operation: &'static str,
    path: &Path,
    e: &rusqlite::Error,
) -> StoreError {
    let kind = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            ErrorKind::Unavailable
        }
        Some(rusqlite::ErrorCode::PermissionDenied | rusqlite::ErrorCode::ReadOnly) => {
            ErrorKind::Denied
        }
        _ => ErrorKind::Other,
    };
    StoreError::new(kind, service, operation, format!("{}: {e}", path.display()))
}
