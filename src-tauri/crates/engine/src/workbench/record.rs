//! One record's raw text: its fields as written (quotes and all) and its terminator,
//! so an edited row is written back with only the edited cells changed.

/// Byte ranges of the fields of the first record in `text`, and where its terminator
/// starts. RFC 4180 quoting: a field that opens with `"` runs to the `"` that is not
/// doubled.
pub(crate) fn split(text: &[u8], delimiter: u8) -> (Vec<(usize, usize)>, usize) {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut quoted = false;
    while i < text.len() {
        let b = text[i];
        if quoted {
            if b == b'"' {
                if text.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    quoted = false;
                }
            }
        } else if b == b'"' && i == start {
            quoted = true;
        } else if b == delimiter {
            fields.push((start, i));
            start = i + 1;
        } else if b == b'\n' || b == b'\r' {
            fields.push((start, i));
            return (fields, i);
        }
        i += 1;
    }
    fields.push((start, text.len()));
    (fields, text.len())
}

/// The cells of the first record in `raw` (RFC 4180: quotes removed, doubled quotes
/// made single), as byte strings. A hand-rolled reader: building a `csv` reader per
/// row costs more than reading the row.
pub(crate) fn cells(raw: &[u8], delimiter: u8) -> Vec<Vec<u8>> {
    let lead = raw
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let raw = &raw[lead..];
    let (fields, _) = split(raw, delimiter);
    fields
        .into_iter()
        .map(|(s, e)| unquote(&raw[s..e]))
        .collect()
}

fn unquote(field: &[u8]) -> Vec<u8> {
    if field.first() != Some(&b'"') {
        return field.to_vec();
    }
    let mut out = Vec::with_capacity(field.len());
    let mut i = 1;
    while i < field.len() {
        match field[i] {
            b'"' if field.get(i + 1) == Some(&b'"') => {
                out.push(b'"');
                i += 2;
            }
            // The closing quote; anything after it is kept as written.
            b'"' => {
                out.extend_from_slice(&field[i + 1..]);
                break;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A value written as the `csv` crate writes it: quoted only when it must be.
pub(crate) fn write_field(out: &mut Vec<u8>, value: &str, delimiter: u8) {
    let needs = value
        .bytes()
        .any(|b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r');
    if !needs {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    out.push(b'"');
    for b in value.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// The first record of `raw` with the cells in `edits` replaced; everything else
/// (other cells as written, the terminator, blank rows after it) kept byte for byte.
pub(crate) fn rewrite<'e>(
    raw: &[u8],
    delimiter: u8,
    edits: impl IntoIterator<Item = (usize, &'e str)>,
    out: &mut Vec<u8>,
) {
    // The `csv` reader places a record's start before the previous terminator's last
    // bytes; they belong to no field.
    let lead = raw
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    out.extend_from_slice(&raw[..lead]);
    let raw = &raw[lead..];
    let (fields, term) = split(raw, delimiter);
    let mut values: Vec<Option<&str>> = vec![None; fields.len()];
    for (col, v) in edits {
        if col >= values.len() {
            values.resize(col + 1, None);
        }
        values[col] = Some(v);
    }
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(delimiter);
        }
        match (v, fields.get(i)) {
            (Some(v), _) => write_field(out, v, delimiter),
            (None, Some(&(s, e))) => out.extend_from_slice(&raw[s..e]),
            (None, None) => {}
        }
    }
    out.extend_from_slice(&raw[term..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(raw: &str, edits: &[(usize, &str)]) -> String {
        let mut out = Vec::new();
        rewrite(raw.as_bytes(), b',', edits.iter().copied(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn only_the_edited_cell_changes() {
        assert_eq!(rw("a,\"b,c\",d\r\n", &[(2, "x")]), "a,\"b,c\",x\r\n");
        assert_eq!(
            rw("a,\"say \"\"hi\"\"\",d\n,,\n", &[(0, "z")]),
            "z,\"say \"\"hi\"\"\",d\n,,\n"
        );
        assert_eq!(rw("a,b", &[(1, "x,y")]), "a,\"x,y\"");
        // A quoted field with a line break inside stays one field.
        assert_eq!(
            rw("\"l1\nl2\",b\n", &[(1, "q\"")]),
            "\"l1\nl2\",\"q\"\"\"\n"
        );
        // A short (ragged) row grows to the edited column.
        assert_eq!(rw("a\n", &[(2, "c")]), "a,,c\n");
        assert_eq!(rw("\r\na,b\r", &[(0, "c")]), "\r\nc,b\r");
    }

    #[test]
    fn cells_read_as_the_csv_crate_reads_them() {
        for raw in [
            "a,\"b,c\",d\r\n",
            "\r\n\"say \"\"hi\"\"\",,x\n,,\n",
            "\"l1\nl2\",b",
            "plain",
            "\"q\"tail,z\n",
            ",,",
        ] {
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(raw.as_bytes());
            let mut rec = csv::ByteRecord::new();
            assert!(rdr.read_byte_record(&mut rec).unwrap_or(false));
            let want: Vec<Vec<u8>> = rec.iter().map(<[u8]>::to_vec).collect();
            assert_eq!(cells(raw.as_bytes(), b','), want, "{raw:?}");
        }
    }

    #[test]
    fn split_finds_the_terminator() {
        let (f, t) = split(b"a;\"b;\";c\r\nnext", b';');
        assert_eq!(f, vec![(0, 1), (2, 6), (7, 8)]);
        assert_eq!(t, 8);
    }
}
