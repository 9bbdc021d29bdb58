//! The queue port over one SQS FIFO queue and its FIFO dead-letter queue.

use crate::error::{build_error, store_error};
use async_trait::async_trait;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use metasync_engine::config::AwsProfile;
use metasync_engine::gen::Rng;
use metasync_engine::ports::{
    check_delete_batch, check_receipt, check_receive, check_send_batch, jitter_seed,
    retry_transient, CallCounter, Calls, Depth, ErrorKind, Lane, Outgoing, Queue, Receipt,
    Received, SendFailure, Service, StoreError,
};
use metasync_engine::retry::RetryPolicy;
use metasync_engine::EntityType;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::OnceCell;

pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    names: [String; 2],
    urls: [OnceCell<String>; 2],
    retry: RetryPolicy,
    jitter: Mutex<Rng>,
    calls: CallCounter,
}

fn lane_index(lane: Lane) -> usize {
    match lane {
        Lane::Main => 0,
        Lane::Dead => 1,
    }
}

/// SQS counts visibility and waits in whole seconds; round up so a lease is never
/// shorter than asked.
fn seconds(d: Duration) -> i32 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(s).unwrap_or(i32::MAX)
}

impl SqsQueue {
    /// A fresh receive request attempt id (up to 128 of SQS's id characters).
    fn new_attempt_id(&self) -> String {
        let mut rng = self.jitter.lock().unwrap_or_else(|e| e.into_inner());
        format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64())
    }

    pub fn new(
        client: aws_sdk_sqs::Client,
        profile: &AwsProfile,
        entity: EntityType,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            client,
            names: [
                profile.queue_name(entity, false),
                profile.queue_name(entity, true),
            ],
            urls: [OnceCell::new(), OnceCell::new()],
            retry,
            jitter: Mutex::new(Rng::new(jitter_seed())),
            calls: CallCounter::default(),
        }
    }

    async fn url(&self, lane: Lane) -> Result<&str, StoreError> {
        let i = lane_index(lane);
        let name = &self.names[i];
        self.urls[i]
            .get_or_try_init(|| {
                retry_transient(&self.retry, &self.jitter, || async {
                    self.calls.add(Service::Queue, "GetQueueUrl");
                    let out = self
                        .client
                        .get_queue_url()
                        .queue_name(name)
                        .send()
                        .await
                        .map_err(|e| store_error(Service::Queue, "GetQueueUrl", name, e))?;
                    out.queue_url().map(str::to_string).ok_or_else(|| {
                        StoreError::invalid(
                            Service::Queue,
                            "GetQueueUrl",
                            format!("{name}: no URL"),
                        )
                    })
                })
            })
            .await
            .map(String::as_str)
    }

    async fn count(&self, lane: Lane) -> Result<(u64, u64), StoreError> {
        let url = self.url(lane).await?;
        let name = &self.names[lane_index(lane)];
        let out = retry_transient(&self.retry, &self.jitter, || async {
            self.calls.add(Service::Queue, "GetQueueAttributes");
            self.client
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await
                .map_err(|e| store_error(Service::Queue, "GetQueueAttributes", name, e))
        })
        .await?;
        let get = |a: QueueAttributeName| -> u64 {
            out.attributes()
                .and_then(|m| m.get(&a))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok((
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send_batch(&self, messages: &[Outgoing]) -> Result<Vec<SendFailure>, StoreError> {
        const OP: &str = "SendMessageBatch";
        check_send_batch(OP, messages)?;
        let url = self.url(Lane::Main).await?;
        let entries = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body)
                    .message_group_id(&m.group_id)
                    .message_deduplication_id(&m.dedup_id)
                    .build()
                    .map_err(|e| build_error(Service::Queue, OP, &e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = retry_transient(&self.retry, &self.jitter, || async {
            self.calls.add(Service::Queue, OP);
            self.client
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries.clone()))
                .send()
                .await
                .map_err(|e| store_error(Service::Queue, OP, &self.names[0], e))
        })
        .await?;
        Ok(out
            .failed()
            .iter()
            .map(|f| SendFailure {
                index: f.id().parse().unwrap_or(usize::MAX),
                code: f.code().to_string(),
                message: f.message().unwrap_or_default().to_string(),
                retryable: !f.sender_fault(),
            })
            .collect())
    }

    async fn receive(
        &self,
        lane: Lane,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Received>, StoreError> {
        const OP: &str = "ReceiveMessage";
        check_receive(max, wait)?;
        let url = self.url(lane).await?;
        let name = &self.names[lane_index(lane)];
        // One attempt id per receive, kept when retrying a lost answer (SQS then hands
        // back the same messages rather than leaving them in flight unseen) and renewed
        // after throttling, which SQS does not let an id retry ("Using the Amazon SQS
        // receive request attempt ID", SQS developer guide).
        let attempt_id = Mutex::new(self.new_attempt_id());
        let out = retry_transient(&self.retry, &self.jitter, || async {
            self.calls.add(Service::Queue, OP);
            let id = attempt_id.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let answer = self
                .client
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(i32::try_from(max).unwrap_or(10))
                .visibility_timeout(seconds(visibility))
                .wait_time_seconds(seconds(wait))
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .receive_request_attempt_id(id)
                .send()
                .await
                .map_err(|e| store_error(Service::Queue, OP, name, e));
            answer.map_err(|mut e| {
                // SQS will not take the id again after throttling, nor once it says
                // "The receiveRequestAttemptId is not valid anymore": the next attempt
                // needs a new one (and the latter is worth that attempt).
                let refused_id = e.message.contains("ReceiveRequestAttemptId");
                if refused_id || e.kind == ErrorKind::Throttled {
                    *attempt_id.lock().unwrap_or_else(|e| e.into_inner()) = self.new_attempt_id();
                }
                if refused_id {
                    e.kind = ErrorKind::Unavailable;
                }
                e
            })
        })
        .await?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                let attr = |a: MessageSystemAttributeName| {
                    m.attributes()
                        .and_then(|x| x.get(&a))
                        .cloned()
                        .unwrap_or_default()
                };
                Some(Received {
                    message_id: m.message_id()?.to_string(),
                    receipt: Receipt {
                        queue: self.names[0].clone(),
                        lane,
                        handle: m.receipt_handle()?.to_string(),
                    },
                    group_id: attr(MessageSystemAttributeName::MessageGroupId),
                    dedup_id: attr(MessageSystemAttributeName::MessageDeduplicationId),
                    body: m.body().unwrap_or_default().to_string(),
                    receive_count: attr(MessageSystemAttributeName::ApproximateReceiveCount)
                        .parse()
                        .unwrap_or(1),
                })
            })
            .collect())
    }

    async fn change_visibility(
        &self,
        receipt: &Receipt,
        visibility: Duration,
    ) -> Result<(), StoreError> {
        const OP: &str = "ChangeMessageVisibility";
        check_receipt(&self.names[0], OP, receipt)?;
        let url = self.url(receipt.lane).await?;
        let name = &self.names[lane_index(receipt.lane)];
        retry_transient(&self.retry, &self.jitter, || async {
            self.calls.add(Service::Queue, OP);
            self.client
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(&receipt.handle)
                .visibility_timeout(seconds(visibility))
                .send()
                .await
                .map(drop)
                .map_err(|e| store_error(Service::Queue, OP, name, e))
        })
        .await
    }

    async fn delete_batch(&self, receipts: &[Receipt]) -> Result<Vec<Receipt>, StoreError> {
        const OP: &str = "DeleteMessageBatch";
        let lane = check_delete_batch(&self.names[0], receipts)?;
        let url = self.url(lane).await?;
        let name = &self.names[lane_index(lane)];
        let entries = receipts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&r.handle)
                    .build()
                    .map_err(|e| build_error(Service::Queue, OP, &e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = retry_transient(&self.retry, &self.jitter, || async {
            self.calls.add(Service::Queue, OP);
            self.client
                .delete_message_batch()
                .queue_url(url)
                .set_entries(Some(entries.clone()))
                .send()
                .await
                .map_err(|e| store_error(Service::Queue, OP, name, e))
        })
        .await?;
        Ok(out
            .failed()
            .iter()
            .filter_map(|f| receipts.get(f.id().parse::<usize>().ok()?).cloned())
            .collect())
    }

    async fn depth(&self) -> Result<Depth, StoreError> {
        let (visible, in_flight) = self.count(Lane::Main).await?;
        let (dead_visible, dead_in_flight) = self.count(Lane::Dead).await?;
        Ok(Depth {
            visible,
            in_flight,
            dead: dead_visible + dead_in_flight,
        })
    }

    async fn send_to_dead_letter(&self, message: &Received) -> Result<(), StoreError> {
        check_receipt(&self.names[0], "SendMessage", &message.receipt)?;
        if message.receipt.lane != Lane::Main {
            return Err(StoreError::invalid(
                Service::Queue,
                "SendMessage",
                "the message is already in the dead-letter queue",
            ));
        }
        let dead = self.url(Lane::Dead).await?;
        let main = self.url(Lane::Main).await?;
        // Send first, then delete: a crash between leaves a copy in both, never none.
        // The message id as dedup id makes a repeated send of the same move a no-op.
        retry_transient(&self.retry, &self.jitter, || async {
            self.calls.add(Service::Queue, "SendMessage");
            self.client
                .send_message()
                .queue_url(dead)
                .message_body(&message.body)
                .message_group_id(&message.group_id)
                .message_deduplication_id(&message.message_id)
                .send()
                .await
                .map(drop)
                .map_err(|e| store_error(Service::Queue, "SendMessage", &self.names[1], e))
        })
        .await?;
        retry_transient(&self.retry, &self.jitter, || async {
            self.calls.add(Service::Queue, "DeleteMessage");
            self.client
                .delete_message()
                .queue_url(main)
                .receipt_handle(&message.receipt.handle)
                .send()
                .await
                .map(drop)
                .map_err(|e| store_error(Service::Queue, "DeleteMessage", &self.names[0], e))
        })
        .await
    }

    fn name(&self) -> &str {
        &self.names[0]
    }

    fn calls(&self) -> Calls {
        self.calls.snapshot()
    }
}
