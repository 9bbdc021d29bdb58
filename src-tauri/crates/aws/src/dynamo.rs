//! The state port over one DynamoDB table.
//!
//! Items: `pk` = `{type}#{key}` for a record, `run#{id}` for a run. The index
//! `by_status` (`gsi1pk`, `gsi1sk`) answers two queries: records by status
//! (`status#{status}`, sorted `{error_code}#{pk}`) and runs (`runs`, sorted by start).

use crate::error::store_error;
use crate::STATUS_INDEX;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use metasync_engine::gen::Rng;
use metasync_engine::ports::{
    check_batch_get, check_batch_put, check_quota_name, check_record, jitter_seed, nothing_left,
    retry_transient, CallCounter, Calls, Expect, LastError, Lease, Page, QuotaState, QuotaStore,
    Record, RecordKey, RecordStatus, Run, Service, StateStore, StoreError, Written,
};
use metasync_engine::retry::{drive, judge_rest, RetryPolicy};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

type Item = HashMap<String, AttributeValue>;

pub struct DynamoState {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retry: RetryPolicy,
    jitter: Mutex<Rng>,
    calls: CallCounter,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}
fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn status_sort_key(code: &str, pk: &str) -> String {
    format!("{code}#{pk}")
}

/// A record as a table item.
pub fn to_item(r: &Record) -> Item {
    let pk = r.key.id();
    let code = r.last_error.as_ref().map_or("", |e| e.code.as_str());
    let mut item = Item::from([
        ("gsi1pk".into(), s(format!("status#{}", r.status.as_str()))),
        ("gsi1sk".into(), s(status_sort_key(code, &pk))),
        ("pk".into(), s(pk)),
        ("hash".into(), s(&r.hash)),
        ("status".into(), s(r.status.as_str())),
        ("version".into(), n(r.version)),
        ("updated_at".into(), n(r.updated_at_ms)),
    ]);
    let mut opt = |k: &str, v: Option<AttributeValue>| {
        if let Some(v) = v {
            item.insert(k.into(), v);
        }
    };
    opt("target_id", r.target_id.as_deref().map(s));
    opt("lease_owner", r.lease.as_ref().map(|l| s(&l.owner)));
    opt("lease_until", r.lease.as_ref().map(|l| n(l.until_ms)));
    opt("payload", r.payload.as_deref().map(s));
    opt("run_id", r.run_id.as_deref().map(s));
    if let Some(e) = &r.last_error {
        opt("error_code", Some(s(&e.code)));
        opt("error_message", Some(s(&e.message)));
        opt("attempts", Some(n(e.attempts)));
    }
    item
}

/// A table item as a record; `None` for an item that is not one (a run, a foreign item).
pub fn from_item(item: &Item) -> Option<Record> {
    let key = RecordKey::parse(&get_s(item, "pk")?)?;
    let lease = match (get_s(item, "lease_owner"), get_n(item, "lease_until")) {
        (Some(owner), Some(until_ms)) => Some(Lease { owner, until_ms }),
        _ => None,
    };
    let last_error = get_s(item, "error_code").map(|code| LastError {
        code,
        message: get_s(item, "error_message").unwrap_or_default(),
        attempts: get_n(item, "attempts").unwrap_or(0),
    });
    Some(Record {
        key,
        hash: get_s(item, "hash")?,
        target_id: get_s(item, "target_id"),
        status: RecordStatus::parse(&get_s(item, "status")?)?,
        version: get_n(item, "version")?,
        lease,
        payload: get_s(item, "payload"),
        last_error,
        run_id: get_s(item, "run_id"),
        updated_at_ms: get_n(item, "updated_at").unwrap_or(0),
    })
}

/// The records of a BatchWriteItem's `UnprocessedItems` for this table.
pub fn unprocessed_records(
    table: &str,
    unprocessed: Option<&HashMap<String, Vec<WriteRequest>>>,
) -> Vec<Record> {
    unprocessed
        .and_then(|m| m.get(table))
        .map(|reqs| {
            reqs.iter()
                .filter_map(|w| from_item(w.put_request()?.item()))
                .collect()
        })
        .unwrap_or_default()
}

fn run_item(run: &Run) -> Result<Item, StoreError> {
    let doc = serde_json::to_string(run).map_err(|e| {
        StoreError::invalid(Service::State, "PutItem", format!("run {}: {e}", run.id))
    })?;
    Ok(Item::from([
        ("pk".into(), s(format!("run#{}", run.id))),
        ("gsi1pk".into(), s("runs")),
        (
            "gsi1sk".into(),
            s(format!("{:020}#{}", run.started_at_ms.max(0), run.id)),
        ),
        ("doc".into(), s(doc)),
    ]))
}

fn run_of(item: &Item) -> Option<Run> {
    serde_json::from_str(&get_s(item, "doc")?).ok()
}

fn cursor_of(key: Option<&Item>) -> Option<String> {
    let key = key?;
    let part = |k: &str| get_s(key, k).unwrap_or_default();
    Some(serde_json::json!([part("pk"), part("gsi1pk"), part("gsi1sk")]).to_string())
}

fn cursor_key(cursor: &str) -> Result<Item, StoreError> {
    let [pk, p, sk]: [String; 3] = serde_json::from_str(cursor).map_err(|_| {
        StoreError::invalid(
            Service::State,
            "Query",
            "the page cursor is not one this store gave",
        )
    })?;
    Ok(Item::from([
        ("pk".into(), s(pk)),
        ("gsi1pk".into(), s(p)),
        ("gsi1sk".into(), s(sk)),
    ]))
}

impl DynamoState {
    pub fn new(client: aws_sdk_dynamodb::Client, table: &str, retry: RetryPolicy) -> Self {
        Self {
            client,
            table: table.to_string(),
            retry,
            jitter: Mutex::new(Rng::new(jitter_seed())),
            calls: CallCounter::default(),
        }
    }

    async fn get_item(&self, pk: String) -> Result<Option<Item>, StoreError> {
        retry_transient(&self.retry, &self.jitter, || async {
            self.calls.add(Service::State, "GetItem");
            self.client
                .get_item()
                .table_name(&self.table)
                .key("pk", s(pk.clone()))
                .consistent_read(true)
                .send()
                .await
                .map(|o| o.item)
                .map_err(|e| store_error(Service::State, "GetItem", &self.table, e))
        })
        .await
    }

    async fn query_index(
        &self,
        partition: String,
        prefix: Option<String>,
        limit: usize,
        after: Option<&str>,
        newest_first: bool,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let start = after.map(cursor_key).transpose()?;
        let limit = i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        let out = retry_transient(&self.retry, &self.jitter, || async {
            self.calls.add(Service::State, "Query");
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(STATUS_INDEX)
                .expression_attribute_values(":p", s(partition.clone()))
                .limit(limit)
                .scan_index_forward(!newest_first)
                .set_exclusive_start_key(start.clone());
            q = match &prefix {
                Some(p) => q
                    .key_condition_expression("gsi1pk = :p AND begins_with(gsi1sk, :c)")
                    .expression_attribute_values(":c", s(p.clone())),
                None => q.key_condition_expression("gsi1pk = :p"),
            };
            q.send()
                .await
                .map_err(|e| store_error(Service::State, "Query", &self.table, e))
        })
        .await?;
        let next = cursor_of(out.last_evaluated_key());
        Ok((out.items.unwrap_or_default(), next))
    }
}

fn quota_pk(name: &str) -> String {
    format!("quota#{name}")
}

/// A quota bucket is an item of its own (`quota#{name}`), outside the status index
/// (no `gsi1pk`), so record and run queries never see it.
#[async_trait]
impl QuotaStore for DynamoState {
    async fn read_quota(&self, name: &str) -> Result<Option<QuotaState>, StoreError> {
        check_quota_name("GetItem", name)?;
        let item = self.get_item(quota_pk(name)).await?;
        Ok(item.map(|i| QuotaState {
            tat_us: get_n(&i, "tat_us").unwrap_or(0),
            paused_until_us: get_n(&i, "paused_until_us").unwrap_or(0),
            version: get_n(&i, "version").unwrap_or(0),
            writer: get_n(&i, "writer").unwrap_or(0),
        }))
    }

    async fn swap_quota(
        &self,
        name: &str,
        prev: Option<&QuotaState>,
        next: &QuotaState,
    ) -> Result<bool, StoreError> {
        check_quota_name("PutItem", name)?;
        let item = Item::from([
            ("pk".to_string(), s(quota_pk(name))),
            ("tat_us".to_string(), n(next.tat_us)),
            ("paused_until_us".to_string(), n(next.paused_until_us)),
            ("version".to_string(), n(next.version)),
            ("writer".to_string(), n(next.writer)),
        ]);
        let attempts = AtomicU32::new(0);
        let done = retry_transient(&self.retry, &self.jitter, || async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.calls.add(Service::State, "PutItem");
            let req = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()));
            let req = match prev {
                None => req.condition_expression("attribute_not_exists(pk)"),
                Some(p) => req
                    .condition_expression("version = :v")
                    .expression_attribute_values(":v", n(p.version)),
            };
            match req.send().await {
                Ok(_) => Ok(true),
                Err(SdkError::ServiceError(e))
                    if e.err().is_conditional_check_failed_exception() =>
                {
                    Ok(false)
                }
                Err(e) => Err(store_error(Service::State, "PutItem", &self.table, e)),
            }
        })
        .await?;
        // A retry after a lost answer finds its own write: that is success.
        if !done && attempts.load(Ordering::Relaxed) > 1 {
            return Ok(self.read_quota(name).await?.as_ref() == Some(next));
        }
        Ok(done)
    }
}

#[async_trait]
impl StateStore for DynamoState {
    async fn get(&self, key: &RecordKey) -> Result<Option<Record>, StoreError> {
        Ok(self.get_item(key.id()).await?.as_ref().and_then(from_item))
    }

    async fn batch_get(&self, keys: &[RecordKey]) -> Result<Vec<Record>, StoreError> {
        const OP: &str = "BatchGetItem";
        check_batch_get(keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let pending: Vec<Item> = keys
            .iter()
            .map(|k| Item::from([("pk".to_string(), s(k.id()))]))
            .collect();
        // Each attempt asks for what is still missing; what came back is kept here.
        let found = Mutex::new(Vec::new());
        let r = drive(
            &self.retry,
            &mut || self.jitter.lock().unwrap_or_else(|e| e.into_inner()).unit(),
            pending,
            |pending: Vec<Item>| {
                let found = &found;
                async move {
                    let request = KeysAndAttributes::builder()
                        .set_keys(Some(pending))
                        .consistent_read(true)
                        .build()
                        .map_err(|e| crate::error::build_error(Service::State, OP, &e))?;
                    self.calls.add(Service::State, OP);
                    let resp = self
                        .client
                        .batch_get_item()
                        .request_items(&self.table, request)
                        .send()
                        .await
                        .map_err(|e| store_error(Service::State, OP, &self.table, e))?;
                    if let Some(items) = resp.responses().and_then(|r| r.get(&self.table)) {
                        found
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .extend(items.iter().filter_map(from_item));
                    }
                    Ok::<_, StoreError>(
                        resp.unprocessed_keys()
                            .and_then(|u| u.get(&self.table))
                            .map(|k| k.keys().to_vec())
                            .unwrap_or_default(),
                    )
                }
            },
            |sent, result| judge_rest(sent, result, StoreError::class),
        )
        .await;
        nothing_left(r.result, Service::State, OP, |n| {
            format!("{}: {n} keys still unprocessed", self.table)
        })?;
        let mut out = found.into_inner().unwrap_or_else(|e| e.into_inner());
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn put(&self, record: &Record, expect: Expect) -> Result<Written, StoreError> {
        check_record("PutItem", record)?;
        let item = to_item(record);
        let attempts = AtomicU32::new(0);
        let written = retry_transient(&self.retry, &self.jitter, || async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.calls.add(Service::State, "PutItem");
            let mut req = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()));
            req = match expect {
                Expect::Any => req,
                Expect::Absent => req.condition_expression("attribute_not_exists(pk)"),
                Expect::Version(v) => req
                    .condition_expression("version = :v")
                    .expression_attribute_values(":v", n(v)),
            };
            match req.send().await {
                Ok(_) => Ok(Written::Done),
                Err(SdkError::ServiceError(e))
                    if e.err().is_conditional_check_failed_exception() =>
                {
                    Ok(Written::Conflict)
                }
                Err(e) => Err(store_error(Service::State, "PutItem", &self.table, e)),
            }
        })
        .await?;
        // A retry after an attempt whose answer was lost (a timeout, a reset) finds
        // its own earlier write and fails the condition: that is success, not a
        // conflict with another writer.
        if written == Written::Conflict
            && attempts.load(Ordering::Relaxed) > 1
            && self.get(&record.key).await?.as_ref() == Some(record)
        {
            return Ok(Written::Done);
        }
        Ok(written)
    }

    async fn batch_put(&self, records: &[Record]) -> Result<Vec<Record>, StoreError> {
        const OP: &str = "BatchWriteItem";
        check_batch_put(records)?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let writes = records
            .iter()
            .map(|r| {
                PutRequest::builder()
                    .set_item(Some(to_item(r)))
                    .build()
                    .map(|p| WriteRequest::builder().put_request(p).build())
                    .map_err(|e| crate::error::build_error(Service::State, OP, &e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = retry_transient(&self.retry, &self.jitter, || async {
            self.calls.add(Service::State, OP);
            self.client
                .batch_write_item()
                .request_items(&self.table, writes.clone())
                .send()
                .await
                .map_err(|e| store_error(Service::State, OP, &self.table, e))
        })
        .await?;
        Ok(unprocessed_records(&self.table, out.unprocessed_items()))
    }

    async fn query(
        &self,
        status: RecordStatus,
        error_code: Option<&str>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Record>, StoreError> {
        let (items, next) = self
            .query_index(
                format!("status#{}", status.as_str()),
                error_code.map(|c| format!("{c}#")),
                limit,
                after,
                false,
            )
            .await?;
        Ok(Page {
            items: items.iter().filter_map(from_item).collect(),
            next,
        })
    }

    async fn put_run(&self, run: &Run) -> Result<(), StoreError> {
        let item = run_item(run)?;
        retry_transient(&self.retry, &self.jitter, || async {
            self.calls.add(Service::State, "PutItem");
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .send()
                .await
                .map(drop)
                .map_err(|e| store_error(Service::State, "PutItem", &self.table, e))
        })
        .await
    }

    async fn get_run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        Ok(self
            .get_item(format!("run#{id}"))
            .await?
            .as_ref()
            .and_then(run_of))
    }

    async fn list_runs(&self, limit: usize) -> Result<Vec<Run>, StoreError> {
        let (items, _) = self
            .query_index("runs".into(), None, limit, None, true)
            .await?;
        Ok(items.iter().filter_map(run_of).collect())
    }

    fn calls(&self) -> Calls {
        self.calls.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metasync_engine::EntityType;

    fn record() -> Record {
        let mut r = Record::new(
            RecordKey::new(EntityType::Episode, "ep-1"),
            "h1",
            RecordStatus::Failed,
        );
        r.target_id = Some("t-9".into());
        r.lease = Some(Lease {
            owner: "w1".into(),
            until_ms: 42,
        });
        r.payload = Some("{\"title\":\"x\"}".into());
        r.last_error = Some(LastError {
            code: "too_long".into(),
            message: "m".into(),
            attempts: 3,
        });
        r.run_id = Some("r1".into());
        r.version = 7;
        r.updated_at_ms = 1234;
        r
    }

    #[test]
    fn records_survive_the_round_trip_through_an_item() {
        let r = record();
        let item = to_item(&r);
        assert_eq!(get_s(&item, "gsi1pk").as_deref(), Some("status#failed"));
        assert_eq!(
            get_s(&item, "gsi1sk").as_deref(),
            Some("too_long#episode#ep-1")
        );
        assert_eq!(from_item(&item), Some(r));
        let bare = Record::new(
            RecordKey::new(EntityType::Show, "s"),
            "h",
            RecordStatus::Synced,
        );
        assert_eq!(from_item(&to_item(&bare)), Some(bare));
    }

    #[test]
    fn unprocessed_items_of_a_batch_write_come_back_as_records() {
        // The shape DynamoDB answers under load; moto never sends it (see the contract
        // suite's notes), so its reading is checked here.
        let a = record();
        let mut b = record();
        b.key.key = "ep-2".into();
        let write = |r: &Record| {
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(to_item(r)))
                        .build()
                        .expect("an item is set"),
                )
                .build()
        };
        let map = HashMap::from([("tbl".to_string(), vec![write(&a), write(&b)])]);
        assert_eq!(unprocessed_records("tbl", Some(&map)), vec![a, b]);
        assert!(unprocessed_records("other", Some(&map)).is_empty());
        assert!(unprocessed_records("tbl", None).is_empty());
    }
}
