//! An opened file's text, read by byte range: UTF-8 files straight from disk (nothing
//! held in memory), other encodings decoded once into memory.

use crate::ingest::Encoding;
use std::fs::File;
use std::io;
use std::path::Path;

pub(crate) enum Text {
    /// A UTF-8 file; `base` skips its byte-order mark.
    File { file: File, base: u64, len: u64 },
    /// The decoded text of a file in another encoding.
    Memory(Vec<u8>),
}

impl Text {
    /// The text and the byte-order mark the file starts with (kept to write it back).
    pub(crate) fn open(path: &Path, encoding: Encoding) -> io::Result<(Self, Vec<u8>)> {
        let mut head = [0u8; 3];
        let n = {
            use std::io::Read;
            let mut f = File::open(path)?;
            let mut n = 0;
            while n < 3 {
                match f.read(&mut head[n..])? {
                    0 => break,
                    k => n += k,
                }
            }
            n
        };
        let head = &head[..n];
        let bom: &[u8] = match encoding {
            Encoding::Utf8Bom => b"\xEF\xBB\xBF",
            Encoding::Utf16Le if head.starts_with(b"\xFF\xFE") => b"\xFF\xFE",
            Encoding::Utf16Be if head.starts_with(b"\xFE\xFF") => b"\xFE\xFF",
            _ => b"",
        };
        let text = match encoding {
            Encoding::Utf8 | Encoding::Utf8Bom => {
                let file = File::open(path)?;
                let size = file.metadata()?.len();
                let base = bom.len() as u64;
                Self::File {
                    file,
                    base,
                    len: size.saturating_sub(base),
                }
            }
            other => {
                let bytes = std::fs::read(path)?;
                let enc = match other {
                    Encoding::Utf16Le => encoding_rs::UTF_16LE,
                    Encoding::Utf16Be => encoding_rs::UTF_16BE,
                    _ => encoding_rs::WINDOWS_1252,
                };
                let body = bytes.get(bom.len()..).unwrap_or_default();
                let (text, _) = enc.decode_without_bom_handling(body);
                Self::Memory(text.into_owned().into_bytes())
            }
        };
        Ok((text, bom.to_vec()))
    }

    /// Length of the decoded text.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Self::File { len, .. } => *len,
            Self::Memory(v) => v.len() as u64,
        }
    }

    /// The bytes `[start, end)` of the decoded text, appended to `out`.
    pub(crate) fn read(&self, start: u64, end: u64, out: &mut Vec<u8>) -> io::Result<()> {
        let end = end.min(self.len());
        if end <= start {
            return Ok(());
        }
        let n = usize::try_from(end - start).map_err(io::Error::other)?;
        match self {
            Self::File { file, base, .. } => {
                let at = out.len();
                out.resize(at + n, 0);
                read_exact_at(file, &mut out[at..], base + start)
            }
            Self::Memory(v) => {
                let s = usize::try_from(start).map_err(io::Error::other)?;
                out.extend_from_slice(&v[s..s + n]);
                Ok(())
            }
        }
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut at: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, at)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                at += n as u64;
            }
        }
    }
    Ok(())
}
