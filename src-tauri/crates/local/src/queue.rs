//! FIFO queues in SQLite, with SQS FIFO's semantics (see the engine's queue port).

use crate::db::Db;
use crate::QueueSettings;
use async_trait::async_trait;
use metasync_engine::ports::{
    check_delete_batch, check_receipt, check_receive, check_send_batch, CallCounter, Calls, Depth,
    ErrorKind, Lane, Outgoing, Queue, Receipt, Received, SendFailure, Service, StoreError,
};
use metasync_engine::EntityType;
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use std::collections::{HashSet, VecDeque};
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
    ///
    /// A look that finds nothing (every group blocked, or none) reads only, so it
    /// takes no write lock from senders and other pollers; a look that finds work
    /// takes the lock and picks again under it. The time is read once the lock is
    /// held: waiting for it must not eat into the visibility timeout.
    async fn receive_now(
        &self,
        lane: Lane,
        max: usize,
        visibility: Duration,
        counter: &CallCounter,
    ) -> Result<Vec<Received>, StoreError> {
        let queue = self.name;
        let lane_no = Self::lane_no(lane);
        let clock = self.db.clock.clone();
        let max_receives = if lane == Lane::Main {
            i64::from(self.settings.max_receive_count)
        } else {
            i64::MAX
        };
        let nonces: Vec<String> = (0..max).map(|_| self.db.new_id()).collect();
        self.db
            .run(counter, Service::Queue, "ReceiveMessage", move |conn| {
                let look = Look {
                    queue,
                    lane: lane_no,
                    max,
                    max_receives,
                };
                {
                    let read = conn.transaction()?;
                    if look.pick(&read, clock.now_ms())?.is_empty() {
                        return Ok(Vec::new());
                    }
                }
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let now = clock.now_ms();
                let picked = look.pick(&tx, now)?;
                for (seq, group) in &picked.to_dead {
                    tx.execute(
                        "UPDATE messages SET lane = 1, visible_at = ?2, receipt = NULL WHERE seq = ?1",
                        params![seq, now],
                    )?;
                    moved_group(&tx, queue, group)?;
                }
                let mut out = Vec::with_capacity(picked.taken.len());
                {
                    let mut mark = tx.prepare_cached(
                        "UPDATE messages SET visible_at = ?2, receive_count = ?3, receipt = ?4
                         WHERE seq = ?1",
                    )?;
                    for (m, nonce) in picked.taken.into_iter().zip(nonces) {
                        let handle = format!("{}.{nonce}", m.seq);
                        mark.execute(params![m.seq, now + ms(visibility), m.count + 1, handle])?;
                        out.push(Received {
                            message_id: m.id,
                            receipt: Receipt {
                                queue: queue.to_string(),
                                lane,
                                handle,
                            },
                            group_id: m.group,
                            dedup_id: m.dedup_id,
                            body: m.body,
                            receive_count: u32::try_from(m.count + 1).unwrap_or(u32::MAX),
                        });
                    }
                }
                tx.commit()?;
                Ok(out)
            })
            .await
    }
}

/// What one receive looks for.
struct Look {
    queue: &'static str,
    lane: i64,
    max: usize,
    /// Received this often, a message moves to the dead-letter lane instead.
    max_receives: i64,
}

/// A message a receive hands out.
struct Taken {
    seq: i64,
    id: String,
    group: String,
    dedup_id: String,
    body: String,
    count: i64,
}

/// What a receive would do now.
#[derive(Default)]
struct Picked {
    taken: Vec<Taken>,
    /// (seq, group) of messages the redrive policy moves on.
    to_dead: Vec<(i64, String)>,
}

impl Picked {
    fn is_empty(&self) -> bool {
        self.taken.is_empty() && self.to_dead.is_empty()
    }
}

impl Look {
    /// Visit groups oldest first and read messages only of groups with none in flight,
    /// so a blocked group's backlog costs nothing (the in-flight set is as large as
    /// the consumers' concurrency). Up to `max` such groups are read, up to `max`
    /// messages each, and handed out breadth first (every group's head, then every
    /// group's second), so a receive spans groups and consumers can work its messages
    /// side by side; a group's own messages stay in order.
    fn pick(&self, conn: &rusqlite::Connection, now: i64) -> rusqlite::Result<Picked> {
        let mut picked = Picked::default();
        let mut locked = conn.prepare_cached(
            "SELECT DISTINCT group_id FROM messages
             WHERE queue = ?1 AND lane = ?2 AND visible_at > ?3",
        )?;
        let locked: HashSet<String> = locked
            .query_map(params![self.queue, self.lane, now], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut groups = conn.prepare_cached(
            "SELECT group_id FROM groups WHERE queue = ?1 AND lane = ?2 ORDER BY id",
        )?;
        let mut messages = conn.prepare_cached(
            "SELECT seq, id, dedup_id, body, receive_count FROM messages
             WHERE queue = ?1 AND lane = ?2 AND group_id = ?3 ORDER BY seq",
        )?;
        let mut lists: Vec<VecDeque<Taken>> = Vec::new();
        let mut groups = groups.query(params![self.queue, self.lane])?;
        while let Some(g) = groups.next()? {
            if lists.len() == self.max {
                break;
            }
            let group: String = g.get(0)?;
            if locked.contains(&group) {
                continue;
            }
            let mut list = VecDeque::new();
            let mut rows = messages.query(params![self.queue, self.lane, group])?;
            while let Some(r) = rows.next()? {
                if list.len() == self.max {
                    break;
                }
                let seq: i64 = r.get(0)?;
                let count: i64 = r.get(4)?;
                if count >= self.max_receives {
                    // Received too often: the redrive policy moves it on.
                    picked.to_dead.push((seq, group.clone()));
                    continue;
                }
                list.push_back(Taken {
                    seq,
                    id: r.get(1)?,
                    group: group.clone(),
                    dedup_id: r.get(2)?,
                    body: r.get(3)?,
                    count,
                });
            }
            if !list.is_empty() {
                lists.push(list);
            }
        }
        while picked.taken.len() < self.max {
            let before = picked.taken.len();
            for list in &mut lists {
                if picked.taken.len() == self.max {
                    break;
                }
                if let Some(t) = list.pop_front() {
                    picked.taken.push(t);
                }
            }
            if picked.taken.len() == before {
                break;
            }
        }
        Ok(picked)
    }
}

/// A message of `group` moved from the main lane to the dead-letter lane: the group
/// now has a message there, and maybe none left in the main lane.
fn moved_group(tx: &rusqlite::Transaction<'_>, queue: &str, group: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO groups (queue, lane, group_id) VALUES (?1, 1, ?2)",
        params![queue, group],
    )?;
    forget_if_empty(tx, queue, 0, group)
}

/// Drop a group from the receive order once it holds no message in that lane.
fn forget_if_empty(
    tx: &rusqlite::Transaction<'_>,
    queue: &str,
    lane: i64,
    group: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM groups WHERE queue = ?1 AND lane = ?2 AND group_id = ?3
         AND NOT EXISTS (SELECT 1 FROM messages WHERE queue = ?1 AND lane = ?2 AND group_id = ?3)",
        params![queue, lane, group],
    )?;
    Ok(())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

fn seq_of(receipt: &Receipt) -> Option<i64> {
    receipt.handle.split_once('.')?.0.parse().ok()
}

fn stale(operation: &'static str) -> StoreError {
    StoreError::new(
        ErrorKind::Stale,
        Service::Queue,
        operation,
        "the receipt has expired: the message's visibility timeout ran out (it is back in \
         the queue, or received again), or it was deleted",
    )
}

#[async_trait]
impl Queue for LocalQueue {
    async fn send_batch(&self, messages: &[Outgoing]) -> Result<Vec<SendFailure>, StoreError> {
        check_send_batch("SendMessageBatch", messages)?;
        let queue = self.name;
        let clock = self.db.clock.clone();
        let batch: Vec<(Outgoing, String)> = messages
            .iter()
            .map(|m| (m.clone(), self.db.new_id()))
            .collect();
        self.db
            .run(&self.calls, Service::Queue, "SendMessageBatch", move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let now = clock.now_ms();
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
                        tx.execute(
                            "INSERT OR IGNORE INTO groups (queue, lane, group_id) VALUES (?1, 0, ?2)",
                            params![queue, m.group_id],
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
        check_receipt(self.name, op, receipt)?;
        let seq = seq_of(receipt).ok_or_else(|| stale(op))?;
        let queue = self.name;
        let handle = receipt.handle.clone();
        let clock = self.db.clock.clone();
        let lane = Self::lane_no(receipt.lane);
        let changed = self
            .db
            .run(&self.calls, Service::Queue, op, move |conn| {
                let now = clock.now_ms();
                // Only while the receive that gave this receipt still holds it.
                conn.execute(
                    "UPDATE messages SET visible_at = ?3
                     WHERE seq = ?1 AND receipt = ?2 AND lane = ?4 AND queue = ?5 AND visible_at > ?6",
                    params![seq, handle, now + ms(visibility), lane, queue, now],
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
        check_delete_batch(self.name, receipts)?;
        let queue = self.name;
        let clock = self.db.clock.clone();
        let owned: Vec<Receipt> = receipts.to_vec();
        let failed = self
            .db
            .run(
                &self.calls,
                Service::Queue,
                "DeleteMessageBatch",
                move |conn| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let now = clock.now_ms();
                    let mut failed = Vec::new();
                    for r in owned {
                        let lane = LocalQueue::lane_no(r.lane);
                        let gone: Option<String> = match seq_of(&r) {
                            Some(seq) => tx
                                .query_row(
                                    "DELETE FROM messages
                                     WHERE seq = ?1 AND receipt = ?2 AND lane = ?3 AND queue = ?4
                                       AND visible_at > ?5
                                     RETURNING group_id",
                                    params![seq, r.handle, lane, queue, now],
                                    |row| row.get(0),
                                )
                                .optional()?,
                            None => None,
                        };
                        match gone {
                            Some(group) => forget_if_empty(&tx, queue, lane, &group)?,
                            None => failed.push(r),
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
        check_receipt(self.name, op, &message.receipt)?;
        if message.receipt.lane != Lane::Main {
            return Err(StoreError::invalid(
                Service::Queue,
                op,
                "the message is already in the dead-letter queue",
            ));
        }
        let seq = seq_of(&message.receipt).ok_or_else(|| stale(op))?;
        let queue = self.name;
        let handle = message.receipt.handle.clone();
        let clock = self.db.clock.clone();
        // A new message in the dead-letter queue, as SQS's send there makes one.
        let new_id = self.db.new_id();
        // One transaction stands for SQS's send to the dead-letter queue plus delete.
        let moved = self
            .db
            .run(&self.calls, Service::Queue, op, move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let now = clock.now_ms();
                let group: Option<String> = tx
                    .query_row(
                        "UPDATE messages
                         SET lane = 1, id = ?3, visible_at = ?4, receive_count = 0, receipt = NULL
                         WHERE seq = ?1 AND receipt = ?2 AND lane = 0 AND queue = ?5 AND visible_at > ?4
                         RETURNING group_id",
                        params![seq, handle, new_id, now, queue],
                        |row| row.get(0),
                    )
                    .optional()?;
                if let Some(group) = &group {
                    moved_group(&tx, queue, group)?;
                }
                tx.commit()?;
                Ok(group.is_some())
            })
            .await?;
        self.calls.add(Service::Queue, "DeleteMessage");
        if !moved {
            return Err(stale(op));
        }
        Ok(())
    }

    fn name(&self) -> &str {
        self.name
    }

    fn calls(&self) -> Calls {
        self.calls.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use metasync_engine::ports::{Lane, Outgoing};
    use metasync_engine::EntityType;
    use std::time::Duration;

    /// A folder an older version wrote (no receive order of groups, schema version 0)
    /// still hands out what it queued, group by group in send order.
    #[tokio::test]
    async fn messages_queued_before_the_upgrade_are_handed_out() {
        let dir = tempfile::tempdir().expect("temp dir");
        let send = |g: &str, d: &str| Outgoing {
            group_id: g.into(),
            dedup_id: d.into(),
            body: d.into(),
        };
        {
            let b = crate::open(dir.path(), Default::default()).expect("open");
            b.queue(EntityType::Show)
                .send_batch(&[send("a", "a1"), send("b", "b1"), send("a", "a2")])
                .await
                .expect("send");
        }
        let conn = rusqlite::Connection::open(dir.path().join("metasync.db")).expect("db");
        conn.execute_batch(
            "DELETE FROM groups; PRAGMA user_version = 0;
             CREATE INDEX messages_order ON messages (queue, lane, seq);",
        )
        .expect("as version 0 left it");
        drop(conn);

        let b = crate::open(dir.path(), Default::default()).expect("reopen");
        let got = b
            .queue(EntityType::Show)
            .receive(Lane::Main, 10, Duration::from_secs(30), Duration::ZERO)
            .await
            .expect("receive");
        let bodies: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
        // Breadth first: each group's head, then the next.
        assert_eq!(bodies, ["a1", "b1", "a2"]);
        let conn = rusqlite::Connection::open(dir.path().join("metasync.db")).expect("db");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(version, crate::db::SCHEMA_VERSION);
    }
}
