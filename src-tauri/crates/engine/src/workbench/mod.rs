//! The workbench: CSV files staff open to fix in place. Each [`Document`] indexes its
//! rows during the validation pass (so any row is one read away), keeps each row's
//! findings, and holds edits beside the original, which is never written. Validation
//! is the engine's own ([`crate::validate`]): a pass over the corrected text of every
//! open file, so cross-file rules hold as they do in `metasync validate`.

mod fix;
mod record;
mod save;
mod text;

pub use fix::{Fix, FixPreview, Scope};
pub use save::SaveFormat;

use crate::finding::{Code, Finding, Severity};
use crate::ingest::{CsvSource, Delimiter, Encoding, IngestError};
use crate::schema::EntityType;
use crate::text::trim;
use crate::validate::{self, FileHeader, FileOutcome, RowSink, RowView};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use text::Text;

/// Rows handed out per window at most (a screen holds far fewer).
pub const MAX_WINDOW_ROWS: usize = 500;
/// Edits kept for undo, in steps.
pub const UNDO_STEPS: usize = 100;
/// Index entries published to readers at a time during the first pass.
const PUBLISH_EVERY: usize = 4096;

/// Row status bits.
pub mod status {
    pub const WARNING: u8 = 1;
    pub const INVALID: u8 = 2;
    pub const EDITED: u8 = 4;
    /// Every cell emptied by edits: no longer data (as a row of bare delimiters).
    pub const BLANK: u8 = 8;
}

/// Cells edited, by row then column (header position).
pub type Edits = BTreeMap<u32, BTreeMap<u16, String>>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkbenchError {
    #[error(transparent)]
    Unusable(#[from] IngestError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("row {row} does not exist: the file has {rows} rows")]
    NoSuchRow { row: u64, rows: u64 },
    #[error("column {column} does not exist: the file has {columns} columns")]
    NoSuchColumn { column: u64, columns: u64 },
    #[error("the file is still being read; try again in a moment")]
    NotIndexed,
    #[error("{0}")]
    CannotEncode(String),
    #[error("{0}")]
    Fix(String),
    #[error("validation was cancelled")]
    Cancelled,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WorkbenchError + '_ {
    move |source| WorkbenchError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where each data row starts in the decoded text.
#[derive(Default)]
struct Index {
    offsets: Vec<u64>,
    complete: bool,
    /// The first pass writing it. A pass that was cancelled but not yet stopped
    /// writes nothing once another has taken the index over.
    owner: u64,
}

/// Numbers first passes, so each knows whether the index is still its own.
static PASSES: AtomicU64 = AtomicU64::new(1);

/// Rows' text and each row's byte range in it.
type RawRows = (Vec<u8>, Vec<(usize, usize)>);

/// An opened file: what does not change while staff edit it.
pub struct Source {
    pub path: PathBuf,
    pub encoding: Encoding,
    pub delimiter: Delimiter,
    pub header: Vec<String>,
    /// The byte-order mark the file starts with, if any.
    bom: Vec<u8>,
    /// Bytes of decoded text (what progress counts).
    pub size: u64,
    text: Text,
    index: RwLock<Index>,
}

impl Source {
    /// Sniff the file (encoding, delimiter, header). Rows are indexed by the first
    /// validation pass.
    pub fn open(path: &Path) -> Result<Self, WorkbenchError> {
        let src = CsvSource::open(path)?;
        let encoding = src.sniffed.encoding;
        let (text, bom) = Text::open(path, encoding).map_err(io_err(path))?;
        Ok(Self {
            path: path.to_owned(),
            encoding,
            bom,
            delimiter: src.sniffed.delimiter,
            header: src.header,
            size: text.len(),
            text,
            index: RwLock::default(),
        })
    }

    /// The first data row's cells, read from the start of the file (for a file whose
    /// rows are not indexed: one without a usable header, say).
    pub fn first_row(&self) -> Vec<String> {
        let mut buf = Vec::new();
        if self.text.read(0, 64 * 1024, &mut buf).is_err() {
            return Vec::new();
        }
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(self.delimiter.byte())
            .has_headers(true)
            .flexible(true)
            .from_reader(buf.as_slice());
        let mut rec = csv::ByteRecord::new();
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => rec
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect(),
            _ => Vec::new(),
        }
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Rows readable now (all of them once the first pass is done).
    pub fn rows_indexed(&self) -> u64 {
        let ix = self.index();
        let n = ix.offsets.len().saturating_sub(1);
        n as u64
    }

    pub fn indexed(&self) -> bool {
        self.index().complete
    }

    /// The raw text of rows `[first, last)`, with each row's range inside it.
    fn raw_rows(&self, first: u32, last: u32) -> Result<RawRows, WorkbenchError> {
        let ix = self.index();
        let (a, b) = (first as usize, last as usize);
        if b + 1 > ix.offsets.len() || a > b {
            return Err(WorkbenchError::NotIndexed);
        }
        let base = ix.offsets[a];
        let mut buf = Vec::new();
        self.text
            .read(base, ix.offsets[b], &mut buf)
            .map_err(io_err(&self.path))?;
        let mut spans = Vec::with_capacity(b - a);
        for i in a..b {
            let at = |k: usize| {
                ix.offsets[k]
                    .checked_sub(base)
                    .and_then(|d| usize::try_from(d).ok())
            };
            match (at(i), at(i + 1)) {
                (Some(s), Some(e)) if s <= e && e <= buf.len() => spans.push((s, e)),
                // Offsets out of order would mean a broken index: say so, never slice.
                _ => return Err(WorkbenchError::NotIndexed),
            }
        }
        Ok((buf, spans))
    }
}

/// What a validation pass found in one file.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub entity_type: Option<EntityType>,
    pub rows: u64,
    pub valid: u64,
    pub invalid: u64,
    pub warnings: u64,
    pub blank_rows: u64,
    pub counts: BTreeMap<Code, u64>,
    /// Findings about the file (header, blank rows), not about a row.
    pub file_findings: Vec<Finding>,
    /// Why the file could not be read, when it could not.
    pub unusable: Option<String>,
    /// It could not be read for want of a usable header (a mapping may fix that).
    pub unusable_header: bool,
    status: Vec<u8>,
    findings: HashMap<u32, Vec<Finding>>,
    /// Finding column labels → header position.
    columns: HashMap<String, u16>,
    /// Rows by the values the file-level rules compare, for the quick re-check.
    groups: Groups,
}

/// Rows by hash of each value a file-level rule compares — key, slug, (parent,
/// ordinal, segment), an asset's (parent, kind, title), an episode's full_length —
/// sorted by hash: the rows an edit can make or unmake duplicates of.
#[derive(Debug, Clone, Default)]
struct Groups {
    cols: GroupCols,
    lists: [Vec<Member>; GROUPS],
}

/// A row in a group: 12 bytes, not the 16 a `(u64, u32)` takes (millions of them).
#[derive(Debug, Clone, Copy)]
#[repr(C, packed(4))]
struct Member {
    hash: u64,
    row: u32,
}

const GROUPS: usize = 5;

/// Header positions of the columns the groups read.
#[derive(Debug, Clone, Default)]
struct GroupCols {
    key: Option<usize>,
    slug: Option<usize>,
    parent: Option<usize>,
    ordinal: Option<usize>,
    segment: Option<usize>,
    object_type: Option<usize>,
    title: Option<usize>,
}

impl Groups {
    fn new(head: &FileHeader<'_>) -> Self {
        let col = |name: &str| {
            head.columns
                .iter()
                .find(|(f, _)| f.name == name)
                .map(|&(_, i)| i)
        };
        let t = head.entity_type;
        let parent = t
            .parent()
            .map(|(_, c)| c)
            .or((t == EntityType::Asset).then_some("parent_key"));
        Self {
            cols: GroupCols {
                key: col(t.key_column()),
                slug: col("slug"),
                parent: parent.and_then(col),
                ordinal: col("ordinal"),
                segment: col("segment"),
                object_type: col("object_type"),
                title: col("title"),
            },
            lists: Default::default(),
        }
    }

    /// The group of each rule a row's cells fall in (as the validator compares them:
    /// trimmed text, ordinals as numbers, kinds in any case).
    fn hashes<S: AsRef<str>>(&self, cells: &[S]) -> [Option<u64>; GROUPS] {
        let c = &self.cols;
        let cell = |i: Option<usize>| {
            i.and_then(|i| cells.get(i))
                .map_or("", |c| trim(c.as_ref()))
        };
        let some = |v: &str| (!v.is_empty()).then_some(());
        let (parent, kind) = (cell(c.parent), cell(c.object_type).to_ascii_lowercase());
        let ordinal = cell(c.ordinal);
        let ordinal = ordinal
            .parse::<u64>()
            .map_or_else(|_| ordinal.to_string(), |n| n.to_string());
        [
            some(cell(c.key)).map(|()| hash(&["k", cell(c.key)])),
            some(cell(c.slug)).map(|()| hash(&["s", cell(c.slug)])),
            (c.ordinal.is_some() && !parent.is_empty() && !ordinal.is_empty())
                .then(|| hash(&["o", parent, &ordinal, cell(c.segment)])),
            (!parent.is_empty() && !kind.is_empty() && kind != "full_length")
                .then(|| hash(&["t", parent, &kind, cell(c.title)])),
            (!parent.is_empty() && kind == "full_length").then(|| hash(&["f", parent])),
        ]
    }

    fn add(&mut self, row: u32, cells: &csv::ByteRecord) {
        let text: Vec<&str> = cells
            .iter()
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect();
        let hashes = self.hashes(&text);
        for (list, h) in self.lists.iter_mut().zip(hashes) {
            if let Some(hash) = h {
                list.push(Member { hash, row });
            }
        }
    }

    fn finish(&mut self) {
        for list in &mut self.lists {
            list.sort_unstable_by_key(|m| ({ m.hash }, { m.row }));
        }
    }

    /// Every row in the same group as `hashes`, in any rule.
    fn rows_with(&self, hashes: [Option<u64>; GROUPS], out: &mut Vec<u32>) {
        for (list, h) in self.lists.iter().zip(hashes) {
            let Some(h) = h else { continue };
            let start = list.partition_point(|m| { m.hash } < h);
            out.extend(
                list[start..]
                    .iter()
                    .take_while(|m| { m.hash } == h)
                    .map(|m| m.row),
            );
        }
    }
}

fn hash(parts: &[&str]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0x7762).build_hasher();
    for p in parts {
        h.write(p.as_bytes());
        h.write_u8(0xff);
    }
    h.finish()
}

/// Codes the quick re-check cannot judge (it sees one file's selected rows, not the
/// parents' files): kept from the last full pass.
const REFERENCE_CODES: [Code; 2] = [Code::ParentUnknown, Code::ParentInvalid];

/// Rows a quick re-check takes at most; beyond that only the full pass runs.
pub const QUICK_CHECK_MAX_ROWS: usize = 200_000;

/// One row of a window: its cells as text (edits applied) and what is wrong with it.
#[derive(Debug, Clone)]
pub struct WindowRow {
    /// 0-based data row.
    pub row: u32,
    pub status: u8,
    pub cells: Vec<String>,
    /// Per cell: [`status`] bits (`WARNING`, `INVALID`, `EDITED`).
    pub flags: Vec<u8>,
}

/// Which rows the grid shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    All,
    /// Rows with an error.
    Invalid,
    /// Rows with a finding of this code.
    Code(Code),
}

/// One edit step, for undo: each cell's value before it.
struct Change {
    cells: Vec<(u32, u16, Option<String>)>,
}

/// A file open in the workbench.
pub struct Document {
    source: Arc<Source>,
    checked: Checked,
    edits: Arc<Edits>,
    /// The edits the installed findings were computed with.
    checked_edits: Arc<Edits>,
    undo: Vec<Change>,
    /// Rows per view, computed on demand for the current findings.
    views: HashMap<View, Arc<Vec<u32>>>,
}

impl Document {
    pub fn new(source: Source) -> Self {
        Self {
            source: Arc::new(source),
            checked: Checked::default(),
            edits: Arc::default(),
            checked_edits: Arc::default(),
            undo: Vec::new(),
            views: HashMap::new(),
        }
    }

    #[cfg(test)]
    fn new_shared(source: Arc<Source>) -> Self {
        Self {
            source,
            checked: Checked::default(),
            edits: Arc::default(),
            checked_edits: Arc::default(),
            undo: Vec::new(),
            views: HashMap::new(),
        }
    }

    pub fn source(&self) -> &Arc<Source> {
        &self.source
    }

    pub fn checked(&self) -> &Checked {
        &self.checked
    }

    pub fn edits(&self) -> &Arc<Edits> {
        &self.edits
    }

    pub fn edited_cells(&self) -> usize {
        self.edits.values().map(BTreeMap::len).sum()
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    /// Install a validation pass's result, computed with `edits` (the snapshot the
    /// pass read).
    pub fn set_checked(&mut self, checked: Checked, edits: Arc<Edits>) {
        self.checked = checked;
        self.checked_edits = edits;
        self.views.clear();
    }

    /// Re-check at once the rows edited since the last full pass and the rows that
    /// share a key or an (parent, ordinal) with them, before or after the edit. Exact
    /// for the rules within this file; references to parents keep the last full
    /// pass's verdict until the next one. Returns the rows re-checked (0 when there
    /// were too many: the full pass alone decides then).
    pub fn quick_check(&mut self, opts: &validate::Options) -> Result<usize, WorkbenchError> {
        if self.checked.status.is_empty() || !self.source.indexed() {
            return Ok(0);
        }
        let delim = self.source.delimiter.byte();
        let changed: Vec<u32> = self
            .edits
            .iter()
            .filter(|(r, cells)| self.checked_edits.get(r) != Some(*cells))
            .map(|(&r, _)| r)
            .chain(
                self.checked_edits
                    .keys()
                    .filter(|r| !self.edits.contains_key(r))
                    .copied(),
            )
            .collect();
        if changed.is_empty() || changed.len() > QUICK_CHECK_MAX_ROWS {
            return Ok(0);
        }
        let mut rows = changed.clone();
        for &r in &changed {
            let (buf, _) = self.source.raw_rows(r, r + 1)?;
            let raw = parse_first(&buf, delim);
            for edits in [&self.checked_edits, &self.edits] {
                let mut cells = raw.clone();
                for (&c, v) in edits.get(&r).into_iter().flatten() {
                    let c = usize::from(c);
                    if c >= cells.len() {
                        cells.resize(c + 1, String::new());
                    }
                    cells[c].clone_from(v);
                }
                let h = self.checked.groups.hashes(&cells);
                self.checked.groups.rows_with(h, &mut rows);
            }
        }
        rows.sort_unstable();
        rows.dedup();
        if rows.len() > QUICK_CHECK_MAX_ROWS {
            return Ok(0);
        }
        // The header, then each row as corrected, one record per line.
        let first = {
            let ix = self.source.index();
            ix.offsets.first().copied().unwrap_or(0)
        };
        let mut text = Vec::new();
        self.source
            .text
            .read(0, first, &mut text)
            .map_err(io_err(&self.source.path))?;
        let mut checked_rows = Vec::with_capacity(rows.len());
        let mut blank = Vec::new();
        for &r in &rows {
            let cells = self.edits.get(&r);
            if cells.is_some_and(|c| is_blank_after(&self.source, r, c)) {
                blank.push(r);
                continue;
            }
            let (buf, _) = self.source.raw_rows(r, r + 1)?;
            let at = text.len();
            record::rewrite(
                &buf,
                delim,
                cells
                    .into_iter()
                    .flatten()
                    .map(|(&c, v)| (usize::from(c), v.as_str())),
                &mut text,
            );
            // One record per line: what preceded it (the previous terminator) and what
            // followed it (blank rows) go.
            let lead = text[at..]
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            text.drain(at..at + lead);
            let (_, term) = record::split(&text[at..], delim);
            text.truncate(at + term);
            text.push(b'\n');
            checked_rows.push(r);
        }
        let renumber: Arc<[(u64, u64)]> = checked_rows
            .iter()
            .map(|&r| (u64::from(r) + 1, u64::from(r) + 2))
            .collect();
        let opts = validate::Options {
            renumber: Some(renumber),
            max_findings: 0,
            ..opts.clone()
        };
        let found: Arc<Mutex<Vec<Vec<Finding>>>> = Arc::default();
        let sink = Arc::clone(&found);
        let src = CsvSource::from_reader_as(
            &self.source.path,
            Box::new(io::Cursor::new(text)),
            Some(Encoding::Utf8),
        );
        validate::validate_sources(vec![(self.source.path.clone(), src)], &opts, move |_| {
            Ok(Some(
                Box::new(QuickSink(Arc::clone(&sink))) as Box<dyn RowSink>
            ))
        })
        .map_err(io_err(&self.source.path))?;
        let found = std::mem::take(
            &mut *found
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if found.len() != checked_rows.len() {
            // The selection did not read back row for row: leave it to the full pass.
            return Ok(0);
        }
        for r in blank {
            self.replace_row(r, status::BLANK, Vec::new());
        }
        for (r, mut fs) in checked_rows.into_iter().zip(found) {
            fs.retain(|f| !REFERENCE_CODES.contains(&f.code));
            fs.extend(
                self.findings(r)
                    .iter()
                    .filter(|f| REFERENCE_CODES.contains(&f.code))
                    .cloned(),
            );
            let mut st = 0;
            for f in &fs {
                st |= match f.severity {
                    Severity::Error => status::INVALID,
                    Severity::Warning => status::WARNING,
                };
            }
            self.replace_row(r, st, fs);
        }
        self.views.clear();
        Ok(rows.len())
    }

    /// Replace one row's verdict, keeping the file's counts in step.
    fn replace_row(&mut self, row: u32, st: u8, findings: Vec<Finding>) {
        let c = &mut self.checked;
        let Some(slot) = c.status.get_mut(row as usize) else {
            return;
        };
        let old = std::mem::replace(slot, st);
        let data = |s: u8| s & status::BLANK == 0;
        let tally = |c: &mut Checked, s: u8, sign: i64| {
            let add = |n: &mut u64| *n = n.saturating_add_signed(sign);
            if !data(s) {
                add(&mut c.blank_rows);
                return;
            }
            add(&mut c.rows);
            if s & status::INVALID != 0 {
                add(&mut c.invalid);
            } else {
                add(&mut c.valid);
            }
        };
        tally(c, old, -1);
        tally(c, st, 1);
        for f in c.findings.remove(&row).into_iter().flatten() {
            if let Some(n) = c.counts.get_mut(&f.code) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.counts.remove(&f.code);
                }
            }
            if f.severity == Severity::Warning {
                c.warnings = c.warnings.saturating_sub(1);
            }
        }
        for f in &findings {
            *c.counts.entry(f.code).or_insert(0) += 1;
            if f.severity == Severity::Warning {
                c.warnings += 1;
            }
        }
        if !findings.is_empty() {
            c.findings.insert(row, findings);
        }
    }

    /// The rows of a view, in file order.
    pub fn view(&mut self, view: View) -> Arc<Vec<u32>> {
        if let Some(v) = self.views.get(&view) {
            return Arc::clone(v);
        }
        let st = &self.checked.status;
        let rows: Vec<u32> = match view {
            View::All => Vec::new(),
            View::Invalid => (0..st.len())
                .filter(|&i| st[i] & status::INVALID != 0)
                .filter_map(|i| u32::try_from(i).ok())
                .collect(),
            View::Code(code) => {
                let mut v: Vec<u32> = self
                    .checked
                    .findings
                    .iter()
                    .filter(|(_, fs)| fs.iter().any(|f| f.code == code))
                    .map(|(&r, _)| r)
                    .collect();
                v.sort_unstable();
                v
            }
        };
        let rows = Arc::new(rows);
        self.views.insert(view, Arc::clone(&rows));
        rows
    }

    /// Rows in a view (the whole file for `All`).
    pub fn view_len(&mut self, view: View) -> u64 {
        match view {
            View::All => self.source.rows_indexed(),
            v => self.view(v).len() as u64,
        }
    }

    /// Rows `[start, start + count)` of a view.
    pub fn window(
        &mut self,
        view: View,
        start: u64,
        count: usize,
    ) -> Result<Vec<WindowRow>, WorkbenchError> {
        let count = count.min(MAX_WINDOW_ROWS);
        let rows: Vec<u32> = match view {
            View::All => {
                let n = self.source.rows_indexed();
                let end = start.saturating_add(count as u64).min(n);
                (start..end).filter_map(|r| u32::try_from(r).ok()).collect()
            }
            v => {
                let list = self.view(v);
                let s = usize::try_from(start).unwrap_or(usize::MAX).min(list.len());
                list[s..(s + count).min(list.len())].to_vec()
            }
        };
        let mut out = Vec::with_capacity(rows.len());
        // Consecutive rows are read in one go.
        let mut i = 0;
        while i < rows.len() {
            let mut j = i + 1;
            while j < rows.len() && rows[j] == rows[j - 1] + 1 {
                j += 1;
            }
            let (buf, spans) = self.source.raw_rows(rows[i], rows[j - 1] + 1)?;
            for (k, &(s, e)) in spans.iter().enumerate() {
                out.push(self.make_row(rows[i] + k as u32, &buf[s..e]));
            }
            i = j;
        }
        Ok(out)
    }

    fn make_row(&self, row: u32, raw: &[u8]) -> WindowRow {
        let mut cells = parse_first(raw, self.source.delimiter.byte());
        let width = self.source.header.len();
        let mut flags = vec![0u8; cells.len().max(width)];
        if let Some(edits) = self.edits.get(&row) {
            for (&c, v) in edits {
                let c = usize::from(c);
                if c >= cells.len() {
                    cells.resize(c + 1, String::new());
                }
                if c >= flags.len() {
                    flags.resize(c + 1, 0);
                }
                cells[c] = v.clone();
                flags[c] |= status::EDITED;
            }
        }
        for f in self.checked.findings.get(&row).into_iter().flatten() {
            let bit = match f.severity {
                Severity::Error => status::INVALID,
                Severity::Warning => status::WARNING,
            };
            if let Some(c) = self.column_of(f) {
                if let Some(fl) = flags.get_mut(usize::from(c)) {
                    *fl |= bit;
                }
            }
        }
        WindowRow {
            row,
            status: self.row_status(row),
            cells,
            flags,
        }
    }

    pub fn row_status(&self, row: u32) -> u8 {
        let mut st = self.checked.status.get(row as usize).copied().unwrap_or(0);
        if self.edits.contains_key(&row) {
            st |= status::EDITED;
        }
        st
    }

    /// The header position a finding points at, if it points at a cell.
    pub fn column_of(&self, f: &Finding) -> Option<u16> {
        f.column
            .as_deref()
            .and_then(|c| self.checked.columns.get(c).copied())
    }

    /// A row's findings.
    pub fn findings(&self, row: u32) -> &[Finding] {
        self.checked.findings.get(&row).map_or(&[], Vec::as_slice)
    }

    /// The next (or previous) row with an error after (before) `from`, wrapping around.
    pub fn next_invalid(&self, from: Option<u32>, forward: bool) -> Option<u32> {
        let st = &self.checked.status;
        let n = st.len();
        if n == 0 {
            return None;
        }
        let bad = |i: usize| st[i] & status::INVALID != 0;
        let from = from.map(|f| f as usize);
        let found = if forward {
            let start = from.map_or(0, |f| f + 1);
            (start..n).chain(0..start.min(n)).find(|&i| bad(i))
        } else {
            let start = from.unwrap_or(0);
            (0..start.min(n))
                .rev()
                .chain((start..n).rev())
                .find(|&i| bad(i))
        };
        found.and_then(|i| u32::try_from(i).ok())
    }

    fn check_cell(&self, row: u32, column: u16) -> Result<(), WorkbenchError> {
        // Edits wait for the first pass: it reads the file as it is, and its verdict
        // would be taken for the edited rows'.
        if !self.source.indexed() || self.checked.status.is_empty() {
            return Err(WorkbenchError::NotIndexed);
        }
        let rows = self.source.rows_indexed();
        if u64::from(row) >= rows {
            return Err(WorkbenchError::NoSuchRow {
                row: u64::from(row) + 1,
                rows,
            });
        }
        let columns = self.source.header.len();
        if usize::from(column) >= columns {
            return Err(WorkbenchError::NoSuchColumn {
                column: u64::from(column) + 1,
                columns: columns as u64,
            });
        }
        Ok(())
    }

    /// The cell's text as in the file (no edits).
    fn original(&self, row: u32, column: u16) -> Result<String, WorkbenchError> {
        let (buf, _) = self.source.raw_rows(row, row + 1)?;
        let cells = parse_first(&buf, self.source.delimiter.byte());
        Ok(cells
            .into_iter()
            .nth(usize::from(column))
            .unwrap_or_default())
    }

    /// Set cells; one undo step. Returns the cells that changed.
    pub fn edit(&mut self, cells: Vec<(u32, u16, String)>) -> Result<usize, WorkbenchError> {
        for (r, c, _) in &cells {
            self.check_cell(*r, *c)?;
        }
        let mut change = Change { cells: Vec::new() };
        let mut changed: Vec<(u32, u16, String)> = Vec::new();
        for (r, c, v) in cells {
            let prev = self.edits.get(&r).and_then(|m| m.get(&c)).cloned();
            let now = match &prev {
                Some(p) => p.clone(),
                None => self.original(r, c)?,
            };
            if now == v {
                continue;
            }
            change.cells.push((r, c, prev));
            changed.push((r, c, v));
        }
        let n = change.cells.len();
        if n == 0 {
            return Ok(0);
        }
        let edits = Arc::make_mut(&mut self.edits);
        for (r, c, v) in changed {
            edits.entry(r).or_default().insert(c, v);
        }
        self.push_undo(change);
        Ok(n)
    }

    fn push_undo(&mut self, change: Change) {
        self.undo.push(change);
        if self.undo.len() > UNDO_STEPS {
            self.undo.remove(0);
        }
    }

    /// Undo the last edit step. Returns the cells restored.
    pub fn undo(&mut self) -> usize {
        let Some(change) = self.undo.pop() else {
            return 0;
        };
        let n = change.cells.len();
        let edits = Arc::make_mut(&mut self.edits);
        for (r, c, prev) in change.cells.into_iter().rev() {
            match prev {
                Some(v) => {
                    edits.entry(r).or_default().insert(c, v);
                }
                None => {
                    if let Some(m) = edits.get_mut(&r) {
                        m.remove(&c);
                        if m.is_empty() {
                            edits.remove(&r);
                        }
                    }
                }
            }
        }
        n
    }

    /// Bulk fix: the cells it would change, without changing them.
    pub fn preview_fix(&self, fix: &Fix, scope: &Scope) -> Result<FixPreview, WorkbenchError> {
        fix::preview(self, fix, scope)
    }

    /// Bulk fix: apply it as one undo step. Returns the cells changed.
    pub fn apply_fix(&mut self, fix: &Fix, scope: &Scope) -> Result<usize, WorkbenchError> {
        let changes = fix::changes(self, fix, scope)?;
        let n = changes.len();
        if n == 0 {
            return Ok(0);
        }
        let mut change = Change {
            cells: Vec::with_capacity(n),
        };
        let edits = Arc::make_mut(&mut self.edits);
        for (r, c, v) in changes {
            let row = edits.entry(r).or_default();
            change.cells.push((r, c, row.insert(c, v)));
        }
        self.push_undo(change);
        Ok(n)
    }

    /// Write the corrected file (the original is never written).
    pub fn save(&self, to: &Path, format: SaveFormat) -> Result<u64, WorkbenchError> {
        save::save(&self.source, &self.edits, to, format)
    }
}

/// Write a document's corrected file from a snapshot of it (no session lock held).
pub fn save_snapshot(
    src: &Arc<Source>,
    edits: &Arc<Edits>,
    to: &Path,
    format: SaveFormat,
) -> Result<u64, WorkbenchError> {
    save::save(src, edits, to, format)
}

/// The cells of the first record in `raw`, as the `csv` crate reads them.
fn parse_first(raw: &[u8], delimiter: u8) -> Vec<String> {
    record::cells(raw, delimiter)
        .into_iter()
        .map(|c| match String::from_utf8(c) {
            Ok(s) => s,
            Err(e) => match crate::ingest::cell_text(e.as_bytes()) {
                Ok(s) => s.to_owned(),
                Err(s) => s,
            },
        })
        .collect()
}

/// Collects the findings of each row of a quick re-check, in order.
struct QuickSink(Arc<Mutex<Vec<Vec<Finding>>>>);

impl RowSink for QuickSink {
    fn wants_valid(&self) -> bool {
        true
    }
    fn row(&mut self, view: &RowView<'_>) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(view.findings.to_vec());
        Ok(())
    }
}

/// Live figures of a running pass, read by whoever reports progress.
#[derive(Debug, Default)]
pub struct Progress {
    /// Per file, in the order given: bytes read and rows checked.
    pub bytes: Vec<AtomicU64>,
    pub rows: Vec<AtomicU64>,
    pub cancel: AtomicBool,
}

impl Progress {
    pub fn new(files: usize) -> Self {
        Self {
            bytes: (0..files).map(|_| AtomicU64::new(0)).collect(),
            rows: (0..files).map(|_| AtomicU64::new(0)).collect(),
            cancel: AtomicBool::new(false),
        }
    }
}

/// The files of one pass: each source with the edits to apply to it.
pub struct CheckInput {
    pub files: Vec<(Arc<Source>, Arc<Edits>)>,
}

/// Validate every file with its edits, together (references across files hold).
/// A file's first pass also indexes its rows, published as it goes. Cancelling
/// through `progress.cancel` stops at the next batch with [`WorkbenchError::Cancelled`].
pub fn check(
    input: &CheckInput,
    opts: &validate::Options,
    progress: &Arc<Progress>,
) -> Result<Vec<Checked>, WorkbenchError> {
    let results: Vec<Arc<Mutex<Checked>>> = input
        .files
        .iter()
        .map(|_| Arc::new(Mutex::new(Checked::default())))
        .collect();
    let mut sources = Vec::with_capacity(input.files.len());
    for (src, edits) in &input.files {
        let opened = if src.indexed() {
            CsvSource::from_reader_as(
                &src.path,
                Box::new(save::Corrected::new(src, edits)),
                Some(Encoding::Utf8),
            )
        } else {
            CsvSource::open(&src.path)
        };
        sources.push((src.path.clone(), opened));
    }
    let by_path: HashMap<PathBuf, usize> = input
        .files
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (s.path.clone(), i))
        .collect();
    let report = validate::validate_sources(sources, opts, |head: &FileHeader<'_>| {
        let Some(&i) = by_path.get(head.path) else {
            return Ok(None);
        };
        let (src, edits) = &input.files[i];
        Ok(Some(Box::new(Collect::new(
            i,
            Arc::clone(src),
            edits,
            head,
            Arc::clone(&results[i]),
            Arc::clone(progress),
        )) as Box<dyn RowSink>))
    });
    let report = match report {
        Ok(r) => r,
        Err(_) if progress.cancel.load(Ordering::Relaxed) => return Err(WorkbenchError::Cancelled),
        Err(e) => {
            return Err(WorkbenchError::Io {
                path: PathBuf::new(),
                source: e,
            })
        }
    };
    let mut out = Vec::with_capacity(results.len());
    for ((path, outcome), slot) in report.files.into_iter().zip(results) {
        let mut c = std::mem::take(
            &mut *slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        match outcome {
            FileOutcome::Checked(r) => {
                c.entity_type = Some(r.entity_type);
                c.rows = r.rows;
                c.valid = r.valid;
                c.invalid = r.invalid;
                c.warnings = r.warnings;
                c.blank_rows = r.blank_rows;
                c.counts = r.counts;
                c.file_findings = r.findings.into_iter().filter(|f| f.row.is_none()).collect();
            }
            FileOutcome::Unusable(e) => {
                c.unusable_header = matches!(
                    e,
                    IngestError::NoHeader { .. } | IngestError::BadHeader { .. }
                );
                c.unusable = Some(e.to_string());
                if let Some(&i) = by_path.get(&path) {
                    // A file that could not be read has no rows; the next pass (with
                    // a mapping, say) indexes it from the start.
                    let src = &input.files[i].0;
                    if !src.indexed() {
                        let mut ix = src
                            .index
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        ix.offsets.clear();
                    }
                }
            }
        }
        out.push(c);
    }
    Ok(out)
}

/// Write file `file`'s rows with errors, edits applied, as the annotated CSV
/// `metasync validate --errors-out` writes. Returns the rows written.
pub fn export_errors(
    input: &CheckInput,
    file: usize,
    opts: &validate::Options,
    to: &Path,
) -> Result<u64, WorkbenchError> {
    let Some((target, _)) = input.files.get(file) else {
        return Ok(0);
    };
    if input.files.iter().any(|(s, _)| !s.indexed()) {
        return Err(WorkbenchError::NotIndexed);
    }
    if input
        .files
        .iter()
        .any(|(s, _)| save::same_file(&s.path, to))
    {
        return Err(WorkbenchError::CannotEncode(
            "That is a file open in Metasync: choose another name for the errors file.".into(),
        ));
    }
    // Written beside the target and renamed over it, as a save is.
    let tmp = save::partial_path(to);
    let sources = input
        .files
        .iter()
        .map(|(src, edits)| {
            let r = CsvSource::from_reader_as(
                &src.path,
                Box::new(save::Corrected::new(src, edits)),
                Some(Encoding::Utf8),
            );
            (src.path.clone(), r)
        })
        .collect();
    let fail = |source| WorkbenchError::Io {
        path: to.to_owned(),
        source,
    };
    let report = validate::validate_sources(sources, opts, |head| {
        if head.path != target.path {
            return Ok(None);
        }
        let out = io::BufWriter::new(std::fs::File::create(&tmp)?);
        Ok(Some(
            Box::new(crate::annotate::AnnotatedCsv::new(out, head.header)?) as Box<dyn RowSink>,
        ))
    });
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(fail(e));
        }
    };
    if tmp.exists() {
        std::fs::rename(&tmp, to).map_err(fail)?;
    }
    Ok(report
        .files
        .get(file)
        .and_then(|(_, o)| match o {
            FileOutcome::Checked(r) => Some(r.invalid),
            FileOutcome::Unusable(_) => None,
        })
        .unwrap_or(0))
}

fn finish_index(src: &Source, pass: u64) {
    let mut ix = src
        .index
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !ix.complete && ix.owner == pass {
        ix.offsets.push(src.text.len());
        ix.complete = true;
    }
}

/// The sink of one file's pass: row findings into [`Checked`], row starts into the
/// index on a first pass.
struct Collect {
    file: usize,
    src: Arc<Source>,
    first_pass: bool,
    /// This pass's number (see [`Index::owner`]).
    pass: u64,
    /// Rows emptied by edits (the pass skips them), in order: maps the pass's row
    /// numbers back to the document's.
    blanked: Vec<u32>,
    next_blank: usize,
    pending: Vec<u64>,
    checked: Checked,
    out: Arc<Mutex<Checked>>,
    progress: Arc<Progress>,
}

impl Collect {
    fn new(
        file: usize,
        src: Arc<Source>,
        edits: &Edits,
        head: &FileHeader<'_>,
        out: Arc<Mutex<Checked>>,
        progress: Arc<Progress>,
    ) -> Self {
        let mut columns = HashMap::new();
        for &(field, idx) in &head.columns {
            let Ok(i) = u16::try_from(idx) else { continue };
            columns.insert(field.name.to_string(), i);
            if let Some(h) = head.header.get(idx) {
                let label = trim(h);
                if !label.is_empty() {
                    columns.insert(label.to_string(), i);
                }
            }
        }
        let first_pass = !src.indexed();
        let pass = PASSES.fetch_add(1, Ordering::Relaxed);
        if first_pass {
            // A first pass cut short (cancelled when another file was opened) left
            // part of the index behind; this one writes it from the start.
            let mut ix = src
                .index
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            ix.offsets.clear();
            ix.owner = pass;
        }
        let blanked = if first_pass {
            Vec::new()
        } else {
            edits
                .iter()
                .filter(|(&r, cells)| is_blank_after(&src, r, cells))
                .map(|(&r, _)| r)
                .collect()
        };
        let rows = src.rows_indexed() as usize;
        Self {
            file,
            first_pass,
            pass,
            blanked,
            next_blank: 0,
            pending: Vec::new(),
            checked: Checked {
                columns,
                status: Vec::with_capacity(rows),
                groups: Groups::new(head),
                ..Checked::default()
            },
            src,
            out,
            progress,
        }
    }

    fn publish(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut ix = self
            .src
            .index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ix.offsets.append(&mut self.pending);
    }
}

/// Whether a row's cells, with these edits, are all empty.
fn is_blank_after(src: &Source, row: u32, cells: &BTreeMap<u16, String>) -> bool {
    // The validator's test (`validate::is_blank`): ASCII white space only.
    if cells.values().any(|v| !v.trim_ascii().is_empty()) {
        return false;
    }
    let Ok((buf, _)) = src.raw_rows(row, row + 1) else {
        return false;
    };
    parse_first(&buf, src.delimiter.byte())
        .iter()
        .enumerate()
        .all(|(i, v)| u16::try_from(i).is_ok_and(|c| cells.contains_key(&c)) || v.trim().is_empty())
}

impl RowSink for Collect {
    fn wants_valid(&self) -> bool {
        true
    }

    fn row(&mut self, view: &RowView<'_>) -> io::Result<()> {
        // The document's row for the pass's: skip rows emptied by edits.
        let mut row = self.checked.status.len();
        while self
            .blanked
            .get(self.next_blank)
            .is_some_and(|&b| b as usize == row)
        {
            self.checked.status.push(status::BLANK);
            self.next_blank += 1;
            row += 1;
        }
        let mut st = 0;
        for f in view.findings {
            st |= match f.severity {
                Severity::Error => status::INVALID,
                Severity::Warning => status::WARNING,
            };
        }
        self.checked.status.push(st);
        let r = u32::try_from(row).map_err(io::Error::other)?;
        self.checked.groups.add(r, view.record);
        if !view.findings.is_empty() {
            let mut fs = view.findings.to_vec();
            // The pass skipped rows emptied by edits; the document counts them.
            for f in &mut fs {
                f.row = Some(u64::from(r) + 1);
            }
            self.checked.findings.insert(r, fs);
        }
        if self.first_pass {
            self.pending.push(view.byte);
            if self.pending.len() >= PUBLISH_EVERY {
                self.publish();
            }
        }
        if view.row.is_multiple_of(1024) {
            self.progress.bytes[self.file].store(view.byte, Ordering::Relaxed);
            self.progress.rows[self.file].store(view.row, Ordering::Relaxed);
            if self.progress.cancel.load(Ordering::Relaxed) {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.checked.groups.finish();
        while self.next_blank < self.blanked.len() {
            self.checked.status.push(status::BLANK);
            self.next_blank += 1;
        }
        if self.first_pass {
            self.publish();
            finish_index(&self.src, self.pass);
        }
        self.progress.bytes[self.file].store(self.src.size, Ordering::Relaxed);
        self.progress.rows[self.file].store(self.checked.status.len() as u64, Ordering::Relaxed);
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *out = std::mem::take(&mut self.checked);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
