//! Cell-level rules: text normalization and the format of each kind of value.
//!
//! Everything here works on one trimmed, non-empty cell and allocates only when it
//! reports a problem, because it runs for every cell of million-row files.

use crate::finding::Code;
use crate::schema::{Kind, KEY_MAX, SLUG_MAX, TAG_MAX};
use std::borrow::Cow;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// What is wrong with a cell; the caller adds its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: Code,
    pub message: String,
    pub hint: String,
}

impl Problem {
    fn new(code: Code, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// A checked value, parsed where later rules need it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Plain,
    /// Days since 1970-01-01.
    Date(i64),
    /// Seconds since the Unix epoch, UTC.
    DateTime(i64),
    Ordinal(u32),
    /// The canonical spelling of an enum value.
    Enum(&'static str),
}

/// Trim the white space spreadsheets leave around values (including no-break spaces).
pub fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}

/// The text the target receives: trimmed, Unicode NFC, typographic quotes, dashes and
/// no-break spaces from word processors turned into plain ones, zero-width marks removed.
pub fn normalize_text(s: &str) -> Cow<'_, str> {
    let t = trim(s);
    if t.is_ascii() {
        return Cow::Borrowed(t);
    }
    Cow::Owned(
        t.nfc()
            .filter_map(|c| match c {
                '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}' | '\u{2032}' => Some('\''),
                '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{201f}' | '\u{2033}' => Some('"'),
                '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
                | '\u{2212}' => Some('-'),
                '\u{a0}' | '\u{202f}' | '\u{2007}' => Some(' '),
                c if is_zero_width(c) => None,
                c => Some(c),
            })
            .collect(),
    )
}

/// Characters [`normalize_text`] drops.
fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200b}' | '\u{feff}' | '\u{2060}')
}

/// Length in characters of the normalized text (what the target counts), without
/// building it. Text whose non-ASCII characters are all Latin (below U+0300, where no
/// character composes or decomposes) or typographic punctuation (U+2010–U+2027, which
/// normalization maps one to one) keeps its length; anything else is composed to count.
pub fn normalized_len(trimmed: &str) -> usize {
    if trimmed.is_ascii() {
        return trimmed.len();
    }
    let b = trimmed.as_bytes();
    let simple_lead = |i: usize| {
        let x = b[i];
        x < 0xC0
            || matches!(x, 0xC2..=0xCB)
            || (x == 0xE2
                && b.get(i + 1) == Some(&0x80)
                && matches!(b.get(i + 2), Some(0x90..=0xA7)))
    };
    // Whole 16-byte runs of ASCII are skipped at once; most text is mostly ASCII.
    let simple = (0..b.len()).step_by(16).all(|start| {
        let end = (start + 16).min(b.len());
        b[start..end].iter().fold(0u8, |a, &x| a | x) < 0x80 || (start..end).all(simple_lead)
    });
    if simple {
        trimmed.chars().count()
    } else if is_nfc_quick(trimmed.chars()) == IsNormalized::Yes {
        trimmed.chars().filter(|&c| !is_zero_width(c)).count()
    } else {
        trimmed.nfc().filter(|&c| !is_zero_width(c)).count()
    }
}

/// What is already known about a cell's bytes (validation learns it once per record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    pub ascii: bool,
    /// No C0 control character or DEL anywhere in it.
    pub no_controls: bool,
}

impl Hints {
    pub fn of(v: &str) -> Self {
        let (high, ctrl) = scan(v.as_bytes());
        Self {
            ascii: !high,
            no_controls: !ctrl,
        }
    }
}

/// One pass: (any non-ASCII byte, any control byte). Branch-free so it vectorizes.
pub fn scan(bytes: &[u8]) -> (bool, bool) {
    let (mut high, mut ctrl) = (0u8, 0u8);
    for &b in bytes {
        high |= b & 0x80;
        ctrl |= u8::from(b < 0x20) | u8::from(b == 0x7F);
    }
    (high != 0, ctrl != 0)
}

/// Check one trimmed, non-empty cell against its kind. `label` is the column as the
/// file names it, used in messages.
pub fn check(kind: Kind, label: &str, v: &str) -> Result<Value, Problem> {
    check_with(kind, label, v, Hints::of(v))
}

/// [`check`] with what the caller already knows about the cell's bytes.
pub fn check_with(kind: Kind, label: &str, v: &str, hints: Hints) -> Result<Value, Problem> {
    match kind {
        Kind::Key => check_key(label, v),
        Kind::Slug => check_slug(label, v),
        Kind::Text { max, multiline } => check_text(label, v, max, multiline, hints),
        Kind::Nola => {
            if v.len() == 4 && v.bytes().all(|b| b.is_ascii_alphabetic()) {
                Ok(Value::Plain)
            } else {
                Err(Problem::new(
                    Code::BadFormat,
                    format!("{label} must be a NOLA code of exactly four letters."),
                    "Use the program's four-letter NOLA code, e.g. NOVA.",
                ))
            }
        }
        Kind::EpisodeNola => {
            if v.len() == 6 && v.bytes().all(|b| b.is_ascii_digit()) {
                Ok(Value::Plain)
            } else {
                Err(Problem::new(
                    Code::BadFormat,
                    format!("{label} must be an episode NOLA code of exactly six digits."),
                    "Use the episode's six-digit broadcast code, e.g. 004726 (the show's four letters go in the show file).",
                ))
            }
        }
        Kind::Url => {
            let rest = v
                .strip_prefix("https://")
                .or_else(|| v.strip_prefix("http://"));
            match rest {
                Some(r) if !r.is_empty() && !r.starts_with('/') && !v.contains(char::is_whitespace) => {
                    Ok(Value::Plain)
                }
                _ => Err(Problem::new(
                    Code::BadFormat,
                    format!("{label} must be an http:// or https:// address the catalog can fetch."),
                    "Give the file's public URL, e.g. https://example.org/video/owls-ep1.mov.",
                )),
            }
        }
        Kind::Language => {
            let lower = v.to_ascii_lowercase();
            if v.len() == 2 && ISO_639_1.binary_search(&lower.as_str()).is_ok() {
                Ok(Value::Plain)
            } else {
                Err(Problem::new(
                    Code::BadEnum,
                    format!("{label} must be a two-letter ISO 639-1 language code."),
                    "Use codes such as en, es, fr (not \"English\" or \"eng\").",
                ))
            }
        }
        Kind::Enum(allowed) => match allowed.iter().find(|a| a.eq_ignore_ascii_case(v)) {
            Some(canonical) => Ok(Value::Enum(canonical)),
            None => Err(Problem::new(
                Code::BadEnum,
                format!("{label} must be one of: {}.", allowed.join(", ")),
                format!("Replace it with one of: {}.", allowed.join(", ")),
            )),
        },
        Kind::Date => parse_date(v).map(Value::Date).ok_or_else(|| {
            Problem::new(
                Code::BadDate,
                format!("{label} is not a valid date in the form YYYY-MM-DD."),
                "Write dates as YYYY-MM-DD, e.g. 2024-03-14. In Excel: Format Cells → Custom → yyyy-mm-dd.",
            )
        }),
        Kind::DateTime => parse_datetime(v).map(Value::DateTime),
        Kind::Ordinal => check_ordinal(label, v),
        Kind::Duration => check_duration(label, v),
        Kind::Tags => check_tags(label, v),
        Kind::Station => {
            if (2..=12).contains(&v.len())
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                Ok(Value::Plain)
            } else {
                Err(Problem::new(
                    Code::BadFormat,
                    format!("{label} must be a station's call letters."),
                    "Use the call letters, e.g. WGBH or KQED.",
                ))
            }
        }
    }
}

fn too_long(label: &str, len: usize, max: usize) -> Problem {
    let over = len.saturating_sub(max);
    Problem::new(
        Code::TooLong,
        format!("{label} is {len} characters long; the limit is {max}."),
        format!(
            "Shorten it by {over} character{}.",
            if over == 1 { "" } else { "s" }
        ),
    )
}

fn check_key(label: &str, v: &str) -> Result<Value, Problem> {
    // Bytes bound characters from above: count characters only for long cells.
    if v.len() > KEY_MAX && v.chars().count() > KEY_MAX {
        return Err(too_long(label, v.chars().count(), KEY_MAX));
    }
    if v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
    {
        Ok(Value::Plain)
    } else {
        Err(Problem::new(
            Code::BadFormat,
            format!("{label} may contain only letters, digits and - _ . : /"),
            "Keys come from the source system; check the cell was not edited by hand.",
        ))
    }
}

/// What a slug would look like written the way the target wants it: accents dropped
/// ("Prédateurs" → "predateurs"), everything else a single hyphen.
pub fn suggest_slug(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut push = |s: &str| {
        for c in s.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
    };
    for c in normalize_text(v).nfd().filter(|&c| !is_combining_mark(c)) {
        match c {
            'ß' => push("ss"),
            'æ' | 'Æ' => push("ae"),
            'œ' | 'Œ' => push("oe"),
            'ø' | 'Ø' => push("o"),
            'ł' | 'Ł' => push("l"),
            'đ' | 'Đ' => push("d"),
            c => push(c.encode_utf8(&mut [0; 4])),
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

fn check_slug(label: &str, v: &str) -> Result<Value, Problem> {
    let ok = !v.starts_with('-')
        && !v.ends_with('-')
        && !v.contains("--")
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(Problem::new(
            Code::BadFormat,
            format!("{label} must be lowercase letters and digits joined by single hyphens."),
            format!("For example: {}", suggest_slug(v)),
        ));
    }
    if v.len() > SLUG_MAX {
        return Err(too_long(label, v.len(), SLUG_MAX));
    }
    Ok(Value::Plain)
}

fn check_text(
    label: &str,
    v: &str,
    max: usize,
    multiline: bool,
    hints: Hints,
) -> Result<Value, Problem> {
    let bad_control = |c: char| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'));
    // Normalization leaves control characters as they are, so check the cell itself.
    if !hints.no_controls && v.chars().any(bad_control) {
        return Err(control_problem(label, multiline));
    }
    let len = if hints.ascii {
        v.len()
    } else {
        normalized_len(v)
    };
    if len > max {
        return Err(too_long(label, len, max));
    }
    Ok(Value::Plain)
}

fn control_problem(label: &str, multiline: bool) -> Problem {
    if multiline {
        Problem::new(
            Code::BadFormat,
            format!("{label} contains invisible control characters."),
            "Retype the cell or paste it as plain text.",
        )
    } else {
        Problem::new(
            Code::BadFormat,
            format!("{label} must be on one line and free of control characters."),
            "Remove line breaks and tabs from the cell.",
        )
    }
}

fn check_ordinal(label: &str, v: &str) -> Result<Value, Problem> {
    if v.is_empty() || v.len() > 6 || !v.bytes().all(|b| b.is_ascii_digit()) {
        let hint = if v.ends_with(".0") {
            "Format the column as a whole number (Excel wrote it as a decimal)."
        } else {
            "Use a whole number: 1 for the first, 2 for the second…"
        };
        return Err(Problem::new(
            Code::BadFormat,
            format!("{label} must be a whole number."),
            hint,
        ));
    }
    let n: u32 = v.parse().map_err(|_| {
        Problem::new(
            Code::BadFormat,
            format!("{label} must be a whole number."),
            "Use a whole number.",
        )
    })?;
    if n == 0 {
        return Err(Problem::new(
            Code::BadRange,
            format!("{label} must be 1 or more."),
            "Ordinals start at 1.",
        ));
    }
    Ok(Value::Ordinal(n))
}

/// Seconds from `123`, `123.5`, `MM:SS` or `H:MM:SS`.
pub fn parse_duration(v: &str) -> Option<f64> {
    let parts: Vec<&str> = v.split(':').collect();
    let num = |s: &str| -> Option<f64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return None;
        }
        s.parse::<f64>().ok()
    };
    match parts.as_slice() {
        [s] => num(s),
        [m, s] => {
            let (m, s) = (num(m)?, num(s)?);
            (s < 60.0 && m.fract() == 0.0).then_some(m * 60.0 + s)
        }
        [h, m, s] => {
            let (h, m, s) = (num(h)?, num(m)?, num(s)?);
            (m < 60.0 && s < 60.0 && h.fract() == 0.0 && m.fract() == 0.0)
                .then_some(h * 3600.0 + m * 60.0 + s)
        }
        _ => None,
    }
}

fn check_duration(label: &str, v: &str) -> Result<Value, Problem> {
    match parse_duration(v) {
        None => Err(Problem::new(
            Code::BadFormat,
            format!("{label} must be a number of seconds or HH:MM:SS."),
            "For example 3540 or 00:59:00.",
        )),
        Some(s) if s <= 0.0 => Err(Problem::new(
            Code::BadRange,
            format!("{label} must be greater than zero."),
            "Enter the asset's running time.",
        )),
        Some(_) => Ok(Value::Plain),
    }
}

fn check_tags(label: &str, v: &str) -> Result<Value, Problem> {
    for tag in v.split([',', ';']) {
        let len = normalized_len(trim(tag));
        if len > TAG_MAX {
            return Err(Problem::new(
                Code::TooLong,
                format!("A tag in {label} is {len} characters long; the limit is {TAG_MAX}."),
                "Separate tags with commas and keep each one short.",
            ));
        }
    }
    Ok(Value::Plain)
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
}

/// Days since 1970-01-01 of a strict `YYYY-MM-DD`.
pub fn parse_date(v: &str) -> Option<i64> {
    let b = v.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's days_from_civil.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Seconds since the epoch of `YYYY-MM-DD` (midnight UTC) or
/// `YYYY-MM-DD[T ]HH:MM[:SS[.fff]](Z|±HH:MM|±HHMM)`.
pub fn parse_datetime(v: &str) -> Result<i64, Problem> {
    let bad = || {
        Problem::new(
            Code::BadDate,
            "Not a valid ISO 8601 date-time.",
            "Write it as 2024-03-14T09:00:00Z or with an offset, e.g. 2024-03-14T09:00:00-05:00.",
        )
    };
    // `get` rather than `split_at`: byte 10 may fall inside a character.
    let (Some(date), Some(rest)) = (v.get(..10), v.get(10..)) else {
        return Err(bad());
    };
    let days = parse_date(date).ok_or_else(bad)?;
    if rest.is_empty() {
        // A day alone has no zone: midnight where? Media Manager takes UTC instants.
        return Err(Problem::new(
            Code::BadDate,
            "The date-time has no time and no time zone.",
            "Add the time and a zone, e.g. 2024-03-14T00:00:00-05:00 for midnight Eastern, or …Z for UTC.",
        ));
    }
    let rest = rest.as_bytes();
    if !matches!(rest[0], b'T' | b't' | b' ') || rest.len() < 6 || rest[3] != b':' {
        return Err(bad());
    }
    let (h, mi) = (
        digits(&rest[1..3]).ok_or_else(bad)?,
        digits(&rest[4..6]).ok_or_else(bad)?,
    );
    let mut i = 6;
    let mut s = 0;
    if rest.get(i) == Some(&b':') {
        s = rest.get(i + 1..i + 3).and_then(digits).ok_or_else(bad)?;
        i += 3;
        if rest.get(i) == Some(&b'.') {
            i += 1;
            while rest.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
    }
    if h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    let offset = match &rest[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), oh1, oh2, tail @ ..] => {
            let oh = digits(&[*oh1, *oh2]).ok_or_else(bad)?;
            let om = match tail {
                [b':', a, b] | [a, b] => digits(&[*a, *b]).ok_or_else(bad)?,
                [] => 0,
                _ => return Err(bad()),
            };
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        [] => {
            return Err(Problem::new(
                Code::BadDate,
                "The date-time has no time zone.",
                "Add Z for UTC or an offset, e.g. 2024-03-14T09:00:00-05:00.",
            ))
        }
        _ => return Err(bad()),
    };
    Ok(days * 86_400 + h * 3600 + mi * 60 + s - offset)
}

/// ISO 639-1 codes, sorted for binary search.
static ISO_639_1: &[&str] = &[
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bh",
    "bi", "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da",
    "de", "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr",
    "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz",
    "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj",
    "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln",
    "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb",
    "nd", "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi",
    "pl", "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk",
    "sl", "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti",
    "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo",
    "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Kind, CONTENT_RATINGS};

    fn code(kind: Kind, v: &str) -> Option<Code> {
        check(kind, "col", v).err().map(|p| p.code)
    }

    #[test]
    fn language_list_is_sorted_for_binary_search() {
        assert!(ISO_639_1.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ISO_639_1.len(), 184);
    }

    #[test]
    fn normalization_trims_composes_and_straightens_typography() {
        assert_eq!(normalize_text("  plain  "), "plain");
        assert_eq!(
            normalize_text("It\u{2019}s \u{201c}Nova\u{201d} \u{2014} live"),
            "It's \"Nova\" - live"
        );
        // e + combining acute composes to one character.
        assert_eq!(normalize_text("Cafe\u{301}"), "Caf\u{e9}");
        assert_eq!(normalized_len("Cafe\u{301}"), 4);
        assert_eq!(
            normalize_text("\u{a0}No\u{a0}break\u{200b}\u{a0}"),
            "No break"
        );
    }

    #[test]
    fn text_length_counts_characters_after_normalization() {
        let kind = Kind::Text {
            max: 5,
            multiline: false,
        };
        assert_eq!(code(kind, "héllo"), None, "5 chars, 6 bytes");
        assert_eq!(code(kind, "he\u{301}llo"), None, "decomposed é counts once");
        assert_eq!(code(kind, "hello!"), Some(Code::TooLong));
        let p = check(kind, "Title", "abcdefg").err().map(|p| p.message);
        assert_eq!(
            p.as_deref(),
            Some("Title is 7 characters long; the limit is 5.")
        );
    }

    #[test]
    fn fast_length_agrees_with_normalizing() {
        let mut rng = crate::gen::Rng::new(3);
        let alphabet = [
            "a",
            " ",
            "é",
            "e\u{301}",
            "\u{2019}",
            "\u{2014}",
            "\u{a0}",
            "\u{200b}",
            "ñ",
            "\u{1f600}",
            "\u{2001}",
            "\u{212b}",
            "ǅ",
            "\u{2026}",
            "ß",
            "\u{202f}",
            "한",
            "\u{1100}\u{1161}",
        ];
        for _ in 0..5000 {
            let n = rng.range(1, 12);
            let s: String = (0..n).map(|_| rng.pick(&alphabet)).collect();
            let t = trim(&s);
            assert_eq!(
                normalized_len(t),
                normalize_text(t).chars().count(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn scan_finds_high_and_control_bytes() {
        assert_eq!(scan(b"plain text"), (false, false));
        assert_eq!(scan("caf\u{e9}".as_bytes()), (true, false));
        assert_eq!(scan(b"a\nb"), (false, true));
        assert_eq!(scan(b"a\x7f"), (false, true));
    }

    #[test]
    fn single_line_text_rejects_line_breaks_prose_allows_them() {
        assert_eq!(
            code(
                Kind::Text {
                    max: 50,
                    multiline: false
                },
                "a\nb"
            ),
            Some(Code::BadFormat)
        );
        assert_eq!(
            code(
                Kind::Text {
                    max: 50,
                    multiline: true
                },
                "a\r\nb"
            ),
            None
        );
        assert_eq!(
            code(
                Kind::Text {
                    max: 50,
                    multiline: true
                },
                "a\u{7}b"
            ),
            Some(Code::BadFormat)
        );
    }

    #[test]
    fn slugs_are_lowercase_hyphenated() {
        assert_eq!(code(Kind::Slug, "nature-owls-2"), None);
        for bad in [
            "Nature-Owls",
            "nature owls",
            "-nature",
            "nature--owls",
            "nature-",
        ] {
            assert_eq!(code(Kind::Slug, bad), Some(Code::BadFormat), "{bad}");
        }
        assert_eq!(
            code(Kind::Slug, &"a".repeat(SLUG_MAX + 1)),
            Some(Code::TooLong)
        );
        assert_eq!(suggest_slug("The Owls’ Night!"), "the-owls-night");
        assert_eq!(suggest_slug("Prédateurs Saison 1"), "predateurs-saison-1");
        assert_eq!(suggest_slug("Straße & Œuvre"), "strasse-oeuvre");
    }

    #[test]
    fn keys_nola_language_station() {
        assert_eq!(code(Kind::Key, "SH-001/a.b:c_d"), None);
        assert_eq!(code(Kind::Key, "SH 001"), Some(Code::BadFormat));
        assert_eq!(
            code(Kind::Key, &"k".repeat(KEY_MAX + 1)),
            Some(Code::TooLong)
        );
        assert_eq!(code(Kind::Nola, "NOVA"), None);
        assert_eq!(code(Kind::Nola, "NOV4"), Some(Code::BadFormat));
        assert_eq!(code(Kind::Nola, "NOVAS"), Some(Code::BadFormat));
        assert_eq!(code(Kind::EpisodeNola, "004726"), None);
        assert_eq!(code(Kind::EpisodeNola, "NOVA"), Some(Code::BadFormat));
        assert_eq!(code(Kind::EpisodeNola, "04726"), Some(Code::BadFormat));
        assert_eq!(code(Kind::Url, "https://cdn.example.org/a.mov"), None);
        assert_eq!(code(Kind::Url, "ftp://x/a.mov"), Some(Code::BadFormat));
        assert_eq!(code(Kind::Url, "https://"), Some(Code::BadFormat));
        assert_eq!(code(Kind::Language, "en"), None);
        assert_eq!(code(Kind::Language, "EN"), None);
        assert_eq!(code(Kind::Language, "eng"), Some(Code::BadEnum));
        assert_eq!(code(Kind::Language, "xx"), Some(Code::BadEnum));
        assert_eq!(code(Kind::Station, "WGBH"), None);
        assert_eq!(code(Kind::Station, "W G B H"), Some(Code::BadFormat));
    }

    #[test]
    fn enums_match_case_insensitively_and_return_the_canonical_spelling() {
        assert_eq!(
            check(Kind::Enum(CONTENT_RATINGS), "r", "tv-pg"),
            Ok(Value::Enum("TV-PG"))
        );
        assert_eq!(
            code(Kind::Enum(CONTENT_RATINGS), "PG-13"),
            Some(Code::BadEnum)
        );
    }

    #[test]
    fn dates_are_strict_and_calendar_aware() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("1900-02-29"), None);
        assert_eq!(parse_date("2000-02-29"), Some(11_016));
        for bad in [
            "3/14/2024",
            "2024-13-01",
            "2024-04-31",
            "2024-4-1",
            "24-04-01",
            "2024/04/01",
        ] {
            assert_eq!(code(Kind::Date, bad), Some(Code::BadDate), "{bad}");
        }
        for d in [-800_000, -1, 0, 59, 11_016, 19_782, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn datetimes_need_a_zone_and_compare_in_utc() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Ok(0));
        assert!(parse_datetime("1970-01-01").is_err(), "a day has no zone");
        assert_eq!(parse_datetime("1970-01-01T01:00:00+01:00"), Ok(0));
        assert_eq!(parse_datetime("1970-01-01 00:00-0500"), Ok(5 * 3600));
        assert_eq!(parse_datetime("1970-01-01T00:00:10.250Z"), Ok(10));
        assert!(parse_datetime("2024-03-14T09:00:00").is_err());
        assert!(parse_datetime("2024-03-14T25:00:00Z").is_err());
        assert!(parse_datetime("2024-03-14T09:00:00+5").is_err());
        assert!(parse_datetime("2024-03-14X").is_err());
        assert!(
            parse_datetime("2024-01-0\u{20ac}").is_err(),
            "a character across byte 10"
        );
        assert!(parse_datetime("\u{20ac}\u{20ac}\u{20ac}\u{20ac}").is_err());
    }

    #[test]
    fn ordinals_and_durations() {
        assert_eq!(check(Kind::Ordinal, "o", "12"), Ok(Value::Ordinal(12)));
        assert_eq!(code(Kind::Ordinal, "0"), Some(Code::BadRange));
        assert_eq!(code(Kind::Ordinal, "1.0"), Some(Code::BadFormat));
        assert_eq!(code(Kind::Ordinal, "two"), Some(Code::BadFormat));
        assert_eq!(code(Kind::Ordinal, "-1"), Some(Code::BadFormat));
        assert_eq!(parse_duration("3540"), Some(3540.0));
        assert_eq!(parse_duration("00:59:00"), Some(3540.0));
        assert_eq!(parse_duration("1:02:03.5"), Some(3723.5));
        assert_eq!(parse_duration("59:30"), Some(3570.0));
        assert_eq!(parse_duration("00:61:00"), None);
        assert_eq!(code(Kind::Duration, "0"), Some(Code::BadRange));
        assert_eq!(code(Kind::Duration, "00:00:00"), Some(Code::BadRange));
        assert_eq!(code(Kind::Duration, "1h"), Some(Code::BadFormat));
    }

    #[test]
    fn tags_are_checked_one_by_one() {
        assert_eq!(code(Kind::Tags, "nature, owls; birds"), None);
        assert_eq!(
            code(Kind::Tags, &format!("ok, {}", "t".repeat(TAG_MAX + 1))),
            Some(Code::TooLong)
        );
    }
}
