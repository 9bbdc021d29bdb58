//! Streaming ingest of spreadsheet exports: detect the encoding and delimiter from the
//! first bytes, convert to UTF-8 on the fly, and hand out parsed records in batches
//! from a reader thread, so memory never depends on the file's size.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// How much of a file is looked at to detect its encoding and delimiter.
const SAMPLE_BYTES: usize = 64 * 1024;
/// Records handed from the reader thread to the validator at a time.
pub const BATCH_RECORDS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf8Bom,
    Utf16Le,
    Utf16Be,
    Windows1252,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Utf8 => "UTF-8",
            Self::Utf8Bom => "UTF-8 (BOM)",
            Self::Utf16Le => "UTF-16LE",
            Self::Utf16Be => "UTF-16BE",
            Self::Windows1252 => "Windows-1252",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    Comma,
    Semicolon,
    Tab,
}

impl Delimiter {
    pub fn byte(self) -> u8 {
        match self {
            Self::Comma => b',',
            Self::Semicolon => b';',
            Self::Tab => b'\t',
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Comma => "comma",
            Self::Semicolon => "semicolon",
            Self::Tab => "tab",
        }
    }
}

crate::finding::serialize_as_str!(Encoding);
crate::finding::serialize_as_str!(Delimiter);

/// Input that cannot be read as a CSV at all: one clear message, no findings.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: cannot open the file: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path}: the file is empty.")]
    Empty { path: PathBuf },
    #[error("{path}: this is not a CSV file; it looks like {what}. Save it from your spreadsheet as CSV (File → Save As → CSV UTF-8) and try again.")]
    NotText { path: PathBuf, what: &'static str },
    #[error("{path}: no recognizable header. The first line should name columns such as {expected}; it has: {found}.")]
    NoHeader {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{path}: {message}")]
    BadHeader { path: PathBuf, message: String },
    #[error("{path}: reading stopped at line {line}: {source}")]
    Read {
        path: PathBuf,
        line: u64,
        source: io::Error,
    },
}

/// What was detected about a file before parsing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub encoding: Encoding,
    pub delimiter: Delimiter,
}

fn magic(sample: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"%PDF", "a PDF document"),
        (
            b"PK\x03\x04",
            "a ZIP archive (an Excel .xlsx workbook is one)",
        ),
        (b"\xD0\xCF\x11\xE0", "an Excel .xls workbook"),
        (b"\x1F\x8B", "a gzip archive"),
        (b"\x7FELF", "a program"),
    ];
    MAGIC
        .iter()
        .find(|(m, _)| sample.starts_with(m))
        .map(|(_, what)| *what)
}

/// UTF-16 without a byte order mark: ASCII text has a zero in every other byte.
fn utf16_without_bom(sample: &[u8]) -> Option<Encoding> {
    let pairs = sample.len() / 2;
    if pairs < 2 {
        return None;
    }
    let (mut even, mut odd) = (0usize, 0usize);
    for p in sample.chunks_exact(2) {
        even += usize::from(p[0] == 0);
        odd += usize::from(p[1] == 0);
    }
    if odd * 10 >= pairs * 7 && even == 0 {
        Some(Encoding::Utf16Le)
    } else if even * 10 >= pairs * 7 && odd == 0 {
        Some(Encoding::Utf16Be)
    } else {
        None
    }
}

/// Detect the encoding; returns it with the length of its byte order mark.
pub fn detect_encoding(sample: &[u8], complete: bool) -> Result<(Encoding, usize), &'static str> {
    if let Some(what) = magic(sample) {
        return Err(what);
    }
    if sample.starts_with(b"\xEF\xBB\xBF") {
        return Ok((Encoding::Utf8Bom, 3));
    }
    if sample.starts_with(b"\xFF\xFE") {
        return Ok((Encoding::Utf16Le, 2));
    }
    if sample.starts_with(b"\xFE\xFF") {
        return Ok((Encoding::Utf16Be, 2));
    }
    if sample.contains(&0) {
        return utf16_without_bom(sample)
            .map(|e| (e, 0))
            .ok_or("a binary file");
    }
    // Text has few control bytes besides tab, CR and LF.
    let control = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1A))
        .count();
    if control * 100 > sample.len() {
        return Err("a binary file");
    }
    match std::str::from_utf8(sample) {
        Ok(_) => Ok((Encoding::Utf8, 0)),
        // A character cut by the end of the sample is not an error.
        Err(e) if e.error_len().is_none() && !complete => Ok((Encoding::Utf8, 0)),
        Err(_) => Ok((Encoding::Windows1252, 0)),
    }
}

/// Pick the delimiter that splits the header line most, outside quotes.
pub fn sniff_delimiter(text: &str) -> Delimiter {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '\n' | '\r' if !quoted => break,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = [Delimiter::Comma, Delimiter::Semicolon, Delimiter::Tab]
        .into_iter()
        .zip(counts)
        .max_by_key(|&(d, n)| (n, d == Delimiter::Comma));
    best.map_or(Delimiter::Comma, |(d, _)| d)
}

/// Converts any supported encoding to UTF-8 as it streams.
struct DecodeReader<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    output: Vec<u8>,
    out_start: usize,
    out_end: usize,
    eof: bool,
    done: bool,
}

impl<R: Read> DecodeReader<R> {
    fn new(inner: R, encoding: &'static encoding_rs::Encoding) -> Self {
        Self {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            input: vec![0; 64 * 1024],
            in_start: 0,
            in_end: 0,
            output: vec![0; 3 * 64 * 1024 + 16],
            out_start: 0,
            out_end: 0,
            eof: false,
            done: false,
        }
    }
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_start == self.out_end {
            if self.done {
                return Ok(0);
            }
            if self.in_start == self.in_end && !self.eof {
                self.in_start = 0;
                self.in_end = self.inner.read(&mut self.input)?;
                self.eof = self.in_end == 0;
            }
            let (result, read, written, _) = self.decoder.decode_to_utf8(
                &self.input[self.in_start..self.in_end],
                &mut self.output,
                self.eof,
            );
            self.in_start += read;
            self.out_start = 0;
            self.out_end = written;
            // The decoder is finished once it has taken the last input: calling it
            // again would panic. Its last call may still have written output (e.g. a
            // replacement character for an odd trailing byte of UTF-16).
            self.done = self.eof && result == encoding_rs::CoderResult::InputEmpty;
        }
        let n = buf.len().min(self.out_end - self.out_start);
        buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
        self.out_start += n;
        Ok(n)
    }
}

/// Passes bytes through while noting where each line break is, so records get their
/// physical line even where the csv crate's own count is off (CRLF input: it consumes
/// only the `\r` of a terminator, rust-csv#395).
struct LineCounter<R> {
    inner: R,
    offset: u64,
    /// Offsets of the line breaks read ahead of the parser.
    ahead: VecDeque<u64>,
    /// Line breaks before the parser's position, and the last of them.
    behind: u64,
    last_behind: Option<u64>,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let base = self.offset;
        self.ahead
            .extend(memchr::memchr_iter(b'\n', &buf[..n]).map(|i| base + i as u64));
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R> LineCounter<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            offset: 0,
            ahead: VecDeque::new(),
            behind: 0,
            last_behind: None,
        }
    }

    /// The line a record starts on, given the parser's byte position just after it and
    /// the record itself (its quoted line breaks).
    fn record_line(&mut self, end: u64, record: &csv::ByteRecord) -> u64 {
        while let Some(&o) = self.ahead.front().filter(|&&o| o < end) {
            self.ahead.pop_front();
            self.behind += 1;
            self.last_behind = Some(o);
        }
        // The parser may have consumed the record's own terminating `\n`.
        let own_terminator = u64::from(end > 0 && self.last_behind == Some(end - 1));
        let inside = memchr::memchr_iter(b'\n', record.as_slice()).count() as u64;
        (self.behind - own_terminator + 1).saturating_sub(inside)
    }
}

/// Records of one file, read on a background thread, each with what the reader
/// thread's per-record stage made of it (`P`).
pub struct Batch<P> {
    pub records: Vec<csv::ByteRecord>,
    /// The physical line each record starts on.
    pub lines: Vec<u64>,
    pub pre: Vec<P>,
    pub len: usize,
}

/// An opened CSV whose header has been read.
pub struct CsvSource {
    pub path: PathBuf,
    pub sniffed: Sniffed,
    /// Header cells as written in the file.
    pub header: Vec<String>,
    /// The file's size in bytes, when known.
    pub size: Option<u64>,
    reader: csv::Reader<LineCounter<Box<dyn Read + Send>>>,
}

impl CsvSource {
    pub fn open(path: &Path) -> Result<Self, IngestError> {
        let file = File::open(path).map_err(|source| IngestError::Open {
            path: path.to_owned(),
            source,
        })?;
        let size = file.metadata().ok().map(|m| m.len());
        let mut src = Self::from_reader(path, Box::new(file))?;
        src.size = size;
        Ok(src)
    }

    /// Open any byte stream; `path` only names it in messages.
    pub fn from_reader(path: &Path, input: Box<dyn Read + Send>) -> Result<Self, IngestError> {
        Self::from_reader_as(path, input, None)
    }

    /// [`Self::from_reader`] with the encoding known (text a caller already decoded or
    /// rebuilt: sniffing a part of it could guess otherwise).
    pub fn from_reader_as(
        path: &Path,
        mut input: Box<dyn Read + Send>,
        known: Option<Encoding>,
    ) -> Result<Self, IngestError> {
        let path = path.to_owned();
        let read_err = |source| IngestError::Read {
            path: path.clone(),
            line: 1,
            source,
        };
        let mut sample = Vec::with_capacity(SAMPLE_BYTES);
        (&mut input)
            .take(SAMPLE_BYTES as u64)
            .read_to_end(&mut sample)
            .map_err(read_err)?;
        let complete = sample.len() < SAMPLE_BYTES;
        if sample.is_empty() {
            return Err(IngestError::Empty { path });
        }
        let (encoding, bom) = match known {
            Some(e) => (e, 0),
            None => detect_encoding(&sample, complete).map_err(|what| IngestError::NotText {
                path: path.clone(),
                what,
            })?,
        };
        let body: Box<dyn Read + Send> = Box::new(Cursor::new(sample[bom..].to_vec()).chain(input));
        let (stream, head): (Box<dyn Read + Send>, String) = match encoding {
            Encoding::Utf8 | Encoding::Utf8Bom => {
                (body, String::from_utf8_lossy(&sample[bom..]).into_owned())
            }
            other => {
                let enc = match other {
                    Encoding::Utf16Le => encoding_rs::UTF_16LE,
                    Encoding::Utf16Be => encoding_rs::UTF_16BE,
                    _ => encoding_rs::WINDOWS_1252,
                };
                let (head, _) = enc.decode_without_bom_handling(&sample[bom..]);
                (Box::new(DecodeReader::new(body, enc)), head.into_owned())
            }
        };
        if head.trim().is_empty() && complete {
            return Err(IngestError::Empty { path });
        }
        let delimiter = sniff_delimiter(&head);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter.byte())
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(LineCounter::new(stream));
        let mut record = csv::ByteRecord::new();
        let has_header = reader
            .read_byte_record(&mut record)
            .map_err(|e| IngestError::Read {
                path: path.clone(),
                line: 1,
                source: csv_io(e),
            })?;
        if !has_header {
            return Err(IngestError::Empty { path });
        }
        let header = record
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        Ok(Self {
            path,
            sniffed: Sniffed {
                encoding,
                delimiter,
            },
            header,
            size: None,
            reader,
        })
    }

    /// Stream the records. A reader thread parses them and runs `pre` on each (work
    /// that needs no shared state); `each` runs on this thread, batch by batch, and
    /// returns `false` to stop early.
    pub fn for_each_batch<P: Default + Send>(
        self,
        mut pre: impl FnMut(&csv::ByteRecord, u64, &mut P) + Send,
        mut each: impl FnMut(&mut Batch<P>) -> bool,
    ) -> Result<(), IngestError> {
        let Self {
            path, mut reader, ..
        } = self;
        let (full_tx, full_rx) = mpsc::sync_channel::<Batch<P>>(2);
        let (empty_tx, empty_rx) = mpsc::channel::<Batch<P>>();
        // Buffers grow to a batch as records arrive, so a small file stays cheap.
        for _ in 0..4 {
            let _ = empty_tx.send(Batch {
                records: Vec::new(),
                lines: Vec::new(),
                pre: Vec::new(),
                len: 0,
            });
        }
        std::thread::scope(|scope| {
            let parser = scope.spawn(move || -> Result<(), (u64, io::Error)> {
                while let Ok(mut batch) = empty_rx.recv() {
                    batch.len = 0;
                    while batch.len < BATCH_RECORDS {
                        let i = batch.len;
                        if batch.records.len() == i {
                            batch.records.push(csv::ByteRecord::new());
                            batch.lines.push(0);
                            batch.pre.push(P::default());
                        }
                        match reader.read_byte_record(&mut batch.records[i]) {
                            Ok(true) => {
                                let end = reader.position().byte();
                                let line = reader.get_mut().record_line(end, &batch.records[i]);
                                batch.lines[i] = line;
                                pre(&batch.records[i], line, &mut batch.pre[i]);
                                batch.len += 1;
                            }
                            Ok(false) => break,
                            Err(e) => {
                                let line = e.position().map_or(0, csv::Position::line);
                                return Err((line, csv_io(e)));
                            }
                        }
                    }
                    let last = batch.len < BATCH_RECORDS;
                    if batch.len > 0 && full_tx.send(batch).is_err() {
                        return Ok(());
                    }
                    if last {
                        return Ok(());
                    }
                }
                Ok(())
            });
            for mut batch in full_rx.iter() {
                if !each(&mut batch) {
                    break;
                }
                let _ = empty_tx.send(batch);
            }
            // Dropping our ends lets a parser blocked on a full channel finish.
            drop(full_rx);
            drop(empty_tx);
            match parser.join() {
                Ok(Ok(())) => Ok(()),
                Ok(Err((line, source))) => Err(IngestError::Read { path, line, source }),
                Err(_) => Err(IngestError::Read {
                    path,
                    line: 0,
                    source: io::Error::other("the reader thread stopped unexpectedly"),
                }),
            }
        })
    }
}

fn csv_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, format!("{other:?}")),
    }
}

/// A cell as text. Cells of a UTF-8 file that are not valid UTF-8 are read as
/// Windows-1252 (the usual culprit) and flagged by the caller.
pub fn cell_text(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|_| {
        encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(bytes)
            .0
            .into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_bytes(bytes: &[u8]) -> Result<CsvSource, IngestError> {
        CsvSource::from_reader(Path::new("t.csv"), Box::new(Cursor::new(bytes.to_vec())))
    }

    fn rows(src: CsvSource) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let r = src.for_each_batch(
            |_, _, _: &mut ()| {},
            |b| {
                for rec in &b.records[..b.len] {
                    out.push(
                        rec.iter()
                            .map(|c| String::from_utf8_lossy(c).into_owned())
                            .collect(),
                    );
                }
                true
            },
        );
        assert!(r.is_ok());
        out
    }

    #[test]
    fn utf8_with_and_without_bom() {
        let s = open_bytes(b"a,b\n1,\xC3\xA9\n").map_err(|e| e.to_string());
        let s = s.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.sniffed.encoding, Encoding::Utf8);
        let s = open_bytes(b"\xEF\xBB\xBFa,b\n1,2\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.sniffed.encoding, Encoding::Utf8Bom);
        assert_eq!(s.header, ["a", "b"]);
    }

    #[test]
    fn utf16_is_transcoded_with_or_without_bom() {
        let text = "k;t\r\n1;\u{e9}t\u{e9}\r\n";
        for (enc, bom) in [
            (Encoding::Utf16Le, true),
            (Encoding::Utf16Be, true),
            (Encoding::Utf16Le, false),
        ] {
            let mut bytes: Vec<u8> = Vec::new();
            let units = text.encode_utf16();
            if enc == Encoding::Utf16Le {
                if bom {
                    bytes.extend([0xFF, 0xFE]);
                }
                units.for_each(|u| bytes.extend(u.to_le_bytes()));
            } else {
                bytes.extend([0xFE, 0xFF]);
                units.for_each(|u| bytes.extend(u.to_be_bytes()));
            }
            let s = open_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.sniffed.encoding, enc);
            assert_eq!(s.sniffed.delimiter, Delimiter::Semicolon);
            assert_eq!(
                rows(s),
                vec![vec!["1".to_string(), "\u{e9}t\u{e9}".to_string()]]
            );
        }
    }

    #[test]
    fn utf16_with_an_odd_trailing_byte_ends_in_a_replacement_not_a_panic() {
        let mut bytes = vec![0xFF, 0xFE];
        "k,t\n1,2\n"
            .encode_utf16()
            .for_each(|u| bytes.extend(u.to_le_bytes()));
        bytes.push(b'x');
        let s = open_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            rows(s),
            vec![
                vec!["1".to_string(), "2".to_string()],
                vec!["\u{fffd}".to_string()]
            ]
        );
    }

    #[test]
    fn windows_1252_is_detected_and_converted() {
        let s = open_bytes(b"k\tt\n1\tCaf\xE9 \x93quoted\x94\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.sniffed.encoding, Encoding::Windows1252);
        assert_eq!(s.sniffed.delimiter, Delimiter::Tab);
        assert_eq!(rows(s)[0][1], "Caf\u{e9} \u{201c}quoted\u{201d}");
    }

    #[test]
    fn quoted_newlines_and_crlf() {
        let s = open_bytes(b"k,t\r\n1,\"two\r\nlines, \"\"quoted\"\"\"\r\n2,x\r\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let r = rows(s);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0][1], "two\r\nlines, \"quoted\"");
    }

    fn lines(bytes: &[u8]) -> Vec<u64> {
        let src = open_bytes(bytes).unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        let r = src.for_each_batch(
            |_, _, _: &mut ()| {},
            |b| {
                out.extend_from_slice(&b.lines[..b.len]);
                true
            },
        );
        assert!(r.is_ok());
        out
    }

    #[test]
    fn records_know_their_physical_line_whatever_the_line_ends() {
        // Header on line 1; a quoted two-line cell; a blank line; no final newline.
        for nl in ["\n", "\r\n"] {
            let text = format!("k,t{nl}1,a{nl}2,\"x{nl}y\"{nl}3,b{nl}{nl}4,c");
            assert_eq!(lines(text.as_bytes()), [2, 3, 5, 7], "{nl:?}");
        }
        let mut text = String::from("k\r\n");
        for i in 0..BATCH_RECORDS * 2 {
            text.push_str(&format!("{i}\r\n"));
        }
        let l = lines(text.as_bytes());
        assert!(l.iter().enumerate().all(|(i, &line)| line == i as u64 + 2));
    }

    #[test]
    fn not_text_and_empty_are_clear_errors() {
        assert!(matches!(open_bytes(b""), Err(IngestError::Empty { .. })));
        assert!(matches!(
            open_bytes(b"\n\r\n  \n"),
            Err(IngestError::Empty { .. })
        ));
        assert!(matches!(
            open_bytes(b"\xEF\xBB\xBF"),
            Err(IngestError::Empty { .. })
        ));
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        match open_bytes(png) {
            Err(e @ IngestError::NotText { .. }) => assert!(e.to_string().contains("PNG image")),
            other => panic!("expected NotText, got {:?}", other.err()),
        }
        assert!(matches!(
            open_bytes(b"ab\0\x01\x02cd\0\0\x05"),
            Err(IngestError::NotText { .. })
        ));
        assert!(matches!(
            open_bytes(b"PK\x03\x04rest"),
            Err(IngestError::NotText { .. })
        ));
    }

    #[test]
    fn delimiter_sniffing_ignores_quoted_delimiters() {
        assert_eq!(sniff_delimiter("a;b;c\n1,2,3,4,5"), Delimiter::Semicolon);
        assert_eq!(sniff_delimiter("\"a,b,c\";d;e"), Delimiter::Semicolon);
        assert_eq!(sniff_delimiter("a\tb"), Delimiter::Tab);
        assert_eq!(sniff_delimiter("single"), Delimiter::Comma);
    }

    #[test]
    fn large_streams_arrive_in_order_across_batches() {
        let mut data = b"n\n".to_vec();
        let total = BATCH_RECORDS * 3 + 7;
        for i in 0..total {
            data.extend(format!("{i}\n").bytes());
        }
        let s = open_bytes(&data).unwrap_or_else(|e| panic!("{e}"));
        let r = rows(s);
        assert_eq!(r.len(), total);
        assert!(r.iter().enumerate().all(|(i, row)| row[0] == i.to_string()));
    }

    #[test]
    fn invalid_utf8_cells_fall_back_to_windows_1252() {
        assert_eq!(cell_text(b"caf\xC3\xA9"), Ok("caf\u{e9}"));
        assert_eq!(cell_text(b"caf\xE9"), Err("caf\u{e9}".to_string()));
    }
}
