//! Logging: `tracing` JSON lines to a daily-rotated file in the data folder
//! (`logs/metasync.log.YYYY-MM-DD`), and human lines on stderr when asked (`-v`).
//! Pipeline events carry run id, entity type, key, batch, attempt and stage as fields;
//! secrets are typed (`Secret`) so they cannot be formatted into a line.

use std::path::Path;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the file writer flushing until dropped (hold it for the process's life).
pub struct LogGuard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

/// Start logging: JSON to `dir/logs/` (if given), human lines on stderr at `verbosity`
/// (0: warnings only, 1: info, 2+: debug).
pub fn init(dir: Option<&Path>, verbosity: u8) -> LogGuard {
    let level = match verbosity {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(EnvFilter::new(level));
    let (file, guard) = json_lines(dir);
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    LogGuard(guard)
}

/// The same JSON lines on stdout, and nothing else: AWS Lambda sends a function's
/// stdout to CloudWatch Logs, where its JSON log format keeps each line's fields.
pub fn init_stdout_json() {
    let _ = tracing_subscriber::registry()
        .with(json_layer(std::io::stdout))
        .try_init();
}

/// The log's JSON lines (the file's, the live tail's and Lambda's: one format, one
/// filter).
fn json_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_writer(writer)
        .with_filter(EnvFilter::new("info"))
}

/// The daily file `dir/logs/metasync.log.YYYY-MM-DD`, written off the caller's thread
/// (none when there is no folder or it cannot be made).
fn json_lines<S>(
    dir: Option<&Path>,
) -> (
    Option<impl Layer<S>>,
    Option<tracing_appender::non_blocking::WorkerGuard>,
)
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let logs = dir.and_then(|d| {
        let logs = d.join("logs");
        std::fs::create_dir_all(&logs).ok().map(|()| logs)
    });
    match logs {
        Some(logs) => {
            let appender = tracing_appender::rolling::daily(logs, "metasync.log");
            let (writer, guard) = tracing_appender::non_blocking(appender);
            (Some(json_layer(writer)), Some(guard))
        }
        None => (None, None),
    }
}

/// The desktop's live tail: every line the log file gets (same JSON, same filter),
/// the last [`TAIL_KEPT`] kept, new ones broadcast to whoever watches.
#[derive(Clone)]
pub struct Tail(std::sync::Arc<TailInner>);

/// Lines a new watcher gets first.
pub const TAIL_KEPT: usize = 2_000;

pub struct TailInner {
    kept: std::sync::Mutex<std::collections::VecDeque<String>>,
    sender: tokio::sync::broadcast::Sender<String>,
    /// The latest watch: a page that watches again (a reload) retires the one before.
    watch: std::sync::atomic::AtomicU64,
}

impl Default for Tail {
    fn default() -> Self {
        Self(std::sync::Arc::new(TailInner {
            kept: std::sync::Mutex::new(std::collections::VecDeque::with_capacity(TAIL_KEPT)),
            sender: tokio::sync::broadcast::channel(4096).0,
            watch: std::sync::atomic::AtomicU64::new(0),
        }))
    }
}

impl Tail {
    fn push(&self, line: String) {
        let mut kept = self.0.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() == TAIL_KEPT {
            kept.pop_front();
        }
        kept.push_back(line.clone());
        // Nobody watching is fine.
        let _ = self.0.sender.send(line);
    }

    /// The kept lines, oldest first, a receiver of the lines after them, and this
    /// watch's number (see [`is_current`](Self::is_current)).
    pub fn watch(&self) -> (Vec<String>, tokio::sync::broadcast::Receiver<String>, u64) {
        let kept = self.0.kept.lock().unwrap_or_else(|p| p.into_inner());
        let n = self
            .0
            .watch
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        (kept.iter().cloned().collect(), self.0.sender.subscribe(), n)
    }

    /// Whether watch `n` is still the latest (one window, one tail).
    pub fn is_current(&self, n: u64) -> bool {
        self.0.watch.load(std::sync::atomic::Ordering::SeqCst) == n
    }
}

/// One event's line, collected as the formatter writes it and handed over when done.
pub struct TailWriter {
    tail: Tail,
    buf: Vec<u8>,
}

impl std::io::Write for TailWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for TailWriter {
    fn drop(&mut self) {
        for line in String::from_utf8_lossy(&self.buf).lines() {
            if !line.trim().is_empty() {
                self.tail.push(line.to_string());
            }
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Tail {
    type Writer = TailWriter;
    fn make_writer(&'a self) -> TailWriter {
        TailWriter {
            tail: self.clone(),
            buf: Vec::new(),
        }
    }
}

/// [`init`] for the desktop: the same file, no stderr lines, and a [`Tail`] fed the
/// lines the file gets.
pub fn init_with_tail(dir: Option<&Path>) -> (LogGuard, Tail) {
    let tail = Tail::default();
    // The same format and filter as the file's: the same lines.
    let live = json_layer(tail.clone());
    let (file, guard) = json_lines(dir);
    let _ = tracing_subscriber::registry()
        .with(live)
        .with(file)
        .try_init();
    (LogGuard(guard), tail)
}

/// A log line as the logs screen shows it.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct LogLine {
    pub timestamp: String,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    pub message: String,
    pub run_id: Option<String>,
    /// The event's other fields, `name=value`.
    pub fields: Vec<String>,
    /// The line as the file has it.
    pub raw: String,
}

/// Read a JSON line of the log (anything else is kept as its text).
pub fn parse_line(raw: &str) -> LogLine {
    let v: serde_json::Value = serde_json::from_str(raw).unwrap_or(serde_json::Value::Null);
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let mut fields = Vec::new();
    let mut message = None;
    let mut run_id = None;
    if let Some(f) = v.get("fields").and_then(|f| f.as_object()) {
        for (k, x) in f {
            let text = x.as_str().map_or_else(|| x.to_string(), str::to_string);
            match k.as_str() {
                "message" => message = Some(text),
                "run_id" => run_id = Some(text),
                _ => fields.push(format!("{k}={text}")),
            }
        }
    }
    LogLine {
        timestamp: s("timestamp").unwrap_or_default(),
        level: s("level").unwrap_or_else(|| "INFO".into()),
        message: message.unwrap_or_else(|| raw.to_string()),
        run_id,
        fields,
        raw: raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tracing_subscriber::fmt::MakeWriter;

    #[test]
    fn the_tail_keeps_the_last_lines_and_reads_their_fields() {
        let tail = Tail::default();
        let (_, mut rx, first) = tail.watch();
        for i in 0..TAIL_KEPT + 5 {
            let mut w = tail.make_writer();
            write!(
                w,
                r#"{{"timestamp":"t{i}","level":"INFO","fields":{{"message":"enqueued","run_id":"r1","records":{i}}}}}"#
            )
            .expect("write");
            writeln!(w).expect("newline");
        }
        let (kept, _, second) = tail.watch();
        assert_eq!(kept.len(), TAIL_KEPT);
        assert!(
            tail.is_current(second) && !tail.is_current(first),
            "a new watch retires the old"
        );
        assert!(kept[0].contains("\"t5\""), "the oldest went first");
        let first = rx.try_recv().expect("broadcast");
        let l = parse_line(&first);
        assert_eq!(
            (l.level.as_str(), l.message.as_str(), l.run_id.as_deref()),
            ("INFO", "enqueued", Some("r1"))
        );
        assert_eq!(l.fields, vec!["records=0".to_string()]);
        assert_eq!(parse_line("not json").message, "not json");
    }
}
