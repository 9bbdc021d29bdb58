//! The window's sync of the workbench's open files (edits and mappings included), with
//! progress per entity type several times a second, a cancel, the production check,
//! and a resume of a sync the app did not see end (closed, killed, crashed).

use super::desk::Desk;
use super::history::History;
use crate::env::{choose, who, Env, RuntimeError};
use crate::ops::{self, SyncRequest, WorkRequest};
use metasync_engine::pipeline::consume::{Event, DEFAULT_CONCURRENCY};
use metasync_engine::pipeline::enqueue::{DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE};
use metasync_engine::pipeline::summary::{Tally, TypeCounts};
use metasync_engine::pipeline::sync::{Cancel, Progress};
use metasync_engine::ports::{Clock, Depth, RunKind, SystemClock};
use metasync_engine::EntityType;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ts_rs::TS;

/// How often the window hears how a sync goes (the goal: at least 4 times a second).
pub const UPDATE_EVERY: Duration = Duration::from_millis(200);
/// How often a running sync samples the queues' depth into the profile's history.
pub const DEPTH_EVERY: Duration = Duration::from_secs(5);

/// What staff set before pressing Sync.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct SyncForm {
    /// Records per queue message (1 to 100).
    pub batch_size: u32,
    /// Send only the top N records (a trial run).
    pub limit: Option<u32>,
    /// Rank by this column, highest first, before taking the top N.
    pub rank_by: Option<String>,
    /// On a production profile, its name typed again.
    pub confirm: Option<String>,
}

impl Default for SyncForm {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_BATCH_SIZE as u32,
            limit: None,
            rank_by: None,
            confirm: None,
        }
    }
}

/// One entity type's records so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
pub struct TypeProgress {
    pub entity: String,
    pub enqueued: u64,
    pub synced: u64,
    pub unchanged: u64,
    pub failed: u64,
}

/// How a sync goes, sent every [`UPDATE_EVERY`].
#[derive(Debug, Clone, Serialize, TS)]
pub struct SyncUpdate {
    /// `planning`, `landing`, `enqueueing`, `working`, `resuming` or `done`.
    pub stage: String,
    pub profile: String,
    pub types: Vec<TypeProgress>,
    /// Records resolved of those sent.
    pub resolved: u64,
    pub total: u64,
    pub throttled: u64,
    /// Records resolved per second since the workers started.
    pub rate_per_second: f64,
    pub eta_seconds: Option<f64>,
    pub elapsed_ms: u64,
    pub cancelling: bool,
}

/// How a sync ended: every row in one of synced, unchanged, rejected, failed,
/// discarded, or left (`not_sent`, `queued`).
#[derive(Debug, Clone, Serialize, TS)]
pub struct SyncDone {
    pub profile: String,
    pub run_id: String,
    pub rows: u64,
    pub synced: u64,
    pub unchanged: u64,
    pub rejected: u64,
    pub failed: u64,
    pub discarded: u64,
    /// Never enqueued (the limit, or a cancel).
    pub not_sent: u64,
    /// Enqueued and not resolved: they wait in the queues (Resume sends them).
    pub queued: u64,
    pub cancelled: bool,
    pub throttled: u64,
    pub elapsed_ms: u64,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub per_type: Vec<TypeProgress>,
}

impl SyncDone {
    /// What the desktop says in a notification when the run ended with failures.
    pub fn alert(&self) -> Option<String> {
        (self.failed > 0).then(|| {
            format!(
                "The sync on {} ended with {} failed (of {} rows); they wait in Triage.",
                self.profile, self.failed, self.rows
            )
        })
    }
}

/// A sync the app started and did not see end, found when it starts again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Interrupted {
    /// `None`: the embedded default.
    pub profile: Option<String>,
    /// The file the profile was read from.
    #[ts(type = "string")]
    pub config: PathBuf,
    pub started_at_ms: i64,
}

fn marker(state: &Path) -> PathBuf {
    state.join("sync-running.json")
}

/// The sync the app did not see end, if any.
pub fn interrupted(state: &Path) -> Option<Interrupted> {
    let text = std::fs::read_to_string(marker(state)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_marker(state: &Path, m: &Interrupted) -> Result<(), RuntimeError> {
    std::fs::create_dir_all(state)
        .and_then(|()| {
            std::fs::write(
                marker(state),
                serde_json::to_vec(m).map_err(std::io::Error::other)?,
            )
        })
        .map_err(|e| RuntimeError::Failed(format!("cannot write {}: {e}", state.display())))
}

/// What the progress callback gathers; read by the ticker.
#[derive(Default)]
struct Seen {
    stage: &'static str,
    enqueued: [u64; 4],
    unchanged: [u64; 4],
    by_type: [TypeCounts; 4],
    resolved: u64,
    total: u64,
    throttled: u64,
    working_since: Option<Instant>,
}

struct Monitor {
    profile: String,
    started: Instant,
    seen: Mutex<Seen>,
    cancel: Cancel,
}

impl Monitor {
    fn new(profile: String, stage: &'static str, cancel: Cancel) -> Self {
        Self {
            profile,
            started: Instant::now(),
            seen: Mutex::new(Seen {
                stage,
                ..Seen::default()
            }),
            cancel,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn progress(&self, p: Progress) {
        let mut s = self.lock();
        match p {
            Progress::Planned(_, unchanged) => {
                s.unchanged = unchanged;
                s.stage = "landing";
            }
            Progress::Landed(_) => s.stage = "enqueueing",
            Progress::Enqueued { entity, records } => {
                s.enqueued[entity.index()] = records;
                s.total = s.enqueued.iter().sum();
            }
            Progress::Working {
                resolved,
                total,
                throttled,
                by_type,
            } => {
                s.stage = "working";
                s.working_since.get_or_insert_with(Instant::now);
                (s.resolved, s.total, s.throttled, s.by_type) =
                    (resolved, total, throttled, by_type);
            }
        }
    }

    /// Worker events of a resume (no plan, no enqueue): tallied per run.
    fn resumed(&self, tally: &Tally) {
        let mut s = self.lock();
        s.working_since.get_or_insert_with(Instant::now);
        s.resolved = tally.resolved() as u64;
        s.throttled = tally.throttled;
        s.by_type = EntityType::ALL.map(|t| tally.of_type(t));
    }

    fn update(&self) -> SyncUpdate {
        let s = self.lock();
        let rate = s.working_since.map_or(0.0, |t| {
            s.resolved as f64 / t.elapsed().as_secs_f64().max(0.001)
        });
        let left = s.total.saturating_sub(s.resolved);
        SyncUpdate {
            stage: s.stage.to_string(),
            profile: self.profile.clone(),
            types: EntityType::ALL
                .iter()
                .map(|&t| TypeProgress {
                    entity: t.as_str().to_string(),
                    enqueued: s.enqueued[t.index()],
                    synced: s.by_type[t.index()].synced,
                    unchanged: s.unchanged[t.index()],
                    failed: s.by_type[t.index()].failed,
                })
                .collect(),
            resolved: s.resolved,
            total: s.total,
            throttled: s.throttled,
            rate_per_second: rate,
            eta_seconds: (rate > 0.0 && s.total > 0).then(|| left as f64 / rate),
            elapsed_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            cancelling: self.cancel.is_cancelled(),
        }
    }

    fn finish(&self) -> SyncUpdate {
        self.lock().stage = "done";
        self.update()
    }

    /// Synced, failed and 429s so far per type (what the history's throughput counts).
    fn work(&self) -> [[u64; 3]; 4] {
        self.lock()
            .by_type
            .map(|c| [c.synced, c.failed, c.throttled])
    }
}

type OnUpdate = Arc<dyn Fn(SyncUpdate) + Send + Sync>;

/// Send the monitor's state every [`UPDATE_EVERY`] and sample the queues into the
/// profile's history every [`DEPTH_EVERY`] until `done`.
fn tick(
    monitor: Arc<Monitor>,
    env: Arc<Env>,
    history: History,
    on: OnUpdate,
    done: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut sampled: Option<Instant> = None;
        let mut reported = [[0u64; 3]; 4];
        while !done.load(Ordering::SeqCst) {
            on(monitor.update());
            if sampled.is_none_or(|t| t.elapsed() >= DEPTH_EVERY) {
                sampled = Some(Instant::now());
                reported = sample(&env, &history, &monitor, reported).await;
            }
            tokio::time::sleep(UPDATE_EVERY).await;
        }
        sample(&env, &history, &monitor, reported).await;
    })
}

/// Write the queues' depth and the work done since `reported`; returns the work now.
async fn sample(
    env: &Env,
    history: &History,
    monitor: &Monitor,
    reported: [[u64; 3]; 4],
) -> [[u64; 3]; 4] {
    let now = SystemClock.now_ms();
    if let Ok(depths) = depths(env).await {
        if let Err(e) = history.record_depth(now, &depths) {
            tracing::warn!("cannot write the dashboard's history: {e}");
        }
    }
    let work = monitor.work();
    let mut since = [[0u64; 3]; 4];
    for (t, row) in since.iter_mut().enumerate() {
        for (i, n) in row.iter_mut().enumerate() {
            *n = work[t][i].saturating_sub(reported[t][i]);
        }
    }
    let _ = history.record_work(now, since);
    work
}

pub(crate) async fn depths(env: &Env) -> Result<[Depth; 4], RuntimeError> {
    let mut out = [Depth::default(); 4];
    for t in EntityType::ALL {
        out[t.index()] = env
            .backend
            .queue(t)
            .depth()
            .await
            .map_err(RuntimeError::failed)?;
    }
    Ok(out)
}

impl Desk {
    /// Sync the workbench's open files to the header's profile: validate, plan, land,
    /// enqueue, and work the queues here until they drain. `on` hears how it goes
    /// every [`UPDATE_EVERY`]; [`cancel_sync`](Desk::cancel_sync) stops it.
    pub async fn sync_open_files(
        &self,
        wb: Arc<crate::workbench::Workbench>,
        form: SyncForm,
        on: OnUpdate,
    ) -> Result<SyncDone, RuntimeError> {
        let chosen = self.chosen().await?;
        if chosen.production {
            let name = chosen.name.clone().unwrap_or_default();
            if form.confirm.as_deref().map(str::trim) != Some(name.as_str()) {
                return Err(RuntimeError::Unusable(format!(
                    "{} is production: type its name, {name}, to sync to it",
                    chosen.label
                )));
            }
        }
        if !(1..=MAX_BATCH_SIZE as u32).contains(&form.batch_size) {
            return Err(RuntimeError::Unusable(format!(
                "records per message must be 1 to {MAX_BATCH_SIZE}"
            )));
        }
        if form.limit == Some(0) {
            return Err(RuntimeError::Unusable(
                "a limit of 0 sends nothing: leave it empty to send everything".into(),
            ));
        }
        let cancel = Cancel::default();
        let _slot = self.start_sync(cancel.clone())?;
        if let Some(m) = interrupted(&self.places.state) {
            // One marker at a time: the one left must be resumed before a new sync.
            return Err(RuntimeError::Unusable(format!(
                "a sync on {} did not finish: resume it first (Dashboard, Resume), then sync again",
                m.profile
                    .as_deref()
                    .map_or("the embedded default".to_string(), |p| format!(
                        "profile {p}"
                    ))
            )));
        }
        let (dir, files, validate) = self.open_files_as_inputs(wb).await?;
        let state = self.places.state.clone();
        let m = Interrupted {
            profile: chosen.name.clone(),
            config: self.profiles.path().to_path_buf(),
            started_at_ms: SystemClock.now_ms(),
        };
        let result = async {
            let env = self.open(chosen.clone()).await?;
            write_marker(&state, &m)?;
            let history = History::of(&state, chosen.name.as_deref());
            let monitor = Arc::new(Monitor::new(
                chosen.label.clone(),
                "planning",
                cancel.clone(),
            ));
            let done = Arc::new(AtomicBool::new(false));
            let ticker = tick(
                Arc::clone(&monitor),
                Arc::clone(&env),
                history,
                Arc::clone(&on),
                Arc::clone(&done),
            );
            let req = SyncRequest {
                files: files.clone(),
                batch_size: form.batch_size as usize,
                limit: form.limit.map(|n| n as usize),
                rank_by: form.rank_by.clone().filter(|c| !c.trim().is_empty()),
                wait: true,
                concurrency: DEFAULT_CONCURRENCY,
                who: who(),
                parents_elsewhere: None,
            };
            let m2 = Arc::clone(&monitor);
            let report = ops::sync_with(&env, &req, validate, cancel.clone(), &move |p| {
                m2.progress(p)
            })
            .await;
            done.store(true, Ordering::SeqCst);
            let _ = ticker.await;
            on(monitor.finish());
            let report = report?;
            let s = &report.summary;
            let per_type = monitor.update().types;
            Ok(SyncDone {
                profile: chosen.label.clone(),
                run_id: s.run_id.clone(),
                rows: s.rows,
                synced: s.synced,
                unchanged: s.unchanged,
                rejected: s.rejected,
                failed: s.failed,
                discarded: s.discarded,
                not_sent: s.not_sent,
                queued: s.queued,
                cancelled: s.cancelled,
                throttled: s.api_calls.get("target.throttled").copied().unwrap_or(0),
                elapsed_ms: s.elapsed_ms,
                latency_p50_ms: s.latency_p50_ms,
                latency_p95_ms: s.latency_p95_ms,
                per_type,
            })
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        // Ended here, well or not: nothing to resume at the next start.
        let _ = std::fs::remove_file(marker(&state));
        result
    }

    /// Finish a sync the app did not see end: work its profile's queues until they
    /// drain, then close its run records with what was resolved. `Ok(None)`: there
    /// was none.
    pub async fn resume(&self, on: OnUpdate) -> Result<Option<SyncDone>, RuntimeError> {
        let Some(m) = interrupted(&self.places.state) else {
            return Ok(None);
        };
        let config = m.config.clone();
        let name = m.profile.clone();
        let chosen = match tokio::task::spawn_blocking(move || {
            choose(name.as_deref(), Some(&config))
        })
        .await
        .map_err(RuntimeError::failed)?
        {
            Ok(c) => c,
            Err(e) => {
                // Said once: the next start does not ask again.
                let _ = std::fs::remove_file(marker(&self.places.state));
                return Err(RuntimeError::Unusable(format!(
                    "a sync on {} did not finish, and that profile cannot be read now ({e}); \
                     its records wait in its queues: fix the profile and press Send what is queued on its dashboard",
                    m.profile.as_deref().map_or("the embedded default".to_string(), |p| format!("profile {p}"))
                )));
            }
        };
        self.work_queues(chosen, Some(m), on).await.map(Some)
    }

    /// Send what waits in the header's profile's queues (what a cancelled sync left),
    /// with a sync's progress.
    pub async fn send_queued(&self, on: OnUpdate) -> Result<SyncDone, RuntimeError> {
        let chosen = self.chosen().await?;
        self.work_queues(chosen, None, on).await
    }

    async fn work_queues(
        &self,
        chosen: crate::env::Chosen,
        interrupted: Option<Interrupted>,
        on: OnUpdate,
    ) -> Result<SyncDone, RuntimeError> {
        let state = self.places.state.clone();
        let cancel = Cancel::default();
        let _slot = self.start_sync(cancel.clone())?;
        let env = self.open(chosen.clone()).await?;
        let monitor = Arc::new(Monitor::new(
            chosen.label.clone(),
            "resuming",
            cancel.clone(),
        ));
        // A cancel stops the workers here too (messages in hand are finished).
        // The queues count messages, not records: the total stays unknown (no ETA).
        let done = Arc::new(AtomicBool::new(false));
        let ticker = tick(
            Arc::clone(&monitor),
            Arc::clone(&env),
            History::of(&state, chosen.name.as_deref()),
            Arc::clone(&on),
            Arc::clone(&done),
        );
        let runs: Mutex<HashMap<String, Tally>> = Mutex::default();
        let all = Mutex::new(Tally::default());
        let started = Instant::now();
        let req = WorkRequest {
            concurrency: DEFAULT_CONCURRENCY,
            until_empty: true,
            who: who(),
            visibility_seconds: 60,
        };
        let worked = ops::work_with(&env, &req, &cancel, &|e: &Event| {
            runs.lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(e.run_id.clone())
                .or_default()
                .add(e);
            let mut t = all.lock().unwrap_or_else(|p| p.into_inner());
            t.add(e);
            monitor.resumed(&t);
        })
        .await;
        done.store(true, Ordering::SeqCst);
        let _ = ticker.await;
        on(monitor.finish());
        worked?;
        let runs = runs.into_inner().unwrap_or_else(|p| p.into_inner());
        let (closed, waiting) = close_runs(&env, interrupted.as_ref(), &runs).await?;
        if interrupted.is_some() {
            let _ = std::fs::remove_file(marker(&state));
        }
        let t = all.into_inner().unwrap_or_else(|p| p.into_inner());
        let per_type = monitor.update().types;
        let by =
            |f: fn(&TypeCounts) -> u64| EntityType::ALL.iter().map(|&x| f(&t.of_type(x))).sum();
        Ok(SyncDone {
            profile: chosen.label.clone(),
            run_id: closed.join(", "),
            rows: t.resolved() as u64 + waiting,
            synced: by(|c| c.synced),
            unchanged: 0,
            rejected: 0,
            failed: by(|c| c.failed),
            discarded: by(|c| c.discarded),
            not_sent: 0,
            queued: waiting,
            cancelled: cancel.is_cancelled(),
            throttled: t.throttled,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            latency_p50_ms: t.percentile(0.5),
            latency_p95_ms: t.percentile(0.95),
            per_type,
        })
    }
}

/// Close the sync runs a resume worked on (the records it resolved came from them) and,
/// after an interruption, this user's unfinished runs on this profile since it
/// started: their counts are read again from where their records stand (synced,
/// failed, discarded, queued — never enqueued included), they get an end and
/// `resumed`. Returns their ids and the records they still have waiting.
async fn close_runs(
    env: &Env,
    interrupted: Option<&Interrupted>,
    resolved: &HashMap<String, Tally>,
) -> Result<(Vec<String>, u64), RuntimeError> {
    let state = env.backend.state.as_ref();
    let mut ids: std::collections::BTreeSet<String> = resolved.keys().cloned().collect();
    if let Some(m) = interrupted {
        let me = who();
        for run in state.list_runs(50).await.map_err(RuntimeError::failed)? {
            if run.kind == RunKind::Sync
                && run.finished_at_ms.is_none()
                && run.profile == env.profile_name()
                && run.who == me
                && run.started_at_ms >= m.started_at_ms
            {
                ids.insert(run.id);
            }
        }
    }
    let mut closed = Vec::new();
    let mut waiting = 0;
    for id in ids {
        let Some(mut run) = state.get_run(&id).await.map_err(RuntimeError::failed)? else {
            continue;
        };
        if run.kind != RunKind::Sync {
            continue;
        }
        let mut by: HashMap<String, u64> = HashMap::new();
        for r in super::runs::records_of(env, &run).await? {
            *by.entry(r.outcome).or_insert(0) += 1;
        }
        let n = |k: &str| by.get(k).copied().unwrap_or(0);
        let left = n("queued") + n("not sent or queued");
        for (k, v) in [
            ("synced", n("synced")),
            ("failed", n("failed")),
            ("discarded", n("discarded")),
            ("queued", left),
        ] {
            run.counts.insert(k.to_string(), v);
        }
        if let Some(t) = resolved.get(&id) {
            *run.counts.entry("throttled".to_string()).or_insert(0) += t.throttled;
        }
        run.counts.insert("resumed".to_string(), 1);
        run.finished_at_ms
            .get_or_insert_with(|| SystemClock.now_ms());
        state.put_run(&run).await.map_err(RuntimeError::failed)?;
        waiting += left;
        closed.push(run.id);
    }
    Ok((closed, waiting))
}
