//! Metasync on AWS Lambda: the handlers turn events into calls of the runtime's
//! deployed operations ([`metasync_runtime::deployed`]) and answers into responses;
//! nothing else happens here. One binary, the handler chosen by `METASYNC_HANDLER`.
//!
//! - `ingest`: an `s3:ObjectCreated` event under `incoming/` → validate, land, enqueue.
//! - `consume` (one function per type, `METASYNC_ENTITY`): an SQS FIFO batch → the
//!   records in order; a partial batch response reports the first unresolved message
//!   and every later one (`ReportBatchItemFailures`).
//! - `drain`, `refresh`: scheduled (EventBridge) → dead letters into the failure
//!   store; the files under the refresh prefix synced again.

pub use aws_lambda_events::event::s3::S3Event;
pub use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
pub use metasync_runtime::deployed::{
    ConsumeReport, Deployed, Deployment, Handler, IngestReport, INCOMING_PREFIX,
};

use aws_lambda_events::event::sqs::BatchItemFailure;
use metasync_engine::ports::Received;
use metasync_engine::EntityType;
use metasync_runtime::deployed::decode_s3_key;

pub type Error = lambda_runtime::Error;

/// Ingest every object an S3 event names (in the function's bucket, under
/// `incoming/`); an error fails the invocation, so S3's asynchronous invocation tries
/// it again.
pub async fn on_s3(d: &Deployed, event: S3Event) -> Result<Vec<IngestReport>, Error> {
    let bucket = d.deployment.aws().map(|a| a.bucket.clone());
    let mut out = Vec::new();
    for r in event.records {
        if !r
            .event_name
            .as_deref()
            .is_some_and(|n| n.starts_with("ObjectCreated"))
        {
            continue;
        }
        if r.s3.bucket.name != bucket {
            tracing::warn!(stage = "ingest", bucket = ?r.s3.bucket.name, "an event of another bucket; skipped");
            continue;
        }
        let Some(raw) = r.s3.object.key.as_deref() else {
            continue;
        };
        let Some(key) = decode_s3_key(raw) else {
            tracing::warn!(
                stage = "ingest",
                key = raw,
                "an object key that does not decode; skipped"
            );
            continue;
        };
        if !key.starts_with(INCOMING_PREFIX) {
            continue;
        }
        out.push(d.ingest(&key).await?);
    }
    Ok(out)
}

/// The event's records as the queue port's messages (SQS sends the group, the dedup
/// id and the receive count as attributes).
pub fn received(d: &Deployed, entity: EntityType, event: SqsEvent) -> Vec<Received> {
    event
        .records
        .into_iter()
        .filter_map(|m| {
            let attr = |k: &str| m.attributes.get(k).cloned().unwrap_or_default();
            Some(Received {
                receipt: d.receipt(entity, m.receipt_handle.clone()?),
                group_id: attr("MessageGroupId"),
                dedup_id: attr("MessageDeduplicationId"),
                receive_count: attr("ApproximateReceiveCount").parse().unwrap_or(1),
                body: m.body.clone().unwrap_or_default(),
                message_id: m.message_id?,
            })
        })
        .collect()
}

/// One consumer's batch: never an error for the whole batch; what is not resolved is
/// reported, the rest the event source mapping deletes.
pub async fn on_sqs(d: &Deployed, entity: EntityType, event: SqsEvent) -> SqsBatchResponse {
    let msgs = received(d, entity, event);
    let report = d.consume(entity, &msgs).await;
    tracing::info!(
        stage = "consume",
        entity = entity.as_str(),
        messages = msgs.len(),
        reported = report.failed.len(),
        synced = report.synced,
        failed = report.record_failures,
        quota_writes_per_permit = report.quota.map(|q| q.writes_per_permit()),
        "batch done"
    );
    SqsBatchResponse {
        batch_item_failures: report
            .failed
            .into_iter()
            .map(|id| BatchItemFailure {
                item_identifier: id,
            })
            .collect(),
    }
}

/// A scheduled run: the drain or the refresh, by the function's handler.
pub async fn on_schedule(d: &Deployed) -> Result<serde_json::Value, Error> {
    match d.deployment.handler {
        Handler::Drain => {
            let filed = d.drain().await?;
            tracing::info!(stage = "drain", ?filed, "dead letters filed");
            Ok(serde_json::json!({ "filed": filed }))
        }
        Handler::Refresh => {
            let files = d.refresh().await?;
            let failed = files.iter().filter(|f| f.is_err()).count();
            let report: Vec<serde_json::Value> = files
                .into_iter()
                .map(|f| match f {
                    Ok(r) => serde_json::to_value(r).unwrap_or_default(),
                    Err(e) => serde_json::json!({ "error": e }),
                })
                .collect();
            if failed > 0 {
                return Err(
                    format!("{failed} of {} files were not refreshed", report.len()).into(),
                );
            }
            Ok(serde_json::json!({ "files": report }))
        }
        other => Err(format!("{other:?} is not a scheduled handler").into()),
    }
}
