//! `metasync`: the engine, headless. Subcommands parse arguments, call the engine and
//! print; the work happens in `metasync-engine`.

mod backend;
mod credentials;
mod demo;
mod deploy;
mod gen;
mod infra;
mod output;
mod pipeline;
mod sandbox;
mod target;
mod validate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "metasync",
    version,
    about = "Validate and sync broadcast catalog CSV files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check CSV files row by row and cell by cell, without sending anything.
    Validate(validate::Args),
    /// Write deterministic synthetic catalog data (same seed, same bytes).
    Gen(gen::Args),
    /// Run a local catalog API that behaves like the target (quotas, faults).
    Sandbox(sandbox::Args),
    /// Keep a profile's target credentials in the OS keychain.
    Credentials(credentials::Args),
    /// Talk to a profile's target catalog.
    Target(target::Args),
    /// Create or remove a backend's bucket, queues and table (or local database).
    Infra(infra::Args),
    /// Show what a sync of the files would change, sending nothing.
    Plan(pipeline::PlanArgs),
    /// Validate, land, enqueue and sync files to the profile's target.
    Sync(pipeline::SyncArgs),
    /// Work the queues: call the target for every queued record.
    Worker(pipeline::WorkerArgs),
    /// Queue depths, failures by code, the last runs.
    Status(pipeline::StatusArgs),
    /// Video and caption ingest of synced assets, as Media Manager reports it.
    Ingest(pipeline::IngestArgs),
    /// Triage: list, show, retry (with edits) or discard failures.
    Failures(pipeline::FailuresArgs),
    /// The whole pipeline on the embedded backend against an in-process sandbox.
    Demo(demo::Args),
    /// The deployed side (deploy/template.yaml): what a desktop user needs.
    Deploy(deploy::Args),
}

/// Exit codes: 0 all good, 1 findings, 2 unusable input or configuration.
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_UNUSABLE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Gen(args) => gen::run(args),
        Command::Sandbox(args) => sandbox::run(args),
        Command::Credentials(args) => credentials::run(args),
        Command::Target(args) => target::run(args),
        Command::Infra(args) => infra::run(args),
        Command::Plan(args) => pipeline::plan(args),
        Command::Sync(args) => pipeline::sync(args),
        Command::Worker(args) => pipeline::worker(args),
        Command::Status(args) => pipeline::status(args),
        Command::Ingest(args) => pipeline::ingest(args),
        Command::Failures(args) => pipeline::failures(args),
        Command::Demo(args) => demo::run(args),
        Command::Deploy(args) => deploy::run(args),
    };
    ExitCode::from(code)
}
