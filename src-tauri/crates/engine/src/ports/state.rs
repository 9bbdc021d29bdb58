//! The state store port (DynamoDB, or SQLite): one record's sync state per
//! `{type}#{key}`, and the runs.

use super::{Calls, Service, StoreError};
use crate::gen::Rng;
use crate::retry::{drive, judge_rest, RetryPolicy};
use crate::EntityType;
use async_trait::async_trait;
use std::collections::BTreeMap;

/// At most this many keys in one batch get (DynamoDB's limit).
pub const MAX_BATCH_GET: usize = 100;
/// At most this many records in one batch put (DynamoDB's limit).
pub const MAX_BATCH_PUT: usize = 25;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKey {
    pub entity: EntityType,
    pub key: String,
}

impl RecordKey {
    pub fn new(entity: EntityType, key: impl Into<String>) -> Self {
        Self {
            entity,
            key: key.into(),
        }
    }
    /// The stored id: `{type}#{key}`.
    pub fn id(&self) -> String {
        format!("{}#{}", self.entity.as_str(), self.key)
    }
    pub fn parse(id: &str) -> Option<Self> {
        let (t, key) = id.split_once('#')?;
        let entity = EntityType::ALL.into_iter().find(|e| e.as_str() == t)?;
        Some(Self::new(entity, key))
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// Planned, not yet sent.
    Pending,
    /// A worker holds a lease on it and is calling the target.
    InProgress,
    Synced,
    /// In triage.
    Failed,
    /// Staff gave up on it, with a reason.
    Discarded,
}

impl RecordStatus {
    pub const ALL: [RecordStatus; 5] = [
        Self::Pending,
        Self::InProgress,
        Self::Synced,
        Self::Failed,
        Self::Discarded,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Synced => "synced",
            Self::Failed => "failed",
            Self::Discarded => "discarded",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lease {
    pub owner: String,
    pub until_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastError {
    pub code: String,
    pub message: String,
    pub attempts: u32,
}

/// One record's sync state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: RecordKey,
    /// Content hash of the canonical record last synced (or being synced).
    pub hash: String,
    pub target_id: Option<String>,
    pub status: RecordStatus,
    /// Raised by one on every write; conditional writes compare it.
    pub version: u64,
    pub lease: Option<Lease>,
    /// The canonical record as JSON, for triage and retries.
    pub payload: Option<String>,
    pub last_error: Option<LastError>,
    pub run_id: Option<String>,
    pub updated_at_ms: i64,
}

impl Record {
    pub fn new(key: RecordKey, hash: impl Into<String>, status: RecordStatus) -> Self {
        Self {
            key,
            hash: hash.into(),
            target_id: None,
            status,
            version: 1,
            lease: None,
            payload: None,
            last_error: None,
            run_id: None,
            updated_at_ms: 0,
        }
    }
}

/// A condition on a single write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Only if no record has this key.
    Absent,
    /// Only if the stored record has this version.
    Version(u64),
    /// Unconditionally.
    Any,
}

/// The outcome of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Done,
    /// The condition did not hold; nothing was written.
    Conflict,
}

/// One page of a query; pass `next` back for the following page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// What a run record stands for.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// A sync of files.
    #[default]
    Sync,
    /// A triage action (retry, edit, discard), recorded with who and when.
    Triage,
}

/// One sync run (or triage action): who started it, when, on which files, and how it
/// ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Run {
    pub id: String,
    #[serde(default)]
    pub kind: RunKind,
    /// The profile it ran on (empty: the embedded default).
    #[serde(default)]
    pub profile: String,
    /// For a triage action: what was done, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub who: String,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// sha256 of each input file.
    pub file_hashes: Vec<String>,
    /// Rows by outcome (synced, unchanged, rejected, failed, discarded) and the like.
    pub counts: BTreeMap<String, u64>,
}

#[async_trait]
/// Every state store also keeps the shared quota buckets ([`super::QuotaStore`]): the
/// limiter of every consumer of a target reads the same table.
pub trait StateStore: super::QuotaStore + Send + Sync {
    async fn get(&self, key: &RecordKey) -> Result<Option<Record>, StoreError>;

    /// The records among up to [`MAX_BATCH_GET`] keys, sorted by key (absent keys are left out; keys
    /// the service did not process are fetched again before this returns).
    async fn batch_get(&self, keys: &[RecordKey]) -> Result<Vec<Record>, StoreError>;

    /// Write one record if `expect` holds.
    async fn put(&self, record: &Record, expect: Expect) -> Result<Written, StoreError>;

    /// Write up to [`MAX_BATCH_PUT`] records unconditionally. Returns the records the
    /// service did not write this time (send them again: [`put_all`] does).
    async fn batch_put(&self, records: &[Record]) -> Result<Vec<Record>, StoreError>;

    /// Records with this status (and error code), ordered by error code then key.
    ///
    /// Not read consistently: on DynamoDB this is a global secondary index, which
    /// cannot be ("eventually consistent reads only", DynamoDB developer guide, GSI
    /// read consistency), so a write of a moment ago may be missing or its old status
    /// still listed. Local answers are always current. A caller that acts on a record
    /// it found here reads it again with [`get`](Self::get) or
    /// [`batch_get`](Self::batch_get) first (triage does; the planner's first-import
    /// check is safe because the worker reads again before it calls the target).
    async fn query(
        &self,
        status: RecordStatus,
        error_code: Option<&str>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Record>, StoreError>;

    async fn put_run(&self, run: &Run) -> Result<(), StoreError>;
    async fn get_run(&self, id: &str) -> Result<Option<Run>, StoreError>;
    /// The latest runs, newest first.
    async fn list_runs(&self, limit: usize) -> Result<Vec<Run>, StoreError>;

    fn calls(&self) -> Calls;
}

/// The largest item DynamoDB stores: "400 KB", attribute names and values together
/// (DynamoDB developer guide, service quotas). Read as 400,000 bytes, the lower of the
/// two readings: AWS was seen to take a little more (moto's notes: 409–410 KB), and
/// moto refuses past 405,000.
pub const MAX_ITEM_BYTES: usize = 400_000;
/// The longest sort key DynamoDB takes, the status index's (`{error_code}#{type}#{key}`).
pub const MAX_INDEX_KEY_BYTES: usize = 1024;
/// Room for a record's attribute names, numbers and the index keys' fixed parts.
const ITEM_OVERHEAD_BYTES: usize = 256;

impl Record {
    /// An upper estimate of this record's size as a table item.
    pub fn item_bytes(&self) -> usize {
        let text = |o: &Option<String>| o.as_ref().map_or(0, String::len);
        let id = self.key.entity.as_str().len() + 1 + self.key.key.len();
        // The key twice: `pk` and inside the index's sort key.
        2 * id
            + self.hash.len()
            + text(&self.target_id)
            + text(&self.payload)
            + text(&self.run_id)
            + self.lease.as_ref().map_or(0, |l| l.owner.len())
            + self
                .last_error
                .as_ref()
                .map_or(0, |e| 2 * e.code.len() + e.message.len())
            + ITEM_OVERHEAD_BYTES
    }
}

/// A batch may not exceed `max` items.
pub fn check_batch<T>(operation: &'static str, items: &[T], max: usize) -> Result<(), StoreError> {
    if items.len() > max {
        return Err(StoreError::invalid(
            Service::State,
            operation,
            format!("a batch holds at most {max} items, not {}", items.len()),
        ));
    }
    Ok(())
}

/// A batch get: at most [`MAX_BATCH_GET`] keys, each once. DynamoDB refuses a whole
/// `BatchGetItem` that names a key twice (ValidationException), so both adapters do.
pub fn check_batch_get(keys: &[RecordKey]) -> Result<(), StoreError> {
    const OP: &str = "BatchGetItem";
    check_batch(OP, keys, MAX_BATCH_GET)?;
    check_unique(OP, keys.iter())
}

/// A batch put: at most [`MAX_BATCH_PUT`] records, each key once, each one a table
/// takes (see [`check_record`]). DynamoDB refuses the whole `BatchWriteItem` otherwise.
pub fn check_batch_put(records: &[Record]) -> Result<(), StoreError> {
    const OP: &str = "BatchWriteItem";
    check_batch(OP, records, MAX_BATCH_PUT)?;
    check_unique(OP, records.iter().map(|r| &r.key))?;
    records.iter().try_for_each(|r| check_record(OP, r))
}

/// A record a table takes: the item within [`MAX_ITEM_BYTES`] and the status index's
/// sort key within [`MAX_INDEX_KEY_BYTES`].
pub fn check_record(operation: &'static str, r: &Record) -> Result<(), StoreError> {
    let bytes = r.item_bytes();
    if bytes > MAX_ITEM_BYTES {
        return Err(StoreError::invalid(
            Service::State,
            operation,
            format!(
                "{} is about {bytes} bytes as a state item; the most is {MAX_ITEM_BYTES} (its text fields are too long to keep)",
                r.key.id()
            ),
        ));
    }
    let code = r.last_error.as_ref().map_or(0, |e| e.code.len());
    let index_key = code + 1 + r.key.id().len();
    if index_key > MAX_INDEX_KEY_BYTES {
        return Err(StoreError::invalid(
            Service::State,
            operation,
            format!(
                "{} has an index key of {index_key} bytes; the most is {MAX_INDEX_KEY_BYTES} (shorten its key or error code)",
                r.key.id()
            ),
        ));
    }
    Ok(())
}

fn check_unique<'a>(
    operation: &'static str,
    keys: impl Iterator<Item = &'a RecordKey>,
) -> Result<(), StoreError> {
    let mut seen = std::collections::HashSet::new();
    for k in keys {
        if !seen.insert(k) {
            return Err(StoreError::invalid(
                Service::State,
                operation,
                format!("{} appears twice in one batch", k.id()),
            ));
        }
    }
    Ok(())
}

/// Write any number of records: batches of [`MAX_BATCH_PUT`], sending the unprocessed
/// ones again with backoff (transient errors likewise) until the policy gives up.
/// Returns how many batch calls it made.
pub async fn put_all(
    store: &dyn StateStore,
    records: &[Record],
    policy: &RetryPolicy,
    rng: &mut Rng,
) -> Result<u32, StoreError> {
    let mut calls = 0;
    for chunk in records.chunks(MAX_BATCH_PUT) {
        let r = drive(
            policy,
            &mut || rng.unit(),
            chunk.to_vec(),
            |pending: Vec<Record>| async move { store.batch_put(&pending).await },
            |sent, result| judge_rest(sent, result, StoreError::class),
        )
        .await;
        calls += r.attempts;
        super::nothing_left(r.result, Service::State, "BatchWriteItem", |n| {
            format!(
                "{n} of {} records still unprocessed after {} attempts",
                chunk.len(),
                r.attempts
            )
        })?;
    }
    Ok(calls)
}
