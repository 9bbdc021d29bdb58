//! `metasync deploy print-policy`: the IAM policy a desktop user of a profile needs,
//! for the administrator who deploys the stack (deploy/template.yaml) to attach.

use crate::backend;
use crate::output::fail;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Print the IAM policy (JSON) a desktop user of the profile needs: its bucket,
    /// queues, table and key, for the calls the app makes, and nothing more.
    PrintPolicy {
        /// An aws profile of metasync.toml.
        #[arg(long)]
        profile: String,
        /// metasync.toml to read (default: $METASYNC_CONFIG, then ./metasync.toml,
        /// then metasync/metasync.toml in the user's config folder).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The 12-digit account id the resources are in (default: any account, `*`).
        #[arg(long)]
        account: Option<String>,
    },
}

pub fn run(args: Args) -> u8 {
    let Command::PrintPolicy {
        profile,
        config,
        account,
    } = args.action;
    let chosen = match backend::choose(Some(&profile), config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match metasync_runtime::policy::desktop_policy(&chosen, account.as_deref()) {
        Ok(p) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&p).unwrap_or_else(|_| p.to_string())
            );
            if account.is_none() {
                eprintln!(
                    "note: the ARNs name any account (*); pass --account 123456789012 to pin yours"
                );
            }
            0
        }
        Err(e) => fail(e),
    }
}
