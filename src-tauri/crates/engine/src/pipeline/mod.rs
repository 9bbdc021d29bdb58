//! The sync pipeline, one file per stage, each readable without the others:
//! [`plan`] → [`land`] → [`enqueue`] → [`consume`] → [`failures`] (triage) → [`gold`];
//! [`sync`] runs them in order and [`summary`] accounts for every row.

pub mod consume;
pub mod enqueue;
pub mod failures;
pub mod gold;
pub mod land;
pub mod plan;
pub mod record;
pub mod summary;
pub mod sync;

use crate::ports::{Backend, Depth, RecordStatus, Run, StoreError};
use crate::EntityType;
use serde::Serialize;
use std::collections::BTreeMap;

/// One queue's depth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueStatus {
    #[serde(rename = "type")]
    pub entity: EntityType,
    #[serde(flatten)]
    pub depth: Depth,
}

/// What `metasync status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub queues: Vec<QueueStatus>,
    /// Failures in triage by error code.
    pub failures: BTreeMap<String, u64>,
    /// The latest runs and triage actions, newest first.
    pub runs: Vec<Run>,
}

pub async fn status(backend: &Backend, runs: usize) -> Result<Status, StoreError> {
    let mut queues = Vec::new();
    for entity in EntityType::ALL {
        queues.push(QueueStatus {
            entity,
            depth: backend.queue(entity).depth().await?,
        });
    }
    let mut failures = BTreeMap::new();
    for r in gold::all_with_status(backend.state.as_ref(), RecordStatus::Failed).await? {
        let code = r
            .last_error
            .map_or_else(|| "unknown".to_string(), |e| e.code);
        *failures.entry(code).or_insert(0) += 1;
    }
    Ok(Status {
        queues,
        failures,
        runs: backend.state.list_runs(runs).await?,
    })
}
