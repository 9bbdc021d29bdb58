//! The operations every surface offers, over an opened [`Env`]: plan, sync, work,
//! failures (list / show / retry / discard) and status. Inputs and outputs are plain
//! serializable types; progress comes through a callback.

use crate::env::{Connected, Env, RuntimeError};
use metasync_engine::pipeline::consume::{Event, Worker, WorkerConfig};
use metasync_engine::pipeline::failures::{
    self, FailureDetail, FailureGroup, Selection, TriageResult,
};
use metasync_engine::pipeline::plan::{self, Action, PlanCounts, PlanOptions, PlannedRecord};
use metasync_engine::pipeline::summary::{Outcome, Tally};
use metasync_engine::pipeline::sync::{
    self as engine_sync, Cancel, Progress, SyncOptions, SyncReport,
};
use metasync_engine::pipeline::{self, Status};
use metasync_engine::ports::RecordKey;
use metasync_engine::validate;
use metasync_engine::EntityType;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanRequest {
    pub files: Vec<PathBuf>,
    /// Records listed at most; counts stay exact.
    pub max_records: usize,
    pub entity_type: Option<EntityType>,
}

/// The plan as shown (`plan --format json`).
#[derive(Debug, Clone, Serialize)]
pub struct PlanView {
    #[serde(flatten)]
    pub counts: PlanCounts,
    pub records: Vec<PlannedRecord>,
    pub records_truncated: bool,
}

/// Plan the files against the profile's sync state. Nothing is written anywhere.
pub async fn plan(env: &Env, req: &PlanRequest) -> Result<PlanView, RuntimeError> {
    let validate = validate::Options {
        entity_type: req.entity_type,
        ..Default::default()
    };
    plan_with(env, &req.files, validate, req.max_records).await
}

/// [`plan`] with validation options of the caller's (the workbench's mappings).
pub async fn plan_with(
    env: &Env,
    files: &[PathBuf],
    validate: validate::Options,
    max_records: usize,
) -> Result<PlanView, RuntimeError> {
    let opts = PlanOptions {
        validate,
        keep_rejected: false,
        access: env.access(),
        parents_elsewhere: None,
    };
    let mut records = Vec::new();
    let mut truncated = false;
    let out = plan::plan(files, &opts, env.backend.state.as_ref(), |p| {
        if p.action == Action::Unchanged {
            return;
        }
        if records.len() >= max_records {
            truncated = true;
            return;
        }
        records.push(PlannedRecord {
            entity: p.record.entity,
            key: p.record.key.clone(),
            action: p.action,
            diff: p.diff.to_vec(),
            blocked_by: p.blocked_by.map(RecordKey::id),
        });
    })
    .await
    .map_err(RuntimeError::failed)?;
    for (_, o) in &out.validation.files {
        if let validate::FileOutcome::Unusable(e) = o {
            return Err(RuntimeError::Unusable(e.to_string()));
        }
    }
    Ok(PlanView {
        counts: out.counts,
        records,
        records_truncated: truncated,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncRequest {
    pub files: Vec<PathBuf>,
    pub batch_size: usize,
    pub limit: Option<usize>,
    pub rank_by: Option<String>,
    /// Run the workers here until the queues drain.
    pub wait: bool,
    pub concurrency: usize,
    pub who: String,
    /// Parents in other files, maybe synced later (the deployed ingest: one file per
    /// event, the rest of its upload folder holds these).
    #[serde(skip)]
    pub parents_elsewhere: Option<std::sync::Arc<std::collections::HashSet<RecordKey>>>,
}

fn worker_config(target: &Connected, concurrency: usize, who: &str) -> WorkerConfig {
    WorkerConfig {
        owner: who.to_string(),
        concurrency: concurrency.max(1),
        retry: target.retry,
        access: target.access,
        ..WorkerConfig::default()
    }
}

/// Validate, plan, land, enqueue and (with `wait`) sync the files; record the run and
/// write gold.
pub async fn sync(
    env: &Env,
    req: &SyncRequest,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<SyncReport, RuntimeError> {
    sync_with(
        env,
        req,
        validate::Options::default(),
        Cancel::default(),
        progress,
    )
    .await
}

/// [`sync`] with the caller's validation options (the workbench's mappings) and a
/// cancel the caller may press.
pub async fn sync_with(
    env: &Env,
    req: &SyncRequest,
    validate: validate::Options,
    cancel: Cancel,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<SyncReport, RuntimeError> {
    let target = env.connect().await?;
    let wait = req.wait && env.consumers_here();
    if req.wait && !wait {
        tracing::info!(
            stage = "sync",
            profile = env.profile_name(),
            "the profile's consumers run in AWS Lambda: this sync only enqueues"
        );
    }
    let opts = SyncOptions {
        batch_size: req.batch_size,
        limit: req.limit,
        rank_by: req.rank_by.clone(),
        wait,
        who: req.who.clone(),
        profile: env.profile_name().to_string(),
        validate,
        worker: worker_config(&target, req.concurrency, &req.who),
        cancel,
        parents_elsewhere: req.parents_elsewhere.clone(),
    };
    engine_sync::sync(
        &env.backend,
        &target.client,
        &target.limiter,
        &req.files,
        &opts,
        progress,
    )
    .await
    .map_err(|e| match e {
        engine_sync::SyncError::Unusable(m) | engine_sync::SyncError::Unreachable(m) => {
            RuntimeError::Unusable(m)
        }
        engine_sync::SyncError::RankBy(c) => {
            RuntimeError::Unusable(format!("--rank-by {c:?} is not a column of the files"))
        }
        other => RuntimeError::Failed(other.to_string()),
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkRequest {
    pub concurrency: usize,
    /// Stop once every queue is empty; else poll until stopped.
    pub until_empty: bool,
    pub who: String,
    /// How long a received message stays hidden (extended while it is worked on).
    pub visibility_seconds: u64,
}

/// What a worker did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkReport {
    pub created: u64,
    pub updated: u64,
    pub synced_earlier: u64,
    pub failed: u64,
    pub target_requests: u64,
    pub throttled: u64,
}

/// Run the workers over every queue, parents first; with `until_empty` return when all
/// drain, else keep going until the process stops.
pub async fn work(
    env: &Env,
    req: &WorkRequest,
    on_event: &(dyn Fn(&Event) + Send + Sync),
) -> Result<WorkReport, RuntimeError> {
    work_with(env, req, &Cancel::default(), on_event).await
}

/// [`work`] until `cancel` is pressed (the messages in hand are finished).
pub async fn work_with(
    env: &Env,
    req: &WorkRequest,
    cancel: &Cancel,
    on_event: &(dyn Fn(&Event) + Send + Sync),
) -> Result<WorkReport, RuntimeError> {
    let target = env.connect().await?;
    let mut cfg = worker_config(&target, req.concurrency, &req.who);
    cfg.visibility = Duration::from_secs(req.visibility_seconds.max(2));
    let tally = Mutex::new(Tally::default());
    let record = |e: &Event| {
        tally.lock().unwrap_or_else(|e| e.into_inner()).add(e);
        on_event(e);
    };
    let worker = Worker::new(&env.backend, &target.client, &target.limiter, cfg, &record);
    loop {
        engine_sync::work_until_empty_or_cancelled(&worker, &env.backend, &record, cancel)
            .await
            .map_err(RuntimeError::failed)?;
        if req.until_empty || cancel.is_cancelled() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let t = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    let c = metasync_engine::target::Target::counters(&target.client);
    Ok(WorkReport {
        created: t.count(Outcome::Created),
        updated: t.count(Outcome::Updated),
        synced_earlier: t.count(Outcome::Synced),
        failed: t.count(Outcome::Failed),
        target_requests: c.requests,
        throttled: c.throttled,
    })
}

pub async fn status(env: &Env, runs: usize) -> Result<Status, RuntimeError> {
    pipeline::status(&env.backend, runs)
        .await
        .map_err(RuntimeError::failed)
}

pub async fn failures_list(env: &Env) -> Result<Vec<FailureGroup>, RuntimeError> {
    failures::list(&env.backend)
        .await
        .map_err(RuntimeError::failed)
}

fn key(s: &str) -> Result<RecordKey, RuntimeError> {
    failures::parse_key(s).ok_or_else(|| {
        RuntimeError::Unusable(format!(
            "{s:?} is not a record: write it as type#key, e.g. episode#ep-0001"
        ))
    })
}

pub async fn failures_show(env: &Env, record: &str) -> Result<FailureDetail, RuntimeError> {
    failures::show(&env.backend, &key(record)?)
        .await
        .map_err(RuntimeError::unusable)
}

/// Which failures: one record (`type#key`), a code group, or all.
pub fn selection(
    record: Option<&str>,
    code: Option<&str>,
    all: bool,
) -> Result<Selection, RuntimeError> {
    match (record, code, all) {
        (Some(r), None, false) => Ok(Selection::One(key(r)?)),
        (None, Some(c), false) => Ok(Selection::Code(c.to_string())),
        (None, None, true) => Ok(Selection::All),
        _ => Err(RuntimeError::Unusable(
            "say which failures: one record (type#key), --code CODE, or --all".into(),
        )),
    }
}

/// Re-enqueue failures (edited first, when `edits` are given) and, with `wait`, work the
/// queues until they drain, so the answer says how they ended.
pub async fn failures_retry(
    env: &Env,
    sel: &Selection,
    edits: &[(String, String)],
    who: &str,
    wait: bool,
) -> Result<(TriageResult, Option<WorkReport>), RuntimeError> {
    let policy = metasync_engine::retry::RetryPolicy::from_env().map_err(RuntimeError::unusable)?;
    let result = failures::retry(&env.backend, sel, edits, who, env.profile_name(), &policy)
        .await
        .map_err(|e| match e {
            failures::TriageError::Store(s) => RuntimeError::failed(s),
            other => RuntimeError::unusable(other),
        })?;
    let report = if wait && env.consumers_here() {
        let req = WorkRequest {
            concurrency: 4,
            until_empty: true,
            who: who.to_string(),
            visibility_seconds: 60,
        };
        Some(work(env, &req, &|_| {}).await?)
    } else {
        None
    };
    Ok((result, report))
}

pub async fn failures_discard(
    env: &Env,
    sel: &Selection,
    reason: &str,
    who: &str,
) -> Result<TriageResult, RuntimeError> {
    if reason.trim().is_empty() {
        return Err(RuntimeError::Unusable(
            "a discard needs a reason (--reason \"…\") staff can read later".into(),
        ));
    }
    failures::discard(&env.backend, sel, reason, who, env.profile_name())
        .await
        .map_err(RuntimeError::unusable)
}

/// An asset's files as Media Manager reports them (`metasync ingest`).
#[derive(Debug, Clone, Serialize)]
pub struct IngestView {
    pub asset_key: String,
    pub target_id: String,
    #[serde(flatten)]
    pub ingest: metasync_catalog_client::media_manager::Ingest,
}

/// Read the video and caption ingest status of synced assets (by our asset keys)
/// from the Media Manager edit endpoint.
pub async fn ingest(env: &Env, asset_keys: &[String]) -> Result<Vec<IngestView>, RuntimeError> {
    let target = env.connect().await?;
    let metasync_catalog_client::AnyTarget::MediaManager(client) = &target.client else {
        return Err(RuntimeError::Unusable(
            "ingest status is a Media Manager feature; this profile's target speaks rest".into(),
        ));
    };
    let mut out = Vec::new();
    for key in asset_keys {
        let record = env
            .backend
            .state
            .get(&RecordKey::new(EntityType::Asset, key.clone()))
            .await
            .map_err(RuntimeError::failed)?;
        let Some(id) = record.and_then(|r| r.target_id) else {
            return Err(RuntimeError::Unusable(format!(
                "asset {key} has not been synced with this profile: nothing to ask Media Manager about"
            )));
        };
        let ingest = client
            .ingest(&metasync_engine::target::TargetId(id.clone()))
            .await
            .map_err(RuntimeError::failed)?;
        out.push(IngestView {
            asset_key: key.clone(),
            target_id: id,
            ingest,
        });
    }
    Ok(out)
}
