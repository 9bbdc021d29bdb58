//! The corrected text of a document (original bytes, edited records rewritten), read
//! as a stream by the validation pass and written out by **Save corrected file**.

use super::{record, Edits, Source, WorkbenchError};
use crate::ingest::Encoding;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// Raw text copied per read at most.
const CHUNK: u64 = 1 << 20;

/// How the corrected file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// The original encoding, byte-order mark and delimiter: unedited bytes unchanged.
    Original,
    /// UTF-8 without a byte-order mark, comma-delimited.
    Utf8,
}

/// The document's text with its edits, as UTF-8.
pub(crate) struct Corrected {
    src: Arc<Source>,
    edits: Arc<Edits>,
    edited: Vec<u32>,
    next: usize,
    at: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl Corrected {
    pub(crate) fn new(src: &Arc<Source>, edits: &Arc<Edits>) -> Self {
        Self {
            src: Arc::clone(src),
            edits: Arc::clone(edits),
            edited: edits.keys().copied().collect(),
            next: 0,
            at: 0,
            buf: Vec::new(),
            pos: 0,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        self.buf.clear();
        self.pos = 0;
        let end = self.src.text.len();
        if self.at >= end {
            return Ok(());
        }
        let ix = self.src.index();
        if !ix.complete {
            return Err(io::Error::other("the file is still being indexed"));
        }
        let start_of = |r: u32| ix.offsets.get(r as usize).copied();
        match self.edited.get(self.next).copied() {
            Some(r) if start_of(r) == Some(self.at) => {
                let stop = start_of(r + 1).unwrap_or(end);
                let mut raw = Vec::new();
                self.src.text.read(self.at, stop, &mut raw)?;
                let cells = self.edits.get(&r).into_iter().flatten();
                record::rewrite(
                    &raw,
                    self.src.delimiter.byte(),
                    cells.map(|(&c, v)| (usize::from(c), v.as_str())),
                    &mut self.buf,
                );
                self.at = stop;
                self.next += 1;
            }
            next => {
                let limit = next.and_then(start_of).unwrap_or(end);
                let stop = limit.min(self.at + CHUNK);
                drop(ix);
                self.src.text.read(self.at, stop, &mut self.buf)?;
                self.at = stop;
            }
        }
        Ok(())
    }
}

impl Read for Corrected {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.buf.len() {
            let before = self.at;
            self.fill()?;
            if self.buf.is_empty() && self.at == before {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

pub(crate) fn save(
    src: &Arc<Source>,
    edits: &Arc<Edits>,
    to: &Path,
    format: SaveFormat,
) -> Result<u64, WorkbenchError> {
    let fail = |source: io::Error| WorkbenchError::Io {
        path: to.to_owned(),
        source,
    };
    if !src.indexed() {
        return Err(WorkbenchError::NotIndexed);
    }
    if same_file(&src.path, to) {
        return Err(WorkbenchError::CannotEncode(
            "The original file is never overwritten: choose another name for the corrected file."
                .into(),
        ));
    }
    // Written beside the target and renamed over it: a crash leaves no half file.
    let tmp = partial_path(to);
    let result = (|| -> Result<u64, WorkbenchError> {
        let file = std::fs::File::create(&tmp).map_err(fail)?;
        let mut out = io::BufWriter::with_capacity(1 << 20, file);
        let mut corrected = Corrected::new(src, edits);
        let written = match format {
            SaveFormat::Utf8 if src.delimiter.byte() == b',' => {
                io::copy(&mut corrected, &mut out).map_err(fail)?
            }
            SaveFormat::Utf8 => {
                redelimit(&mut corrected, src.delimiter.byte(), &mut out).map_err(fail)?
            }
            SaveFormat::Original => {
                out.write_all(&src.bom).map_err(fail)?;
                src.bom.len() as u64 + encode(&mut corrected, src.encoding, &mut out)?
            }
        };
        let file = out.into_inner().map_err(|e| fail(e.into_error()))?;
        file.sync_all().map_err(fail)?;
        Ok(written)
    })();
    match result {
        Ok(n) => {
            std::fs::rename(&tmp, to).map_err(fail)?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Where a file is written before it is renamed to `to`.
pub(crate) fn partial_path(to: &Path) -> std::path::PathBuf {
    let dir = to
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = to.file_name().map_or_else(
        || "corrected.csv".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    dir.join(format!(".{name}.partial"))
}

pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Every record rewritten with commas (the slow path: another delimiter).
fn redelimit(input: &mut impl Read, delimiter: u8, out: &mut impl Write) -> io::Result<u64> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut counted = Counted { inner: out, n: 0 };
    {
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut counted);
        let mut rec = csv::ByteRecord::new();
        while rdr.read_byte_record(&mut rec).map_err(io::Error::other)? {
            w.write_byte_record(&rec).map_err(io::Error::other)?;
        }
        w.flush()?;
    }
    Ok(counted.n)
}

struct Counted<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(b)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The UTF-8 stream in `encoding`.
fn encode(
    input: &mut impl Read,
    encoding: Encoding,
    out: &mut impl Write,
) -> Result<u64, WorkbenchError> {
    let fail = |source: io::Error| WorkbenchError::Io {
        path: "corrected file".into(),
        source,
    };
    if matches!(encoding, Encoding::Utf8 | Encoding::Utf8Bom) {
        return io::copy(input, out).map_err(fail);
    }
    let mut written = 0u64;
    let mut carry: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut encoded = Vec::with_capacity(1 << 17);
    let mut line = 1u64;
    loop {
        let n = input.read(&mut buf).map_err(fail)?;
        carry.extend_from_slice(&buf[..n]);
        let valid = match std::str::from_utf8(&carry) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        let text = std::str::from_utf8(&carry[..valid]).unwrap_or_default();
        encoded.clear();
        match encoding {
            Encoding::Utf16Le => text
                .encode_utf16()
                .for_each(|u| encoded.extend_from_slice(&u.to_le_bytes())),
            Encoding::Utf16Be => text
                .encode_utf16()
                .for_each(|u| encoded.extend_from_slice(&u.to_be_bytes())),
            _ => {
                for c in text.chars() {
                    if c.is_ascii() {
                        if c == '\n' {
                            line += 1;
                        }
                        encoded.push(c as u8);
                        continue;
                    }
                    let mut tmp = [0u8; 4];
                    let (bytes, _, unmappable) =
                        encoding_rs::WINDOWS_1252.encode(c.encode_utf8(&mut tmp));
                    if unmappable {
                        return Err(WorkbenchError::CannotEncode(format!(
                            "Line {line} has \"{c}\", which Windows-1252 cannot hold: save as UTF-8 instead, or replace the character."
                        )));
                    }
                    if c == '\n' {
                        line += 1;
                    }
                    encoded.extend_from_slice(&bytes);
                }
            }
        }
        out.write_all(&encoded).map_err(fail)?;
        written += encoded.len() as u64;
        carry.drain(..valid);
        if n == 0 {
            break;
        }
    }
    Ok(written)
}
