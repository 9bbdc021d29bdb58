//! Triage: failures grouped by error code; one failure in full; retry (as it is, or
//! with edited fields revalidated first) by re-enqueueing it; discard with a reason.
//! Every action is recorded as a run of kind `triage`, with who and when.
//!
//! State queries by status go through an index that DynamoDB reads eventually
//! consistently, so every action re-reads the record it acts on and writes it
//! conditionally on the version it read.

use super::enqueue::{enqueue, EnqueueError, QueuedRecord};
use super::gold::all_with_status;
use super::record::CanonicalRecord;
use crate::finding::{Finding, Severity};
use crate::gen::Rng;
use crate::ingest::CsvSource;
use crate::ports::{
    Backend, Clock, Expect, LastError, Record, RecordKey, RecordStatus, Run, RunKind, StoreError,
    SystemClock, Written,
};
use crate::retry::RetryPolicy;
use crate::validate::{self, FileOutcome};
use crate::EntityType;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Failures sharing one error code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureGroup {
    pub code: String,
    pub count: u64,
    /// The target's answer of one of them.
    pub sample: String,
    /// Up to 20 of the failed records, as `type#key`.
    pub records: Vec<String>,
}

/// One failure in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureDetail {
    #[serde(rename = "type")]
    pub entity: EntityType,
    pub key: String,
    pub status: RecordStatus,
    pub code: String,
    /// The target's answer, or what went wrong.
    pub message: String,
    pub attempts: u32,
    pub target_id: Option<String>,
    pub run_id: Option<String>,
    pub updated_at_ms: i64,
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    #[error("no failure {0}: see `metasync failures list`")]
    NotFailed(String),
    #[error("{key}: {field} is not a {entity} column")]
    UnknownField {
        key: String,
        field: String,
        entity: EntityType,
    },
    #[error("{key}: the edited record is not valid: {findings}")]
    Invalid { key: String, findings: String },
    #[error("{0} changed while we worked on it; look at it again")]
    Changed(String),
}

/// All current failures, grouped by code (largest group first).
pub async fn list(backend: &Backend) -> Result<Vec<FailureGroup>, StoreError> {
    let failed = all_with_status(backend.state.as_ref(), RecordStatus::Failed).await?;
    let mut groups: BTreeMap<String, FailureGroup> = BTreeMap::new();
    for r in failed {
        let (code, message) = r
            .last_error
            .as_ref()
            .map_or(("unknown".to_string(), String::new()), |e| {
                (e.code.clone(), e.message.clone())
            });
        let g = groups.entry(code.clone()).or_insert_with(|| FailureGroup {
            code,
            count: 0,
            sample: message,
            records: Vec::new(),
        });
        g.count += 1;
        if g.records.len() < 20 {
            g.records.push(r.key.id());
        }
    }
    let mut out: Vec<FailureGroup> = groups.into_values().collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
    Ok(out)
}

/// Parse `type#key` or `type:key`.
pub fn parse_key(s: &str) -> Option<RecordKey> {
    let (t, k) = s.split_once('#').or_else(|| s.split_once(':'))?;
    Some(RecordKey::new(t.parse().ok()?, k.trim()))
}

pub async fn show(backend: &Backend, key: &RecordKey) -> Result<FailureDetail, TriageError> {
    let r = backend
        .state
        .get(key)
        .await?
        .filter(|r| r.last_error.is_some() || r.status == RecordStatus::Failed)
        .ok_or_else(|| TriageError::NotFailed(key.id()))?;
    Ok(detail(&r))
}

fn detail(r: &Record) -> FailureDetail {
    let e = r.last_error.clone().unwrap_or(LastError {
        code: String::new(),
        message: String::new(),
        attempts: 0,
    });
    FailureDetail {
        entity: r.key.entity,
        key: r.key.key.clone(),
        status: r.status,
        code: e.code,
        message: e.message,
        attempts: e.attempts,
        target_id: r.target_id.clone(),
        run_id: r.run_id.clone(),
        updated_at_ms: r.updated_at_ms,
        fields: r
            .payload
            .as_deref()
            .and_then(CanonicalRecord::from_json)
            .map(|c| c.fields)
            .unwrap_or_default(),
    }
}

/// Which failures an action takes.
#[derive(Debug, Clone)]
pub enum Selection {
    One(RecordKey),
    Code(String),
    All,
}

async fn select(backend: &Backend, sel: &Selection) -> Result<Vec<Record>, TriageError> {
    Ok(match sel {
        Selection::One(k) => {
            let r = backend.state.get(k).await?;
            match r.filter(|r| r.status == RecordStatus::Failed) {
                Some(r) => vec![r],
                None => return Err(TriageError::NotFailed(k.id())),
            }
        }
        Selection::Code(code) => {
            let mut out = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = backend
                    .state
                    .query(RecordStatus::Failed, Some(code), 1000, after.as_deref())
                    .await?;
                out.extend(page.items);
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            // The index may lag: act only on what the table says now.
            let mut fresh = Vec::new();
            for r in out {
                if let Some(now) = backend.state.get(&r.key).await? {
                    if now.status == RecordStatus::Failed {
                        fresh.push(now);
                    }
                }
            }
            fresh
        }
        Selection::All => {
            let mut fresh = Vec::new();
            for r in all_with_status(backend.state.as_ref(), RecordStatus::Failed).await? {
                if let Some(now) = backend.state.get(&r.key).await? {
                    if now.status == RecordStatus::Failed {
                        fresh.push(now);
                    }
                }
            }
            fresh
        }
    })
}

/// Check an edited record with every rule a file row gets (cell, row; references are
/// checked when it is synced).
pub fn revalidate(record: &CanonicalRecord) -> Result<(), Vec<Finding>> {
    let fields = record.entity.fields();
    let mut w = csv::Writer::from_writer(Vec::new());
    let header: Vec<&str> = fields.iter().map(|f| f.name).collect();
    let row: Vec<&str> = fields
        .iter()
        .map(|f| record.fields.get(f.name).map_or("", String::as_str))
        .collect();
    let bytes = (|| {
        w.write_record(&header).ok()?;
        w.write_record(&row).ok()?;
        w.into_inner().ok()
    })()
    .unwrap_or_default();
    let path = PathBuf::from(format!("{}.csv", record.key));
    let source = CsvSource::from_reader(&path, Box::new(std::io::Cursor::new(bytes)));
    let opts = validate::Options {
        entity_type: Some(record.entity),
        ..Default::default()
    };
    let report = validate::validate_sources(vec![(path, source)], &opts, |_| Ok(None))
        .map_err(|_| Vec::new())?;
    let findings: Vec<Finding> = report
        .files
        .into_iter()
        .flat_map(|(_, o)| match o {
            FileOutcome::Checked(r) => r.findings,
            FileOutcome::Unusable(_) => Vec::new(),
        })
        .filter(|f| f.severity == Severity::Error)
        .collect();
    if findings.is_empty() {
        Ok(())
    } else {
        Err(findings)
    }
}

/// Put edited fields into a record as a file row would give them (an empty value
/// clears the field).
pub fn apply_edits(c: &mut CanonicalRecord, edits: &[(String, String)]) -> Result<(), TriageError> {
    for (field, value) in edits {
        let Some(f) = c.entity.field(field) else {
            return Err(TriageError::UnknownField {
                key: format!("{}#{}", c.entity, c.key),
                field: field.clone(),
                entity: c.entity,
            });
        };
        match super::record::canonical_value(f, value) {
            Some(v) => c.fields.insert(field.clone(), v),
            None => c.fields.remove(field),
        };
    }
    Ok(())
}

/// What a retry with these edits would find wrong with the failed record, before
/// anything is sent (the window checks as staff type).
pub async fn check_edits(
    backend: &Backend,
    key: &RecordKey,
    edits: &[(String, String)],
) -> Result<Vec<Finding>, TriageError> {
    let r = backend
        .state
        .get(key)
        .await?
        .ok_or_else(|| TriageError::NotFailed(key.id()))?;
    let mut c = r
        .payload
        .as_deref()
        .and_then(CanonicalRecord::from_json)
        .ok_or_else(|| TriageError::NotFailed(key.id()))?;
    apply_edits(&mut c, edits)?;
    Ok(revalidate(&c).err().unwrap_or_default())
}

/// What a triage action did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TriageResult {
    pub action: String,
    /// The triage run that records it.
    pub run_id: String,
    /// Records acted on, as `type#key`.
    pub records: Vec<String>,
}

async fn record_action(
    backend: &Backend,
    who: &str,
    profile: &str,
    note: String,
    keys: &[String],
) -> Result<String, StoreError> {
    let id = format!("triage-{}", super::sync::new_run_id());
    let now = SystemClock.now_ms();
    backend
        .state
        .put_run(&Run {
            id: id.clone(),
            kind: RunKind::Triage,
            profile: profile.to_string(),
            note: Some(note),
            who: who.to_string(),
            started_at_ms: now,
            finished_at_ms: Some(now),
            file_hashes: keys.to_vec(),
            counts: BTreeMap::from([("records".to_string(), keys.len() as u64)]),
        })
        .await?;
    Ok(id)
}

/// Re-enqueue failures (with `edits` applied and revalidated first when given). The
/// record's state goes back to pending so the worker sends it again; the worker finds
/// it first in case an earlier attempt reached the target.
pub async fn retry(
    backend: &Backend,
    sel: &Selection,
    edits: &[(String, String)],
    who: &str,
    profile: &str,
    policy: &RetryPolicy,
) -> Result<TriageResult, TriageError> {
    let records = select(backend, sel).await?;
    let mut queued: [Vec<QueuedRecord>; 4] = Default::default();
    let mut keys = Vec::new();
    // Check every edit before anything changes: all or nothing.
    let mut prepared = Vec::new();
    for r in records {
        let mut c = r
            .payload
            .as_deref()
            .and_then(CanonicalRecord::from_json)
            .ok_or_else(|| TriageError::NotFailed(r.key.id()))?;
        if !edits.is_empty() {
            apply_edits(&mut c, edits)?;
            revalidate(&c).map_err(|findings| TriageError::Invalid {
                key: r.key.id(),
                findings: findings
                    .iter()
                    .map(|f| format!("{} [{}]", f.message, f.code.as_str()))
                    .collect::<Vec<_>>()
                    .join("; "),
            })?;
        }
        prepared.push((r, c));
    }
    let now = SystemClock.now_ms();
    for (r, c) in prepared {
        let hash = c.hash();
        let mut next = r.clone();
        next.status = RecordStatus::Pending;
        next.hash = hash.clone();
        next.version = r.version + 1;
        next.payload = Some(c.to_json());
        next.updated_at_ms = now;
        if backend.state.put(&next, Expect::Version(r.version)).await? == Written::Conflict {
            return Err(TriageError::Changed(r.key.id()));
        }
        keys.push(r.key.id());
        queued[c.entity.index()].push(QueuedRecord {
            record: c,
            hash,
            changed: Vec::new(),
            may_exist: true,
        });
    }
    let mut rng = Rng::new(crate::ports::jitter_seed());
    let run_id = record_action(
        backend,
        who,
        profile,
        if edits.is_empty() {
            "retry".to_string()
        } else {
            format!(
                "retry with {}",
                edits
                    .iter()
                    .map(|(f, v)| format!("{f}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        &keys,
    )
    .await?;
    for entity in EntityType::ALL {
        let v = std::mem::take(&mut queued[entity.index()]);
        if !v.is_empty() {
            enqueue(
                backend.queue(entity).as_ref(),
                &run_id,
                v,
                10,
                policy,
                &mut rng,
            )
            .await?;
        }
    }
    Ok(TriageResult {
        action: "retry".into(),
        run_id,
        records: keys,
    })
}

/// Give up on failures, with a reason staff can read later.
pub async fn discard(
    backend: &Backend,
    sel: &Selection,
    reason: &str,
    who: &str,
    profile: &str,
) -> Result<TriageResult, TriageError> {
    let records = select(backend, sel).await?;
    let now = SystemClock.now_ms();
    let mut keys = Vec::new();
    for r in records {
        let mut next = r.clone();
        next.status = RecordStatus::Discarded;
        next.version = r.version + 1;
        next.updated_at_ms = now;
        if let Some(e) = &mut next.last_error {
            e.message = format!("{} (discarded by {who}: {reason})", e.message);
        }
        if backend.state.put(&next, Expect::Version(r.version)).await? == Written::Conflict {
            return Err(TriageError::Changed(r.key.id()));
        }
        keys.push(r.key.id());
    }
    let run_id = record_action(backend, who, profile, format!("discard: {reason}"), &keys).await?;
    Ok(TriageResult {
        action: "discard".into(),
        run_id,
        records: keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edited_record_is_checked_like_a_row() {
        let t = EntityType::Show;
        let f = |n| t.field(n).expect("field");
        let mut c = CanonicalRecord::from_cells(
            t,
            [
                (f("show_key"), "s-1"),
                (f("slug"), "owls"),
                (f("title"), "Owls"),
            ],
        );
        assert!(revalidate(&c).is_ok());
        c.fields.insert("slug".into(), "Not A Slug".into());
        let findings = revalidate(&c).expect_err("bad slug");
        assert_eq!(findings[0].column.as_deref(), Some("slug"));
        assert_eq!(
            parse_key("episode#ep-1"),
            Some(RecordKey::new(EntityType::Episode, "ep-1"))
        );
        assert_eq!(parse_key("nope"), None);
    }
}
