//! The dashboard: the queues now — the very numbers `metasync status --format json`
//! prints, read by the same function — with their depth over the last hour from the
//! profile's history, this desktop's throughput and 429s per minute, the target's
//! latency in the last sync, and the latest runs.

use super::desk::Desk;
use super::history::History;
use crate::env::RuntimeError;
use metasync_engine::pipeline;
use metasync_engine::ports::{Clock, Run, RunKind, SystemClock};
use serde::Serialize;
use std::collections::BTreeMap;
use ts_rs::TS;

/// How far back the charts go.
pub const SHOWN_MS: i64 = 3600 * 1000;
/// The dashboard samples the queues into the history at most this often.
pub const SAMPLE_EVERY_MS: i64 = 5_000;
/// Runs listed.
pub const RUNS_SHOWN: usize = 10;

#[derive(Debug, Clone, Serialize, TS)]
pub struct DashboardView {
    pub profile: String,
    pub production: bool,
    /// When the queues were read.
    pub at_ms: i64,
    pub queues: Vec<QueueRow>,
    /// Failures in triage by error code (as `status` shows them).
    pub failures: BTreeMap<String, u64>,
    /// Depth samples of the last hour, oldest first.
    pub depth: Vec<DepthSample>,
    /// What workers on this desktop did per minute in the last hour, all types
    /// (minutes with nothing left out).
    pub minutes: Vec<MinuteRow>,
    /// The target's latency in the latest sync run that called it.
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    /// Per type: throughput and 429s, and the latest sync's latency.
    pub per_type: Vec<TypeStats>,
    pub runs: Vec<RunView>,
    /// Set when the dead letters grew since the last look: the desktop notifies.
    pub alert: Option<String>,
    /// A sync the app did not see end, waiting to be resumed.
    pub interrupted: Option<super::sync::Interrupted>,
}

/// One queue now (`status --format json`'s `queues[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct QueueRow {
    pub entity: String,
    pub visible: u64,
    pub in_flight: u64,
    pub dead: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct DepthSample {
    pub t: i64,
    /// Visible, in flight and dead, per type in show, season, episode, asset order.
    pub depth: Vec<[u64; 3]>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
pub struct MinuteRow {
    /// The minute's start.
    pub t: i64,
    pub synced: u64,
    pub failed: u64,
    pub throttled: u64,
}

/// One type's work in the last hour on this desktop, and its latency in the latest
/// sync that called the target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
pub struct TypeStats {
    pub entity: String,
    /// The busiest of the last hour's minutes, and the hour's totals.
    pub synced_per_minute: u64,
    pub throttled_per_minute: u64,
    pub synced_last_hour: u64,
    pub throttled_last_hour: u64,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
}

/// A run or triage action, as the run history shows it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct RunView {
    pub id: String,
    /// `sync` or `triage`.
    pub kind: String,
    pub profile: String,
    pub note: Option<String>,
    pub who: String,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// sha256 of each file (records acted on, for a triage action).
    pub files: Vec<String>,
    pub counts: BTreeMap<String, u64>,
}

impl From<Run> for RunView {
    fn from(r: Run) -> Self {
        Self {
            id: r.id,
            kind: match r.kind {
                RunKind::Sync => "sync",
                RunKind::Triage => "triage",
            }
            .to_string(),
            profile: r.profile,
            note: r.note,
            who: r.who,
            started_at_ms: r.started_at_ms,
            finished_at_ms: r.finished_at_ms,
            files: r.file_hashes,
            counts: r.counts,
        }
    }
}

/// Per-minute sums of the history's work lines since `since`, of one type (`Some`
/// index in [`EntityType::ALL`](metasync_engine::EntityType::ALL)) or all.
pub fn per_minute(
    lines: &[super::history::Line],
    since: i64,
    only: Option<usize>,
) -> Vec<MinuteRow> {
    let mut minutes: BTreeMap<i64, MinuteRow> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.t >= since) {
        let Some(work) = l.work else { continue };
        let t = l.t - l.t.rem_euclid(60_000);
        let m = minutes.entry(t).or_insert(MinuteRow {
            t,
            ..MinuteRow::default()
        });
        for (i, [synced, failed, throttled]) in work.into_iter().enumerate() {
            if only.is_none_or(|o| o == i) {
                m.synced += synced;
                m.failed += failed;
                m.throttled += throttled;
            }
        }
    }
    minutes.into_values().collect()
}

fn type_stats(lines: &[super::history::Line], since: i64, latest: Option<&Run>) -> Vec<TypeStats> {
    metasync_engine::EntityType::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let m = per_minute(lines, since, Some(i));
            let lat =
                |name: &str| latest.and_then(|r| r.counts.get(&format!("{name}.{t}")).copied());
            TypeStats {
                entity: t.as_str().to_string(),
                synced_per_minute: m.iter().map(|r| r.synced).max().unwrap_or(0),
                throttled_per_minute: m.iter().map(|r| r.throttled).max().unwrap_or(0),
                synced_last_hour: m.iter().map(|r| r.synced).sum(),
                throttled_last_hour: m.iter().map(|r| r.throttled).sum(),
                latency_p50_ms: lat("latency_p50_ms"),
                latency_p95_ms: lat("latency_p95_ms"),
            }
        })
        .collect()
}

impl Desk {
    /// The dashboard of the header's profile, now. Samples the queues into the
    /// profile's history when the last sample is older than [`SAMPLE_EVERY_MS`].
    pub async fn dashboard(&self) -> Result<DashboardView, RuntimeError> {
        let chosen = self.chosen().await?;
        let env = self.open(chosen.clone()).await?;
        let status = pipeline::status(&env.backend, RUNS_SHOWN)
            .await
            .map_err(RuntimeError::failed)?;
        let now = SystemClock.now_ms();
        let history = History::of(&self.places.state, chosen.name.as_deref());
        let depths =
            <[_; 4]>::try_from(status.queues.iter().map(|q| q.depth).collect::<Vec<_>>()).ok();
        let state = self.places.state.clone();
        // One read of the history (and the marker): the last hour, sampled again when
        // its last depth sample is older than SAMPLE_EVERY_MS.
        let (lines, interrupted) = tokio::task::spawn_blocking(move || {
            let mut lines = history.read(now - SHOWN_MS);
            let last = lines.iter().rev().find(|l| l.depth.is_some()).map(|l| l.t);
            if let Some(d) = depths.filter(|_| last.is_none_or(|t| now - t >= SAMPLE_EVERY_MS)) {
                if history.record_depth(now, &d).is_ok() {
                    lines.push(super::history::Line {
                        t: now,
                        depth: Some(d.map(|x| [x.visible, x.in_flight, x.dead])),
                        work: None,
                    });
                }
            }
            (lines, super::sync::interrupted(&state))
        })
        .await
        .map_err(RuntimeError::failed)?;
        let latest = status.runs.iter().find(|r| {
            r.kind == RunKind::Sync && r.counts.get("latency_p50_ms").is_some_and(|&v| v > 0)
        });
        let dead = status.queues.iter().map(|q| q.depth.dead).sum();
        let alert = self.dead_letters_seen(&chosen.label, dead);

        Ok(DashboardView {
            alert,
            interrupted,
            profile: chosen.label.clone(),
            production: chosen.production,
            at_ms: now,
            queues: status
                .queues
                .iter()
                .map(|q| QueueRow {
                    entity: q.entity.as_str().to_string(),
                    visible: q.depth.visible,
                    in_flight: q.depth.in_flight,
                    dead: q.depth.dead,
                })
                .collect(),
            failures: status.failures.clone(),
            depth: lines
                .iter()
                .filter_map(|l| {
                    l.depth.map(|d| DepthSample {
                        t: l.t,
                        depth: d.to_vec(),
                    })
                })
                .collect(),
            minutes: per_minute(&lines, now - SHOWN_MS, None),
            latency_p50_ms: latest.and_then(|r| r.counts.get("latency_p50_ms").copied()),
            latency_p95_ms: latest.and_then(|r| r.counts.get("latency_p95_ms").copied()),
            per_type: type_stats(&lines, now - SHOWN_MS, latest),
            runs: status.runs.into_iter().map(RunView::from).collect(),
        })
    }
}

impl Desk {
    /// The latest runs and triage actions of the header's profile, newest first.
    pub async fn runs(&self, limit: usize) -> Result<Vec<RunView>, RuntimeError> {
        let env = self.env().await?;
        Ok(env
            .backend
            .state
            .list_runs(limit.clamp(1, 500))
            .await
            .map_err(RuntimeError::failed)?
            .into_iter()
            .map(RunView::from)
            .collect())
    }
}
