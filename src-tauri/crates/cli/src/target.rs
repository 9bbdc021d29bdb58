//! `metasync target check --profile P`: can Metasync reach the target and are the
//! credentials accepted? One lookup of a slug that does not exist; nothing changes.

use crate::output::fail;
use crate::EXIT_FINDINGS;
use metasync_runtime::settings::{target_check, TargetCheck};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Connect with the profile's credentials and make one harmless lookup.
    Check {
        #[arg(long)]
        profile: String,
        /// metasync.toml to read (default: $METASYNC_CONFIG, then ./metasync.toml, then
        /// metasync/metasync.toml in the user's config folder).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> u8 {
    let Action::Check { profile, config } = args.action;
    let chosen = match crate::backend::choose(Some(&profile), config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let runtime = match crate::backend::runtime() {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    match runtime.block_on(target_check(&chosen)) {
        Ok(TargetCheck::Accepted(m)) => {
            println!("{m}");
            0
        }
        Ok(TargetCheck::Refused(m)) => fail(m),
        Ok(TargetCheck::NoAnswer(m)) => {
            eprintln!("error: {m}");
            EXIT_FINDINGS
        }
        Err(e) => fail(e),
    }
}
