//! The workbench session every surface shares: files open for fixing, each validated
//! in the background (one pass over all open files, restarted when a file is opened
//! or a cell changes), with progress to a listener. Inputs and outputs are the IPC
//! types (ts-rs); windows of rows go out in a compact binary form ([`encode_window`]).

use metasync_engine::finding::{Finding, Severity};
use metasync_engine::mapping::{self as mapping, Mapping};
use metasync_engine::schema::is_canonical_column;
use metasync_engine::validate;
use metasync_engine::workbench::{
    self, CheckInput, Document, Fix, Progress, SaveFormat, Scope, Source, View, WindowRow,
    WorkbenchError,
};
use metasync_engine::Code;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use ts_rs::TS;

/// How often progress is reported during a pass (the window wants ≥ 4 a second).
pub const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// Files open at once.
pub const MAX_OPEN_FILES: usize = 16;

/// A file as the window shows it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FileSummary {
    pub id: u32,
    pub name: String,
    pub path: String,
    pub entity_type: Option<String>,
    pub encoding: String,
    pub delimiter: String,
    pub header: Vec<String>,
    /// Rows readable now (all once indexed).
    pub rows: u64,
    pub valid: u64,
    pub invalid: u64,
    pub warnings: u64,
    pub blank_rows: u64,
    pub counts: Vec<CodeCount>,
    pub file_findings: Vec<FindingView>,
    pub unusable: Option<String>,
    /// A validation pass is running over it.
    pub checking: bool,
    pub edited_cells: u64,
    pub can_undo: bool,
    /// The saved mapping profile applied to this file, if any.
    pub mapping_profile: Option<String>,
    /// Columns no field matches, a required column missing, or no usable header: the
    /// mapping editor can help.
    pub needs_mapping: bool,
    /// Every row has been read (edits, saves and bulk fixes wait for it).
    pub indexed: bool,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct CodeCount {
    pub code: String,
    pub count: u64,
}

/// One finding, with the header position of the cell it points at.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FindingView {
    pub code: String,
    pub severity: String,
    /// 0-based data row, as the grid counts.
    pub row: Option<u64>,
    pub line: Option<u64>,
    pub column: Option<String>,
    pub column_index: Option<u32>,
    pub value: Option<String>,
    pub message: String,
    pub hint: String,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct FileProgress {
    pub id: u32,
    pub rows: u64,
    pub bytes: u64,
    pub size: u64,
}

/// What the listener hears.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkbenchEvent {
    /// During a pass, every [`PROGRESS_EVERY`].
    Progress { files: Vec<FileProgress> },
    /// A pass finished: every open file as it now stands.
    Checked { files: Vec<FileSummary> },
    /// A pass failed (not cancelled).
    Failed { message: String },
}

/// Which rows the grid shows.
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ViewArg {
    All,
    Invalid,
    Code { code: String },
}

/// A bulk fix.
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FixArg {
    Replace { find: String, with: String },
    Trim,
    Set { value: String },
    FillDown,
    Typography,
    UsDate,
    SlugFromTitle,
    DurationSeconds,
}

/// The cells a bulk fix looks at: a column, or the cells a finding code points at
/// (optionally in one column).
#[derive(Debug, Clone, Deserialize, TS)]
pub struct ScopeArg {
    pub column: Option<u32>,
    pub code: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct FixPreviewView {
    pub cells: u64,
    pub samples: Vec<FixSample>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct FixSample {
    pub row: u64,
    pub column: u32,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, Copy, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum SaveFormatArg {
    Original,
    Utf8,
}

/// The mapping editor's view of a file's header.
#[derive(Debug, Clone, Serialize, TS)]
pub struct MappingView {
    /// Detected, or named by the profile; `None` when the header says nothing.
    pub entity_type: Option<String>,
    pub columns: Vec<MappingColumn>,
    /// Every type's fields (the editor follows the type chosen or detected).
    pub types: Vec<TypeFields>,
    /// Required fields of the detected type no column maps to.
    pub unmapped_required: Vec<String>,
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct MappingColumn {
    pub index: u32,
    pub header: String,
    /// The first row's value, to recognise the column by.
    pub sample: String,
    pub mapped: Option<String>,
    pub candidates: Vec<MappingCandidate>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct MappingCandidate {
    pub field: String,
    /// 0 to 1.
    pub score: f64,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct TypeFields {
    pub entity_type: String,
    /// Its key column: mapping a column to it says what the rows are.
    pub key: String,
    pub fields: Vec<FieldInfo>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct FieldInfo {
    pub name: String,
    pub required: bool,
}

/// What the user chose in the mapping editor.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct MappingRequest {
    pub entity_type: Option<String>,
    pub columns: Vec<MappingChoice>,
}

#[derive(Debug, Clone, Deserialize, TS)]
pub struct MappingChoice {
    pub column: u32,
    /// `None`: the column is ignored.
    pub field: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct Saved {
    pub path: String,
    pub bytes: u64,
}

/// Where the desktop keeps mapping profiles: `$XDG_CONFIG_HOME/metasync/mappings`
/// (the platform's config folder elsewhere).
pub fn default_mappings_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("metasync").join("mappings"))
}

/// A refusal the window shows as is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkbenchFault {
    #[error("no open file has id {0}")]
    NoSuchFile(u32),
    #[error("{0} is already open")]
    AlreadyOpen(String),
    #[error("at most {MAX_OPEN_FILES} files can be open at once; close one first")]
    TooMany,
    #[error("{0}")]
    BadArgument(String),
    #[error(transparent)]
    Engine(#[from] WorkbenchError),
}

type Listener = Arc<dyn Fn(WorkbenchEvent) + Send + Sync>;

struct Open {
    id: u32,
    doc: Document,
    /// The saved profile applied to it: where it lives, and what it says.
    mapping: Option<(PathBuf, Mapping)>,
}

#[derive(Default)]
struct State {
    files: Vec<Open>,
    next_id: u32,
    generation: u64,
    running: Option<Arc<Progress>>,
}

/// The open files of one window (or one CLI run).
pub struct Workbench {
    state: Mutex<State>,
    listener: Mutex<Option<Listener>>,
    opts: validate::Options,
    /// Where mapping profiles are saved, one per header set (`None`: not saved).
    mappings_dir: Option<PathBuf>,
}

impl Default for Workbench {
    fn default() -> Self {
        Self::new(validate::Options::default())
    }
}

impl Workbench {
    pub fn new(opts: validate::Options) -> Self {
        Self {
            state: Mutex::default(),
            listener: Mutex::new(None),
            opts,
            mappings_dir: None,
        }
    }

    /// Save mapping profiles in `dir` and apply them to files with the same header set.
    pub fn with_mappings_dir(mut self, dir: PathBuf) -> Self {
        self.mappings_dir = Some(dir);
        self
    }

    /// The validation options of a pass: the session's, with each file's profile.
    fn options(&self, st: &State) -> validate::Options {
        let mut o = self.opts.clone();
        for f in &st.files {
            if let Some((_, m)) = &f.mapping {
                o.file_mappings
                    .insert(f.doc.source().path.clone(), m.clone());
            }
        }
        o
    }

    fn profile_path(&self, header: &[String]) -> Option<PathBuf> {
        self.mappings_dir
            .as_ref()
            .map(|d| d.join(format!("{}.toml", mapping::header_set_key(header))))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where events go (the window's channel). Replaces any earlier listener.
    pub fn listen(&self, f: impl Fn(WorkbenchEvent) + Send + Sync + 'static) {
        *self
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(f));
    }

    fn emit(&self, e: WorkbenchEvent) {
        let l = self
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(l) = l {
            l(e);
        }
    }

    /// Open files (from a drop, the dialog or the command line) and start validating.
    /// A file that cannot be read is refused with its reason; the others open.
    pub fn open_paths(self: &Arc<Self>, paths: &[PathBuf]) -> Vec<Result<FileSummary, String>> {
        let mut out = Vec::new();
        let mut opened = false;
        for p in paths {
            let r = self.open_one(p);
            opened |= r.is_ok();
            out.push(r.map_err(|e| e.to_string()));
        }
        if opened {
            self.start_check();
        }
        let st = self.state();
        out.into_iter()
            .map(|r| {
                r.map(|id| {
                    st.files
                        .iter()
                        .find(|f| f.id == id)
                        .map(|f| summary(f, st.running.is_some()))
                })
            })
            .map(|r| r.and_then(|s| s.ok_or_else(|| "the file was closed".to_string())))
            .collect()
    }

    fn open_one(&self, path: &Path) -> Result<u32, WorkbenchFault> {
        let path = path.canonicalize().map_err(|e| {
            WorkbenchFault::Engine(WorkbenchError::Io {
                path: path.to_owned(),
                source: e,
            })
        })?;
        {
            let st = self.state();
            if st.files.iter().any(|f| f.doc.source().path == path) {
                return Err(WorkbenchFault::AlreadyOpen(path.display().to_string()));
            }
            if st.files.len() >= MAX_OPEN_FILES {
                return Err(WorkbenchFault::TooMany);
            }
        }
        // Sniffing reads a little; done outside the lock.
        let doc = Document::new(Source::open(&path)?);
        // The same export as before: its saved profile applies at once.
        let mapping = self
            .profile_path(&doc.source().header)
            .filter(|p| p.is_file())
            .and_then(|p| Mapping::load(&p).ok().map(|m| (p, m)));
        let mut st = self.state();
        let id = st.next_id;
        st.next_id += 1;
        st.files.push(Open { id, doc, mapping });
        Ok(id)
    }

    pub fn close(self: &Arc<Self>, id: u32) -> Result<(), WorkbenchFault> {
        {
            let mut st = self.state();
            let before = st.files.len();
            st.files.retain(|f| f.id != id);
            if st.files.len() == before {
                return Err(WorkbenchFault::NoSuchFile(id));
            }
        }
        // References to the closed file no longer hold: check the rest again.
        self.start_check();
        Ok(())
    }

    /// Stop the running pass, if any (the files keep what the last full pass found).
    pub fn cancel(&self) {
        let files = {
            let mut st = self.state();
            let Some(p) = st.running.take() else { return };
            p.cancel.store(true, Ordering::Relaxed);
            // The pass's result, should it still arrive, is not wanted.
            st.generation += 1;
            st.files.iter().map(|f| summary(f, false)).collect()
        };
        // The window stops showing progress; files keep the last verdict they had.
        self.emit(WorkbenchEvent::Checked { files });
    }

    /// Validate every open file again (after a cancel, say).
    pub fn revalidate(self: &Arc<Self>) {
        self.start_check();
    }

    pub fn files(&self) -> Vec<FileSummary> {
        let st = self.state();
        let checking = st.running.is_some();
        st.files.iter().map(|f| summary(f, checking)).collect()
    }

    /// A document with the validation options that apply to it.
    /// Change a document (`f` returns the cells changed), re-check it at once, and
    /// start a full pass. The running pass is retired under the same lock as the
    /// change, so a pass that read the file before it can never install its verdict
    /// over the re-check's.
    fn mutate(
        self: &Arc<Self>,
        id: u32,
        f: impl FnOnce(&mut Document) -> Result<usize, WorkbenchFault>,
    ) -> Result<u64, WorkbenchFault> {
        let n = {
            let mut st = self.state();
            let opts = self.options(&st);
            let open = st
                .files
                .iter_mut()
                .find(|f| f.id == id)
                .ok_or(WorkbenchFault::NoSuchFile(id))?;
            let n = f(&mut open.doc)?;
            if n > 0 {
                open.doc.quick_check(&opts)?;
                if let Some(p) = st.running.take() {
                    p.cancel.store(true, Ordering::Relaxed);
                }
                st.generation += 1;
            }
            n
        };
        if n > 0 {
            self.start_check();
        }
        Ok(n as u64)
    }

    fn with_doc<T>(
        &self,
        id: u32,
        f: impl FnOnce(&mut Document) -> Result<T, WorkbenchFault>,
    ) -> Result<T, WorkbenchFault> {
        let mut st = self.state();
        let open = st
            .files
            .iter_mut()
            .find(|f| f.id == id)
            .ok_or(WorkbenchFault::NoSuchFile(id))?;
        f(&mut open.doc)
    }

    /// What the mapping editor shows for a file.
    pub fn mapping(&self, id: u32) -> Result<MappingView, WorkbenchFault> {
        let mut st = self.state();
        let open = st
            .files
            .iter_mut()
            .find(|f| f.id == id)
            .ok_or(WorkbenchFault::NoSuchFile(id))?;
        let header = open.doc.source().header.clone();
        let profile = open.mapping.as_ref();
        let (entity_type, cols) = mapping::suggest(
            &header,
            open.doc.checked().entity_type,
            profile.map(|(_, m)| m),
        );
        let first = open.doc.source().first_row();
        let types: Vec<TypeFields> = metasync_engine::EntityType::ALL
            .iter()
            .map(|t| TypeFields {
                entity_type: t.to_string(),
                key: t.key_column().into(),
                fields: t
                    .fields()
                    .iter()
                    .map(|f| FieldInfo {
                        name: f.name.into(),
                        required: f.required,
                    })
                    .collect(),
            })
            .collect();
        let unmapped_required = entity_type
            .map(|t| {
                t.fields()
                    .iter()
                    .filter(|f| {
                        f.required && !cols.iter().any(|c| c.mapped.as_deref() == Some(f.name))
                    })
                    .map(|f| f.name.to_string())
                    .collect()
            })
            .unwrap_or_default();
        Ok(MappingView {
            entity_type: entity_type.map(|t| t.to_string()),
            columns: cols
                .into_iter()
                .enumerate()
                .map(|(i, c)| MappingColumn {
                    index: i as u32,
                    sample: first.get(i).cloned().unwrap_or_default(),
                    header: c.header,
                    mapped: c.mapped,
                    candidates: c
                        .candidates
                        .into_iter()
                        .map(|k| MappingCandidate {
                            field: k.field.into(),
                            score: (k.score * 100.0).round() / 100.0,
                        })
                        .collect(),
                })
                .collect(),
            types,
            unmapped_required,
            profile: profile.map(|(p, _)| p.display().to_string()),
        })
    }

    /// Save the editor's choices as the profile of this header set, apply it to the
    /// file (and to any open file with the same header set), and validate again.
    /// Returns where the profile was written.
    pub fn save_mapping(
        self: &Arc<Self>,
        id: u32,
        req: &MappingRequest,
    ) -> Result<String, WorkbenchFault> {
        let entity_type = match req.entity_type.as_deref() {
            None | Some("") => None,
            Some(t) => Some(
                metasync_engine::EntityType::ALL
                    .into_iter()
                    .find(|e| e.to_string() == t)
                    .ok_or_else(|| {
                        WorkbenchFault::BadArgument(format!("unknown entity type \"{t}\""))
                    })?,
            ),
        };
        let header = {
            let st = self.state();
            let f = st
                .files
                .iter()
                .find(|f| f.id == id)
                .ok_or(WorkbenchFault::NoSuchFile(id))?;
            f.doc.source().header.clone()
        };
        let mut m = Mapping {
            entity_type,
            columns: Default::default(),
        };
        for c in &req.columns {
            let h = header.get(c.column as usize).ok_or_else(|| {
                WorkbenchFault::BadArgument(format!("column {} does not exist", c.column + 1))
            })?;
            if let Some(field) = c.field.as_deref().filter(|f| !f.is_empty()) {
                if !is_canonical_column(field) {
                    return Err(WorkbenchFault::BadArgument(format!(
                        "\"{field}\" is not a Metasync column"
                    )));
                }
                if m.columns.values().any(|v| v == field) {
                    return Err(WorkbenchFault::BadArgument(format!(
                        "two columns are mapped to {field}; keep one"
                    )));
                }
                m.columns.insert(h.clone(), field.to_string());
            }
        }
        let path = self.profile_path(&header).ok_or_else(|| {
            WorkbenchFault::BadArgument("mapping profiles cannot be saved in this session".into())
        })?;
        let text = m.to_toml();
        // The file is what `validate --mapping` reads: parse it back before using it.
        let parsed =
            Mapping::parse(&path, &text).map_err(|e| WorkbenchFault::BadArgument(e.to_string()))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_fault(dir, e))?;
        }
        std::fs::write(&path, text).map_err(|e| io_fault(&path, e))?;
        {
            let key = mapping::header_set_key(&header);
            let mut st = self.state();
            for f in st.files.iter_mut() {
                if mapping::header_set_key(&f.doc.source().header) == key {
                    f.mapping = Some((path.clone(), parsed.clone()));
                }
            }
        }
        self.start_check();
        Ok(path.display().to_string())
    }

    /// Rows `[start, start + count)` of a view, encoded for the grid.
    pub fn rows(
        &self,
        id: u32,
        view: &ViewArg,
        start: u64,
        count: u32,
    ) -> Result<Vec<u8>, WorkbenchFault> {
        let view = view_of(view)?;
        self.with_doc(id, |d| {
            let total = d.view_len(view);
            let rows = d.window(view, start, count as usize)?;
            Ok(encode_window(total, &rows))
        })
    }

    pub fn row_findings(&self, id: u32, row: u64) -> Result<Vec<FindingView>, WorkbenchFault> {
        let row = row_index(row)?;
        self.with_doc(id, |d| {
            Ok(d.findings(row).iter().map(|f| finding_view(d, f)).collect())
        })
    }

    /// The next (previous) row with an error, wrapping around.
    pub fn next_error(
        &self,
        id: u32,
        from: Option<u64>,
        forward: bool,
    ) -> Result<Option<u64>, WorkbenchFault> {
        let from = from.map(row_index).transpose()?;
        self.with_doc(id, |d| Ok(d.next_invalid(from, forward).map(u64::from)))
    }

    /// Position of a row in a view (for "go to row" inside a filter), if it is in it.
    pub fn position_in_view(
        &self,
        id: u32,
        view: &ViewArg,
        row: u64,
    ) -> Result<Option<u64>, WorkbenchFault> {
        let view = view_of(view)?;
        let r = row_index(row)?;
        self.with_doc(id, |d| {
            Ok(match view {
                View::All => (row < d.view_len(View::All)).then_some(row),
                v => d.view(v).binary_search(&r).ok().map(|p| p as u64),
            })
        })
    }

    /// Set one cell, then validate again.
    pub fn edit(
        self: &Arc<Self>,
        id: u32,
        row: u64,
        column: u32,
        value: String,
    ) -> Result<u64, WorkbenchFault> {
        let (r, c) = (row_index(row)?, col_index(column)?);
        self.mutate(id, |d| Ok(d.edit(vec![(r, c, value)])?))
    }

    pub fn preview_fix(
        &self,
        id: u32,
        fix: &FixArg,
        scope: &ScopeArg,
    ) -> Result<FixPreviewView, WorkbenchFault> {
        let (fix, scope) = (fix_of(fix), scope_of(scope)?);
        self.with_doc(id, |d| {
            let p = d.preview_fix(&fix, &scope)?;
            Ok(FixPreviewView {
                cells: p.cells,
                samples: p
                    .samples
                    .into_iter()
                    .map(|(row, column, before, after)| FixSample {
                        row: u64::from(row),
                        column: u32::from(column),
                        before,
                        after,
                    })
                    .collect(),
            })
        })
    }

    pub fn apply_fix(
        self: &Arc<Self>,
        id: u32,
        fix: &FixArg,
        scope: &ScopeArg,
    ) -> Result<u64, WorkbenchFault> {
        let (fix, scope) = (fix_of(fix), scope_of(scope)?);
        self.mutate(id, |d| Ok(d.apply_fix(&fix, &scope)?))
    }

    pub fn undo(self: &Arc<Self>, id: u32) -> Result<u64, WorkbenchFault> {
        self.mutate(id, |d| Ok(d.undo()))
    }

    /// Write the corrected file to `to` (never over the original).
    pub fn save(&self, id: u32, to: &Path, format: SaveFormatArg) -> Result<Saved, WorkbenchFault> {
        let format = match format {
            SaveFormatArg::Original => SaveFormat::Original,
            SaveFormatArg::Utf8 => SaveFormat::Utf8,
        };
        // The write runs on a snapshot, without holding the session.
        let (src, edits) =
            self.with_doc(id, |d| Ok((Arc::clone(d.source()), Arc::clone(d.edits()))))?;
        let doc = DocSnapshot { src, edits };
        let bytes = doc.save(to, format)?;
        Ok(Saved {
            path: to.display().to_string(),
            bytes,
        })
    }

    /// The open files as a plan or a sync reads them, with a pass's validation options
    /// (each file's mapping): a file without edits is read where it is; an edited one
    /// is first written, corrected and in its original format, under `dir` (its name
    /// kept). The originals are never written.
    pub fn sync_inputs(
        &self,
        dir: &Path,
    ) -> Result<(Vec<PathBuf>, validate::Options), WorkbenchFault> {
        let (snapshots, mut opts) = {
            let st = self.state();
            let snapshots: Vec<(DocSnapshot, bool)> = st
                .files
                .iter()
                .map(|f| {
                    let doc = DocSnapshot {
                        src: Arc::clone(f.doc.source()),
                        edits: Arc::clone(f.doc.edits()),
                    };
                    (doc, f.doc.edited_cells() > 0)
                })
                .collect();
            (snapshots, self.options(&st))
        };
        if snapshots.is_empty() {
            return Err(WorkbenchFault::BadArgument(
                "no file is open: open the files to sync first".into(),
            ));
        }
        let mut paths = Vec::with_capacity(snapshots.len());
        for (i, (doc, edited)) in snapshots.iter().enumerate() {
            let original = doc.src.path.clone();
            if !edited {
                paths.push(original);
                continue;
            }
            // One folder per file: two open files may share a name.
            let name = original.file_name().unwrap_or_default();
            let to = dir.join(i.to_string()).join(name);
            std::fs::create_dir_all(to.parent().unwrap_or(dir)).map_err(|e| io_fault(dir, e))?;
            doc.save(&to, SaveFormat::Original)?;
            if let Some(m) = opts.file_mappings.remove(&original) {
                opts.file_mappings.insert(to.clone(), m);
            }
            paths.push(to);
        }
        Ok((paths, opts))
    }

    /// Write the rows that still have errors as `validate --errors-out` does.
    pub fn export_errors(&self, id: u32, to: &Path) -> Result<u64, WorkbenchFault> {
        let (input, index, opts) = {
            let st = self.state();
            let index = st
                .files
                .iter()
                .position(|f| f.id == id)
                .ok_or(WorkbenchFault::NoSuchFile(id))?;
            (input_of(&st), index, self.options(&st))
        };
        Ok(workbench::export_errors(&input, index, &opts, to)?)
    }

    /// Start a pass over every open file, replacing the running one.
    fn start_check(self: &Arc<Self>) {
        let (input, ids, generation, progress, opts) = {
            let mut st = self.state();
            if let Some(p) = st.running.take() {
                p.cancel.store(true, Ordering::Relaxed);
            }
            st.generation += 1;
            if st.files.is_empty() {
                return;
            }
            let progress = Arc::new(Progress::new(st.files.len()));
            st.running = Some(Arc::clone(&progress));
            let opts = self.options(&st);
            let ids: Vec<(u32, u64)> = st
                .files
                .iter()
                .map(|f| (f.id, f.doc.source().size))
                .collect();
            (input_of(&st), ids, st.generation, progress, opts)
        };
        let this = Arc::clone(self);
        std::thread::spawn(move || {
            let done = Arc::new(AtomicBool::new(false));
            let ticker = {
                let (this, done, progress, ids) = (
                    Arc::clone(&this),
                    Arc::clone(&done),
                    Arc::clone(&progress),
                    ids.clone(),
                );
                std::thread::spawn(move || {
                    while !done.load(Ordering::Relaxed) && !progress.cancel.load(Ordering::Relaxed)
                    {
                        let files = ids
                            .iter()
                            .enumerate()
                            .map(|(i, &(id, size))| FileProgress {
                                id,
                                rows: progress.rows[i].load(Ordering::Relaxed),
                                bytes: progress.bytes[i].load(Ordering::Relaxed),
                                size,
                            })
                            .collect();
                        this.emit(WorkbenchEvent::Progress { files });
                        std::thread::sleep(PROGRESS_EVERY);
                    }
                })
            };
            let result = workbench::check(&input, &opts, &progress);
            done.store(true, Ordering::Relaxed);
            let _ = ticker.join();
            let event = {
                let mut st = this.state();
                if st.generation != generation {
                    return; // a newer pass owns the files now
                }
                st.running = None;
                match result {
                    Ok(checked) => {
                        for (((id, _), c), (_, edits)) in ids.iter().zip(checked).zip(&input.files)
                        {
                            if let Some(f) = st.files.iter_mut().find(|f| f.id == *id) {
                                f.doc.set_checked(c, Arc::clone(edits));
                            }
                        }
                        WorkbenchEvent::Checked {
                            files: st.files.iter().map(|f| summary(f, false)).collect(),
                        }
                    }
                    Err(WorkbenchError::Cancelled) => return,
                    Err(e) => WorkbenchEvent::Failed {
                        message: e.to_string(),
                    },
                }
            };
            this.emit(event);
        });
    }

    /// Wait until no pass is running (for the CLI and tests).
    pub fn wait(&self) {
        while self.state().running.is_some() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A document's file and edits, saved without the session lock.
struct DocSnapshot {
    src: Arc<Source>,
    edits: Arc<workbench::Edits>,
}

impl DocSnapshot {
    fn save(&self, to: &Path, format: SaveFormat) -> Result<u64, WorkbenchError> {
        workbench::save_snapshot(&self.src, &self.edits, to, format)
    }
}

fn io_fault(path: &Path, source: std::io::Error) -> WorkbenchFault {
    WorkbenchFault::Engine(WorkbenchError::Io {
        path: path.to_owned(),
        source,
    })
}

fn input_of(st: &State) -> CheckInput {
    CheckInput {
        files: st
            .files
            .iter()
            .map(|f| (Arc::clone(f.doc.source()), Arc::clone(f.doc.edits())))
            .collect(),
    }
}

fn row_index(row: u64) -> Result<u32, WorkbenchFault> {
    u32::try_from(row)
        .map_err(|_| WorkbenchFault::BadArgument(format!("row {row} is out of range")))
}

fn col_index(c: u32) -> Result<u16, WorkbenchFault> {
    u16::try_from(c).map_err(|_| WorkbenchFault::BadArgument(format!("column {c} is out of range")))
}

fn code_of(s: &str) -> Result<Code, WorkbenchFault> {
    s.parse::<Code>().map_err(WorkbenchFault::BadArgument)
}

fn view_of(v: &ViewArg) -> Result<View, WorkbenchFault> {
    Ok(match v {
        ViewArg::All => View::All,
        ViewArg::Invalid => View::Invalid,
        ViewArg::Code { code } => View::Code(code_of(code)?),
    })
}

fn fix_of(f: &FixArg) -> Fix {
    match f.clone() {
        FixArg::Replace { find, with } => Fix::Replace { find, with },
        FixArg::Trim => Fix::Trim,
        FixArg::Set { value } => Fix::Set { value },
        FixArg::FillDown => Fix::FillDown,
        FixArg::Typography => Fix::Typography,
        FixArg::UsDate => Fix::UsDate,
        FixArg::SlugFromTitle => Fix::SlugFromTitle,
        FixArg::DurationSeconds => Fix::DurationSeconds,
    }
}

fn scope_of(s: &ScopeArg) -> Result<Scope, WorkbenchFault> {
    let column = s.column.map(col_index).transpose()?;
    match (&s.code, column) {
        (Some(code), column) => Ok(Scope::Code {
            code: code_of(code)?,
            column,
        }),
        (None, Some(c)) => Ok(Scope::Column(c)),
        (None, None) => Err(WorkbenchFault::BadArgument(
            "choose a column or a finding code".into(),
        )),
    }
}

fn finding_view(d: &Document, f: &Finding) -> FindingView {
    FindingView {
        code: f.code.as_str().into(),
        severity: match f.severity {
            Severity::Error => "error".into(),
            Severity::Warning => "warning".into(),
        },
        row: f.row.map(|r| r.saturating_sub(1)),
        line: f.line,
        column: f.column.clone(),
        column_index: d.column_of(f).map(u32::from),
        value: f.value.clone(),
        message: f.message.clone(),
        hint: f.hint.clone(),
    }
}

fn summary(f: &Open, checking: bool) -> FileSummary {
    let d = &f.doc;
    let src = d.source();
    let c = d.checked();
    FileSummary {
        id: f.id,
        name: src.path.file_name().map_or_else(
            || src.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        path: src.path.display().to_string(),
        entity_type: c.entity_type.map(|t| t.to_string()),
        encoding: src.encoding.as_str().into(),
        delimiter: src.delimiter.as_str().into(),
        header: src.header.clone(),
        rows: src.rows_indexed(),
        valid: c.valid,
        invalid: c.invalid,
        warnings: c.warnings,
        blank_rows: c.blank_rows,
        counts: c
            .counts
            .iter()
            .map(|(code, &count)| CodeCount {
                code: code.as_str().into(),
                count,
            })
            .collect(),
        file_findings: c.file_findings.iter().map(|x| finding_view(d, x)).collect(),
        unusable: c.unusable.clone(),
        checking,
        edited_cells: d.edited_cells() as u64,
        can_undo: d.can_undo(),
        mapping_profile: f.mapping.as_ref().map(|(p, _)| p.display().to_string()),
        indexed: src.indexed(),
        needs_mapping: c.unusable_header
            || c.counts.contains_key(&Code::UnknownColumn)
            || c.file_findings.iter().any(|x| x.code == Code::Required),
    }
}

/// A window of rows as bytes, little-endian:
/// `u32 total, u32 count`, then per row `u32 row, u8 status, u16 cells`, then per
/// cell `u8 flags, u32 length, UTF-8 bytes`. Status and flag bits are
/// [`workbench::status`]'s. Decoded by `ui/src/backend/rows.ts`.
pub fn encode_window(total: u64, rows: &[WindowRow]) -> Vec<u8> {
    let size: usize = rows
        .iter()
        .map(|r| 7 + r.cells.iter().map(|c| 5 + c.len()).sum::<usize>())
        .sum();
    let mut out = Vec::with_capacity(8 + size);
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&u32::try_from(rows.len()).unwrap_or(u32::MAX).to_le_bytes());
    for r in rows {
        out.extend_from_slice(&r.row.to_le_bytes());
        out.push(r.status);
        // A record of more than 65,535 cells shows its first 65,535.
        let n = r.cells.len().max(r.flags.len()).min(usize::from(u16::MAX));
        out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_le_bytes());
        for i in 0..n {
            let cell = r.cells.get(i).map_or("", String::as_str);
            out.push(r.flags.get(i).copied().unwrap_or(0));
            out.extend_from_slice(&u32::try_from(cell.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(cell.as_bytes());
        }
    }
    out
}

/// The TypeScript declarations of every type above, as `ui/src/backend/bindings.ts`
/// holds them (64-bit integers as `number`: row counts stay far below 2^53).
pub fn typescript_bindings() -> String {
    let cfg = ts_rs::Config::new().with_large_int("number");
    let decls = [
        FileSummary::decl(&cfg),
        CodeCount::decl(&cfg),
        FindingView::decl(&cfg),
        FileProgress::decl(&cfg),
        WorkbenchEvent::decl(&cfg),
        ViewArg::decl(&cfg),
        FixArg::decl(&cfg),
        ScopeArg::decl(&cfg),
        FixPreviewView::decl(&cfg),
        FixSample::decl(&cfg),
        SaveFormatArg::decl(&cfg),
        Saved::decl(&cfg),
        MappingView::decl(&cfg),
        MappingColumn::decl(&cfg),
        MappingCandidate::decl(&cfg),
        TypeFields::decl(&cfg),
        FieldInfo::decl(&cfg),
        MappingRequest::decl(&cfg),
        MappingChoice::decl(&cfg),
    ]
    .into_iter()
    .chain(crate::settings::typescript_decls(&cfg))
    .chain(crate::operations::typescript_decls(&cfg));
    let mut out = String::from(
        "// Generated from the Rust types in src-tauri/crates/runtime/src/{workbench,settings,\n\
         // operations}.rs by `make bindings`; `make test` fails when this file is stale.\n\
         // Do not edit.\n\n",
    );
    for d in decls {
        out.push_str("export ");
        out.push_str(&d);
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// The committed bindings match the Rust types. `METASYNC_WRITE_BINDINGS=1`
    /// rewrites them (what `make bindings` does).
    #[test]
    fn typescript_bindings_are_current() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../ui/src/backend/bindings.ts");
        let want = typescript_bindings();
        if std::env::var_os("METASYNC_WRITE_BINDINGS").is_some() {
            std::fs::write(&path, &want).unwrap_or_else(|e| panic!("{e}"));
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "ui/src/backend/bindings.ts is stale: run `make bindings`"
        );
    }

    #[test]
    fn a_mapping_saved_for_an_export_applies_to_it_the_next_time() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("export.csv");
        std::fs::write(
            &p,
            "Show ID,Slug,Program Title,Audience,Station,Language\nSH1,nova,NOVA,national,,en\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let maps = dir.path().join("mappings");
        let wb = Arc::new(Workbench::default().with_mappings_dir(maps.clone()));
        let id = wb.open_paths(std::slice::from_ref(&p))[0]
            .as_ref()
            .map(|f| f.id)
            .unwrap_or(99);
        wb.wait();
        // No key column: unusable until mapped.
        assert!(wb.files()[0].unusable.is_some());
        let view = wb.mapping(id).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            view.columns[0].candidates.first().map(|c| c.field.as_str()),
            Some("show_key")
        );
        assert_eq!(
            view.columns[2].candidates.first().map(|c| c.field.as_str()),
            Some("title")
        );
        // The first row shows, though the file cannot be read until it is mapped.
        assert_eq!(view.columns[2].sample, "NOVA");
        let req = MappingRequest {
            entity_type: Some("show".into()),
            columns: vec![
                MappingChoice {
                    column: 0,
                    field: Some("show_key".into()),
                },
                MappingChoice {
                    column: 2,
                    field: Some("title".into()),
                },
            ],
        };
        let saved = wb.save_mapping(id, &req).unwrap_or_else(|e| panic!("{e}"));
        wb.wait();
        let f = &wb.files()[0];
        assert_eq!(
            (f.unusable.as_deref(), f.rows, f.invalid),
            (None, 1, 0),
            "{f:?}"
        );
        // The profile is the TOML `validate --mapping` reads.
        let m = Mapping::load(Path::new(&saved)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.target("Program Title"), Some("title"));
        // The same export opened in a new session is mapped at once.
        let wb2 = Arc::new(Workbench::default().with_mappings_dir(maps));
        let opened = wb2.open_paths(&[p]);
        assert_eq!(
            opened[0]
                .as_ref()
                .ok()
                .and_then(|f| f.mapping_profile.clone()),
            Some(saved)
        );
        wb2.wait();
        assert_eq!(wb2.files()[0].invalid, 0);
        // A bad choice is refused with a reason.
        let bad = MappingRequest {
            entity_type: None,
            columns: vec![
                MappingChoice {
                    column: 0,
                    field: Some("title".into()),
                },
                MappingChoice {
                    column: 2,
                    field: Some("title".into()),
                },
            ],
        };
        assert!(
            matches!(wb.save_mapping(id, &bad), Err(WorkbenchFault::BadArgument(m)) if m.contains("two columns"))
        );
    }

    #[test]
    fn a_session_opens_checks_edits_and_reports_progress() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("shows.csv");
        let mut f = std::fs::File::create(&p).unwrap_or_else(|e| panic!("{e}"));
        let mut body = String::from("show_key,slug,title,audience,station,language\n");
        for i in 0..50_000 {
            body.push_str(&format!("SH{i},s{i},T,national,,en\n"));
        }
        body.push_str("SHX,Bad Slug,T,national,,en\n");
        f.write_all(body.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let wb = Arc::new(Workbench::default());
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        wb.listen(move |e| {
            sink.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(e)
        });
        let opened = wb.open_paths(&[p.clone(), dir.path().join("missing.csv")]);
        assert!(opened[0].is_ok());
        assert!(
            opened[1].as_ref().is_err_and(|e| e.contains("missing.csv")),
            "{opened:?}"
        );
        wb.wait();
        let files = wb.files();
        assert_eq!((files[0].rows, files[0].invalid), (50_001, 1));
        assert!(matches!(wb.open_paths(&[p])[0], Err(ref e) if e.contains("already open")));
        let bytes = wb
            .rows(files[0].id, &ViewArg::Invalid, 0, 10)
            .unwrap_or_default();
        assert_eq!(
            &bytes[..8],
            &[1, 0, 0, 0, 1, 0, 0, 0],
            "one row of one in the invalid view"
        );
        assert_eq!(
            wb.next_error(files[0].id, None, true).ok().flatten(),
            Some(50_000)
        );
        assert_eq!(
            wb.edit(files[0].id, 50_000, 1, "bad-slug".into()).ok(),
            Some(1)
        );
        // The edit's verdict is there at once; the full pass agrees after.
        assert_eq!(wb.files()[0].invalid, 0);
        wb.wait();
        assert_eq!(wb.files()[0].invalid, 0);
        // A cancelled pass says so (the window stops showing progress) and leaves
        // the last verdict.
        wb.revalidate();
        wb.cancel();
        wb.wait();
        assert_eq!(wb.files()[0].invalid, 0);
        assert!(!wb.files()[0].checking);
        let ev = events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        assert!(ev
            .iter()
            .any(|e| matches!(e, WorkbenchEvent::Checked { files } if files[0].invalid == 0)));
        assert!(matches!(
            wb.rows(99, &ViewArg::All, 0, 1),
            Err(WorkbenchFault::NoSuchFile(99))
        ));
        let bad = ViewArg::Code {
            code: "nope".into(),
        };
        assert!(matches!(
            wb.rows(files[0].id, &bad, 0, 1),
            Err(WorkbenchFault::BadArgument(_))
        ));
    }
}
