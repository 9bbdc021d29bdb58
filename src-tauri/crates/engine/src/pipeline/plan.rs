//! Plan: validate the files (parents first) and compare each valid record's content
//! hash with the sync state — `new`, `changed` (with the field diff), `unchanged`, or
//! `blocked` (its parent is neither in these files nor synced). Nothing is written.
//!
//! Streaming: validation runs on its own thread and hands records over a bounded
//! channel; state is read in batches of [`MAX_BATCH_GET`] keys. Memory holds the keys
//! that can be parents, never the records.

use super::record::{CanonicalRecord, FieldChange};
use crate::annotate::AnnotatedCsv;
use crate::ports::{Record, RecordKey, RecordStatus, StateStore, StoreError, MAX_BATCH_GET};
use crate::validate::{self, FileHeader, RowSink, RowView, RunReport};
use crate::EntityType;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What the sync will do with a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    New,
    Changed,
    Unchanged,
    Blocked,
    /// New to us, of a type the credentials may not create (a station's shows): the
    /// worker looks it up and records it, and never writes it.
    Resolve,
    /// Changed, of a type the credentials may not change (a station's shows and
    /// seasons): reported, not sent.
    NotWritable,
}

/// One planned record, as the plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedRecord {
    #[serde(rename = "type")]
    pub entity: EntityType,
    pub key: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<FieldChange>,
    /// The missing parent, as `type#key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
}

/// Counts are exact; `records` is capped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanCounts {
    pub rows: u64,
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub blocked: u64,
    pub rejected: u64,
    /// Looked up, not written (see [`Action::Resolve`]).
    pub resolve: u64,
    /// Changed but not writable with the profile's access.
    pub not_writable: u64,
}

impl PlanCounts {
    fn add(&mut self, action: Action) {
        match action {
            Action::New => self.new += 1,
            Action::Changed => self.changed += 1,
            Action::Unchanged => self.unchanged += 1,
            Action::Blocked => self.blocked += 1,
            Action::Resolve => self.resolve += 1,
            Action::NotWritable => self.not_writable += 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub validate: validate::Options,
    /// Keep the annotated CSV of each file's rejected rows (for the `rejected/` layer).
    pub keep_rejected: bool,
    /// What the target's credentials may write.
    pub access: crate::target::Access,
    /// Parents that come in other files, maybe later (the deployed ingest takes one
    /// uploaded file per event; the other files of its upload folder hold these): a
    /// record whose parent is here is planned as usual, not blocked, and its consumer
    /// waits for the parent.
    pub parents_elsewhere: Option<std::sync::Arc<std::collections::HashSet<RecordKey>>>,
}

/// A planned record handed to the caller (the sync enqueues `new` and `changed`).
pub struct Planned<'a> {
    pub record: &'a CanonicalRecord,
    pub hash: &'a str,
    pub action: Action,
    pub diff: &'a [FieldChange],
    pub blocked_by: Option<&'a RecordKey>,
    /// The state as it was read (for `changed`: what the target has).
    pub prior: Option<&'a Record>,
}

/// One file's rejected rows as an annotated CSV.
pub struct Rejected {
    pub entity: EntityType,
    pub path: PathBuf,
    pub csv: Vec<u8>,
}

pub struct PlanOutput {
    pub counts: PlanCounts,
    pub validation: RunReport,
    pub rejected: Vec<Rejected>,
    /// Target ids the plan read (records and parents), for the workers' parent cache.
    pub known_ids: HashMap<RecordKey, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("reading the sync state: {0}")]
    State(#[from] StoreError),
    #[error("writing the rejected rows: {0}")]
    Io(#[from] io::Error),
}

/// Sends valid rows to the planner as canonical records; keeps rejected rows.
struct PlanSink {
    entity: EntityType,
    columns: Vec<(&'static crate::schema::Field, usize)>,
    tx: tokio::sync::mpsc::Sender<CanonicalRecord>,
    rejected: Option<AnnotatedCsv<SharedBuf>>,
}

#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl RowSink for PlanSink {
    fn wants_valid(&self) -> bool {
        true
    }
    fn row(&mut self, row: &RowView<'_>) -> io::Result<()> {
        if !row.valid {
            return match &mut self.rejected {
                Some(csv) => csv.row(row),
                None => Ok(()),
            };
        }
        let cells = self.columns.iter().map(|&(field, i)| {
            let bytes = row.record.get(i).unwrap_or_default();
            (field, std::str::from_utf8(bytes).unwrap_or_default())
        });
        let record = CanonicalRecord::from_cells(self.entity, cells);
        self.tx
            .blocking_send(record)
            .map_err(|_| io::Error::other("the planner stopped"))
    }
    fn finish(&mut self) -> io::Result<()> {
        match &mut self.rejected {
            Some(csv) => csv.finish(),
            None => Ok(()),
        }
    }
}

/// Plan `paths` against `state`, calling `each` for every valid record in parents-first
/// order.
pub async fn plan(
    paths: &[PathBuf],
    opts: &PlanOptions,
    state: &dyn StateStore,
    mut each: impl FnMut(Planned<'_>),
) -> Result<PlanOutput, PlanError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<CanonicalRecord>(4 * MAX_BATCH_GET);
    let rejected: Arc<Mutex<Vec<(EntityType, PathBuf, SharedBuf)>>> = Arc::default();
    let validator = {
        let (paths, vopts, rejected) = (paths.to_vec(), opts.validate.clone(), rejected.clone());
        let keep = opts.keep_rejected;
        std::thread::spawn(move || {
            validate::validate_paths(&paths, &vopts, |h: &FileHeader<'_>| {
                let buf = SharedBuf::default();
                let csv = if keep {
                    rejected.lock().unwrap_or_else(|e| e.into_inner()).push((
                        h.entity_type,
                        h.path.to_path_buf(),
                        buf.clone(),
                    ));
                    Some(AnnotatedCsv::new(buf, h.header)?)
                } else {
                    None
                };
                Ok(Some(Box::new(PlanSink {
                    entity: h.entity_type,
                    columns: h.columns.clone(),
                    tx: tx.clone(),
                    rejected: csv,
                }) as Box<dyn RowSink>))
            })
        })
    };
    let mut planner = Planner {
        state_empty: state_is_empty(state).await?,
        access: opts.access,
        parents_elsewhere: opts.parents_elsewhere.clone(),
        ..Planner::default()
    };
    let mut chunk: Vec<CanonicalRecord> = Vec::with_capacity(MAX_BATCH_GET);
    while let Some(record) = rx.recv().await {
        if chunk.first().is_some_and(|f| f.entity != record.entity) || chunk.len() == MAX_BATCH_GET
        {
            planner.classify(state, &mut chunk, &mut each).await?;
        }
        chunk.push(record);
    }
    planner.classify(state, &mut chunk, &mut each).await?;
    let validation = validator
        .join()
        .map_err(|_| io::Error::other("validation stopped unexpectedly"))??;
    planner.counts.rows = validation.rows();
    planner.counts.rejected = validation.invalid();
    let rejected = std::mem::take(&mut *rejected.lock().unwrap_or_else(|e| e.into_inner()))
        .into_iter()
        .map(|(entity, path, buf)| Rejected {
            entity,
            path,
            csv: std::mem::take(&mut *buf.0.lock().unwrap_or_else(|e| e.into_inner())),
        })
        .filter(|r| r.csv.iter().filter(|&&b| b == b'\n').count() > 1)
        .collect();
    Ok(PlanOutput {
        counts: planner.counts,
        validation,
        rejected,
        known_ids: planner.known_ids,
    })
}

/// Whether the state holds no record at all (a first import): then the planner reads
/// nothing per record, which on a first sync halves the state reads. One query per
/// status. On DynamoDB the index behind it is read eventually, so a record written a
/// moment ago may be missed and planned as new: the worker reads the state again,
/// consistently, before it calls the target, so such a record is skipped or updated,
/// never created twice.
async fn state_is_empty(state: &dyn StateStore) -> Result<bool, StoreError> {
    for status in RecordStatus::ALL {
        if !state.query(status, None, 1, None).await?.items.is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}

#[derive(Default)]
struct Planner {
    access: crate::target::Access,
    parents_elsewhere: Option<std::sync::Arc<std::collections::HashSet<RecordKey>>>,
    /// The state held no record when the plan began: nothing to read.
    state_empty: bool,
    counts: PlanCounts,
    /// Keys of records of these files that will exist once the run is done, by type.
    coming: [HashSet<String>; 3],
    /// Parents outside the files: whether the state has a target id for them.
    parent_synced: HashMap<RecordKey, bool>,
    known_ids: HashMap<RecordKey, String>,
}

impl Planner {
    async fn classify(
        &mut self,
        state: &dyn StateStore,
        chunk: &mut Vec<CanonicalRecord>,
        each: &mut impl FnMut(Planned<'_>),
    ) -> Result<(), StoreError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let parents: Vec<Option<RecordKey>> = chunk.iter().map(CanonicalRecord::parent).collect();
        let mut wanted: Vec<RecordKey> = chunk.iter().map(CanonicalRecord::record_key).collect();
        let mut unknown: Vec<RecordKey> = parents
            .iter()
            .flatten()
            .filter(|p| !self.is_coming(p) && !self.parent_synced.contains_key(p))
            .cloned()
            .collect();
        unknown.sort();
        unknown.dedup();
        wanted.extend(unknown.iter().cloned());
        let mut found: HashMap<RecordKey, Record> = HashMap::new();
        if self.state_empty {
            wanted.clear();
        }
        for keys in wanted.chunks(MAX_BATCH_GET) {
            for r in state.batch_get(keys).await? {
                found.insert(r.key.clone(), r);
            }
        }
        for p in unknown {
            let synced = found.get(&p).and_then(|r| r.target_id.clone());
            if let Some(id) = &synced {
                self.known_ids.insert(p.clone(), id.clone());
            }
            self.parent_synced.insert(p, synced.is_some());
        }
        for (record, parent) in chunk.drain(..).zip(parents) {
            let key = record.record_key();
            let prior = found.get(&key);
            let hash = record.hash();
            let missing = parent.filter(|p| {
                !self
                    .parents_elsewhere
                    .as_ref()
                    .is_some_and(|e| e.contains(p))
                    && !self.is_coming(p)
                    && !self.parent_synced.get(p).copied().unwrap_or(false)
            });
            let mut diff = Vec::new();
            let action = if missing.is_some() {
                Action::Blocked
            } else {
                match prior {
                    Some(p)
                        if p.hash == hash
                            && matches!(
                                p.status,
                                RecordStatus::Synced | RecordStatus::Discarded
                            ) =>
                    {
                        Action::Unchanged
                    }
                    Some(p) if p.target_id.is_some() => {
                        let old = p
                            .payload
                            .as_deref()
                            .and_then(CanonicalRecord::from_json)
                            .map(|r| r.fields)
                            .unwrap_or_default();
                        diff = record.diff(&old);
                        if self.access.may_update(record.entity) {
                            Action::Changed
                        } else {
                            Action::NotWritable
                        }
                    }
                    _ if !self.access.may_create(record.entity) => Action::Resolve,
                    _ => Action::New,
                }
            };
            if let Some(id) = prior.and_then(|p| p.target_id.clone()) {
                self.known_ids.insert(key.clone(), id);
            }
            if action != Action::Blocked && record.entity != EntityType::Asset {
                self.coming[record.entity.index()].insert(record.key.clone());
            }
            self.counts.add(action);
            each(Planned {
                record: &record,
                hash: &hash,
                action,
                diff: &diff,
                blocked_by: missing.as_ref(),
                prior,
            });
        }
        Ok(())
    }

    fn is_coming(&self, p: &RecordKey) -> bool {
        self.coming
            .get(p.entity.index())
            .is_some_and(|s| s.contains(&p.key))
    }
}
