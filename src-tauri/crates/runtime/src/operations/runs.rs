//! One run opened: the records it sent (its silver files, or a triage action's record
//! list) with where each stands now, counted by outcome, and the whole list as CSV.

use super::dashboard::RunView;
use super::desk::Desk;
use crate::env::{Env, RuntimeError};
use metasync_engine::pipeline::land::{date_of, silver_key};
use metasync_engine::pipeline::record::CanonicalRecord;
use metasync_engine::ports::{Record, RecordKey, RecordStatus, Run, RunKind, MAX_BATCH_GET};
use metasync_engine::EntityType;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use ts_rs::TS;

/// Records a run's screen lists at most (the counts and the export cover them all).
pub const RUN_RECORDS_SHOWN: usize = 2_000;

#[derive(Debug, Clone, Serialize, TS)]
pub struct RunDetail {
    pub run: RunView,
    /// Records by where they stand now.
    pub by_outcome: BTreeMap<String, u64>,
    pub records: Vec<RunRecord>,
    pub truncated: bool,
}

/// One record of a run, as it stands now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct RunRecord {
    /// `type#key`.
    pub record: String,
    /// `synced`, `unchanged` (synced before with this content, nothing to send),
    /// `failed`, `discarded`, `queued` (picked up, not resolved yet), `changed since` (a
    /// later run or triage action wrote it), or `not sent or queued`.
    pub outcome: String,
    pub code: Option<String>,
    pub message: Option<String>,
    pub target_id: Option<String>,
}

/// The keys a run took, with the content hash it planned to send (a sync's silver
/// files: every planned record but the blocked and unwritable ones), or a triage
/// action's records (no hash).
async fn keys_of(env: &Env, run: &Run) -> Result<Vec<(RecordKey, Option<String>)>, RuntimeError> {
    if run.kind == RunKind::Triage {
        return Ok(run
            .file_hashes
            .iter()
            .filter_map(|k| RecordKey::parse(k))
            .map(|k| (k, None))
            .collect());
    }
    let date = date_of(run.started_at_ms);
    let mut keys = Vec::new();
    for t in EntityType::ALL {
        let Some(obj) = env
            .backend
            .objects
            .get(&silver_key(t, &date, &run.id))
            .await
            .map_err(RuntimeError::failed)?
        else {
            continue;
        };
        for line in String::from_utf8_lossy(&obj.body).lines() {
            if let Some(c) = CanonicalRecord::from_json(line) {
                let hash = c.hash();
                keys.push((RecordKey::new(c.entity, c.key), Some(hash)));
            }
        }
    }
    Ok(keys)
}

/// Where one of a run's records stands now.
fn outcome(run: &Run, planned: Option<&str>, r: Option<&Record>) -> &'static str {
    let status = |r: &Record| match r.status {
        RecordStatus::Synced => "synced",
        RecordStatus::Failed => "failed",
        RecordStatus::Discarded => "discarded",
        _ => "queued",
    };
    match r {
        // A triage action's records: as they stand (a discard keeps the sync's run id).
        Some(r) if run.kind == RunKind::Triage => status(r),
        Some(r) if r.run_id.as_deref() == Some(run.id.as_str()) => status(r),
        Some(r) if r.updated_at_ms >= run.started_at_ms => "changed since",
        Some(r) if r.status == RecordStatus::Synced && planned == Some(r.hash.as_str()) => {
            "unchanged"
        }
        // Enqueued and not picked up yet, or never enqueued (a limit, a cancel, a
        // process killed while enqueueing): the queues hold no record of which.
        _ => "not sent or queued",
    }
}

pub(crate) async fn records_of(env: &Env, run: &Run) -> Result<Vec<RunRecord>, RuntimeError> {
    let keys = keys_of(env, run).await?;
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_BATCH_GET) {
        let ks: Vec<RecordKey> = chunk.iter().map(|(k, _)| k.clone()).collect();
        let found = env
            .backend
            .state
            .batch_get(&ks)
            .await
            .map_err(RuntimeError::failed)?;
        let by_key: BTreeMap<&RecordKey, &Record> = found.iter().map(|r| (&r.key, r)).collect();
        for (k, planned) in chunk {
            let r = by_key.get(k).copied();
            out.push(RunRecord {
                record: k.id(),
                outcome: outcome(run, planned.as_deref(), r).to_string(),
                code: r.and_then(|r| r.last_error.as_ref().map(|e| e.code.clone())),
                message: r.and_then(|r| r.last_error.as_ref().map(|e| e.message.clone())),
                target_id: r.and_then(|r| r.target_id.clone()),
            });
        }
    }
    Ok(out)
}

async fn find_run(env: &Env, id: &str) -> Result<Run, RuntimeError> {
    env.backend
        .state
        .get_run(id)
        .await
        .map_err(RuntimeError::failed)?
        .ok_or_else(|| RuntimeError::Unusable(format!("no run {id} on this profile")))
}

/// The records as CSV: record, outcome, code, message, target id.
pub fn records_csv(records: &[RunRecord]) -> Result<Vec<u8>, RuntimeError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| RuntimeError::Failed(format!("cannot write the CSV: {e}"));
    w.write_record(["record", "outcome", "code", "message", "target_id"])
        .map_err(fail)?;
    for r in records {
        w.write_record([
            r.record.as_str(),
            r.outcome.as_str(),
            r.code.as_deref().unwrap_or(""),
            r.message.as_deref().unwrap_or(""),
            r.target_id.as_deref().unwrap_or(""),
        ])
        .map_err(fail)?;
    }
    w.into_inner()
        .map_err(|e| RuntimeError::Failed(format!("cannot write the CSV: {e}")))
}

impl Desk {
    /// One run of the header's profile with its records as they stand now.
    pub async fn run_detail(&self, id: &str) -> Result<RunDetail, RuntimeError> {
        let env = self.env().await?;
        let run = find_run(&env, id).await?;
        let mut records = records_of(&env, &run).await?;
        let mut by_outcome = BTreeMap::new();
        for r in &records {
            *by_outcome.entry(r.outcome.clone()).or_insert(0) += 1;
        }
        if let Some(&n) = run.counts.get("rejected").filter(|&&n| n > 0) {
            by_outcome.insert("rejected (see the run's rejected files)".into(), n);
        }
        let truncated = records.len() > RUN_RECORDS_SHOWN;
        records.truncate(RUN_RECORDS_SHOWN);
        Ok(RunDetail {
            run: run.into(),
            by_outcome,
            records,
            truncated,
        })
    }

    /// Write every record of a run, as it stands now, to `path` as CSV. Returns the
    /// number of records.
    pub async fn export_run(&self, id: &str, path: &Path) -> Result<u64, RuntimeError> {
        let env = self.env().await?;
        let run = find_run(&env, id).await?;
        let records = records_of(&env, &run).await?;
        let bytes = records_csv(&records)?;
        let to = path.to_path_buf();
        tokio::task::spawn_blocking(move || std::fs::write(&to, bytes))
            .await
            .map_err(RuntimeError::failed)?
            .map_err(|e| RuntimeError::Failed(format!("cannot write {}: {e}", path.display())))?;
        Ok(records.len() as u64)
    }
}
