//! The CLI's side of choosing a backend: the profile logic lives in `metasync-runtime`;
//! this adds the async runtime the subcommands block on.

pub use metasync_runtime::{choose, Chosen};

pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Runtime::new().map_err(|e| format!("cannot start: {e}"))
}
