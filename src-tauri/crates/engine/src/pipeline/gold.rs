//! Gold: after each run, a catalog snapshot and aggregates as CSV for a BI tool
//! (QuickSight, Excel): counts by show, genre, content rating and sync status, and sync
//! health by day. Each file is replaced by the latest run.

use super::land::date_of;
use super::record::CanonicalRecord;
use crate::ports::{ObjectStore, Record, RecordStatus, Run, StateStore, StoreError};
use crate::EntityType;
use std::collections::{BTreeMap, HashMap};

/// Page size when reading the state for the snapshot.
const PAGE: usize = 1000;

/// Every record of one status, all pages.
pub async fn all_with_status(
    state: &dyn StateStore,
    status: RecordStatus,
) -> Result<Vec<Record>, StoreError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state.query(status, None, PAGE, after.as_deref()).await?;
        out.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

fn csv_bytes(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(header);
    for r in rows {
        let cells: Vec<String> = r
            .into_iter()
            .map(|c| crate::annotate::escape_formula(&c).into_owned())
            .collect();
        let _ = w.write_record(&cells);
    }
    w.into_inner().unwrap_or_default()
}

/// Write the gold files; returns their keys.
pub async fn write_gold(
    state: &dyn StateStore,
    objects: &dyn ObjectStore,
) -> Result<Vec<String>, StoreError> {
    let mut records = Vec::new();
    for s in [
        RecordStatus::Synced,
        RecordStatus::Failed,
        RecordStatus::Discarded,
    ] {
        records.extend(all_with_status(state, s).await?);
    }
    let parsed: Vec<(Record, Option<CanonicalRecord>)> = records
        .into_iter()
        .map(|r| {
            let c = r.payload.as_deref().and_then(CanonicalRecord::from_json);
            (r, c)
        })
        .collect();
    // Which show each record belongs to, following parents up.
    let mut parent_of: HashMap<(EntityType, String), (EntityType, String)> = HashMap::new();
    let mut titles: HashMap<String, String> = HashMap::new();
    for (_, c) in &parsed {
        if let Some(c) = c {
            if let Some(p) = c.parent() {
                parent_of.insert((c.entity, c.key.clone()), (p.entity, p.key));
            }
            if c.entity == EntityType::Show {
                titles.insert(
                    c.key.clone(),
                    c.fields.get("title").cloned().unwrap_or_default(),
                );
            }
        }
    }
    let show_of = |entity: EntityType, key: &str| -> String {
        let mut at = (entity, key.to_string());
        for _ in 0..4 {
            if at.0 == EntityType::Show {
                return at.1;
            }
            match parent_of.get(&at) {
                Some(p) => at = p.clone(),
                None => return String::new(),
            }
        }
        String::new()
    };
    let mut snapshot = Vec::new();
    let mut by_show: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    let mut by_genre: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_rating: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_status: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (r, c) in &parsed {
        let field = |n: &str| {
            c.as_ref()
                .and_then(|c| c.fields.get(n).cloned())
                .unwrap_or_default()
        };
        let show = show_of(r.key.entity, &r.key.key);
        *by_status
            .entry((r.key.entity.to_string(), r.status.as_str().to_string()))
            .or_insert(0) += 1;
        if r.status == RecordStatus::Synced {
            by_show.entry(show.clone()).or_default()[r.key.entity.index()] += 1;
            match r.key.entity {
                EntityType::Show => *by_genre.entry(field("genre")).or_insert(0) += 1,
                EntityType::Asset => *by_rating.entry(field("content_rating")).or_insert(0) += 1,
                _ => {}
            }
        }
        snapshot.push(vec![
            r.key.entity.to_string(),
            r.key.key.clone(),
            r.target_id.clone().unwrap_or_default(),
            r.status.as_str().to_string(),
            show,
            field("title"),
            field("genre"),
            field("content_rating"),
            r.last_error
                .as_ref()
                .map(|e| e.code.clone())
                .unwrap_or_default(),
            r.run_id.clone().unwrap_or_default(),
        ]);
    }
    let runs = state.list_runs(1000).await?;
    let files = vec![
        (
            "gold/catalog/snapshot.csv",
            csv_bytes(
                &[
                    "type",
                    "key",
                    "target_id",
                    "status",
                    "show_key",
                    "title",
                    "genre",
                    "content_rating",
                    "error_code",
                    "run_id",
                ],
                snapshot,
            ),
        ),
        (
            "gold/aggregates/counts_by_show.csv",
            csv_bytes(
                &[
                    "show_key",
                    "show_title",
                    "shows",
                    "seasons",
                    "episodes",
                    "assets",
                ],
                by_show.into_iter().map(|(k, n)| {
                    let mut row = vec![titles.get(&k).cloned().unwrap_or_default()];
                    row.extend(n.iter().map(u64::to_string));
                    row.insert(0, k);
                    row
                }),
            ),
        ),
        (
            "gold/aggregates/counts_by_genre.csv",
            csv_bytes(
                &["genre", "shows"],
                by_genre.into_iter().map(|(k, n)| vec![k, n.to_string()]),
            ),
        ),
        (
            "gold/aggregates/counts_by_content_rating.csv",
            csv_bytes(
                &["content_rating", "assets"],
                by_rating.into_iter().map(|(k, n)| vec![k, n.to_string()]),
            ),
        ),
        (
            "gold/aggregates/counts_by_status.csv",
            csv_bytes(
                &["type", "status", "records"],
                by_status
                    .into_iter()
                    .map(|((t, s), n)| vec![t, s, n.to_string()]),
            ),
        ),
        (
            "gold/aggregates/sync_health_by_day.csv",
            health_by_day(&runs),
        ),
    ];
    let mut keys = Vec::new();
    for (key, body) in files {
        objects.put(key, body, "text/csv").await?;
        keys.push(key.to_string());
    }
    Ok(keys)
}

/// Per day: runs, synced, failed, 429s, and the worst p50/p95 latency of its runs.
fn health_by_day(runs: &[Run]) -> Vec<u8> {
    let mut days: BTreeMap<String, [u64; 6]> = BTreeMap::new();
    for r in runs
        .iter()
        .filter(|r| r.kind == crate::ports::RunKind::Sync)
    {
        let d = days.entry(date_of(r.started_at_ms)).or_default();
        let c = |k: &str| r.counts.get(k).copied().unwrap_or(0);
        d[0] += 1;
        d[1] += c("synced");
        d[2] += c("failed");
        d[3] += c("throttled");
        d[4] = d[4].max(c("latency_p50_ms"));
        d[5] = d[5].max(c("latency_p95_ms"));
    }
    csv_bytes(
        &[
            "date",
            "runs",
            "synced",
            "failed",
            "throttled",
            "latency_p50_ms",
            "latency_p95_ms",
        ],
        days.into_iter().map(|(d, v)| {
            let mut row = vec![d];
            row.extend(v.iter().map(u64::to_string));
            row
        }),
    )
}
