//! `metasync infra up|down|check`: create what a profile's backend needs
//! (idempotently), remove it after confirmation, or say what of it exists.

use crate::backend::{self, Chosen};
use crate::output::{fail, Format};
use crate::EXIT_FINDINGS;
use metasync_runtime::infra::{infra, made_on_first_use, Action, InfraAction};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Command,
}

#[derive(clap::Args)]
struct Common {
    /// Profile of metasync.toml; without one, the embedded default.
    #[arg(long)]
    profile: Option<String>,
    /// metasync.toml to read (default: $METASYNC_CONFIG, then ./metasync.toml, then
    /// metasync/metasync.toml in the user's config folder).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Create the bucket, queues and table (or the local database); what exists is kept.
    Up(Common),
    /// Delete them, with everything they hold.
    Down {
        #[command(flatten)]
        common: Common,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Say which of them exist, changing nothing. Exit 1 when an aws profile lacks one
    /// (the embedded backend makes its own on first use).
    Check(Common),
}

pub fn run(args: Args) -> u8 {
    let (common, action, yes) = match args.action {
        Command::Up(c) => (c, InfraAction::Up, false),
        Command::Down { common, yes } => (common, InfraAction::Down, yes),
        Command::Check(c) => (c, InfraAction::Check, false),
    };
    let chosen = match backend::choose(common.profile.as_deref(), common.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if action == InfraAction::Down && !yes {
        if let Err(e) = confirm(&chosen) {
            return fail(e);
        }
    }
    let rt = match backend::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    let changes = match rt.block_on(infra(&chosen, action)) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match common.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&changes).unwrap_or_default()
        ),
        Format::Text => {
            println!("{}:", chosen.label);
            for c in &changes {
                let action = match c.action {
                    Action::Created => "created",
                    Action::Exists => "exists",
                    Action::Deleted => "deleted",
                    Action::Absent => "absent",
                };
                println!("  {action:<8} {:<18} {}", c.kind, c.name);
            }
        }
    }
    let missing = changes.iter().any(|c| c.action == Action::Absent);
    if action == InfraAction::Check && missing && made_on_first_use(&chosen) {
        println!("  (the embedded backend makes them on first use)");
    } else if action == InfraAction::Check && missing {
        eprintln!(
            "{}: some resources are missing; `metasync infra up{}` creates them",
            chosen.label,
            chosen
                .name
                .as_deref()
                .map(|n| format!(" --profile {n}"))
                .unwrap_or_default()
        );
        return EXIT_FINDINGS;
    }
    0
}

/// Ask for the profile's name back; without a terminal, refuse (use --yes).
fn confirm(chosen: &Chosen) -> Result<(), String> {
    crate::output::confirm_typed(
        &format!(
            "infra down deletes every object, queued message and sync state of {}",
            chosen.label
        ),
        chosen.name.as_deref().unwrap_or("local"),
        "nothing was deleted",
    )
}
