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
    let (file, guard) = match dir.and_then(|d| {
        let logs = d.join("logs");
        std::fs::create_dir_all(&logs).ok().map(|()| logs)
    }) {
        Some(logs) => {
            let appender = tracing_appender::rolling::daily(logs, "metasync.log");
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false)
                .with_writer(writer)
                .with_filter(EnvFilter::new("info"));
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    LogGuard(guard)
}
