//! The rejected rows as a CSV staff can open in Excel: their cells as read plus an
//! `errors` column, every cell guarded against formula injection.

use crate::finding::{Finding, Severity};
use crate::ingest::cell_text;
use crate::validate::{RowSink, RowView};
use std::borrow::Cow;
use std::io::{self, Write};

/// Cells a spreadsheet would run as a formula get a leading apostrophe (OWASP's advice).
pub fn escape_formula(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// One line per finding, for the `errors` column.
pub fn summarize(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        if !out.is_empty() {
            out.push_str("; ");
        }
        if f.severity == Severity::Warning {
            out.push_str("warning: ");
        }
        if let Some(c) = &f.column {
            out.push_str(c);
            out.push_str(": ");
        }
        out.push_str(&f.message);
        out.push_str(" [");
        out.push_str(f.code.as_str());
        out.push(']');
    }
    out
}

pub struct AnnotatedCsv<W: Write> {
    out: csv::Writer<W>,
    cells: Vec<String>,
}

impl<W: Write> AnnotatedCsv<W> {
    /// Writes a UTF-8 byte order mark (so Excel reads accents right) and the header.
    pub fn new(mut w: W, header: &[String]) -> io::Result<Self> {
        w.write_all(b"\xEF\xBB\xBF")?;
        let mut out = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(w);
        let mut cells: Vec<String> = header
            .iter()
            .map(|h| escape_formula(h).into_owned())
            .collect();
        cells.push("errors".into());
        out.write_record(&cells)?;
        Ok(Self { out, cells })
    }

    pub fn into_inner(self) -> io::Result<W> {
        self.out
            .into_inner()
            .map_err(|e| io::Error::other(e.to_string()))
    }
}

impl<W: Write> RowSink for AnnotatedCsv<W> {
    fn row(&mut self, row: &RowView<'_>) -> io::Result<()> {
        self.cells.clear();
        for cell in row.record {
            let text = match cell_text(cell) {
                Ok(s) => escape_formula(s).into_owned(),
                Err(owned) => escape_formula(&owned).into_owned(),
            };
            self.cells.push(text);
        }
        self.cells
            .push(escape_formula(&summarize(row.findings)).into_owned());
        self.out.write_record(&self.cells)?;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_leading_cells_are_escaped() {
        for c in ["=SUM(A1)", "+1", "-2", "@cmd", "\tx", "\rx"] {
            assert!(escape_formula(c).starts_with('\''), "{c:?}");
        }
        assert_eq!(escape_formula("plain = fine"), "plain = fine");
        assert_eq!(escape_formula(""), "");
    }
}
