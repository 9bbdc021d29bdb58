//! Sync state and runs in SQLite, with the state port's conditional writes.

use crate::db::Db;
use async_trait::async_trait;
use metasync_engine::ports::{
    check_batch_get, check_batch_put, check_quota_name, check_record, CallCounter, Calls, Expect,
    LastError, Lease, Page, QuotaState, QuotaStore, Record, RecordKey, RecordStatus, Run, Service,
    StateStore, StoreError, Written,
};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use std::sync::Arc;

pub struct LocalState {
    db: Arc<Db>,
    calls: CallCounter,
}

impl LocalState {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self {
            db,
            calls: CallCounter::default(),
        }
    }
}

const COLUMNS: &str = "id, hash, target_id, status, version, lease_owner, lease_until, payload,
    error_code, error_message, attempts, run_id, updated_at";

fn write(conn: &Connection, r: &Record) -> rusqlite::Result<()> {
    let (code, message, attempts) = match &r.last_error {
        Some(e) => (e.code.as_str(), Some(e.message.as_str()), Some(e.attempts)),
        None => ("", None, None),
    };
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO records ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))?
    .execute(params![
        r.key.id(),
        r.hash,
        r.target_id,
        r.status.as_str(),
        i64::try_from(r.version).unwrap_or(i64::MAX),
        r.lease.as_ref().map(|l| l.owner.as_str()),
        r.lease.as_ref().map(|l| l.until_ms),
        r.payload,
        code,
        message,
        attempts,
        r.run_id,
        r.updated_at_ms,
    ])?;
    Ok(())
}

fn bad(column: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("unreadable {what} in the local database").into(),
    )
}

fn read(row: &Row<'_>) -> rusqlite::Result<Record> {
    let id: String = row.get(0)?;
    let key = RecordKey::parse(&id).ok_or_else(|| bad(0, "record id"))?;
    let status: String = row.get(3)?;
    let status = RecordStatus::parse(&status).ok_or_else(|| bad(3, "status"))?;
    let lease = match (
        row.get::<_, Option<String>>(5)?,
        row.get::<_, Option<i64>>(6)?,
    ) {
        (Some(owner), Some(until_ms)) => Some(Lease { owner, until_ms }),
        _ => None,
    };
    let code: String = row.get(8)?;
    let last_error = if code.is_empty() {
        None
    } else {
        Some(LastError {
            code,
            message: row.get::<_, Option<String>>(9)?.unwrap_or_default(),
            attempts: row.get::<_, Option<u32>>(10)?.unwrap_or(0),
        })
    };
    Ok(Record {
        key,
        hash: row.get(1)?,
        target_id: row.get(2)?,
        status,
        version: row.get::<_, i64>(4)?.unsigned_abs(),
        lease,
        payload: row.get(7)?,
        last_error,
        run_id: row.get(11)?,
        updated_at_ms: row.get(12)?,
    })
}

fn get_one(conn: &Connection, id: &str) -> rusqlite::Result<Option<Record>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM records WHERE id = ?1"))?
        .query_row([id], read)
        .optional()
}

fn bad_run(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
}

fn version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The quota buckets, with the same compare-and-swap as DynamoDB's conditional put
/// (named after the DynamoDB calls they stand for).
#[async_trait]
impl QuotaStore for LocalState {
    async fn read_quota(&self, name: &str) -> Result<Option<QuotaState>, StoreError> {
        check_quota_name("GetItem", name)?;
        let name = name.to_string();
        self.db
            .run(&self.calls, Service::State, "GetItem", move |conn| {
                conn.prepare_cached(
                    "SELECT tat_us, paused_until_us, version, writer FROM quotas WHERE name = ?1",
                )?
                .query_row([name], |r| {
                    Ok(QuotaState {
                        tat_us: r.get(0)?,
                        paused_until_us: r.get(1)?,
                        version: r.get::<_, i64>(2)?.unsigned_abs(),
                        writer: r.get::<_, i64>(3)? as u64,
                    })
                })
                .optional()
            })
            .await
    }

    async fn swap_quota(
        &self,
        name: &str,
        prev: Option<&QuotaState>,
        next: &QuotaState,
    ) -> Result<bool, StoreError> {
        check_quota_name("PutItem", name)?;
        let (name, prev, next) = (name.to_string(), prev.copied(), *next);
        self.db
            .run(&self.calls, Service::State, "PutItem", move |conn| {
                let changed = match prev {
                    None => conn
                        .prepare_cached(
                            "INSERT OR IGNORE INTO quotas (name, tat_us, paused_until_us, version, writer)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                        )?
                        .execute(params![
                            name,
                            next.tat_us,
                            next.paused_until_us,
                            version(next.version),
                            next.writer as i64
                        ])?,
                    Some(p) => conn
                        .prepare_cached(
                            "UPDATE quotas SET tat_us = ?2, paused_until_us = ?3, version = ?4, writer = ?6
                             WHERE name = ?1 AND version = ?5",
                        )?
                        .execute(params![
                            name,
                            next.tat_us,
                            next.paused_until_us,
                            version(next.version),
                            version(p.version),
                            next.writer as i64
                        ])?,
                };
                Ok(changed == 1)
            })
            .await
    }
}

#[async_trait]
impl StateStore for LocalState {
    async fn get(&self, key: &RecordKey) -> Result<Option<Record>, StoreError> {
        let id = key.id();
        self.db
            .run(&self.calls, Service::State, "GetItem", move |conn| {
                get_one(conn, &id)
            })
            .await
    }

    async fn batch_get(&self, keys: &[RecordKey]) -> Result<Vec<Record>, StoreError> {
        check_batch_get(keys)?;
        let ids: Vec<String> = keys.iter().map(RecordKey::id).collect();
        self.db
            .run(&self.calls, Service::State, "BatchGetItem", move |conn| {
                let mut out = Vec::new();
                for id in &ids {
                    out.extend(get_one(conn, id)?);
                }
                out.sort_by(|a, b| a.key.cmp(&b.key));
                Ok(out)
            })
            .await
    }

    async fn put(&self, record: &Record, expect: Expect) -> Result<Written, StoreError> {
        check_record("PutItem", record)?;
        let record = record.clone();
        self.db
            .run(&self.calls, Service::State, "PutItem", move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let current: Option<i64> = tx
                    .prepare_cached("SELECT version FROM records WHERE id = ?1")?
                    .query_row([record.key.id()], |r| r.get(0))
                    .optional()?;
                let holds = match (expect, current) {
                    (Expect::Any, _) | (Expect::Absent, None) => true,
                    (Expect::Version(v), Some(c)) => c.unsigned_abs() == v,
                    _ => false,
                };
                if !holds {
                    return Ok(Written::Conflict);
                }
                write(&tx, &record)?;
                tx.commit()?;
                Ok(Written::Done)
            })
            .await
    }

    async fn batch_put(&self, records: &[Record]) -> Result<Vec<Record>, StoreError> {
        check_batch_put(records)?;
        let records = records.to_vec();
        self.db
            .run(&self.calls, Service::State, "BatchWriteItem", move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                for r in &records {
                    write(&tx, r)?;
                }
                tx.commit()?;
                // One transaction: all written, none left over.
                Ok(Vec::new())
            })
            .await
    }

    async fn query(
        &self,
        status: RecordStatus,
        error_code: Option<&str>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Record>, StoreError> {
        let (after_code, after_id) = match after {
            None => (String::new(), String::new()),
            Some(c) => serde_json::from_str::<(String, String)>(c).map_err(|_| {
                StoreError::invalid(
                    Service::State,
                    "Query",
                    "the page cursor is not one this store gave",
                )
            })?,
        };
        let code = error_code.map(str::to_owned);
        let limit = i64::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        let (items, more) = self
            .db
            .run(&self.calls, Service::State, "Query", move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM records
                     WHERE status = ?1 AND (?2 IS NULL OR error_code = ?2)
                       AND (error_code, id) > (?3, ?4)
                     ORDER BY error_code, id LIMIT ?5"
                ))?;
                let mut items = stmt
                    .query_map(
                        params![status.as_str(), code, after_code, after_id, limit + 1],
                        read,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
                items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                Ok((items, more))
            })
            .await?;
        let next = match items.last() {
            Some(last) if more => {
                let code = last.last_error.as_ref().map_or("", |e| e.code.as_str());
                Some(serde_json::json!([code, last.key.id()]).to_string())
            }
            _ => None,
        };
        Ok(Page { items, next })
    }

    async fn put_run(&self, run: &Run) -> Result<(), StoreError> {
        let doc = serde_json::to_string(run).map_err(|e| {
            StoreError::invalid(Service::State, "PutItem", format!("run {}: {e}", run.id))
        })?;
        let (id, started) = (run.id.clone(), run.started_at_ms);
        self.db
            .run(&self.calls, Service::State, "PutItem", move |conn| {
                conn.execute(
                    "INSERT OR REPLACE INTO runs (id, started_at, doc) VALUES (?1, ?2, ?3)",
                    params![id, started, doc],
                )
                .map(drop)
            })
            .await
    }

    async fn get_run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        let id = id.to_owned();
        self.db
            .run(&self.calls, Service::State, "GetItem", move |conn| {
                let doc: Option<String> = conn
                    .query_row("SELECT doc FROM runs WHERE id = ?1", [id], |r| r.get(0))
                    .optional()?;
                doc.map(|d| serde_json::from_str(&d).map_err(bad_run))
                    .transpose()
            })
            .await
    }

    async fn list_runs(&self, limit: usize) -> Result<Vec<Run>, StoreError> {
        let limit = i64::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        self.db
            .run(&self.calls, Service::State, "Query", move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT doc FROM runs ORDER BY started_at DESC, id DESC LIMIT ?1",
                )?;
                let docs = stmt
                    .query_map([limit], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                docs.iter()
                    .map(|d| serde_json::from_str(d).map_err(bad_run))
                    .collect()
            })
            .await
    }

    fn calls(&self) -> Calls {
        self.calls.snapshot()
    }
}
