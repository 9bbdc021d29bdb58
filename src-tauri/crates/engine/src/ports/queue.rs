//! The FIFO queue port (SQS FIFO with its dead-letter queue, or SQLite). One `Queue`
//! is one entity type's queue together with its dead-letter queue.
//!
//! Semantics both adapters keep: messages of one group are handed out in order, and a
//! group's next message is not handed out while one of its messages is in flight;
//! a received message is invisible for the visibility timeout, then comes back with its
//! receive count raised; a message received more than the queue's max receive count
//! moves to the dead-letter queue; a dedup id seen within 5 minutes is accepted and
//! dropped, even if the first message was already deleted.
//!
//! A receipt holds while its message is in flight from that receive: once the
//! visibility timeout runs out (the message is visible again, or received again) a
//! delete or visibility change with it is refused as stale, as SQS FIFO refuses an
//! expired receipt handle ("Reason: The receipt handle has expired", AWS knowledge
//! center, "sqs-receipt-handle-error"). A receipt of another queue is refused before
//! any call.
//!
//! Dead letters: a message the redrive policy moves (received more than the max
//! receive count) keeps its message id, and its receive count carries on. One moved
//! with [`Queue::send_to_dead_letter`] is a new message there, as SQS has no move:
//! a new message id, a receive count that starts again, the same group and body.

use super::{Calls, Service, StoreError};
use async_trait::async_trait;
use std::time::Duration;

/// At most this many entries in one send, receive or delete batch (SQS's limit).
pub const MAX_BATCH_ENTRIES: usize = 10;
/// At most this many messages per receive.
pub const MAX_RECEIVE: usize = 10;
/// The sum of the bodies of one send batch (SQS's 256 KiB payload limit).
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
/// The longest a receive may wait for a message.
pub const MAX_LONG_POLL: Duration = Duration::from_secs(20);

/// The main queue, or its dead-letter queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    Main,
    Dead,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Order holds within a group (the show a record belongs to); groups run in parallel.
    pub group_id: String,
    /// The same dedup id within 5 minutes is accepted once.
    pub dedup_id: String,
    pub body: String,
}

/// A message handed out by a receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message_id: String,
    pub receipt: Receipt,
    pub group_id: String,
    pub dedup_id: String,
    pub body: String,
    /// 1 on the first receive.
    pub receive_count: u32,
}

/// Proof of one receive: deletes and visibility changes need it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receipt {
    /// The queue that handed it out (see [`Queue::name`]).
    pub queue: String,
    pub lane: Lane,
    pub handle: String,
}

/// One entry of a send batch the queue refused (the others went through).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    /// Position in the batch.
    pub index: usize,
    pub code: String,
    pub message: String,
    /// Whether sending the same entry again can succeed.
    pub retryable: bool,
}

/// How many messages a queue holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Depth {
    pub visible: u64,
    pub in_flight: u64,
    /// In the dead-letter queue (visible or not).
    pub dead: u64,
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Send up to [`MAX_BATCH_ENTRIES`] messages whose bodies add up to at most
    /// [`MAX_BATCH_BYTES`]; a larger batch is refused whole. Returns the entries
    /// that failed.
    async fn send_batch(&self, messages: &[Outgoing]) -> Result<Vec<SendFailure>, StoreError>;

    /// Up to `max` (≤ [`MAX_RECEIVE`]) messages, invisible to others for `visibility`;
    /// waits up to `wait` (≤ [`MAX_LONG_POLL`]) for one to arrive.
    async fn receive(
        &self,
        lane: Lane,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Received>, StoreError>;

    /// Hide a received message for `visibility` from now (zero: hand it out again now).
    /// A stale receipt is an error of kind [`ErrorKind::Stale`](super::ErrorKind::Stale).
    async fn change_visibility(
        &self,
        receipt: &Receipt,
        visibility: Duration,
    ) -> Result<(), StoreError>;

    /// Delete received messages (up to [`MAX_BATCH_ENTRIES`]). Returns the receipts
    /// that could not be deleted (stale ones: their messages come back).
    async fn delete_batch(&self, receipts: &[Receipt]) -> Result<Vec<Receipt>, StoreError>;

    async fn depth(&self) -> Result<Depth, StoreError>;

    /// Move a received message of the main queue to the dead-letter queue now (a
    /// record the target refused for good), keeping its group and body (a new message
    /// there: see the module notes). With a stale receipt: an error of kind
    /// [`ErrorKind::Stale`](super::ErrorKind::Stale), and the message comes back to
    /// the main queue (on AWS a copy may also be in the dead-letter queue).
    async fn send_to_dead_letter(&self, message: &Received) -> Result<(), StoreError>;

    /// The queue's name, which its receipts carry.
    fn name(&self) -> &str;

    fn calls(&self) -> Calls;
}

/// The longest `MessageGroupId` / `MessageDeduplicationId` SQS takes.
pub const MAX_ID_CHARS: usize = 128;

/// What SQS accepts in a group or dedup id: "alphanumeric characters (a-z, A-Z, 0-9)
/// and punctuation (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~)" (SQS API reference,
/// SendMessage). Anything else is a sender fault on AWS, so both adapters refuse it.
pub fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c.is_ascii_punctuation()
}

/// Limits a send batch must keep; adapters check them before any call.
pub fn check_send_batch(operation: &'static str, messages: &[Outgoing]) -> Result<(), StoreError> {
    let invalid = |m: String| Err(StoreError::invalid(Service::Queue, operation, m));
    if messages.is_empty() || messages.len() > MAX_BATCH_ENTRIES {
        return invalid(format!(
            "a batch holds 1 to {MAX_BATCH_ENTRIES} messages, not {}",
            messages.len()
        ));
    }
    let bytes: usize = messages.iter().map(|m| m.body.len()).sum();
    if bytes > MAX_BATCH_BYTES {
        return invalid(format!(
            "a batch holds at most {MAX_BATCH_BYTES} bytes of bodies, not {bytes}"
        ));
    }
    for m in messages {
        for (what, id) in [("group id", &m.group_id), ("dedup id", &m.dedup_id)] {
            if id.is_empty() || id.len() > MAX_ID_CHARS || !id.chars().all(is_id_char) {
                return invalid(format!(
                    "{what} {id:?} must be 1 to {MAX_ID_CHARS} letters a-z A-Z, digits and ASCII punctuation"
                ));
            }
        }
        if m.body.is_empty() {
            return invalid("a message body must not be empty".into());
        }
    }
    Ok(())
}

/// Limits a receive must keep.
pub fn check_receive(max: usize, wait: Duration) -> Result<(), StoreError> {
    if max == 0 || max > MAX_RECEIVE || wait > MAX_LONG_POLL {
        return Err(StoreError::invalid(
            Service::Queue,
            "ReceiveMessage",
            format!(
                "receive 1 to {MAX_RECEIVE} messages waiting at most {}s",
                MAX_LONG_POLL.as_secs()
            ),
        ));
    }
    Ok(())
}

/// Receipts must come from the queue they are used on (`queue`, its name): SQS
/// answers `ReceiptHandleIsInvalid` otherwise, and a local handle could name another
/// queue's message.
pub fn check_receipt(
    queue: &str,
    operation: &'static str,
    receipt: &Receipt,
) -> Result<(), StoreError> {
    if receipt.queue != queue {
        return Err(StoreError::invalid(
            Service::Queue,
            operation,
            format!(
                "the receipt is from queue {:?}, not {queue:?}",
                receipt.queue
            ),
        ));
    }
    Ok(())
}

/// Limits a delete batch on `queue` must keep: 1 to [`MAX_BATCH_ENTRIES`] receipts of
/// that queue and one lane, which it returns.
pub fn check_delete_batch(queue: &str, receipts: &[Receipt]) -> Result<Lane, StoreError> {
    for r in receipts {
        check_receipt(queue, "DeleteMessageBatch", r)?;
    }
    match receipts.first() {
        Some(first)
            if receipts.len() <= MAX_BATCH_ENTRIES
                && receipts.iter().all(|r| r.lane == first.lane) =>
        {
            Ok(first.lane)
        }
        _ => Err(StoreError::invalid(
            Service::Queue,
            "DeleteMessageBatch",
            format!(
                "a batch holds 1 to {MAX_BATCH_ENTRIES} receipts of one queue, not {}",
                receipts.len()
            ),
        )),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message {index} alone has {bytes} bytes, over the {MAX_BATCH_BYTES}-byte limit of a batch; send fewer records per message")]
pub struct PackError {
    pub index: usize,
    pub bytes: usize,
}

/// Split messages, in order, into send batches of at most [`MAX_BATCH_ENTRIES`] entries
/// and `budget` bytes of bodies (at most [`MAX_BATCH_BYTES`]).
pub fn pack_batches(
    messages: Vec<Outgoing>,
    budget: usize,
) -> Result<Vec<Vec<Outgoing>>, PackError> {
    let budget = budget.min(MAX_BATCH_BYTES);
    let mut batches = Vec::new();
    let mut current: Vec<Outgoing> = Vec::new();
    let mut bytes = 0;
    for (index, m) in messages.into_iter().enumerate() {
        let n = m.body.len();
        if n > budget {
            return Err(PackError { index, bytes: n });
        }
        if current.len() == MAX_BATCH_ENTRIES || bytes + n > budget {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += n;
        current.push(m);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: usize) -> Outgoing {
        Outgoing {
            group_id: "g".into(),
            dedup_id: format!("d{n}"),
            body: "x".repeat(n),
        }
    }

    #[test]
    fn batches_keep_order_and_both_limits() {
        let sizes = [100, 100, 900, 50, 1000, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
        let batches = pack_batches(sizes.iter().map(|&n| msg(n)).collect(), 1000).expect("packs");
        let flat: Vec<usize> = batches.iter().flatten().map(|m| m.body.len()).collect();
        assert_eq!(flat, sizes);
        for b in &batches {
            assert!(b.len() <= MAX_BATCH_ENTRIES);
            assert!(b.iter().map(|m| m.body.len()).sum::<usize>() <= 1000);
            assert!(check_send_batch("SendMessageBatch", b).is_ok());
        }
        assert_eq!(
            batches.len(),
            5,
            "{:?}",
            batches.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_message_over_the_budget_is_an_error_naming_it() {
        let err = pack_batches(vec![msg(10), msg(2000)], 1000).expect_err("too big");
        assert_eq!(
            err,
            PackError {
                index: 1,
                bytes: 2000
            }
        );
        assert!(check_send_batch("SendMessageBatch", &[msg(MAX_BATCH_BYTES + 1)]).is_err());
        assert!(check_send_batch("SendMessageBatch", &vec![msg(1); 11]).is_err());
        assert!(check_send_batch("SendMessageBatch", &[]).is_err());
    }

    #[test]
    fn a_delete_batch_is_one_lane_of_at_most_ten() {
        let r = |lane| Receipt {
            queue: "q".into(),
            lane,
            handle: "h".into(),
        };
        assert_eq!(
            check_delete_batch("q", &[r(Lane::Dead), r(Lane::Dead)]).ok(),
            Some(Lane::Dead)
        );
        assert!(check_delete_batch("other", &[r(Lane::Dead)]).is_err());
        assert!(check_delete_batch("q", &[r(Lane::Main), r(Lane::Dead)]).is_err());
        assert!(check_delete_batch("q", &[]).is_err());
        assert!(check_delete_batch("q", &vec![r(Lane::Main); 11]).is_err());
        assert!(check_receive(10, MAX_LONG_POLL).is_ok());
        assert!(check_receive(0, Duration::ZERO).is_err());
        assert!(check_receive(1, MAX_LONG_POLL + Duration::from_secs(1)).is_err());
    }
}
