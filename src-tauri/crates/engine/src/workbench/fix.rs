//! Bulk fixes over a column or a finding code: each computes its changes first (the
//! preview staff confirm), then applies them as one undo step.

use super::{Document, Edits, WorkbenchError};
use crate::finding::Code;
use crate::text::{normalize_text, parse_duration, suggest_slug, trim};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Changes shown in a preview.
pub const PREVIEW_SAMPLES: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Replace every occurrence of `find` (case-sensitive) with `with`.
    Replace { find: String, with: String },
    /// Remove the white space around values.
    Trim,
    /// Set every cell to `value`.
    Set { value: String },
    /// Fill empty cells with the nearest value above them in the column.
    FillDown,
    /// Typographic quotes and dashes (and the rest of what the target normalizes) to plain ones.
    Typography,
    /// US dates (`M/D/YYYY`) to ISO 8601 (`YYYY-MM-DD`).
    UsDate,
    /// The slug written from the row's title.
    SlugFromTitle,
    /// Durations written as `H:MM:SS` or `MM:SS` to seconds.
    DurationSeconds,
}

/// Which cells a fix looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every cell of a column (header position).
    Column(u16),
    /// The cells a finding of this code points at, optionally in one column only.
    Code { code: Code, column: Option<u16> },
}

#[derive(Debug, Clone, Default)]
pub struct FixPreview {
    /// Cells the fix would change.
    pub cells: u64,
    /// The first few: (row, column, before, after).
    pub samples: Vec<(u32, u16, String, String)>,
}

pub(super) fn preview(
    doc: &Document,
    fix: &Fix,
    scope: &Scope,
) -> Result<FixPreview, WorkbenchError> {
    let mut out = FixPreview::default();
    visit(doc, fix, scope, |r, c, before, after| {
        out.cells += 1;
        if out.samples.len() < PREVIEW_SAMPLES {
            out.samples.push((r, c, before.to_owned(), after));
        }
    })?;
    Ok(out)
}

pub(super) fn changes(
    doc: &Document,
    fix: &Fix,
    scope: &Scope,
) -> Result<Vec<(u32, u16, String)>, WorkbenchError> {
    let mut out = Vec::new();
    visit(doc, fix, scope, |r, c, _, after| out.push((r, c, after)))?;
    Ok(out)
}

/// Calls `each` for every cell the fix changes, in file order.
fn visit(
    doc: &Document,
    fix: &Fix,
    scope: &Scope,
    mut each: impl FnMut(u32, u16, &str, String),
) -> Result<(), WorkbenchError> {
    let width = doc.source.header.len();
    // Target cells by row.
    let targets: Option<BTreeMap<u32, Vec<u16>>> = match *scope {
        Scope::Column(c) => {
            if usize::from(c) >= width {
                return Err(WorkbenchError::NoSuchColumn {
                    column: u64::from(c) + 1,
                    columns: width as u64,
                });
            }
            None
        }
        Scope::Code { code, column } => {
            let mut t: BTreeMap<u32, Vec<u16>> = BTreeMap::new();
            for (&r, fs) in &doc.checked.findings {
                for f in fs.iter().filter(|f| f.code == code) {
                    if let Some(c) = doc.column_of(f).filter(|c| column.is_none_or(|k| k == *c)) {
                        let cells = t.entry(r).or_default();
                        if !cells.contains(&c) {
                            cells.push(c);
                        }
                    }
                }
            }
            Some(t)
        }
    };
    let title = match fix {
        Fix::SlugFromTitle => Some(doc.checked.columns.get("title").copied().ok_or_else(|| {
            WorkbenchError::Fix("This file has no title column to make slugs from.".into())
        })?),
        _ => None,
    };
    if let Fix::Replace { find, .. } = fix {
        if find.is_empty() {
            return Err(WorkbenchError::Fix("Enter the text to find.".into()));
        }
    }
    let column = match *scope {
        Scope::Column(c) => Some(c),
        Scope::Code { column, .. } => column,
    };
    // Only fill-down needs the rows between targets; otherwise read just the targets.
    let stream = targets.is_none() || matches!(fix, Fix::FillDown);
    let mut above: BTreeMap<u16, String> = BTreeMap::new();
    let mut visit_row = |r: u32, cells: &[String]| {
        let value = |c: u16| -> &str {
            doc.edits.get(&r).and_then(|m| m.get(&c)).map_or_else(
                || cells.get(usize::from(c)).map_or("", String::as_str),
                String::as_str,
            )
        };
        let wanted: Vec<u16> = match &targets {
            None => column.into_iter().collect(),
            Some(t) => t.get(&r).cloned().unwrap_or_default(),
        };
        for c in wanted {
            let before = value(c);
            let title = title.map(value);
            if let Some(after) = fixed(fix, before, above.get(&c).map(String::as_str), title) {
                if after != before {
                    each(r, c, before, after);
                }
            }
        }
        if matches!(fix, Fix::FillDown) {
            let cols: Vec<u16> = match (column, &targets) {
                (Some(c), _) => vec![c],
                (None, Some(t)) => t.values().flatten().copied().collect(),
                (None, None) => Vec::new(),
            };
            for c in cols {
                let v = value(c);
                if !trim(v).is_empty() {
                    above.insert(c, v.to_owned());
                }
            }
        }
    };
    if stream {
        for_each_row(doc, &mut visit_row)?;
    } else if let Some(t) = &targets {
        for &r in t.keys() {
            let (buf, _) = doc.source.raw_rows(r, r + 1)?;
            visit_row(r, &super::parse_first(&buf, doc.source.delimiter.byte()));
        }
    }
    Ok(())
}

/// Every data row in order, as read from the file (edits not applied).
fn for_each_row(
    doc: &Document,
    each: &mut dyn FnMut(u32, &[String]),
) -> Result<(), WorkbenchError> {
    let src = &doc.source;
    let offsets: Vec<u64> = {
        let ix = src.index();
        if !ix.complete {
            return Err(WorkbenchError::NotIndexed);
        }
        ix.offsets.clone()
    };
    let plain = super::save::Corrected::new(src, &Arc::new(Edits::new()));
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(src.delimiter.byte())
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 18)
        .from_reader(plain);
    let mut rec = csv::ByteRecord::new();
    let mut cells: Vec<String> = Vec::new();
    let mut row = 0usize;
    let rows = offsets.len().saturating_sub(1);
    while row < rows {
        let more = rdr
            .read_byte_record(&mut rec)
            .map_err(|e| WorkbenchError::Io {
                path: src.path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        if !more {
            break;
        }
        // Records that are not data (the header, blank rows) start elsewhere.
        if rec.position().map(csv::Position::byte) != Some(offsets[row]) {
            continue;
        }
        cells.clear();
        cells.extend(rec.iter().map(|c| match crate::ingest::cell_text(c) {
            Ok(s) => s.to_owned(),
            Err(s) => s,
        }));
        each(u32::try_from(row).unwrap_or(u32::MAX), &cells);
        row += 1;
    }
    Ok(())
}

/// The fixed value, or `None` when the fix does not apply to this cell.
fn fixed(fix: &Fix, v: &str, above: Option<&str>, title: Option<&str>) -> Option<String> {
    match fix {
        Fix::Replace { find, with } => v
            .contains(find.as_str())
            .then(|| v.replace(find.as_str(), with)),
        Fix::Trim => Some(trim(v).to_owned()),
        Fix::Set { value } => Some(value.clone()),
        Fix::FillDown => trim(v)
            .is_empty()
            .then(|| above.map(str::to_owned))
            .flatten(),
        Fix::Typography => Some(normalize_text(v).into_owned()),
        Fix::UsDate => us_date(trim(v)),
        Fix::SlugFromTitle => title.map(suggest_slug).filter(|s| !s.is_empty()),
        Fix::DurationSeconds => {
            let t = trim(v);
            if !t.contains(':') {
                return None;
            }
            let s = parse_duration(t)?;
            Some(if s.fract() == 0.0 {
                format!("{}", s as u64)
            } else {
                format!("{s}")
            })
        }
    }
}

/// `M/D/YYYY` (one or two digits each) to `YYYY-MM-DD`, only for a real date.
fn us_date(v: &str) -> Option<String> {
    let mut parts = v.split('/');
    let (m, d, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || y.len() != 4
        || !(1..=2).contains(&m.len())
        || !(1..=2).contains(&d.len())
    {
        return None;
    }
    let num = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse::<i64>().ok())
            .flatten()
    };
    let (m, d, y) = (num(m)?, num(d)?, num(y)?);
    let iso = format!("{y:04}-{m:02}-{d:02}");
    crate::text::parse_date(&iso).map(|_| iso)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_fixes_change_only_what_they_are_sure_of() {
        assert_eq!(us_date("3/7/2024").as_deref(), Some("2024-03-07"));
        assert_eq!(us_date("12/31/1999").as_deref(), Some("1999-12-31"));
        assert_eq!(us_date("2/30/2024"), None);
        assert_eq!(us_date("13/1/2024"), None);
        assert_eq!(us_date("2024-03-07"), None);
        let dur = |v| fixed(&Fix::DurationSeconds, v, None, None);
        assert_eq!(dur("1:02:03").as_deref(), Some("3723"));
        assert_eq!(dur("59:00").as_deref(), Some("3540"));
        assert_eq!(dur("3540"), None);
        let typo = fixed(
            &Fix::Typography,
            "\u{201c}Nova\u{201d} \u{2013} a",
            None,
            None,
        );
        assert_eq!(typo.as_deref(), Some("\"Nova\" - a"));
        let slug = fixed(&Fix::SlugFromTitle, "", None, Some("Prédateurs du Nord"));
        assert_eq!(slug.as_deref(), Some("predateurs-du-nord"));
        assert_eq!(
            fixed(&Fix::FillDown, " ", Some("x"), None).as_deref(),
            Some("x")
        );
        assert_eq!(fixed(&Fix::FillDown, "y", Some("x"), None), None);
    }
}
