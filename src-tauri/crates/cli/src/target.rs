//! `metasync target check --profile P`: can Metasync reach the target and are the
//! credentials accepted? One lookup of a slug that does not exist; nothing changes.

use crate::output::fail;
use crate::EXIT_FINDINGS;
use metasync_catalog_client::credentials;
use metasync_engine::config::{self, Dialect};
use metasync_engine::target::CallError;
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
        /// metasync.toml to read (default: $METASYNC_CONFIG, then ./metasync.toml).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> u8 {
    let Action::Check { profile, config } = args.action;
    let path = config::locate(config.as_deref());
    let p = match config::load_profile(&path, &profile, |k| std::env::var(k).ok()) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let Some(target) = p.target else {
        return fail(format!(
            "{}: profile {profile} has no [profiles.{profile}.target] section",
            path.display()
        ));
    };
    let creds = match credentials::load(&profile) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let runtime = match crate::backend::runtime() {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let called = match runtime.block_on(metasync_catalog_client::check_connection(&target, &creds))
    {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let marker = if p.production { " [PRODUCTION]" } else { "" };
    let dialect = match target.dialect {
        Dialect::MediaManager => "Media Manager v1",
        Dialect::Rest => "REST + OAuth2",
    };
    match called.result {
        Ok(_) => {
            println!("Profile {profile}{marker}: connected to {} ({dialect}); the credentials were accepted.", target.url);
            0
        }
        Err(e @ CallError::Auth { .. }) => fail(format!("profile {profile}: {e}")),
        Err(e) => {
            eprintln!(
                "error: profile {profile}: {} did not answer as expected after {} attempt(s): {e}",
                target.url, called.attempts
            );
            EXIT_FINDINGS
        }
    }
}
