//! A sync run, stage after stage: plan → land → enqueue → (unless told not to wait)
//! consume until the queues drain and file what reached the dead-letter queues → gold
//! → the run record. Every row ends in exactly one of the summary's outcomes.

use super::consume::{drain_dead_letters, Event, Worker, WorkerConfig, WorkerError};
use super::enqueue::{enqueue_until, EnqueueError, QueuedRecord};
use super::gold::write_gold;
use super::land::{date_of, land_bronze, land_rejected, land_silver, Landed};
use super::plan::{plan, Action, PlanCounts, PlanError, PlanOptions};
use super::summary::{api_calls, millis, Outcome, RunSummary, Tally, TypeCounts};
use crate::gen::Rng;
use crate::ports::{Backend, Clock, RecordKey, Run, RunKind, StoreError, SystemClock};
use crate::ratelimit::RateLimiter;
use crate::target::{probe, CallError, Target};
use crate::validate::{self, FileOutcome};
use crate::EntityType;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Asks a running sync to stop: no more records are enqueued, the workers finish the
/// messages in hand and receive no more; what was left is reported (`not_sent`, never
/// enqueued; `queued`, waiting in the queues for `metasync work` or the next sync).
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub batch_size: usize,
    /// Send only the top N records (a trial run).
    pub limit: Option<usize>,
    /// Rank records by this column (highest first) before taking the top N.
    pub rank_by: Option<String>,
    /// Run the workers here until the queues drain.
    pub wait: bool,
    pub who: String,
    pub profile: String,
    pub validate: validate::Options,
    pub worker: WorkerConfig,
    pub cancel: Cancel,
    /// See [`PlanOptions::parents_elsewhere`].
    pub parents_elsewhere: Option<std::sync::Arc<std::collections::HashSet<RecordKey>>>,
}

/// What the caller sees while a sync runs.
#[derive(Debug, Clone)]
pub enum Progress {
    /// The plan's counts, and its unchanged records per type (indexed as
    /// [`EntityType::ALL`]).
    Planned(PlanCounts, [u64; 4]),
    Landed(Landed),
    Enqueued {
        entity: EntityType,
        records: u64,
    },
    /// Records resolved so far out of those sent, with 429s seen, and per type.
    Working {
        resolved: u64,
        total: u64,
        throttled: u64,
        by_type: [TypeCounts; 4],
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub summary: RunSummary,
    pub plan: PlanCounts,
    pub landed: Landed,
    pub gold: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A file cannot be read as a catalog CSV: nothing was landed or sent.
    #[error("{0}; nothing was sent")]
    Unusable(String),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--rank-by {0:?} is not a column of the files")]
    RankBy(String),
    /// The connection check before landing failed: nothing was landed or sent.
    #[error("{0}")]
    Unreachable(String),
}

/// A run id: sortable by time, unique, safe in object keys and queue ids.
pub fn new_run_id() -> String {
    let ms = SystemClock.now_ms();
    let mut rng = Rng::new(crate::ports::jitter_seed());
    let secs = ms.div_euclid(1000);
    let rem = secs.rem_euclid(86_400);
    format!(
        "{}T{:02}{:02}{:02}-{:06x}",
        date_of(ms).replace('-', ""),
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        rng.next_u64() & 0xff_ffff
    )
}

/// Run the workers over every queue, parents first, until all drain; file dead
/// letters after each type so children of a failed parent fail fast.
pub async fn work_until_empty<T: Target>(
    worker: &Worker<'_, T>,
    backend: &Backend,
    on_event: &(dyn Fn(&Event) + Send + Sync),
) -> Result<(), WorkerError> {
    for entity in EntityType::ALL {
        worker.run(entity, true).await?;
        drain_dead_letters(backend, entity, on_event).await?;
    }
    Ok(())
}

/// [`work_until_empty`] until `cancel` is pressed: then the workers stop receiving and
/// finish the messages in hand; what is left stays in the queues.
pub async fn work_until_empty_or_cancelled<T: Target>(
    worker: &Worker<'_, T>,
    backend: &Backend,
    on_event: &(dyn Fn(&Event) + Send + Sync),
    cancel: &Cancel,
) -> Result<(), WorkerError> {
    let done = AtomicBool::new(false);
    let watch = async {
        while !done.load(Ordering::SeqCst) {
            if cancel.is_cancelled() {
                worker.cancel();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let work = async {
        let r = work_until_empty(worker, backend, on_event).await;
        done.store(true, Ordering::SeqCst);
        r
    };
    futures_util::future::join(work, watch).await.0
}

pub async fn sync<T: Target>(
    backend: &Backend,
    target: &T,
    limiter: &RateLimiter,
    paths: &[PathBuf],
    opts: &SyncOptions,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let started_ms = SystemClock.now_ms();
    let calls_before = backend.calls();
    let run_id = new_run_id();
    let date = date_of(started_ms);
    let mut to_send: [Vec<QueuedRecord>; 4] = Default::default();
    let mut silver: [Vec<u8>; 4] = Default::default();
    let mut unchanged = [0u64; 4];
    let popts = PlanOptions {
        validate: opts.validate.clone(),
        keep_rejected: true,
        access: opts.worker.access,
        parents_elsewhere: opts.parents_elsewhere.clone(),
    };
    let planned = plan(paths, &popts, backend.state.as_ref(), |p| {
        if matches!(p.action, Action::Blocked | Action::NotWritable) {
            return;
        }
        let i = p.record.entity.index();
        if p.action == Action::Unchanged {
            unchanged[i] += 1;
        }
        silver[i].extend_from_slice(p.record.to_json().as_bytes());
        silver[i].push(b'\n');
        if matches!(p.action, Action::New | Action::Changed | Action::Resolve) {
            to_send[i].push(QueuedRecord {
                record: p.record.clone(),
                hash: p.hash.to_string(),
                changed: p.diff.iter().map(|d| d.field.clone()).collect(),
                may_exist: false,
            });
        }
    })
    .await?;
    for (_, outcome) in &planned.validation.files {
        if let FileOutcome::Unusable(e) = outcome {
            return Err(SyncError::Unusable(e.to_string()));
        }
    }
    let c = &planned.counts;
    tracing::info!(
        stage = "plan",
        run_id = %run_id,
        rows = c.rows,
        new = c.new,
        changed = c.changed,
        unchanged = c.unchanged,
        blocked = c.blocked,
        rejected = c.rejected,
        "planned"
    );
    progress(Progress::Planned(planned.counts.clone(), unchanged));
    let mut not_sent = apply_limit(&mut to_send, opts.limit, opts.rank_by.as_deref())?;
    // Workers here will call the target: check it first, so an unreachable target or
    // refused credentials stop the run before anything is landed or sent. Nothing to
    // send, no call (a re-sync of unchanged files stays silent).
    if opts.wait && to_send.iter().any(|v| !v.is_empty()) {
        let mut rng = Rng::new(crate::ports::jitter_seed());
        let called = probe(target, &opts.worker.retry, limiter, &mut || rng.unit()).await;
        if let Err(e) = called.result {
            let why = match e {
                CallError::Auth { message } => {
                    format!("the target refused the credentials ({message})")
                }
                e @ CallError::Transient { .. } => format!("the target cannot be reached ({e})"),
                other => format!("the target refused the connection check ({other})"),
            };
            return Err(SyncError::Unreachable(format!(
                "{why}; nothing was landed or sent"
            )));
        }
    }

    // The run is on record before anything lands or is sent, with what the plan knows:
    // a process killed from here on leaves a run that says so (unfinished), which a
    // resume closes by reading where its records stand.
    let planned_sends: u64 = to_send.iter().map(|v| v.len() as u64).sum();
    let c = &planned.counts;
    let mut run = Run {
        id: run_id.clone(),
        kind: RunKind::Sync,
        profile: opts.profile.clone(),
        note: None,
        who: opts.who.clone(),
        started_at_ms: started_ms,
        finished_at_ms: None,
        file_hashes: Vec::new(),
        counts: BTreeMap::from([
            ("rows".to_string(), c.rows),
            ("unchanged".to_string(), c.unchanged),
            (
                "rejected".to_string(),
                c.rejected + c.blocked + c.not_writable,
            ),
            ("not_sent".to_string(), not_sent),
            ("to_send".to_string(), planned_sends),
        ]),
    };
    backend.state.put_run(&run).await?;

    // Land.
    let mut landed = Landed::default();
    let mut file_hashes = Vec::new();
    let mut sha_of: BTreeMap<PathBuf, String> = BTreeMap::new();
    for (path, outcome) in &planned.validation.files {
        let FileOutcome::Checked(report) = outcome else {
            continue;
        };
        let raw = std::fs::read(path).map_err(|source| SyncError::Read {
            path: path.clone(),
            source,
        })?;
        let (key, sha) = land_bronze(
            backend.objects.as_ref(),
            report.entity_type,
            &date,
            &run_id,
            raw,
        )
        .await?;
        landed.bronze.push(key);
        file_hashes.push(sha.clone());
        sha_of.insert(path.clone(), sha);
    }
    for entity in EntityType::ALL {
        let body = std::mem::take(&mut silver[entity.index()]);
        if !body.is_empty() {
            landed
                .silver
                .push(land_silver(backend.objects.as_ref(), entity, &date, &run_id, body).await?);
        }
    }
    for r in planned.rejected {
        let sha = sha_of.get(&r.path).cloned().unwrap_or_default();
        landed.rejected.push(
            land_rejected(
                backend.objects.as_ref(),
                r.entity,
                &date,
                &run_id,
                &sha,
                r.csv,
            )
            .await?,
        );
    }
    progress(Progress::Landed(landed.clone()));

    // Enqueue, parents first; a cancel stops between send batches.
    let mut total = 0u64;
    let mut rng = Rng::new(crate::ports::jitter_seed());
    let stop = || opts.cancel.is_cancelled();
    for entity in EntityType::ALL {
        let records = std::mem::take(&mut to_send[entity.index()]);
        if records.is_empty() {
            continue;
        }
        let n = records.len() as u64;
        let sent = enqueue_until(
            backend.queue(entity).as_ref(),
            &run_id,
            records,
            opts.batch_size,
            &opts.worker.retry,
            &mut rng,
            &stop,
        )
        .await?
        .records;
        total += sent;
        not_sent += n - sent;
        tracing::info!(stage = "enqueue", run_id = %run_id, entity = entity.as_str(), records = sent, "enqueued");
        progress(Progress::Enqueued {
            entity,
            records: sent,
        });
        if sent < n {
            tracing::warn!(stage = "enqueue", run_id = %run_id, entity = entity.as_str(), not_sent = n - sent, "cancelled: the rest is not sent");
        }
    }
    run.file_hashes = file_hashes;
    run.counts.insert("enqueued".to_string(), total);
    run.counts.insert("not_sent".to_string(), not_sent);
    backend.state.put_run(&run).await?;

    // Consume.
    let tally = Mutex::new(Tally::default());
    if opts.wait && total > 0 && !opts.cancel.is_cancelled() {
        let on_event = |e: &Event| {
            if e.run_id != run_id {
                return;
            }
            let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
            t.add(e);
            progress(Progress::Working {
                resolved: t.resolved() as u64,
                total,
                throttled: t.throttled,
                by_type: EntityType::ALL.map(|x| t.of_type(x)),
            });
        };
        let worker = Worker::new(backend, target, limiter, opts.worker.clone(), &on_event);
        worker.know(
            planned
                .known_ids
                .into_iter()
                .collect::<Vec<(RecordKey, String)>>(),
        );
        work_until_empty_or_cancelled(&worker, backend, &on_event, &opts.cancel).await?;
    }
    let tally = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    let plan_counts = planned.counts;
    let synced = tally.count(Outcome::Created)
        + tally.count(Outcome::Updated)
        + tally.count(Outcome::Synced);
    let mut summary = RunSummary {
        run_id: run_id.clone(),
        rows: plan_counts.rows,
        synced,
        created: tally.count(Outcome::Created),
        updated: tally.count(Outcome::Updated),
        unchanged: plan_counts.unchanged,
        rejected: plan_counts.rejected + plan_counts.blocked + plan_counts.not_writable,
        failed: tally.count(Outcome::Failed),
        discarded: tally.count(Outcome::Discarded),
        not_sent,
        queued: total.saturating_sub(tally.resolved() as u64),
        cancelled: opts.cancel.is_cancelled(),
        elapsed_ms: 0,
        api_calls: BTreeMap::new(),
        latency_p50_ms: tally.percentile(0.5),
        latency_p95_ms: tally.percentile(0.95),
    };
    // Gold after the run, then the run's final record.
    let gold = write_gold(backend.state.as_ref(), backend.objects.as_ref()).await?;
    run.finished_at_ms = Some(SystemClock.now_ms());
    run.counts = BTreeMap::from([
        ("rows".to_string(), summary.rows),
        ("synced".to_string(), summary.synced),
        ("created".to_string(), summary.created),
        ("updated".to_string(), summary.updated),
        ("unchanged".to_string(), summary.unchanged),
        ("rejected".to_string(), summary.rejected),
        ("failed".to_string(), summary.failed),
        ("discarded".to_string(), summary.discarded),
        ("not_sent".to_string(), summary.not_sent),
        ("queued".to_string(), summary.queued),
        ("throttled".to_string(), tally.throttled),
        (
            "latency_p50_ms".to_string(),
            summary.latency_p50_ms.unwrap_or(0),
        ),
        (
            "latency_p95_ms".to_string(),
            summary.latency_p95_ms.unwrap_or(0),
        ),
    ]);
    if summary.cancelled {
        run.counts.insert("cancelled".to_string(), 1);
    }
    // Per type too (the desktop's dashboard shows the target's latency by type).
    for t in EntityType::ALL {
        for (name, p) in [("latency_p50_ms", 0.5), ("latency_p95_ms", 0.95)] {
            if let Some(ms) = tally.percentile_of(t, p) {
                run.counts.insert(format!("{name}.{t}"), ms);
            }
        }
    }
    backend.state.put_run(&run).await?;
    let target_counts = target.counters();
    summary.api_calls = api_calls(
        &backend
            .calls()
            .since(&calls_before)
            .since(&Default::default()),
        target_counts.requests,
        target_counts.throttled,
    );
    summary.elapsed_ms = millis(started.elapsed());
    tracing::info!(
        stage = "summary",
        run_id = %run_id,
        rows = summary.rows,
        synced = summary.synced,
        unchanged = summary.unchanged,
        rejected = summary.rejected,
        failed = summary.failed,
        elapsed_ms = summary.elapsed_ms,
        "run finished"
    );
    Ok(SyncReport {
        summary,
        plan: plan_counts,
        landed,
        gold,
    })
}

/// Keep the top `limit` records to send (ranked by a column, highest first, numbers as
/// numbers), parents first. Returns how many were left out.
fn apply_limit(
    to_send: &mut [Vec<QueuedRecord>; 4],
    limit: Option<usize>,
    rank_by: Option<&str>,
) -> Result<u64, SyncError> {
    let Some(limit) = limit else {
        return Ok(0);
    };
    if let Some(col) = rank_by {
        let known = to_send
            .iter()
            .flatten()
            .any(|r| r.record.fields.contains_key(col));
        if !known {
            return Err(SyncError::RankBy(col.to_string()));
        }
        for v in to_send.iter_mut() {
            v.sort_by(|a, b| {
                let (x, y) = (a.record.fields.get(col), b.record.fields.get(col));
                match (
                    x.and_then(|s| s.parse::<f64>().ok()),
                    y.and_then(|s| s.parse::<f64>().ok()),
                ) {
                    (Some(p), Some(q)) => q.total_cmp(&p),
                    _ => y.cmp(&x),
                }
            });
        }
    }
    let mut left = limit;
    let mut dropped = 0u64;
    for v in to_send.iter_mut() {
        let keep = v.len().min(left);
        dropped += (v.len() - keep) as u64;
        v.truncate(keep);
        left -= keep;
    }
    Ok(dropped)
}
