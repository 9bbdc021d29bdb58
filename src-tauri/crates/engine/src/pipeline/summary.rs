//! How a run ended: every input row in exactly one of synced, unchanged, rejected,
//! failed or discarded; what it cost in calls; how fast the target answered.

use super::consume::Event;
use crate::ports::{Calls, RecordKey};
use crate::EntityType;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

/// Where one record ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    /// Synced by an earlier delivery of the same content (found so on a redelivery).
    Synced,
    Unchanged,
    Failed,
    Discarded,
}

/// Why a record failed, grouped in triage by its text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCode {
    /// The target refused the record (HTTP status).
    Refused(u16),
    /// The target says the object or its parent does not exist.
    NotFound,
    /// The parent failed or was discarded.
    ParentFailed,
    /// Transient failures through every delivery: the dead-letter queue.
    RetriesExhausted,
    /// It waited for its parent through every delivery (the parent never synced).
    ParentMissing,
    /// The profile's access may not write it (a station and a show not in Media
    /// Manager, or a change to a show or season).
    NotWritable,
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(s) => write!(f, "http_{s}"),
            Self::NotFound => f.write_str("not_found"),
            Self::ParentFailed => f.write_str("parent_failed"),
            Self::RetriesExhausted => f.write_str("retries_exhausted"),
            Self::ParentMissing => f.write_str("parent_missing"),
            Self::NotWritable => f.write_str("not_writable"),
        }
    }
}

/// The `sync --format json` summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub rows: u64,
    pub synced: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Invalid rows and blocked records (`parent_unknown`).
    pub rejected: u64,
    pub failed: u64,
    pub discarded: u64,
    /// Valid records left out by `--limit`, or never enqueued after a cancel; not sent,
    /// not counted above.
    pub not_sent: u64,
    /// Records enqueued but not resolved when the run stopped waiting (`--no-wait`, or
    /// a cancel).
    pub queued: u64,
    /// Stopped by the user: `not_sent` includes the records never enqueued.
    pub cancelled: bool,
    pub elapsed_ms: u64,
    /// `<service>.<Operation>` → calls, plus `target.requests` and `target.throttled`.
    pub api_calls: BTreeMap<String, u64>,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
}

/// One entity type's records so far, by where they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TypeCounts {
    /// Created, updated, or found synced by an earlier delivery.
    pub synced: u64,
    pub failed: u64,
    pub discarded: u64,
    /// 429s the target answered for this type's records.
    pub throttled: u64,
}

/// Collects worker events into final outcomes, one per record (the last word wins;
/// a record found already resolved counts only if nothing else was heard of it).
#[derive(Debug, Default)]
pub struct Tally {
    outcomes: HashMap<RecordKey, Outcome>,
    /// Per type, per outcome (kept as events arrive, so progress costs nothing).
    counts: [[u64; 6]; 4],
    pub target_calls: u64,
    pub throttled: u64,
    throttled_by: [u64; 4],
    latencies_ms: Vec<u32>,
    latencies_by: [Vec<u32>; 4],
}

fn slot(o: Outcome) -> usize {
    match o {
        Outcome::Created => 0,
        Outcome::Updated => 1,
        Outcome::Synced => 2,
        Outcome::Unchanged => 3,
        Outcome::Failed => 4,
        Outcome::Discarded => 5,
    }
}

impl Tally {
    pub fn add(&mut self, e: &Event) {
        self.target_calls += u64::from(e.calls);
        let t = e.key.entity.index();
        self.throttled += u64::from(e.throttled);
        self.throttled_by[t] += u64::from(e.throttled);
        if let Some(l) = e.latency {
            let ms = u32::try_from(l.as_millis()).unwrap_or(u32::MAX);
            self.latencies_ms.push(ms);
            self.latencies_by[t].push(ms);
        }
        if e.already {
            if !self.outcomes.contains_key(&e.key) {
                let o = match e.outcome {
                    Outcome::Unchanged => Outcome::Synced,
                    o => o,
                };
                self.outcomes.insert(e.key.clone(), o);
                self.counts[t][slot(o)] += 1;
            }
        } else if let Some(was) = self.outcomes.insert(e.key.clone(), e.outcome) {
            self.counts[t][slot(was)] -= 1;
            self.counts[t][slot(e.outcome)] += 1;
        } else {
            self.counts[t][slot(e.outcome)] += 1;
        }
    }

    /// One type's records so far.
    pub fn of_type(&self, entity: EntityType) -> TypeCounts {
        let c = &self.counts[entity.index()];
        TypeCounts {
            synced: c[0] + c[1] + c[2],
            failed: c[4],
            discarded: c[5],
            throttled: self.throttled_by[entity.index()],
        }
    }

    /// One type's target latency percentile (its successful writes).
    pub fn percentile_of(&self, entity: EntityType, p: f64) -> Option<u64> {
        percentile(&self.latencies_by[entity.index()], p)
    }

    pub fn resolved(&self) -> usize {
        self.outcomes.len()
    }

    pub fn outcome(&self, key: &RecordKey) -> Option<Outcome> {
        self.outcomes.get(key).copied()
    }

    pub fn count(&self, o: Outcome) -> u64 {
        self.counts.iter().map(|c| c[slot(o)]).sum()
    }

    pub fn percentile(&self, p: f64) -> Option<u64> {
        percentile(&self.latencies_ms, p)
    }
}

/// The `p`-th percentile (0..1) by nearest rank.
pub fn percentile(values: &[u32], p: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(u64::from(v[rank - 1]))
}

/// `service.Operation` → count, as the summary prints it.
pub fn api_calls(
    calls: &Calls,
    target_requests: u64,
    target_throttled: u64,
) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = calls
        .iter()
        .map(|c| (format!("{}.{}", c.service.as_str(), c.operation), c.count))
        .collect();
    out.insert("target.requests".into(), target_requests);
    out.insert("target.throttled".into(), target_throttled);
    out
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(key: &str, outcome: Outcome, already: bool) -> Event {
        Event {
            run_id: "r".into(),
            key: RecordKey::new(EntityType::Show, key),
            outcome,
            already,
            calls: 1,
            throttled: 0,
            latency: Some(Duration::from_millis(20)),
        }
    }

    #[test]
    fn one_outcome_per_record() {
        let mut t = Tally::default();
        t.add(&ev("a", Outcome::Created, false));
        t.add(&ev("a", Outcome::Unchanged, true));
        t.add(&ev("b", Outcome::Failed, false));
        t.add(&ev("b", Outcome::Created, false));
        t.add(&ev("c", Outcome::Unchanged, true));
        assert_eq!(t.resolved(), 3);
        assert_eq!(t.count(Outcome::Created), 2, "a, and b on its retry");
        assert_eq!(t.count(Outcome::Synced), 1, "c, synced before a crash");
        assert_eq!(t.count(Outcome::Failed), 0);
        assert_eq!(
            t.of_type(EntityType::Show),
            TypeCounts {
                synced: 3,
                failed: 0,
                discarded: 0,
                throttled: 0
            }
        );
        assert_eq!(t.percentile_of(EntityType::Show, 0.5), Some(20));
        assert_eq!(t.percentile_of(EntityType::Asset, 0.5), None);
        assert_eq!(t.of_type(EntityType::Episode), TypeCounts::default());
        assert_eq!(percentile(&[5, 1, 9, 3], 0.5), Some(3));
        assert_eq!(percentile(&[5, 1, 9, 3], 0.95), Some(9));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
