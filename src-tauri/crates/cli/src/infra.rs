//! `metasync infra up|down`: create what a profile's backend needs (idempotently), or
//! remove it after confirmation.

use crate::backend::{self, Chosen};
use crate::output::{fail, Format};
use metasync_aws::infra::{Action, Change};
use metasync_engine::config::BackendProfile;
use std::path::{Path, PathBuf};

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
    /// metasync.toml to read (default: $METASYNC_CONFIG, then ./metasync.toml).
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
}

pub fn run(args: Args) -> u8 {
    let (common, down, yes) = match args.action {
        Command::Up(c) => (c, false, false),
        Command::Down { common, yes } => (common, true, yes),
    };
    let chosen = match backend::choose(common.profile.as_deref(), common.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if down && !yes {
        if let Err(e) = confirm(&chosen) {
            return fail(e);
        }
    }
    let rt = match backend::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    let changes = rt.block_on(async {
        match &chosen.backend {
            BackendProfile::Local {
                data_dir,
                max_receive_count,
            } => local(data_dir.as_deref(), *max_receive_count, down),
            BackendProfile::Aws(profile) => {
                let clients = backend::aws_clients(chosen.name.as_deref(), profile)
                    .await
                    .map_err(|e| e.to_string())?;
                let result = if down {
                    metasync_aws::infra::down(&clients, profile).await
                } else {
                    metasync_aws::infra::up(&clients, profile).await
                };
                result.map_err(|e| e.to_string())
            }
        }
    });
    let changes = match changes {
        Ok(c) => c,
        Err(e) => return fail(format!("{}: {e}", chosen.label)),
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
    0
}

fn local(
    data_dir: Option<&Path>,
    max_receive_count: u32,
    down: bool,
) -> Result<Vec<Change>, String> {
    let dir = backend::local_dir(data_dir).map_err(|e| e.to_string())?;
    let db = dir.join("metasync.db");
    let objects = dir.join("objects");
    let existed = (db.exists(), objects.exists());
    let change = |kind, path: &Path, action| Change {
        kind,
        name: path.display().to_string(),
        action,
    };
    let gone = |was: bool| if was { Action::Deleted } else { Action::Absent };
    if down {
        metasync_local::destroy(&dir)
            .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
        return Ok(vec![
            change("database", &db, gone(existed.0)),
            change("objects", &objects, gone(existed.1)),
        ]);
    }
    metasync_local::open(&dir, metasync_local::QueueSettings { max_receive_count })
        .map_err(|e| e.to_string())?;
    let made = |was: bool| if was { Action::Exists } else { Action::Created };
    Ok(vec![
        change("database", &db, made(existed.0)),
        change("objects", &objects, made(existed.1)),
    ])
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
