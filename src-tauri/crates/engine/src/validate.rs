//! Validation at every level of DESIGN.md §2 — cell, row, file, reference — over
//! streamed records. Files are checked parents first so children can see their
//! parents; every row's verdict is final when it is reached, so rows flow on (to an
//! annotated CSV, later to the plan) without the file being held in memory.

use crate::finding::{preview, Code, Finding, Severity};
use crate::ingest::{cell_text, Batch, CsvSource, Delimiter, Encoding, IngestError};
use crate::keyset::{KeySet, Seen};
use crate::mapping::Mapping;
use crate::schema::{detect_type, header_token, EntityType, Field, OWN_TEXT_TYPES, WINDOWS};
use crate::text::{check_with, scan, trim, Hints, Value};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Options {
    /// Findings kept per file; counts stay exact beyond it.
    pub max_findings: usize,
    /// Overrides detection from the header.
    pub entity_type: Option<EntityType>,
    pub mapping: Option<Mapping>,
    /// The (row, line) each data row reports, in order, when the rows checked are a
    /// selection of a larger file (the workbench re-checking the rows an edit touches).
    pub renumber: Option<std::sync::Arc<[(u64, u64)]>>,
    /// A mapping for one file (by the path it was opened with), over `mapping`: the
    /// workbench's saved profiles, one per header set.
    pub file_mappings: std::collections::HashMap<PathBuf, Mapping>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_findings: 1000,
            entity_type: None,
            mapping: None,
            renumber: None,
            file_mappings: Default::default(),
        }
    }
}

/// One checked row, as handed to a [`RowSink`].
pub struct RowView<'a> {
    pub row: u64,
    pub line: u64,
    /// Where the record starts in the decoded text (after any byte-order mark).
    pub byte: u64,
    pub record: &'a csv::ByteRecord,
    pub findings: &'a [Finding],
    pub valid: bool,
}

/// Where checked rows go (an annotated CSV of rejects; later the plan).
pub trait RowSink {
    /// Whether valid rows are wanted too; invalid ones always are.
    fn wants_valid(&self) -> bool {
        false
    }
    fn row(&mut self, row: &RowView<'_>) -> io::Result<()>;
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the caller learns about a file before its rows are checked.
pub struct FileHeader<'a> {
    pub path: &'a Path,
    pub entity_type: EntityType,
    pub header: &'a [String],
    /// Each canonical field the file has, with the index of its column.
    pub columns: Vec<(&'static Field, usize)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: String,
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    pub encoding: Encoding,
    pub delimiter: Delimiter,
    pub rows: u64,
    pub valid: u64,
    pub invalid: u64,
    pub warnings: u64,
    /// Records with no value in any cell; not counted in `rows`.
    pub blank_rows: u64,
    /// Findings by code, exact even when `findings` is truncated.
    pub counts: BTreeMap<Code, u64>,
    pub findings: Vec<Finding>,
    pub findings_truncated: bool,
}

#[derive(Debug)]
pub enum FileOutcome {
    Checked(FileReport),
    Unusable(IngestError),
}

#[derive(Debug)]
pub struct RunReport {
    /// In the order the files were given.
    pub files: Vec<(PathBuf, FileOutcome)>,
    pub elapsed_ms: u64,
}

impl RunReport {
    pub fn reports(&self) -> impl Iterator<Item = &FileReport> {
        self.files.iter().filter_map(|(_, o)| match o {
            FileOutcome::Checked(r) => Some(r),
            FileOutcome::Unusable(_) => None,
        })
    }
    pub fn rows(&self) -> u64 {
        self.reports().map(|r| r.rows).sum()
    }
    pub fn valid(&self) -> u64 {
        self.reports().map(|r| r.valid).sum()
    }
    pub fn invalid(&self) -> u64 {
        self.reports().map(|r| r.invalid).sum()
    }
    pub fn warnings(&self) -> u64 {
        self.reports().map(|r| r.warnings).sum()
    }
    pub fn unusable(&self) -> usize {
        self.files.len() - self.reports().count()
    }
}

fn severity(code: Code) -> Severity {
    match code {
        Code::ParentUnknown
        | Code::ParentInvalid
        | Code::BadEncoding
        | Code::UnknownColumn
        | Code::NoRows
        | Code::BlankRows => Severity::Warning,
        _ => Severity::Error,
    }
}

/// A header resolved against one entity type.
struct Plan {
    entity_type: EntityType,
    width: usize,
    /// One per field of the type, in the type's field order.
    cols: Vec<Col>,
    header_findings: Vec<Finding>,
    pos: Positions,
}

struct Col {
    field: &'static Field,
    idx: Option<usize>,
    label: String,
}

/// Positions (in `Plan::cols`) of the fields the row and file rules read.
#[derive(Default)]
struct Positions {
    key: usize,
    parent_key: Option<usize>,
    parent_type: Option<usize>,
    slug: Option<usize>,
    ordinal: Option<usize>,
    segment: Option<usize>,
    object_type: Option<usize>,
    title: Option<usize>,
    description_short: Option<usize>,
    description_long: Option<usize>,
    premiered: Option<usize>,
    encored: Option<usize>,
    audience: Option<usize>,
    station: Option<usize>,
    windows: Vec<(usize, usize)>,
}

fn header_finding(code: Code, column: &str, message: String, hint: &str) -> Finding {
    Finding {
        code,
        severity: severity(code),
        row: None,
        line: Some(1),
        column: Some(column.to_string()),
        value: None,
        message,
        hint: hint.to_string(),
    }
}

fn canonical_of<'m>(mapping: Option<&'m Mapping>, header: &str) -> Option<Cow<'m, str>> {
    if let Some(target) = mapping.and_then(|m| m.target(header)) {
        return Some(Cow::Borrowed(target));
    }
    let token = header_token(header);
    EntityType::ALL
        .iter()
        .flat_map(|t| t.fields())
        .find(|f| header_token(f.name) == token)
        .map(|f| Cow::Owned(f.name.to_string()))
}

impl Plan {
    fn new(src: &CsvSource, opts: &Options) -> Result<Self, IngestError> {
        let mapping = opts.file_mappings.get(&src.path).or(opts.mapping.as_ref());
        let canon: Vec<Option<Cow<str>>> = src
            .header
            .iter()
            .map(|h| canonical_of(mapping, h))
            .collect();
        let forced = opts
            .entity_type
            .or_else(|| mapping.and_then(|m| m.entity_type));
        let known = canon.iter().flatten().map(|c| c.as_ref());
        let entity_type = forced.or_else(|| detect_type(known.clone()));
        let usable = entity_type.is_some_and(|t| known.clone().any(|c| t.field(c).is_some()));
        let Some(entity_type) = entity_type.filter(|_| usable) else {
            let found: Vec<String> = src
                .header
                .iter()
                .take(8)
                .map(|h| format!("\"{h}\""))
                .collect();
            return Err(IngestError::NoHeader {
                path: src.path.clone(),
                expected: match forced {
                    Some(t) => t
                        .fields()
                        .iter()
                        .filter(|f| f.required)
                        .map(|f| f.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                    None => "show_key, season_key, episode_key or asset_key".into(),
                },
                found: found.join(", "),
            });
        };
        let mut header_findings = Vec::new();
        let mut cols: Vec<Col> = entity_type
            .fields()
            .iter()
            .map(|field| Col {
                field,
                idx: None,
                label: field.name.to_string(),
            })
            .collect();
        for (idx, (h, c)) in src.header.iter().zip(&canon).enumerate() {
            let pos = c
                .as_deref()
                .and_then(|c| entity_type.fields().iter().position(|f| f.name == c));
            match pos {
                Some(p) => {
                    if let Some(first) = cols[p].idx {
                        return Err(IngestError::BadHeader {
                            path: src.path.clone(),
                            message: format!(
                                "columns {} (\"{}\") and {} (\"{h}\") both mean {}. Remove or rename one of them.",
                                first + 1,
                                src.header[first],
                                idx + 1,
                                cols[p].field.name
                            ),
                        });
                    }
                    cols[p].idx = Some(idx);
                    let label = trim(h);
                    cols[p].label = if label.is_empty() {
                        cols[p].field.name.into()
                    } else {
                        label.into()
                    };
                }
                None if trim(h).is_empty() => {}
                None => header_findings.push(header_finding(
                    Code::UnknownColumn,
                    h,
                    format!("Column \"{h}\" is not among the {entity_type} columns and will be ignored."),
                    "Map it to a Metasync column with a mapping file (--mapping), or remove it.",
                )),
            }
        }
        for col in cols.iter().filter(|c| c.field.required && c.idx.is_none()) {
            header_findings.push(header_finding(
                Code::Required,
                col.field.name,
                format!("The required column {} is missing from the header.", col.field.name),
                "Add the column, or map the header your export uses with a mapping file (--mapping).",
            ));
        }
        let pos = |name: &str| entity_type.fields().iter().position(|f| f.name == name);
        let pos = Positions {
            key: pos(entity_type.key_column()).unwrap_or(0),
            parent_key: entity_type
                .parent()
                .map(|(_, col)| col)
                .or((entity_type == EntityType::Asset).then_some("parent_key"))
                .and_then(pos),
            parent_type: pos("parent_type"),
            slug: pos("slug"),
            ordinal: pos("ordinal"),
            segment: pos("segment"),
            object_type: pos("object_type"),
            title: pos("title"),
            description_short: pos("description_short"),
            description_long: pos("description_long"),
            premiered: pos("premiered_on"),
            encored: pos("encored_on"),
            audience: pos("audience"),
            station: pos("station"),
            windows: WINDOWS
                .iter()
                .filter_map(|(s, e)| Some((pos(s)?, pos(e)?)))
                .collect(),
        };
        Ok(Self {
            entity_type,
            width: src.header.len(),
            cols,
            header_findings,
            pos,
        })
    }
}

/// Keys seen across the files of one run, per type (for duplicates and references).
struct Registry {
    keys: [KeySet; 4],
    slugs: [KeySet; 4],
    given: [bool; 4],
    files: Vec<String>,
}

/// Validate files, parents first, reporting in the order given.
/// `sink_for` may return a sink for each file's rows. Fails only if a sink fails.
pub fn validate_paths(
    paths: &[PathBuf],
    opts: &Options,
    sink_for: impl FnMut(&FileHeader<'_>) -> io::Result<Option<Box<dyn RowSink>>>,
) -> io::Result<RunReport> {
    let started = Instant::now();
    let sources = paths
        .iter()
        .map(|p| (p.clone(), CsvSource::open(p)))
        .collect();
    let mut report = validate_sources(sources, opts, sink_for)?;
    report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

/// [`validate_paths`] over sources opened by the caller (from memory, a drop, a pipe).
pub fn validate_sources(
    sources: Vec<(PathBuf, Result<CsvSource, IngestError>)>,
    opts: &Options,
    mut sink_for: impl FnMut(&FileHeader<'_>) -> io::Result<Option<Box<dyn RowSink>>>,
) -> io::Result<RunReport> {
    let started = Instant::now();
    let (paths, sources): (Vec<PathBuf>, Vec<_>) = sources.into_iter().unzip();
    let mut opened: Vec<Option<Result<(CsvSource, Plan), IngestError>>> = sources
        .into_iter()
        .map(|s| Some(s.and_then(|s| Plan::new(&s, opts).map(|plan| (s, plan)))))
        .collect();
    let mut registry = Registry {
        keys: Default::default(),
        slugs: Default::default(),
        given: [false; 4],
        files: paths.iter().map(|p| display_name(p)).collect(),
    };
    for (_, plan) in opened.iter().flatten().flatten() {
        registry.given[plan.entity_type.index()] = true;
    }
    let mut order: Vec<usize> = (0..paths.len()).collect();
    order.sort_by_key(|&i| match &opened[i] {
        Some(Ok((_, plan))) => plan.entity_type.index(),
        _ => 0,
    });
    let mut outcomes: Vec<Option<FileOutcome>> = (0..paths.len()).map(|_| None).collect();
    for i in order {
        let outcome = match opened[i].take() {
            Some(Ok((src, plan))) => {
                let header = FileHeader {
                    path: &paths[i],
                    entity_type: plan.entity_type,
                    header: &src.header,
                    columns: plan
                        .cols
                        .iter()
                        .filter_map(|c| Some((c.field, c.idx?)))
                        .collect(),
                };
                let sink = sink_for(&header)?;
                let file = u16::try_from(i).unwrap_or(u16::MAX);
                check_file(src, plan, file, opts, &mut registry, sink)?
            }
            Some(Err(e)) => FileOutcome::Unusable(e),
            None => continue,
        };
        outcomes[i] = Some(outcome);
    }
    let files = paths
        .iter()
        .cloned()
        .zip(outcomes)
        .filter_map(|(p, o)| Some((p, o?)))
        .collect();
    Ok(RunReport {
        files,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

fn display_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// A stable hash of text parts (for the per-file uniqueness tables).
fn text_hash(parts: &[&str]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0x6d73).build_hasher();
    for p in parts {
        h.write(p.as_bytes());
        h.write_u8(0xff);
    }
    h.finish()
}

/// Per-file state of the file-level rules.
struct FileState {
    parents: KeySet,
    /// The last parent interned: children of one parent usually come together.
    last_parent: Option<(Vec<u8>, u32)>,
    /// (parent, ordinal, hash of the segment) → first row: Media Manager keeps
    /// (ordinal, segment) unique under a season.
    ordinals: hashbrown::HashMap<(u32, u32, u64), u32, foldhash::fast::FixedState>,
    full_lengths: KeySet,
    /// (parent, hash of object type and title) → first row: how an asset is found
    /// again under its parent, so it must be unique there.
    asset_titles: hashbrown::HashMap<(u32, u64), u32, foldhash::fast::FixedState>,
    /// Parent types not among the files given, already reported once.
    unchecked_parent: [bool; 4],
}

impl FileState {
    fn parent_id(&mut self, parent: &[u8]) -> Result<u32, crate::keyset::KeySpaceFull> {
        match &mut self.last_parent {
            Some((key, id)) if key.as_slice() == parent => Ok(*id),
            last => {
                let id = self.parents.intern(parent)?;
                let (key, cached) = last.get_or_insert_with(|| (Vec::new(), id));
                key.clear();
                key.extend_from_slice(parent);
                *cached = id;
                Ok(id)
            }
        }
    }
}

struct Report {
    inner: FileReport,
    max: usize,
}

impl Report {
    fn add(&mut self, f: &Finding) {
        *self.inner.counts.entry(f.code).or_insert(0) += 1;
        if f.severity == Severity::Warning {
            self.inner.warnings += 1;
        }
        // File-level findings are few and always kept: they explain the whole file.
        if f.row.is_none() || self.inner.findings.len() < self.max {
            self.inner.findings.push(f.clone());
        } else {
            self.inner.findings_truncated = true;
        }
    }
}

fn check_file(
    src: CsvSource,
    plan: Plan,
    file: u16,
    opts: &Options,
    reg: &mut Registry,
    mut sink: Option<Box<dyn RowSink>>,
) -> io::Result<FileOutcome> {
    let mut report = Report {
        inner: FileReport {
            path: src.path.display().to_string(),
            entity_type: plan.entity_type,
            encoding: src.sniffed.encoding,
            delimiter: src.sniffed.delimiter,
            rows: 0,
            valid: 0,
            invalid: 0,
            warnings: 0,
            blank_rows: 0,
            counts: BTreeMap::new(),
            findings: Vec::new(),
            findings_truncated: false,
        },
        max: opts.max_findings,
    };
    for f in &plan.header_findings {
        report.add(f);
    }
    let mut state = FileState {
        parents: KeySet::new(),
        last_parent: None,
        ordinals: Default::default(),
        full_lengths: KeySet::new(),
        asset_titles: Default::default(),
        unchecked_parent: [false; 4],
    };
    let size = src.size;
    let mut checker = RowChecker {
        plan: &plan,
        reg,
        state: &mut state,
        file,
        findings: Vec::new(),
        values: [None; MAX_FIELDS],
        file_findings: Vec::new(),
        at: At { row: 0, line: 0 },
    };
    let mut cell_stage = CellStage {
        plan: &plan,
        row: 0,
        scratch: String::new(),
    };
    let mut sink_error: Option<io::Error> = None;
    let mut row: u64 = 0;
    let wants_valid = sink.as_ref().is_some_and(|s| s.wants_valid());
    let read = src.for_each_batch(
        |rec, line, pre: &mut Pre| cell_stage.run(rec, line, pre),
        |batch| {
            if row == 0 {
                checker.reserve(size, batch);
            }
            let (records, lines) = (&batch.records[..batch.len], &batch.lines[..batch.len]);
            for ((rec, &line), pre) in records.iter().zip(lines).zip(batch.pre.iter_mut()) {
                if is_blank(rec) {
                    report.inner.blank_rows += 1;
                    pre.findings.clear();
                    continue;
                }
                row += 1;
                let (row, line) = opts
                    .renumber
                    .as_ref()
                    .and_then(|m| m.get(usize::try_from(row - 1).ok()?).copied())
                    .unwrap_or((row, line));
                if let Err(e) = checker.check(rec, pre, At { row, line }) {
                    sink_error = Some(io::Error::other(e.to_string()));
                    return false;
                }
                for f in checker.file_findings.drain(..) {
                    report.add(&f);
                }
                let valid = !checker
                    .findings
                    .iter()
                    .any(|f| f.severity == Severity::Error);
                for f in &checker.findings {
                    report.add(f);
                }
                if valid {
                    report.inner.valid += 1;
                } else {
                    report.inner.invalid += 1;
                }
                if let Some(s) = sink.as_mut().filter(|_| !valid || wants_valid) {
                    let view = RowView {
                        row,
                        line,
                        byte: rec.position().map_or(0, csv::Position::byte),
                        record: rec,
                        findings: &checker.findings,
                        valid,
                    };
                    if let Err(e) = s.row(&view) {
                        sink_error = Some(e);
                        return false;
                    }
                }
            }
            true
        },
    );
    if let Some(e) = sink_error {
        return Err(e);
    }
    if let Some(s) = sink.as_mut() {
        s.finish()?;
    }
    report.inner.rows = row;
    if let Err(e) = read {
        return Ok(FileOutcome::Unusable(e));
    }
    if report.inner.blank_rows > 0 {
        let n = report.inner.blank_rows;
        // About the file, not a place in it: no line, no column.
        report.add(&Finding {
            code: Code::BlankRows,
            severity: severity(Code::BlankRows),
            row: None,
            line: None,
            column: None,
            value: None,
            message: format!(
                "{n} {} no value in any cell (bare delimiters, as spreadsheets leave around the data); not data, skipped.",
                if n == 1 { "row has" } else { "rows have" }
            ),
            hint: "Nothing to do; delete them in the spreadsheet to silence this note.".into(),
        });
    }
    if row == 0 {
        report.add(&header_finding(
            Code::NoRows,
            plan.entity_type.key_column(),
            "The file has a header but no data rows.".into(),
            "Check that the export included the rows you meant to send.",
        ));
    }
    Ok(FileOutcome::Checked(report.inner))
}

/// A record with no value in any cell: what a spreadsheet writes for rows that only
/// look empty (`,,,,`). A one-cell blank record cannot occur (the reader skips empty
/// lines), so this never hides a real one-column row.
fn is_blank(rec: &csv::ByteRecord) -> bool {
    rec.iter().all(|c| c.trim_ascii().is_empty())
}

/// More than any entity type has fields (asset: 18).
const MAX_FIELDS: usize = 20;

/// Byte ranges of the plan's columns in a record's text.
type Spans = [(usize, usize); MAX_FIELDS];

struct Decoded {
    text: String,
    spans: Spans,
}

/// What the reader thread learned about one record.
#[derive(Default)]
struct Pre {
    values: [Option<Value>; MAX_FIELDS],
    /// Cell and row-rule findings.
    findings: Vec<Finding>,
    ragged: bool,
    /// The cells, decoded one by one, of a record that was not valid UTF-8.
    decoded: Option<Box<Decoded>>,
}

/// Where a row is: 1-based data row and the physical line it starts on.
#[derive(Debug, Clone, Copy)]
struct At {
    row: u64,
    line: u64,
}

fn row_finding(
    plan: &Plan,
    at: At,
    code: Code,
    col: Option<usize>,
    value: Option<&str>,
    message: String,
    hint: impl Into<String>,
) -> Finding {
    Finding {
        code,
        severity: severity(code),
        row: Some(at.row),
        line: Some(at.line),
        column: col.map(|c| plan.cols[c].label.clone()),
        value: value.map(preview),
        message,
        hint: hint.into(),
    }
}

/// A record's cells as text: decoded once per record, sliced per cell.
struct Cells<'r> {
    text: &'r str,
    spans: Spans,
    hints: Hints,
}

impl<'r> Cells<'r> {
    /// The trimmed text of plan column `c`.
    fn get(&self, c: usize) -> &'r str {
        let (s, e) = self.spans[c];
        self.text.get(s..e).map_or("", trim)
    }
}

/// The checks that need nothing but the record itself: cells and cross-field rules.
/// It runs on the reader thread, beside parsing.
struct CellStage<'p> {
    plan: &'p Plan,
    row: u64,
    scratch: String,
}

impl CellStage<'_> {
    fn run(&mut self, rec: &csv::ByteRecord, line: u64, pre: &mut Pre) {
        self.row += 1;
        let plan = self.plan;
        let at = At {
            row: self.row,
            line,
        };
        pre.findings.clear();
        pre.decoded = None;
        pre.values = [None; MAX_FIELDS];
        pre.ragged = rec.len() != plan.width;
        if pre.ragged {
            pre.findings.push(row_finding(plan, at, Code::RaggedRow,
                None,
                None,
                format!("This row has {} fields; the header has {}.", rec.len(), plan.width),
                "A value containing the delimiter must be in quotes; check for shifted or missing cells.",
            ));
            return;
        }
        let mut spans = [(0, 0); MAX_FIELDS];
        let mut misencoded: u32 = 0;
        // The whole record is decoded once. That is only enough if every cell is valid
        // on its own too: `Brûl\xC3` and `\xA9e` are two broken cells whose bytes join
        // into valid text, so each cell must also start and end on a character.
        let whole = std::str::from_utf8(rec.as_slice()).ok().filter(|text| {
            plan.cols.iter().enumerate().all(|(c, col)| {
                let Some(r) = col.idx.and_then(|i| rec.range(i)) else {
                    return true;
                };
                spans[c] = (r.start, r.end);
                text.is_char_boundary(r.start) && text.is_char_boundary(r.end)
            })
        });
        let text = match whole {
            Some(text) => text,
            None => {
                // Rare: decode cell by cell so the valid ones stay as they are.
                self.scratch.clear();
                for (c, col) in plan.cols.iter().enumerate() {
                    let bytes = col.idx.and_then(|i| rec.get(i)).unwrap_or(b"");
                    let start = self.scratch.len();
                    match cell_text(bytes) {
                        Ok(t) => self.scratch.push_str(t),
                        Err(owned) => {
                            self.scratch.push_str(&owned);
                            misencoded |= 1 << c;
                        }
                    }
                    spans[c] = (start, self.scratch.len());
                }
                pre.decoded = Some(Box::new(Decoded {
                    text: self.scratch.clone(),
                    spans,
                }));
                self.scratch.as_str()
            }
        };
        let (high, ctrl) = scan(text.as_bytes());
        let cells = Cells {
            text,
            spans,
            hints: Hints {
                ascii: !high,
                no_controls: !ctrl,
            },
        };
        for c in (0..plan.cols.len()).filter(|c| misencoded & (1 << c) != 0) {
            pre.findings.push(row_finding(
                plan,
                at,
                Code::BadEncoding,
                Some(c),
                Some(cells.get(c)),
                "This cell is not valid UTF-8; it was read as Windows-1252.".into(),
                "Check its accented characters, and save the file as CSV UTF-8.",
            ));
        }
        for (c, col) in plan.cols.iter().enumerate() {
            let v = cells.get(c);
            if v.is_empty() {
                if col.field.required {
                    let message = format!("{} is required.", col.label);
                    pre.findings.push(row_finding(
                        plan,
                        at,
                        Code::Required,
                        Some(c),
                        None,
                        message,
                        "Fill in the cell.",
                    ));
                }
                continue;
            }
            match check_with(col.field.kind, &col.label, v, cells.hints) {
                Ok(value) => pre.values[c] = Some(value),
                Err(p) => pre.findings.push(row_finding(
                    plan,
                    at,
                    p.code,
                    Some(c),
                    Some(v),
                    p.message,
                    p.hint,
                )),
            }
        }
        row_rules(plan, &cells, pre, at);
    }
}

fn row_rules(plan: &Plan, cells: &Cells<'_>, pre: &mut Pre, at: At) {
    let pos = &plan.pos;
    let values = pre.values;
    let get = |p: Option<usize>| p.and_then(|p| values[p]);
    let mut push = |code, col: Option<usize>, message: String, hint: &str| {
        let value = col.map(|c| cells.get(c)).filter(|v| !v.is_empty());
        pre.findings
            .push(row_finding(plan, at, code, col, value, message, hint));
    };
    if let (Some(Value::Date(p)), Some(Value::Date(e))) = (get(pos.premiered), get(pos.encored)) {
        if e < p {
            push(
                Code::Rule,
                pos.encored,
                "The encore date is before the premiere date.".into(),
                "An encore airs on or after the premiere; check both dates.",
            );
        }
    }
    if get(pos.audience) == Some(Value::Enum("local"))
        && pos.station.is_some_and(|s| cells.get(s).is_empty())
    {
        push(
            Code::Rule,
            pos.station,
            "A show with audience \"local\" needs a station.".into(),
            "Fill in the station's call letters, or change the audience.",
        );
    }
    if let (Some(Value::Enum("full_length")), Some(Value::Enum(t))) =
        (get(pos.object_type), get(pos.parent_type))
    {
        if t != "episode" {
            push(
                Code::Rule,
                pos.parent_type,
                "A full_length asset must belong to an episode.".into(),
                "Attach it to an episode, or change object_type to preview or clip.",
            );
        }
    }
    if let Some(Value::Enum(kind)) = get(pos.object_type) {
        if OWN_TEXT_TYPES.contains(&kind) {
            for c in [pos.title, pos.description_short, pos.description_long] {
                if let Some(c) = c.filter(|&c| cells.get(c).is_empty()) {
                    let message = format!("A {kind} needs its own {}.", plan.cols[c].label);
                    push(
                        Code::Required,
                        Some(c),
                        message,
                        "Clips and previews carry their own title and descriptions; only a full_length takes its episode's.",
                    );
                }
            }
        }
    }
    for &(s, e) in &pos.windows {
        if let (Some(Value::DateTime(start)), Some(Value::DateTime(end))) = (values[s], values[e]) {
            if end <= start {
                let message = format!(
                    "{} must be after {}.",
                    plan.cols[e].label, plan.cols[s].label
                );
                push(
                    Code::Rule,
                    Some(e),
                    message,
                    "An availability window ends after it starts; check both date-times.",
                );
            }
        }
    }
}

/// The checks that need what earlier rows and files left: keys, slugs, ordinals,
/// full_lengths and references. It runs on the validating thread, in row order.
struct RowChecker<'a> {
    plan: &'a Plan,
    reg: &'a mut Registry,
    state: &'a mut FileState,
    file: u16,
    findings: Vec<Finding>,
    values: [Option<Value>; MAX_FIELDS],
    /// Once-per-file findings raised while checking a row.
    file_findings: Vec<Finding>,
    /// The row being checked.
    at: At,
}

type Checked = Result<(), crate::keyset::KeySpaceFull>;

/// The trimmed text of plan column `c` of a record the cell stage has seen.
fn cell<'r>(plan: &Plan, rec: &'r csv::ByteRecord, pre: &'r Pre, c: usize) -> &'r str {
    match &pre.decoded {
        Some(d) => d.text.get(d.spans[c].0..d.spans[c].1).map_or("", trim),
        None => plan.cols[c]
            .idx
            .and_then(|i| rec.get(i))
            .and_then(|b| std::str::from_utf8(b).ok())
            .map_or("", trim),
    }
}

/// The bytes of a cell the cell stage accepted as a key or slug (ASCII by then):
/// the index works on bytes, so the common case skips decoding.
fn key_bytes<'r>(plan: &Plan, rec: &'r csv::ByteRecord, pre: &'r Pre, c: usize) -> &'r [u8] {
    if pre.decoded.is_none() {
        if let Some(b) = plan.cols[c]
            .idx
            .and_then(|i| rec.get(i))
            .map(<[u8]>::trim_ascii)
        {
            if b.first().is_none_or(u8::is_ascii) && b.last().is_none_or(u8::is_ascii) {
                return b;
            }
        }
    }
    cell(plan, rec, pre, c).as_bytes()
}

impl RowChecker<'_> {
    /// Size the key tables from the first batch's bytes per row, so a large file does
    /// not rehash them over and over.
    fn reserve(&mut self, size: Option<u64>, batch: &Batch<Pre>) {
        let Some(last) = batch.records[..batch.len].last() else {
            return;
        };
        let consumed = last.position().map_or(0, csv::Position::byte).max(1);
        let Some(size) = size else { return };
        let estimate = size.saturating_mul(batch.len as u64) / consumed;
        let rows = usize::try_from(estimate.min(50_000_000)).unwrap_or(0);
        let et = self.plan.entity_type.index();
        self.reg.keys[et].reserve(rows, rows * 24);
        if self.plan.pos.slug.is_some() {
            self.reg.slugs[et].reserve(rows, rows * 40);
        }
        if self.plan.pos.ordinal.is_some() {
            self.state.ordinals.reserve(rows);
        }
    }

    fn push(
        &mut self,
        code: Code,
        col: Option<usize>,
        value: Option<&str>,
        message: String,
        hint: impl Into<String>,
    ) {
        let f = row_finding(self.plan, self.at, code, col, value, message, hint);
        self.findings.push(f);
    }

    fn check(&mut self, rec: &csv::ByteRecord, pre: &mut Pre, at: At) -> Checked {
        self.at = at;
        self.findings.clear();
        // The reader thread numbered rows as it read them; blank records (not data)
        // and a renumbered selection make that differ from `at`.
        for f in &mut pre.findings {
            f.row = Some(at.row);
            f.line = Some(at.line);
        }
        self.findings.append(&mut pre.findings);
        if pre.ragged {
            return Ok(());
        }
        self.values = pre.values;
        self.check_file_rules(rec, pre)
    }

    fn seen_at(&self, seen: Seen) -> String {
        if seen.file == self.file {
            format!("row {}", seen.row)
        } else {
            let name = self
                .reg
                .files
                .get(usize::from(seen.file))
                .map_or("another file", String::as_str);
            format!("{name}, row {}", seen.row)
        }
    }

    fn check_file_rules(&mut self, rec: &csv::ByteRecord, pre: &Pre) -> Checked {
        let row = self.at.row;
        let plan = self.plan;
        let pos = &plan.pos;
        let et = plan.entity_type;
        let row32 = u32::try_from(row).unwrap_or(u32::MAX);
        let file = self.file;
        let here = |valid| Seen {
            file,
            row: row32,
            valid,
        };
        let key_ok = self.values[pos.key].is_some();
        let key_raw = key_bytes(plan, rec, pre, pos.key);
        // Inserted as valid now and marked invalid at the end if need be: one probe
        // for the common case.
        let duplicate = if key_ok {
            self.reg.keys[et.index()].insert(key_raw, here(true))?
        } else {
            None
        };
        // A repeated key is one finding; its slug and ordinal repeat with it.
        if let Some(seen) = duplicate {
            let key = cell(plan, rec, pre, pos.key);
            let message = format!(
                "{} {key} appears more than once: first at {}.",
                et.key_column(),
                self.seen_at(seen)
            );
            self.push(
                Code::DuplicateKey,
                Some(pos.key),
                Some(key),
                message,
                "Keep one row per key; remove or merge the copies.",
            );
        }
        if duplicate.is_none() {
            if let Some(s) = pos.slug.filter(|&s| self.values[s].is_some()) {
                if let Some(seen) =
                    self.reg.slugs[et.index()].insert(key_bytes(plan, rec, pre, s), here(true))?
                {
                    let slug = cell(plan, rec, pre, s);
                    let message = format!("Slug {slug} is already used at {}.", self.seen_at(seen));
                    self.push(
                        Code::DuplicateKey,
                        Some(s),
                        Some(slug),
                        message,
                        "Slugs identify objects in the catalog; give each one its own.",
                    );
                }
            }
            if let (Some(o), Some(p)) = (pos.ordinal, pos.parent_key) {
                if let (Some(Value::Ordinal(n)), Some(_)) = (self.values[o], self.values[p]) {
                    let pid = self.state.parent_id(key_bytes(plan, rec, pre, p))?;
                    let segment = pos.segment.map_or("", |c| cell(plan, rec, pre, c));
                    match self.state.ordinals.entry((pid, n, text_hash(&[segment]))) {
                        hashbrown::hash_map::Entry::Occupied(first) => {
                            let parent = cell(plan, rec, pre, p);
                            let which = if segment.is_empty() {
                                format!("Ordinal {n}")
                            } else {
                                format!("Ordinal {n} with segment {segment}")
                            };
                            let message = format!(
                                "{which} is already used under {parent} at row {}.",
                                first.get()
                            );
                            let v = cell(plan, rec, pre, o);
                            self.push(
                                Code::DuplicateOrdinal,
                                Some(o),
                                Some(v),
                                message,
                                "Each child needs its own ordinal under its parent.",
                            );
                        }
                        hashbrown::hash_map::Entry::Vacant(v) => {
                            v.insert(row32);
                        }
                    }
                }
            }
            if let (Some(Value::Enum("full_length")), Some(Value::Enum("episode")), Some(p)) = (
                pos.object_type.and_then(|o| self.values[o]),
                pos.parent_type.and_then(|t| self.values[t]),
                pos.parent_key.filter(|&p| self.values[p].is_some()),
            ) {
                let parent = cell(plan, rec, pre, p);
                if let Some(seen) = self
                    .state
                    .full_lengths
                    .insert(parent.as_bytes(), here(true))?
                {
                    let message = format!(
                        "Episode {parent} already has a full_length asset at row {}.",
                        seen.row
                    );
                    self.push(Code::DuplicateFullLength, pos.object_type, Some("full_length"), message,
                        "An episode has at most one full_length; make this one a clip or a preview.");
                }
            }
            if let (Some(Value::Enum(kind)), Some(t), Some(p)) = (
                pos.object_type.and_then(|o| self.values[o]),
                pos.title.filter(|&t| self.values[t].is_some()),
                pos.parent_key.filter(|&p| self.values[p].is_some()),
            ) {
                if kind != "full_length" {
                    let pid = self.state.parent_id(key_bytes(plan, rec, pre, p))?;
                    let title = cell(plan, rec, pre, t);
                    match self
                        .state
                        .asset_titles
                        .entry((pid, text_hash(&[kind, title])))
                    {
                        hashbrown::hash_map::Entry::Occupied(first) => {
                            let parent = cell(plan, rec, pre, p);
                            let message = format!(
                                "A {kind} titled \"{title}\" is already under {parent} at row {}.",
                                first.get()
                            );
                            self.push(
                                Code::DuplicateKey,
                                Some(t),
                                Some(title),
                                message,
                                "The catalog tells a parent's clips and previews apart by title; give each its own.",
                            );
                        }
                        hashbrown::hash_map::Entry::Vacant(v) => {
                            v.insert(row32);
                        }
                    }
                }
            }
        }
        self.check_reference(rec, pre);
        if key_ok
            && duplicate.is_none()
            && self.findings.iter().any(|f| f.severity == Severity::Error)
        {
            self.reg.keys[et.index()].set_invalid(key_raw);
        }
        Ok(())
    }

    fn check_reference(&mut self, rec: &csv::ByteRecord, pre: &Pre) {
        let plan = self.plan;
        let pos = &plan.pos;
        let Some(p) = pos.parent_key.filter(|&p| self.values[p].is_some()) else {
            return;
        };
        let parent_type = match (
            plan.entity_type.parent(),
            pos.parent_type.and_then(|t| self.values[t]),
        ) {
            (Some((t, _)), _) => t,
            (None, Some(Value::Enum(t))) => match t.parse::<EntityType>() {
                Ok(t) => t,
                Err(_) => return,
            },
            _ => return,
        };
        if !self.reg.given[parent_type.index()] {
            if !self.state.unchecked_parent[parent_type.index()] {
                self.state.unchecked_parent[parent_type.index()] = true;
                self.file_findings.push(header_finding(
                    Code::ParentUnknown,
                    &plan.cols[p].label,
                    format!("No {parent_type} file is among the files given, so {parent_type} references were not checked."),
                    "Validate the parent file together with this one, or they are checked against the sync state when you plan.",
                ));
            }
            return;
        }
        let seen = self.reg.keys[parent_type.index()].get(key_bytes(plan, rec, pre, p));
        let parent = || cell(plan, rec, pre, p);
        match seen {
            None => {
                let parent = parent();
                let message = format!("The {parent_type} {parent} is not in the files given.");
                self.push(
                    Code::ParentUnknown,
                    Some(p),
                    Some(parent),
                    message,
                    "It must exist in the catalog already, or be added to the parent file.",
                );
            }
            Some(seen) if !seen.valid => {
                let parent = parent();
                let message = format!(
                    "The {parent_type} {parent} ({}) has errors, so this row will wait for it.",
                    self.seen_at(seen)
                );
                self.push(
                    Code::ParentInvalid,
                    Some(p),
                    Some(parent),
                    message,
                    "Fix the parent row first.",
                );
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    struct Run {
        _dir: tempfile::TempDir,
        report: RunReport,
    }

    impl Run {
        fn new(files: &[(&str, &[u8])], opts: &Options) -> Self {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let paths: Vec<PathBuf> = files
                .iter()
                .map(|(name, body)| {
                    let p = dir.path().join(name);
                    let mut f = std::fs::File::create(&p).unwrap_or_else(|e| panic!("{e}"));
                    f.write_all(body).unwrap_or_else(|e| panic!("{e}"));
                    p
                })
                .collect();
            let report =
                validate_paths(&paths, opts, |_| Ok(None)).unwrap_or_else(|e| panic!("{e}"));
            Self { _dir: dir, report }
        }

        fn of(files: &[(&str, &str)]) -> Self {
            let bytes: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_bytes())).collect();
            Self::new(&bytes, &Options::default())
        }

        fn file(&self, i: usize) -> &FileReport {
            match &self.report.files[i].1 {
                FileOutcome::Checked(r) => r,
                FileOutcome::Unusable(e) => panic!("file {i} unusable: {e}"),
            }
        }

        /// (row, code, column) of every finding of file `i`.
        fn findings(&self, i: usize) -> Vec<(Option<u64>, Code, Option<String>)> {
            self.file(i)
                .findings
                .iter()
                .map(|f| (f.row, f.code, f.column.clone()))
                .collect()
        }

        fn has(&self, i: usize, row: Option<u64>, code: Code, column: &str) -> bool {
            self.findings(i)
                .contains(&(row, code, Some(column.to_string())))
        }
    }

    const SHOW_HEAD: &str = "show_key,slug,title,audience,station,language\n";

    #[test]
    fn a_clean_show_file_has_no_findings() {
        let r = Run::of(&[(
            "s.csv",
            &format!(
                "{SHOW_HEAD}SH1,nova,NOVA,national,,en\nSH2,frontline,Frontline,local,WGBH,es\n"
            ),
        )]);
        let f = r.file(0);
        assert_eq!((f.rows, f.valid, f.invalid, f.warnings), (2, 2, 0, 0));
        assert!(f.findings.is_empty(), "{:?}", f.findings);
        assert_eq!(f.entity_type, EntityType::Show);
    }

    #[test]
    fn cell_rules_report_row_line_column_and_value() {
        let long = "x".repeat(257);
        let body =
            format!("{SHOW_HEAD}SH1,Bad Slug,ok,national,,en\nSH2,s2,{long},martian,,english\n");
        let r = Run::of(&[("s.csv", &body)]);
        assert!(r.has(0, Some(1), Code::BadFormat, "slug"));
        assert!(r.has(0, Some(2), Code::TooLong, "title"));
        assert!(r.has(0, Some(2), Code::BadEnum, "audience"));
        assert!(r.has(0, Some(2), Code::BadEnum, "language"));
        let f = &r.file(0).findings[0];
        assert_eq!((f.line, f.severity), (Some(2), Severity::Error));
        assert_eq!(f.value.as_deref(), Some("Bad Slug"));
        assert!(f.hint.contains("bad-slug"), "{}", f.hint);
        assert_eq!(r.file(0).invalid, 2);
    }

    #[test]
    fn rows_of_bare_delimiters_are_not_data() {
        // What Excel writes for formatted rows below the data, and one in the middle.
        let body = format!(
            "{SHOW_HEAD}SH1,a,A,national,,en\n,,,,,\nSH2,b,B,national,,en\n,,,,,\n , ,,,,\n"
        );
        let r = Run::of(&[("s.csv", &body)]);
        let f = r.file(0);
        assert_eq!((f.rows, f.valid, f.invalid, f.blank_rows), (2, 2, 0, 3));
        assert_eq!(f.counts.get(&Code::BlankRows), Some(&1));
        assert!(f.findings.iter().all(|f| f.severity == Severity::Warning));
        assert!(
            f.findings[0].message.starts_with("3 rows have no value"),
            "{:?}",
            f.findings
        );
        // Rows after a blank one keep their numbers.
        let r = Run::of(&[(
            "s.csv",
            &format!("{SHOW_HEAD},,,,,\nSH1,Bad Slug,A,national,,en\n"),
        )]);
        assert!(
            r.has(0, Some(1), Code::BadFormat, "slug"),
            "{:?}",
            r.findings(0)
        );
        assert_eq!(
            r.file(0)
                .findings
                .iter()
                .find(|f| f.row.is_some())
                .and_then(|f| f.line),
            Some(3)
        );
        // A row with one value is data, and broken.
        let r = Run::of(&[("s.csv", &format!("{SHOW_HEAD},,,,,en\n"))]);
        assert_eq!(
            (r.file(0).rows, r.file(0).invalid, r.file(0).blank_rows),
            (1, 1, 0)
        );
    }

    #[test]
    fn row_rule_local_audience_needs_a_station() {
        let r = Run::of(&[("s.csv", &format!("{SHOW_HEAD}SH1,a,A,local,,en\n"))]);
        assert!(r.has(0, Some(1), Code::Rule, "station"));
    }

    #[test]
    fn missing_required_column_and_unknown_columns() {
        let r = Run::of(&[("s.csv", "show_key,title,Colour\nSH1,A,red\n")]);
        let f = r.findings(0);
        assert!(
            f.contains(&(None, Code::UnknownColumn, Some("Colour".into()))),
            "{f:?}"
        );
        assert!(f.contains(&(None, Code::Required, Some("slug".into()))));
        assert!(f.contains(&(Some(1), Code::Required, Some("slug".into()))));
        assert_eq!(r.file(0).warnings, 1);
        assert_eq!(r.file(0).invalid, 1);
    }

    #[test]
    fn headers_match_loosely_and_through_a_mapping() {
        let r = Run::of(&[("s.csv", "Show Key,SLUG,show-title\nSH1,a,A\n")]);
        // "show-title" is not a column: title is missing.
        assert!(r.has(0, None, Code::Required, "title"));
        let mapping = Mapping::parse(
            Path::new("m.toml"),
            "[columns]\n\"Show Title\" = \"title\"\n",
        )
        .ok();
        let opts = Options {
            mapping,
            ..Options::default()
        };
        let r = Run::new(&[("s.csv", b"Show Key,SLUG,show-title\nSH1,a,A\n")], &opts);
        assert!(r.file(0).findings.is_empty(), "{:?}", r.file(0).findings);
    }

    #[test]
    fn duplicate_keys_and_slugs_point_at_the_first() {
        let body = format!("{SHOW_HEAD}SH1,a,A,,,\nSH2,b,B,,,\nSH1,c,C,,,\nSH3,b,D,,,\n");
        let r = Run::of(&[("s.csv", &body)]);
        assert!(r.has(0, Some(3), Code::DuplicateKey, "show_key"));
        assert!(r.has(0, Some(4), Code::DuplicateKey, "slug"));
        let dup = r
            .file(0)
            .findings
            .iter()
            .find(|f| f.row == Some(3))
            .map(|f| f.message.clone());
        assert_eq!(
            dup.as_deref(),
            Some("show_key SH1 appears more than once: first at row 1.")
        );
        assert_eq!(r.file(0).invalid, 2);
    }

    #[test]
    fn a_copied_row_is_one_finding_not_three() {
        let row = "SH1-S01,SH1,1,Season 1\n";
        let r = Run::of(&[(
            "se.csv",
            &format!("season_key,show_key,ordinal,title\n{row}{row}"),
        )]);
        let f = r.findings(0);
        let row2: Vec<_> = f.iter().filter(|x| x.0 == Some(2)).collect();
        assert_eq!(
            row2,
            vec![&(Some(2), Code::DuplicateKey, Some("season_key".into()))]
        );
    }

    #[test]
    fn ordinals_are_unique_per_parent_and_at_least_one() {
        let body = "season_key,show_key,ordinal\nA1,A,1\nA2,A,1\nB1,B,1\nB0,B,0\n";
        let r = Run::of(&[("se.csv", body)]);
        assert!(r.has(0, Some(2), Code::DuplicateOrdinal, "ordinal"));
        assert!(!r.findings(0).iter().any(|f| f.0 == Some(3)));
        assert!(r.has(0, Some(4), Code::BadRange, "ordinal"));
    }

    const EP_HEAD: &str = "episode_key,season_key,ordinal,title,description_short,description_long,premiered_on,encored_on\n";

    #[test]
    fn episode_rules_dates_required_and_ragged_rows() {
        let body = format!(
            "{EP_HEAD}E1,S1,1,T,d,D,2024-05-01,2024-04-01\nE2,S1,2,T,,D,14/03/2024,\nE3,S1,3,T,d\n"
        );
        let r = Run::of(&[("e.csv", &body)]);
        assert!(r.has(0, Some(1), Code::Rule, "encored_on"));
        assert!(r.has(0, Some(2), Code::Required, "description_short"));
        assert!(r.has(0, Some(2), Code::BadDate, "premiered_on"));
        assert!(r.findings(0).contains(&(Some(3), Code::RaggedRow, None)));
        assert_eq!(r.file(0).invalid, 3);
    }

    #[test]
    fn lines_count_quoted_newlines() {
        let body = format!("{EP_HEAD}E1,S1,1,T,\"two\nlines\",D,2024-05-01,\nE2,S1,2,T,d,D,bad,\n");
        let r = Run::of(&[("e.csv", &body)]);
        let f = &r.file(0).findings;
        let bad = f.iter().find(|f| f.code == Code::BadDate);
        assert_eq!(bad.map(|f| (f.row, f.line)), Some((Some(2), Some(4))));
    }

    const ASSET_HEAD: &str = "asset_key,parent_type,parent_key,object_type,title,duration,content_rating,public_start,public_end\n";

    #[test]
    fn asset_rules() {
        let body = format!(
            "{ASSET_HEAD}\
             A1,episode,E1,full_length,T,00:58:00,TV-PG,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z\n\
             A2,episode,E1,full_length,T,3480,TV-PG,,\n\
             A3,season,S1,full_length,T,10,NR,,\n\
             A4,episode,E2,clip,T,0,PG-13,2024-02-01T00:00:00Z,2024-01-01T00:00:00Z\n\
             A5,episode,E2,trailer,T,1:00,TV-G,2024-01-01T09:00:00,\n\
             A6,episode,E3,clip,,60,NR,2024-01-01,\n\
             A7,episode,E3,preview,T,60,NR,,\n\
             A8,episode,E3,preview,T,60,NR,,\n\
             A9,episode,E4,full_length,,60,NR,,\n"
        );
        let r = Run::of(&[("a.csv", &body)]);
        assert!(
            !r.findings(0).iter().any(|f| f.0 == Some(1)),
            "{:?}",
            r.findings(0)
        );
        assert!(r.has(0, Some(2), Code::DuplicateFullLength, "object_type"));
        assert!(r.has(0, Some(3), Code::Rule, "parent_type"));
        assert!(r.has(0, Some(4), Code::BadRange, "duration"));
        assert!(r.has(0, Some(4), Code::BadEnum, "content_rating"));
        assert!(r.has(0, Some(4), Code::Rule, "public_end"));
        assert!(r.has(0, Some(5), Code::BadEnum, "object_type"));
        assert!(r.has(0, Some(5), Code::BadDate, "public_start"));
        // Clips and previews carry their own title and descriptions (a full-length
        // takes its episode's), and a day without a time and zone is not an instant.
        assert!(r.has(0, Some(6), Code::Required, "title"));
        assert!(r.has(0, Some(6), Code::Required, "description_short"));
        assert!(r.has(0, Some(6), Code::Required, "description_long"));
        assert!(r.has(0, Some(6), Code::BadDate, "public_start"));
        // Found again by type and title under its parent: unique there.
        assert!(r.has(0, Some(8), Code::DuplicateKey, "title"));
        assert!(!r.has(0, Some(7), Code::DuplicateKey, "title"));
        assert!(
            !r.findings(0)
                .iter()
                .any(|f| f.0 == Some(9) && f.1 != Code::ParentUnknown),
            "{:?}",
            r.findings(0)
        );
    }

    #[test]
    fn episodes_are_unique_by_ordinal_and_segment() {
        let body = "episode_key,season_key,ordinal,segment,title,description_short,description_long,premiered_on,nola\n\
            E1,S1,1,,T,s,l,2024-01-01,004726\n\
            E2,S1,1,b,T,s,l,2024-01-01,004727\n\
            E3,S1,1,b,T,s,l,2024-01-01,004728\n\
            E4,S1,2,,T,s,l,2024-01-01,NOVA\n";
        let r = Run::of(&[("e.csv", body)]);
        assert!(
            !r.has(0, Some(2), Code::DuplicateOrdinal, "ordinal"),
            "another segment"
        );
        assert!(r.has(0, Some(3), Code::DuplicateOrdinal, "ordinal"));
        assert!(r.has(0, Some(4), Code::BadFormat, "nola"));
    }

    #[test]
    fn references_are_checked_parents_first_whatever_the_order_given() {
        let seasons = "season_key,show_key,ordinal\nS1,SH1,1\nS2,SH9,1\nS3,SH2,1\n";
        let shows = format!("{SHOW_HEAD}SH1,a,A,,,\nSH2,Bad Slug,B,,,\n");
        let r = Run::of(&[("seasons.csv", seasons), ("shows.csv", &shows)]);
        assert!(r.has(0, Some(2), Code::ParentUnknown, "show_key"));
        assert!(r.has(0, Some(3), Code::ParentInvalid, "show_key"));
        assert!(!r.findings(0).iter().any(|f| f.0 == Some(1)));
        // Warnings leave the rows valid.
        assert_eq!((r.file(0).valid, r.file(0).warnings), (3, 2));
        let msg = r
            .file(0)
            .findings
            .iter()
            .find(|f| f.code == Code::ParentInvalid)
            .map(|f| f.message.clone());
        assert!(msg.is_some_and(|m| m.contains("shows.csv, row 2")));
    }

    #[test]
    fn without_the_parent_file_references_get_one_warning() {
        let r = Run::of(&[(
            "se.csv",
            "season_key,show_key,ordinal\nS1,SH1,1\nS2,SH2,1\n",
        )]);
        assert_eq!(
            r.findings(0),
            vec![(None, Code::ParentUnknown, Some("show_key".into()))]
        );
        assert_eq!(r.file(0).valid, 2);
    }

    #[test]
    fn duplicate_keys_across_two_files_of_one_type() {
        let r = Run::of(&[
            ("a.csv", &format!("{SHOW_HEAD}SH1,a,A,,,\n")),
            ("b.csv", &format!("{SHOW_HEAD}SH1,b,B,,,\n")),
        ]);
        let f = &r.file(1).findings;
        assert!(
            f.iter()
                .any(|f| f.code == Code::DuplicateKey && f.message.contains("a.csv, row 1")),
            "{f:?}"
        );
    }

    #[test]
    fn a_stray_windows_1252_byte_late_in_a_utf8_file_is_read_and_flagged() {
        let mut body = SHOW_HEAD.as_bytes().to_vec();
        for i in 0..3000 {
            body.extend(format!("SH{i},s{i},Title number {i} with padding text,,,\n").bytes());
        }
        body.extend(b"SHX,sx,Caf\xE9,,,\n");
        let r = Run::new(&[("s.csv", &body)], &Options::default());
        assert_eq!(r.file(0).encoding, Encoding::Utf8);
        assert!(r.has(0, Some(3001), Code::BadEncoding, "title"));
        let f = r
            .file(0)
            .findings
            .iter()
            .find(|f| f.code == Code::BadEncoding)
            .and_then(|f| f.value.clone());
        assert_eq!(f.as_deref(), Some("Caf\u{e9}"));
        assert_eq!(r.file(0).invalid, 0);
    }

    #[test]
    fn cells_that_split_a_character_are_each_flagged() {
        // Past the detection sample (so the file reads as UTF-8): "Brûl\xC3" and
        // "\xA9e", each cell broken, though their bytes joined spell "Brûlée".
        let mut body = b"show_key,slug,title,description_short\n".to_vec();
        for i in 0..3000 {
            body.extend(format!("SH{i},s{i},Title number {i} with padding text,drama\n").bytes());
        }
        body.extend(b"SHX,brulee,Br\xC3\xBBl\xC3,\xA9e\n");
        let r = Run::new(&[("s.csv", &body)], &Options::default());
        assert_eq!(r.file(0).encoding, Encoding::Utf8);
        assert!(
            r.has(0, Some(3001), Code::BadEncoding, "title"),
            "{:?}",
            r.findings(0)
        );
        assert!(r.has(0, Some(3001), Code::BadEncoding, "description_short"));
        assert_eq!(r.file(0).valid, 3001);
    }

    #[test]
    fn findings_are_capped_but_counts_stay_exact() {
        let mut body = String::from(SHOW_HEAD);
        for i in 0..50 {
            body.push_str(&format!("SH{i},BAD{i},T,,,\n"));
        }
        let opts = Options {
            max_findings: 10,
            ..Options::default()
        };
        let r = Run::new(&[("s.csv", body.as_bytes())], &opts);
        let f = r.file(0);
        assert_eq!(f.findings.len(), 10);
        assert!(f.findings_truncated);
        assert_eq!(f.counts.get(&Code::BadFormat), Some(&50));
        assert_eq!(f.invalid, 50);
    }

    #[test]
    fn unusable_headers() {
        let r = Run::of(&[("x.csv", "foo,bar\n1,2\n")]);
        assert!(matches!(
            r.report.files[0].1,
            FileOutcome::Unusable(IngestError::NoHeader { .. })
        ));
        let r = Run::of(&[("x.csv", "show_key,Title,title\n1,2,3\n")]);
        match &r.report.files[0].1 {
            FileOutcome::Unusable(e @ IngestError::BadHeader { .. }) => {
                assert!(e.to_string().contains("both mean title"))
            }
            other => panic!("{other:?}"),
        }
        let opts = Options {
            entity_type: Some(EntityType::Asset),
            ..Options::default()
        };
        let r = Run::new(&[("x.csv", b"show_key,slug\n1,2\n")], &opts);
        assert!(matches!(
            r.report.files[0].1,
            FileOutcome::Unusable(IngestError::NoHeader { .. })
        ));
    }

    #[test]
    fn header_only_file_warns_no_rows() {
        let r = Run::of(&[("s.csv", SHOW_HEAD)]);
        assert_eq!(
            r.findings(0),
            vec![(None, Code::NoRows, Some("show_key".into()))]
        );
    }

    #[test]
    fn every_type_fits_the_fixed_value_array() {
        assert!(EntityType::ALL
            .iter()
            .all(|t| t.fields().len() <= MAX_FIELDS));
    }

    #[test]
    fn a_generated_catalog_is_clean_and_its_corruptions_are_caught() {
        use crate::gen::{GenOptions, Generator};
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let gen = |ratio: f64| -> Vec<PathBuf> {
            let paths: Vec<PathBuf> = EntityType::ALL
                .iter()
                .map(|t| dir.path().join(format!("{t}s-{ratio}.csv")))
                .collect();
            let writers: Vec<Option<std::fs::File>> = paths
                .iter()
                .map(|p| Some(std::fs::File::create(p).unwrap_or_else(|e| panic!("{e}"))))
                .collect();
            let writers: [Option<std::fs::File>; 4] =
                writers.try_into().unwrap_or_else(|_| panic!("four"));
            let g = Generator::new(
                GenOptions {
                    seed: 5,
                    invalid_ratio: ratio,
                },
                writers,
            );
            g.and_then(|g| g.catalog(20))
                .unwrap_or_else(|e| panic!("{e}"));
            paths
        };
        let clean = validate_paths(&gen(0.0), &Options::default(), |_| Ok(None))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(clean.rows() > 500);
        assert_eq!(
            (clean.invalid(), clean.warnings(), clean.unusable()),
            (0, 0, 0)
        );
        let dirty = validate_paths(&gen(0.1), &Options::default(), |_| Ok(None))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            dirty.invalid() > dirty.rows() / 20,
            "{} of {}",
            dirty.invalid(),
            dirty.rows()
        );
    }
}
