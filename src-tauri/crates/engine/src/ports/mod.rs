//! The storage ports: an object store, FIFO queues and a state store. The engine works
//! against these traits only; `metasync-local` (SQLite + a directory) and
//! `metasync-aws` (S3, SQS FIFO, DynamoDB) implement them with the same semantics,
//! proven by one contract suite (`tests/contract.rs`).
//!
//! Every adapter counts the calls it makes (by port and operation, named after the AWS
//! operation it is or stands for), so a run can say what it cost.

mod calls;
pub mod faults;
mod objects;
mod queue;
mod quota;
mod state;
pub mod target;

pub use calls::{CallCount, CallCounter, Calls, Service};
pub use objects::{check_key, check_prefix, Object, ObjectMeta, ObjectStore};
pub use queue::{
    check_delete_batch, check_receipt, check_receive, check_send_batch, is_id_char, pack_batches,
    Depth, Lane, Outgoing, PackError, Queue, Receipt, Received, SendFailure, MAX_BATCH_BYTES,
    MAX_BATCH_ENTRIES, MAX_ID_CHARS, MAX_LONG_POLL, MAX_RECEIVE,
};
pub use quota::{check_quota_name, QuotaState, QuotaStore, MAX_QUOTA_NAME};
pub use state::{
    check_batch, check_batch_get, check_batch_put, check_record, put_all, Expect, LastError, Lease,
    Page, Record, RecordKey, RecordStatus, Run, RunKind, StateStore, Written, MAX_BATCH_GET,
    MAX_BATCH_PUT, MAX_INDEX_KEY_BYTES, MAX_ITEM_BYTES,
};

use crate::retry::ErrorClass;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What went wrong in a storage call, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The service asked us to slow down; the same call may succeed later.
    Throttled,
    /// Timeouts, resets, 5xx: the same call may succeed later.
    Unavailable,
    /// The bucket, queue or table does not exist (`metasync infra up` creates them).
    Missing,
    /// Credentials are missing, expired or not allowed to do this.
    Denied,
    /// The request breaks a limit of the port (too many entries, too many bytes, a bad key).
    Invalid,
    /// A queue receipt that no longer holds: its visibility timeout ran out (the
    /// message is back in the queue, or was received again) or it was deleted. Nothing
    /// to retry: the message comes back to whoever receives next.
    Stale,
    /// Anything else the service refused.
    Other,
}

/// A storage call that failed. The message names the service, the operation and the
/// resource, never a credential.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service} {operation}: {message}")]
pub struct StoreError {
    pub kind: ErrorKind,
    pub service: Service,
    pub operation: &'static str,
    pub message: String,
}

impl StoreError {
    pub fn new(
        kind: ErrorKind,
        service: Service,
        operation: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            service,
            operation,
            message: message.into(),
        }
    }

    pub fn invalid(service: Service, operation: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, service, operation, message)
    }

    /// Whether retrying the same call can help.
    pub fn class(&self) -> ErrorClass {
        match self.kind {
            ErrorKind::Throttled | ErrorKind::Unavailable => ErrorClass::Transient,
            ErrorKind::Denied => ErrorClass::Auth,
            ErrorKind::Missing | ErrorKind::Invalid | ErrorKind::Stale | ErrorKind::Other => {
                ErrorClass::Permanent
            }
        }
    }
}

/// Milliseconds since the Unix epoch, from a clock the tests can hold still.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told to (visibility timeouts and the dedup window in
/// tests, without sleeping).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start_ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(start_ms)))
    }
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The three stores a run works against, whichever adapter set provides them.
#[derive(Clone)]
pub struct Backend {
    pub objects: Arc<dyn ObjectStore>,
    pub queues: [Arc<dyn Queue>; 4],
    pub state: Arc<dyn StateStore>,
}

impl Backend {
    pub fn queue(&self, entity: crate::EntityType) -> &Arc<dyn Queue> {
        &self.queues[entity.index()]
    }

    /// All calls made so far, across the three stores.
    pub fn calls(&self) -> Calls {
        let mut all = self.objects.calls();
        for q in &self.queues {
            all.merge(&q.calls());
        }
        all.merge(&self.state.calls());
        all
    }
}

/// Run a storage call again after transient failures (throttling, 5xx, timeouts), with
/// the policy's jittered backoff. Adapters whose SDK retries are off use this, so one
/// policy (and one driver, [`crate::retry::drive`]) decides every retry.
pub async fn retry_transient<T, F, Fut>(
    policy: &crate::retry::RetryPolicy,
    jitter: &std::sync::Mutex<crate::gen::Rng>,
    mut call: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    crate::retry::drive(
        policy,
        &mut || jitter.lock().unwrap_or_else(|e| e.into_inner()).unit(),
        (),
        |()| call(),
        |(), r| match r {
            Ok(_) => crate::retry::RetryAction::Successful,
            Err(e) => crate::retry::RetryAction::failed(e.class()),
        },
    )
    .await
    .result
}

/// A driven batch call's answer, as its caller gives it: nothing left undone is
/// success; anything left after the retry budget is a throttling error, `left` saying
/// what remains (given how many).
pub fn nothing_left<T>(
    result: Result<Vec<T>, StoreError>,
    service: Service,
    operation: &'static str,
    left: impl FnOnce(usize) -> String,
) -> Result<(), StoreError> {
    match result? {
        rest if rest.is_empty() => Ok(()),
        rest => Err(StoreError::new(
            ErrorKind::Throttled,
            service,
            operation,
            left(rest.len()),
        )),
    }
}

/// A seed for jitter that differs between processes and instants.
pub fn jitter_seed() -> u64 {
    let t = SystemClock.now_ms() as u64;
    t ^ (u64::from(std::process::id()) << 32)
}
