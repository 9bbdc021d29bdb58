//! The one layer every surface calls — the `metasync` CLI, the desktop app and the
//! Lambda handlers ([`deployed`]): a profile becomes a backend, a target client and credentials;
//! validate, plan, sync, work, triage and status are functions whose inputs and outputs
//! are plain serializable types, with progress as a callback. Surfaces parse arguments
//! and print; the work happens in the engine.

pub mod deployed;
mod env;
pub mod infra;
pub mod logging;
pub mod operations;
mod ops;
pub mod policy;
pub mod settings;
pub mod workbench;

pub use env::{
    aws_clients, choose, config_path, connect_with, local_dir, open, who, Chosen, Connected, Env,
    RuntimeError,
};
pub use ops::{
    failures_discard, failures_list, failures_retry, failures_show, ingest, plan, plan_with,
    selection, status, sync, sync_with, work, IngestView, PlanRequest, PlanView, SyncRequest,
    WorkReport, WorkRequest,
};
