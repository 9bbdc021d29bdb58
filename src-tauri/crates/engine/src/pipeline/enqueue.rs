//! Enqueue: new and changed records into their type's FIFO queue, `batch_size` records
//! per message, up to ten messages per send within the byte budget.
//!
//! Message groups are lanes: a record's lane is a hash of its key, so every write to
//! one record stays in order (same group) while a show with thousands of episodes is
//! spread over [`LANES`] groups instead of serializing the run. Group and dedup ids
//! use only `a-z 0-9 -`, which SQS accepts whatever the keys hold.

use super::record::{sha256_hex, CanonicalRecord};
use crate::gen::Rng;
use crate::ports::{
    nothing_left, pack_batches, Outgoing, PackError, Queue, Service, StoreError, MAX_BATCH_BYTES,
};
use crate::retry::{drive, ErrorClass, RetryAction, RetryPolicy};
use crate::EntityType;
use serde::{Deserialize, Serialize};

/// Message groups per entity type. More lanes, more records in flight at once; 32
/// keeps ten-message receives full with room for several workers.
pub const LANES: u64 = 32;
/// Records per message unless the caller says otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 10;
/// The most records one message may carry.
pub const MAX_BATCH_SIZE: usize = 100;

/// What a worker must do with one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRecord {
    pub record: CanonicalRecord,
    pub hash: String,
    /// Fields to send on an update (empty: create, or send everything).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// An earlier attempt may have reached the target (a retry from triage): find the
    /// object before creating it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub may_exist: bool,
}

/// One queue message: records of one lane of one type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub run_id: String,
    pub records: Vec<QueuedRecord>,
}

/// The group a record's messages go to.
pub fn group_id(entity: EntityType, key: &str) -> String {
    // FNV-1a: stable across versions and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}-{:02}", entity.as_str(), h % LANES)
}

/// The same records with the same content give the same id (a resend is dropped).
pub fn dedup_id(records: &[QueuedRecord]) -> String {
    let mut s = String::new();
    for r in records {
        s.push_str(&r.record.key);
        s.push('\u{1f}');
        s.push_str(&r.hash);
        s.push('\u{1e}');
    }
    sha256_hex(s.as_bytes())
}

/// What an enqueue sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Enqueued {
    pub records: u64,
    pub messages: u64,
    pub sends: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error(transparent)]
    Pack(#[from] PackError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Build the messages of one type's records: lanes in first-seen order, each lane's
/// records in input order, `batch_size` per message.
pub fn messages(run_id: &str, records: Vec<QueuedRecord>, batch_size: usize) -> Vec<Outgoing> {
    counted_messages(run_id, records, batch_size)
        .into_iter()
        .map(|(m, _)| m)
        .collect()
}

/// [`messages`], each with the number of records it carries.
fn counted_messages(
    run_id: &str,
    records: Vec<QueuedRecord>,
    batch_size: usize,
) -> Vec<(Outgoing, u64)> {
    let batch_size = batch_size.clamp(1, MAX_BATCH_SIZE);
    let mut lanes: Vec<(String, Vec<QueuedRecord>)> = Vec::new();
    for r in records {
        let g = group_id(r.record.entity, &r.record.key);
        match lanes.iter_mut().find(|(id, _)| *id == g) {
            Some((_, v)) => v.push(r),
            None => lanes.push((g, vec![r])),
        }
    }
    let mut out = Vec::new();
    // Round-robin over lanes so the first messages already fill a receive.
    let mut chunks: Vec<(String, std::vec::IntoIter<Vec<QueuedRecord>>)> = lanes
        .into_iter()
        .map(|(g, v)| {
            let chunks: Vec<Vec<QueuedRecord>> =
                v.chunks(batch_size).map(<[QueuedRecord]>::to_vec).collect();
            (g, chunks.into_iter())
        })
        .collect();
    loop {
        let mut any = false;
        for (g, it) in &mut chunks {
            if let Some(records) = it.next() {
                any = true;
                let body = serde_json::to_string(&Message {
                    run_id: run_id.to_string(),
                    records: records.clone(),
                })
                .unwrap_or_default();
                out.push((
                    Outgoing {
                        group_id: g.clone(),
                        dedup_id: dedup_id(&records),
                        body,
                    },
                    records.len() as u64,
                ));
            }
        }
        if !any {
            return out;
        }
    }
}

/// Send records of one type; entries the queue refuses for a passing reason are sent
/// again under `policy`.
pub async fn enqueue(
    queue: &dyn Queue,
    run_id: &str,
    records: Vec<QueuedRecord>,
    batch_size: usize,
    policy: &RetryPolicy,
    rng: &mut Rng,
) -> Result<Enqueued, EnqueueError> {
    enqueue_until(queue, run_id, records, batch_size, policy, rng, &|| false).await
}

/// [`enqueue`], asking `stop` before each send batch: once it says yes nothing more
/// is sent, and the answer counts only the records that were.
pub async fn enqueue_until(
    queue: &dyn Queue,
    run_id: &str,
    records: Vec<QueuedRecord>,
    batch_size: usize,
    policy: &RetryPolicy,
    rng: &mut Rng,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Enqueued, EnqueueError> {
    let counted = counted_messages(run_id, records, batch_size);
    let mut per_message = counted
        .iter()
        .map(|(_, n)| *n)
        .collect::<Vec<u64>>()
        .into_iter();
    let msgs: Vec<Outgoing> = counted.into_iter().map(|(m, _)| m).collect();
    let mut done = Enqueued::default();
    for batch in pack_batches(msgs, MAX_BATCH_BYTES)? {
        if stop() {
            break;
        }
        // Batches keep the messages' order: these are the next counts.
        let records: u64 = per_message.by_ref().take(batch.len()).sum();
        let messages = batch.len() as u64;
        let r = drive(
            policy,
            &mut || rng.unit(),
            batch,
            |pending: Vec<Outgoing>| async move { queue.send_batch(&pending).await },
            |sent, result| match result {
                Ok(failures) if failures.is_empty() => RetryAction::Successful,
                Ok(failures) if failures.iter().any(|f| !f.retryable) => RetryAction::DontRetry,
                Ok(failures) if failures.len() < sent.len() => RetryAction::RetryPartial(
                    failures
                        .iter()
                        .filter_map(|f| sent.get(f.index).cloned())
                        .collect(),
                ),
                Ok(_) => RetryAction::failed(ErrorClass::Transient),
                Err(e) => RetryAction::failed(e.class()),
            },
        )
        .await;
        done.sends += u64::from(r.attempts);
        let failures = r.result?;
        if let Some(f) = failures.iter().find(|f| !f.retryable) {
            return Err(StoreError::invalid(
                Service::Queue,
                "SendMessageBatch",
                format!("{}: {}", f.code, f.message),
            )
            .into());
        }
        nothing_left(Ok(failures), Service::Queue, "SendMessageBatch", |n| {
            format!("{n} messages not sent after {} attempts", r.attempts)
        })?;
        done.records += records;
        done.messages += messages;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::check_send_batch;
    use std::collections::BTreeMap;

    fn rec(key: &str) -> QueuedRecord {
        QueuedRecord {
            record: CanonicalRecord {
                entity: EntityType::Episode,
                key: key.into(),
                fields: BTreeMap::from([("title".to_string(), "Café Society".to_string())]),
            },
            hash: format!("h-{key}"),
            changed: vec![],
            may_exist: false,
        }
    }

    #[test]
    fn one_key_one_group_and_many_keys_many_groups() {
        assert_eq!(
            group_id(EntityType::Show, "Café Society #1"),
            group_id(EntityType::Show, "Café Society #1")
        );
        let groups: std::collections::HashSet<String> = (0..1000)
            .map(|i| group_id(EntityType::Episode, &format!("ep-{i}")))
            .collect();
        assert_eq!(groups.len() as u64, LANES, "keys spread over every lane");
        let g = group_id(EntityType::Asset, "Ünïcode/ключ");
        assert!(g.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }

    #[test]
    fn messages_hold_batch_size_records_of_one_lane_and_pass_the_queue_checks() {
        let records: Vec<QueuedRecord> = (0..500).map(|i| rec(&format!("ep-{i}"))).collect();
        let msgs = messages("r1", records, 10);
        let mut seen = 0;
        for m in &msgs {
            let body: Message = serde_json::from_str(&m.body).expect("json");
            assert!(body.records.len() <= 10);
            for r in &body.records {
                assert_eq!(group_id(r.record.entity, &r.record.key), m.group_id);
            }
            assert!(m.dedup_id.len() <= 128);
            seen += body.records.len();
        }
        assert_eq!(seen, 500);
        assert!(msgs.len() >= 50 && msgs.len() < 50 + LANES as usize);
        let first: std::collections::HashSet<&str> =
            msgs[..10].iter().map(|m| m.group_id.as_str()).collect();
        assert_eq!(first.len(), 10, "the first ten messages are ten lanes");
        for b in pack_batches(msgs, MAX_BATCH_BYTES).expect("packs") {
            assert!(check_send_batch("SendMessageBatch", &b).is_ok());
        }
        assert_ne!(dedup_id(&[rec("a")]), dedup_id(&[rec("b")]));
    }
}
