//! Triage in the window: failures grouped by error code, one in full with every field
//! of its type, edits checked as staff type, retry (one, with edits, or a group) until
//! the queues drain, discard with a reason. Each action is a run record with who and
//! when (the engine's `failures` does the work; the CLI's `failures` calls the same).

use super::desk::Desk;
use crate::env::{who, RuntimeError};
use crate::ops::{self, selection};
use metasync_engine::pipeline::failures::{self, TriageError};
use metasync_engine::pipeline::sync::Cancel;
use metasync_engine::ports::{RecordKey, RecordStatus, MAX_BATCH_GET};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Debug, Clone, Serialize, TS)]
pub struct FailureGroupView {
    pub code: String,
    pub count: u64,
    /// The target's answer of one of them.
    pub sample: String,
    /// Up to 20 of them, as `type#key`.
    pub records: Vec<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct FailureView {
    /// `type#key`.
    pub record: String,
    pub entity: String,
    pub key: String,
    /// `failed`, or where it ended since (`synced`, `discarded`, `pending`).
    pub status: String,
    pub code: String,
    /// The target's answer, or what went wrong.
    pub message: String,
    pub attempts: u32,
    pub target_id: Option<String>,
    pub run_id: Option<String>,
    pub updated_at_ms: i64,
    /// Every field of the type, in the type's order, with the record's value.
    pub fields: Vec<FieldValue>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct FieldValue {
    pub name: String,
    pub value: String,
    pub required: bool,
    /// The key column: it names the record and cannot be edited here.
    pub key: bool,
}

/// An edit as the window sends it.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct FieldEdit {
    pub field: String,
    pub value: String,
}

/// What is wrong with an edited record, field by field.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FieldProblem {
    pub field: Option<String>,
    pub message: String,
    pub hint: String,
}

/// Which failures an action takes: one record, or a whole error code.
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TriageTarget {
    Record { record: String },
    Code { code: String },
}

/// What a triage action did.
#[derive(Debug, Clone, Serialize, TS)]
pub struct TriageDone {
    pub action: String,
    /// The triage run that records it.
    pub run_id: String,
    pub records: Vec<String>,
    /// After a retry, how the retried records ended once the queues drained.
    pub synced: u64,
    pub failed: u64,
}

fn pairs(edits: &[FieldEdit]) -> Vec<(String, String)> {
    edits
        .iter()
        .map(|e| (e.field.clone(), e.value.clone()))
        .collect()
}

fn select(t: &TriageTarget) -> Result<failures::Selection, RuntimeError> {
    match t {
        TriageTarget::Record { record } => selection(Some(record), None, false),
        TriageTarget::Code { code } => selection(None, Some(code), false),
    }
}

impl Desk {
    pub async fn failure_groups(&self) -> Result<Vec<FailureGroupView>, RuntimeError> {
        let env = self.env().await?;
        Ok(ops::failures_list(&env)
            .await?
            .into_iter()
            .map(|g| FailureGroupView {
                code: g.code,
                count: g.count,
                sample: g.sample,
                records: g.records,
            })
            .collect())
    }

    pub async fn failure(&self, record: &str) -> Result<FailureView, RuntimeError> {
        let env = self.env().await?;
        let d = ops::failures_show(&env, record).await?;
        let key_field = d.entity.key_column();
        Ok(FailureView {
            record: format!("{}#{}", d.entity, d.key),
            entity: d.entity.as_str().to_string(),
            key: d.key.clone(),
            status: d.status.as_str().to_string(),
            code: d.code,
            message: d.message,
            attempts: d.attempts,
            target_id: d.target_id,
            run_id: d.run_id,
            updated_at_ms: d.updated_at_ms,
            fields: d
                .entity
                .fields()
                .iter()
                .map(|f| FieldValue {
                    name: f.name.to_string(),
                    value: d.fields.get(f.name).cloned().unwrap_or_default(),
                    required: f.required,
                    key: f.name == key_field,
                })
                .collect(),
        })
    }

    /// What a retry with these edits would refuse, checked as a file row is.
    pub async fn check_failure_edits(
        &self,
        record: &str,
        edits: &[FieldEdit],
    ) -> Result<Vec<FieldProblem>, RuntimeError> {
        let env = self.env().await?;
        let key = failures::parse_key(record)
            .ok_or_else(|| RuntimeError::Unusable(format!("{record:?} is not a record")))?;
        let found = failures::check_edits(&env.backend, &key, &pairs(edits))
            .await
            .map_err(|e| match e {
                TriageError::Store(s) => RuntimeError::failed(s),
                other => RuntimeError::unusable(other),
            })?;
        Ok(found
            .into_iter()
            .map(|f| FieldProblem {
                field: f.column,
                message: f.message,
                hint: f.hint,
            })
            .collect())
    }

    /// Retry failures (edited first, when edits are given: one record only) and work
    /// the queues until they drain, so the answer says how they ended.
    pub async fn retry_failures(
        &self,
        target: &TriageTarget,
        edits: &[FieldEdit],
    ) -> Result<TriageDone, RuntimeError> {
        if !edits.is_empty() && !matches!(target, TriageTarget::Record { .. }) {
            return Err(RuntimeError::Unusable(
                "edits apply to one record: open it and retry it from its panel".into(),
            ));
        }
        // The retry works the queues until they drain: not beside a sync's workers.
        let _slot = self.start_sync(Cancel::default())?;
        let env = self.env().await?;
        let (result, _) =
            ops::failures_retry(&env, &select(target)?, &pairs(edits), &who(), true).await?;
        // How the retried records ended (the drain may have resolved others too).
        let (mut synced, mut failed) = (0, 0);
        let keys: Vec<RecordKey> = result
            .records
            .iter()
            .filter_map(|k| RecordKey::parse(k))
            .collect();
        for chunk in keys.chunks(MAX_BATCH_GET) {
            for r in env
                .backend
                .state
                .batch_get(chunk)
                .await
                .map_err(RuntimeError::failed)?
            {
                match r.status {
                    RecordStatus::Synced => synced += 1,
                    RecordStatus::Failed => failed += 1,
                    _ => {}
                }
            }
        }
        Ok(TriageDone {
            action: result.action,
            run_id: result.run_id,
            records: result.records,
            synced,
            failed,
        })
    }

    pub async fn discard_failures(
        &self,
        target: &TriageTarget,
        reason: &str,
    ) -> Result<TriageDone, RuntimeError> {
        let env = self.env().await?;
        let result = ops::failures_discard(&env, &select(target)?, reason, &who()).await?;
        Ok(TriageDone {
            action: result.action,
            run_id: result.run_id,
            records: result.records,
            synced: 0,
            failed: 0,
        })
    }
}
