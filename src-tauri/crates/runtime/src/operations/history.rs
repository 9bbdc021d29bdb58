//! Each profile's queue depths and throughput over time, kept in a file of its own so
//! the dashboard's charts survive a restart: one JSON line per sample, appended; the
//! last [`KEPT_MS`] are kept.

use metasync_engine::ports::Depth;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How far back samples are kept (the dashboard shows the last hour).
pub const KEPT_MS: i64 = 24 * 3600 * 1000;
/// A file past this size is rewritten with only the samples kept.
const COMPACT_BYTES: u64 = 4 << 20;

/// One line: a depth sample (visible, in flight, dead), or what workers of this desktop
/// did since the last line (synced, failed, 429s); both per type in
/// [`EntityType::ALL`](metasync_engine::EntityType::ALL) order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub t: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<[[u64; 3]; 4]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<[[u64; 3]; 4]>,
}

/// A profile's history file.
#[derive(Debug, Clone)]
pub struct History {
    path: PathBuf,
}

impl History {
    /// `state/history/<profile>.jsonl` (`_default` for the embedded default).
    pub fn of(state: &Path, profile: Option<&str>) -> Self {
        let name: String = profile
            .unwrap_or("_default")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Self {
            path: state.join("history").join(format!("{name}.jsonl")),
        }
    }

    pub fn record_depth(&self, t: i64, depths: &[Depth; 4]) -> std::io::Result<()> {
        self.append(&Line {
            t,
            depth: Some(depths.map(|d| [d.visible, d.in_flight, d.dead])),
            work: None,
        })
    }

    /// Synced, failed and 429s per type since the last line (nothing: no line).
    pub fn record_work(&self, t: i64, work: [[u64; 3]; 4]) -> std::io::Result<()> {
        if work.iter().flatten().all(|&n| n == 0) {
            return Ok(());
        }
        self.append(&Line {
            t,
            depth: None,
            work: Some(work),
        })
    }

    fn append(&self, line: &Line) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
        text.push('\n');
        // One write per line, in append mode: writers of one file never interleave.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?
            .write_all(text.as_bytes())?;
        if std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0) > COMPACT_BYTES {
            self.compact(line.t)?;
        }
        Ok(())
    }

    /// Lines at or after `since` (a line that cannot be read is skipped).
    pub fn read(&self, since: i64) -> Vec<Line> {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| serde_json::from_str::<Line>(l).ok())
            .filter(|l| l.t >= since)
            .collect()
    }

    fn compact(&self, now: i64) -> std::io::Result<()> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let kept = self.read(now - KEPT_MS);
        // A name of its own: two compactions at once never write one file.
        let tmp = self.path.with_extension(format!(
            "jsonl.{}-{}.tmp",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut out = String::new();
        for l in kept {
            out.push_str(&serde_json::to_string(&l).map_err(std::io::Error::other)?);
            out.push('\n');
        }
        std::fs::write(&tmp, out)?;
        std::fs::rename(tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_survive_a_reopen_and_old_ones_are_left_out() {
        let dir = tempfile::tempdir().expect("temp dir");
        let h = History::of(dir.path(), Some("staging/eu"));
        let d = Depth {
            visible: 3,
            in_flight: 1,
            dead: 0,
        };
        h.record_depth(1_000, &[d; 4]).expect("write");
        h.record_work(2_000, [[5, 1, 2], [0; 3], [0; 3], [0; 3]])
            .expect("write");
        h.record_work(2_500, [[0; 3]; 4]).expect("nothing to write");
        let again = History::of(dir.path(), Some("staging/eu"));
        let lines = again.read(0);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].depth, Some([[3, 1, 0]; 4]));
        assert_eq!(lines[1].work, Some([[5, 1, 2], [0; 3], [0; 3], [0; 3]]));
        assert_eq!(again.read(1_500).len(), 1);
        let last_depth = lines.iter().rev().find(|l| l.depth.is_some()).map(|l| l.t);
        assert_eq!(last_depth, Some(1_000));
        assert!(again.path.ends_with("history/staging_eu.jsonl"));
    }
}
