//! Findings: what validation says about a cell, a row, a file or a reference.

use serde::Serialize;

/// Serialize a unit enum as the one name its `as_str` gives it.
macro_rules! serialize_as_str {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use serialize_as_str;

/// Stable machine codes. Staff-facing text lives in `message`/`hint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// A required value or column is missing.
    Required,
    /// Longer than the target allows (counted in characters after normalization).
    TooLong,
    /// Not in the expected shape (slug, key, NOLA, number, duration...).
    BadFormat,
    /// Not one of the allowed values.
    BadEnum,
    /// Not a valid ISO 8601 date or date-time.
    BadDate,
    /// A number or interval outside its allowed range.
    BadRange,
    /// A key (or slug) that appears more than once.
    DuplicateKey,
    /// Two children with the same ordinal under one parent.
    DuplicateOrdinal,
    /// A second full_length asset under one episode.
    DuplicateFullLength,
    /// A row with more or fewer fields than the header.
    RaggedRow,
    /// The parent is not among the files given (resolved against sync state later).
    ParentUnknown,
    /// The parent is present but its own row is invalid, so this row will be blocked.
    ParentInvalid,
    /// A cross-field rule of the row.
    Rule,
    /// A cell that was not valid in the detected encoding.
    BadEncoding,
    /// A header column that maps to nothing and will be ignored.
    UnknownColumn,
    /// Two header columns that map to the same field.
    DuplicateColumn,
    /// A file with a header but no data rows.
    NoRows,
    /// Rows with no value in any cell (bare delimiters, as Excel leaves below the
    /// data): not data, skipped and counted.
    BlankRows,
}

impl Code {
    pub const ALL: [Code; 18] = [
        Code::Required,
        Code::TooLong,
        Code::BadFormat,
        Code::BadEnum,
        Code::BadDate,
        Code::BadRange,
        Code::DuplicateKey,
        Code::DuplicateOrdinal,
        Code::DuplicateFullLength,
        Code::RaggedRow,
        Code::ParentUnknown,
        Code::ParentInvalid,
        Code::Rule,
        Code::BadEncoding,
        Code::UnknownColumn,
        Code::DuplicateColumn,
        Code::NoRows,
        Code::BlankRows,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Required => "required",
            Code::TooLong => "too_long",
            Code::BadFormat => "bad_format",
            Code::BadEnum => "bad_enum",
            Code::BadDate => "bad_date",
            Code::BadRange => "bad_range",
            Code::DuplicateKey => "duplicate_key",
            Code::DuplicateOrdinal => "duplicate_ordinal",
            Code::DuplicateFullLength => "duplicate_full_length",
            Code::RaggedRow => "ragged_row",
            Code::ParentUnknown => "parent_unknown",
            Code::ParentInvalid => "parent_invalid",
            Code::Rule => "rule",
            Code::BadEncoding => "bad_encoding",
            Code::UnknownColumn => "unknown_column",
            Code::DuplicateColumn => "duplicate_column",
            Code::NoRows => "no_rows",
            Code::BlankRows => "blank_rows",
        }
    }
}

serialize_as_str!(Code);

impl std::str::FromStr for Code {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown finding code \"{s}\""))
    }
}
serialize_as_str!(Severity);

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem, positioned like the `csv` crate positions its errors: 1-based data
/// `row` (header excluded) and the physical `line` where the record starts.
/// File-level findings (about the header) have no `row`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    pub row: Option<u64>,
    pub line: Option<u64>,
    pub column: Option<String>,
    pub value: Option<String>,
    pub message: String,
    pub hint: String,
}

/// Values are shown cut short: a finding is a pointer, not a copy of the data.
pub const VALUE_PREVIEW_CHARS: usize = 60;

pub fn preview(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == VALUE_PREVIEW_CHARS {
            out.push('…');
            return out;
        }
        // Keep a finding on one line however the cell was written.
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_cuts_long_values_and_flattens_newlines() {
        let long = "x".repeat(100);
        let p = preview(&long);
        assert_eq!(p.chars().count(), VALUE_PREVIEW_CHARS + 1);
        assert!(p.ends_with('…'));
        assert_eq!(preview("a\nb"), "a b");
    }

    #[test]
    fn codes_serialize_as_their_stable_names() {
        let json = serde_json::to_string(&Code::DuplicateOrdinal).unwrap_or_default();
        assert_eq!(json, "\"duplicate_ordinal\"");
        assert_eq!(Code::TooLong.as_str(), "too_long");
        for c in Code::ALL {
            assert_eq!(c.as_str().parse::<Code>(), Ok(c));
        }
    }
}
