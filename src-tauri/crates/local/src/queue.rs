//! FIFO queues in SQLite, with SQS FIFO's semantics (see the engine's queue port).

use crate::db::Db;
use crate::QueueSettings;
use async_trait::async_trait;
use metasync_engine::ports::{
    check_delete_batch, check_receive, check_send_batch, CallCounter, Calls, Depth, Lane, Outgoing,
    Queue, Receipt, Received, SendFailure, Service, StoreError,
};
use metasync_engine::EntityType;
use rusqlite::{params, TransactionBehavior};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// SQS FIFO's deduplication interval.
const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;
/// How often a long poll looks again for messages another process sent or whose
/// visibility ran out.
const POLL_EVERY: Duration = Duration::from_millis(50);

pub struct LocalQueue {
    db: Arc<Db>,
    calls: CallCounter,
    /// The looks of a long poll after its first: one receive is one call, as on SQS.
    polls: CallCounter,
    name: &'static str,
    settings: QueueSettings,
}

impl LocalQueue {
    pub(crate) fn new(db: Arc<Db>, entity: EntityType, settings: QueueSettings) -> Self {
        Self {
            db,
            calls: CallCounter::default(),
            polls: CallCounter::default(),
            name: entity.as_str(),
            settings,
        }
    }

    fn lane_no(lane: Lane) -> i64 {
        match lane {
            Lane::Main => 0,
            Lane::Dead => 1,
        }
    }

    /// One receive attempt: the messages that may be handed out now.
    async fn receive_now(
        &self,
        lane: Lane,
        max: usize,
        visibility: Duration,
        counter: &CallCounter,
    ) -> Result<Vec<Received>, StoreError> {
        let queue = self.name;
        let lane_no = Self::lane_no(lane);
        let now = self.db.clock.now_ms();
        let hide_until = now + ms(visibility);
        let max_receives = i64::from(self.settings.max_receive_count);
        let nonces: Vec<String> = (0..max).map(|_| self.db.new_id()).collect();
        self.db
            .run(counter, Service::Queue, "ReceiveMessage", move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut out = Vec::new();
                {
                    // A group with a message in flight hands out nothing.
                    let mut locked = tx.prepare_cached(
                        "SELECT DISTINCT group_id FROM messages
                         WHERE queue = ?1 AND lane = ?2 AND visible_at > ?3",
                    )?;
                    let mut locked: HashSet<String> = locked
                        .query_map(params![queue, lane_no, now], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    let mut scan = tx.prepare_cached(
                        // Walk in send order from the head: the planner would otherwise
                        // pick the visibility index and sort every visible message.
                        "SELECT seq, id, group_id, dedup_id, body, receive_count
                         FROM messages INDEXED BY messages_order
                         WHERE queue = ?1 AND lane = ?2 AND visible_at <= ?3 ORDER BY seq",
                    )?;
                    let mut rows = scan.query(params![queue, lane_no, now])?;
                    let mut to_dead = Vec::new();
                    let mut taken = Vec::new();
                    while let Some(r) = rows.next()? {
                        if taken.len() == max {
                            break;
                        }
                        let group: String = r.get(2)?;
                        if locked.contains(&group) {
                            continue;
                        }
                        let seq: i64 = r.get(0)?;
                        let count: i64 = r.get(5)?;
                        if lane == Lane::Main && count >= max_receives {
                            // Received too often: the redrive policy moves it on.
                            to_dead.push(seq);
                            continue;
                        }
                        taken.push((seq, r.get::<_, String>(1)?, group, r.get(3)?, r.get(4)?, count));
                    }
                    drop(rows);
                    for seq in to_dead {
                        tx.execute(
                            "UPDATE messages SET lane = 1, visible_at = ?2, receipt = NULL WHERE seq = ?1",
                            params![seq, now],
                        )?;
                    }
                    let mut mark = tx.prepare_cached(
                        "UPDATE messages SET visible_at = ?2, receive_count = ?3, receipt = ?4
                         WHERE seq = ?1",
                    )?;
                    for ((seq, id, group, dedup_id, body, count), nonce) in
                        taken.into_iter().zip(nonces)
                    {
                        let handle = format!("{seq}.{nonce}");
                        mark.execute(params![seq, hide_until, count + 1, handle])?;
                        locked.insert(group.clone());
                        out.push(Received {
                            message_id: id,
                            receipt: Receipt { lane, handle },
                            group_id: group,
                            dedup_id,
                            body,
                            receive_count: u32::try_from(count + 1).unwrap_or(u32::MAX),
                        });
                    }
                }
                tx.commit()?;
                Ok(out)
            })
            .await
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

fn seq_of(receipt: &Receipt) -> Option<i64> {
    receipt.handle.split_once('.')?.0.parse().ok()
}

fn stale(operation: &'static str) -> StoreError {
    StoreError::invalid(
        Service::Queue,
        operation,
        "the receipt is not valid any more: the message was deleted, or received again after its visibility timeout",
    )
}

#[async_trait]
impl Queue for LocalQueue {
    async fn send_batch(&self, messages: &[Outgoing]) -> Result<Vec<SendFailure>, StoreError> {
        check_send_batch("SendMessageBatch", messages)?;
        let queue = self.name;
        let now = self.db.clock.now_ms();
        let batch: Vec<(Outgoing, String)> = messages
            .iter()
            .map(|m| (m.clone(), self.db.new_id()))
            .collect();
        self.db
            .run(&self.calls, Service::Queue, "SendMessageBatch", move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute(
                    "DELETE FROM dedup WHERE queue = ?1 AND expires_at <= ?2",
                    params![queue, now],
                )?;
                for (m, id) in &batch {
                    let fresh = tx.execute(
                        "INSERT OR IGNORE INTO dedup (queue, dedup_id, expires_at) VALUES (?1, ?2, ?3)",
                        params![queue, m.dedup_id, now + DEDUP_WINDOW_MS],
                    )?;
                    if fresh == 1 {
                        tx.execute(
                            "INSERT INTO messages (queue, lane, id, group_id, dedup_id, body, visible_at)
                             VALUES (?1, 0, ?2, ?3, ?4, ?5, ?6)",
                            params![queue, id, m.group_id, m.dedup_id, m.body, now],
                        )?;
                    }
                }
                tx.commit()
            })
            .await?;
        self.db.arrivals.notify_waiters();
        Ok(Vec::new())
    }

    async fn receive(
        &self,
        lane: Lane,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Received>, StoreError> {
        check_receive(max, wait)?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut counter = &self.calls;
        loop {
            let arrived = self.db.arrivals.notified();
            let got = self.receive_now(lane, max, visibility, counter).await?;
            counter = &self.polls;
            if !got.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(got);
            }
            let nap = POLL_EVERY.min(deadline - tokio::time::Instant::now());
            let _ = tokio::time::timeout(nap, arrived).await;
        }
    }

    async fn change_visibility(
        &self,
        receipt: &Receipt,
        visibility: Duration,
    ) -> Result<(), StoreError> {
        let op = "ChangeMessageVisibility";
        let seq = seq_of(receipt).ok_or_else(|| stale(op))?;
        let handle = receipt.handle.clone();
        let until = self.db.clock.now_ms() + ms(visibility);
        let lane = Self::lane_no(receipt.lane);
        let changed = self
            .db
            .run(&self.calls, Service::Queue, op, move |conn| {
                conn.execute(
                    "UPDATE messages SET visible_at = ?3 WHERE seq = ?1 AND receipt = ?2 AND lane = ?4",
                    params![seq, handle, until, lane],
                )
            })
            .await?;
        if changed == 0 {
            return Err(stale(op));
        }
        if visibility.is_zero() {
            self.db.arrivals.notify_waiters();
        }
        Ok(())
    }

    async fn delete_batch(&self, receipts: &[Receipt]) -> Result<Vec<Receipt>, StoreError> {
        check_delete_batch(receipts)?;
        let owned: Vec<Receipt> = receipts.to_vec();
        let failed = self
            .db
            .run(
                &self.calls,
                Service::Queue,
                "DeleteMessageBatch",
                move |conn| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let mut failed = Vec::new();
                    for r in owned {
                        let gone = match seq_of(&r) {
                        Some(seq) => tx.execute(
                            "DELETE FROM messages WHERE seq = ?1 AND receipt = ?2 AND lane = ?3",
                            params![seq, r.handle, LocalQueue::lane_no(r.lane)],
                        )?,
                        None => 0,
                    };
                        if gone == 0 {
                            failed.push(r);
                        }
                    }
                    tx.commit()?;
                    Ok(failed)
                },
            )
            .await?;
        // A deleted message unlocks its group for the long polls waiting on it.
        self.db.arrivals.notify_waiters();
        Ok(failed)
    }

    async fn depth(&self) -> Result<Depth, StoreError> {
        let queue = self.name;
        let now = self.db.clock.now_ms();
        self.db
            .run(
                &self.calls,
                Service::Queue,
                "GetQueueAttributes",
                move |conn| {
                    conn.query_row(
                        "SELECT
                        COUNT(*) FILTER (WHERE lane = 0 AND visible_at <= ?2),
                        COUNT(*) FILTER (WHERE lane = 0 AND visible_at > ?2),
                        COUNT(*) FILTER (WHERE lane = 1)
                     FROM messages WHERE queue = ?1",
                        params![queue, now],
                        |r| {
                            Ok(Depth {
                                visible: r.get::<_, i64>(0)?.unsigned_abs(),
                                in_flight: r.get::<_, i64>(1)?.unsigned_abs(),
                                dead: r.get::<_, i64>(2)?.unsigned_abs(),
                            })
                        },
                    )
                },
            )
            .await
    }

    async fn send_to_dead_letter(&self, message: &Received) -> Result<(), StoreError> {
        let op = "SendMessage";
        if message.receipt.lane != Lane::Main {
            return Err(StoreError::invalid(
                Service::Queue,
                op,
                "the message is already in the dead-letter queue",
            ));
        }
        let seq = seq_of(&message.receipt).ok_or_else(|| stale(op))?;
        let handle = message.receipt.handle.clone();
        let now = self.db.clock.now_ms();
        // One transaction stands for SQS's send to the dead-letter queue plus delete.
        let moved = self
            .db
            .run(&self.calls, Service::Queue, op, move |conn| {
                conn.execute(
                    "UPDATE messages SET lane = 1, visible_at = ?3, receipt = NULL
                     WHERE seq = ?1 AND receipt = ?2 AND lane = 0",
                    params![seq, handle, now],
                )
            })
            .await?;
        self.calls.add(Service::Queue, "DeleteMessage");
        if moved == 0 {
            return Err(stale(op));
        }
        Ok(())
    }

    fn calls(&self) -> Calls {
        self.calls.snapshot()
    }
}
