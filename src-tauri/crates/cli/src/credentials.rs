//! `metasync credentials set|status|delete --profile P [--aws]`.

use crate::output::fail;
use crate::EXIT_FINDINGS;
use metasync_catalog_client::credentials::{self, Credentials, Kind};
use metasync_catalog_client::Secret;
use std::io::{BufRead, IsTerminal};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Store the target's key (or OAuth2 client id) and secret; asks for them without echo.
    Set {
        #[arg(long)]
        profile: String,
        /// The profile's AWS access key id and secret access key instead (used in place
        /// of the AWS chain: env, ~/.aws, SSO).
        #[arg(long)]
        aws: bool,
        /// Read the key and the secret from standard input, one per line (for scripts).
        #[arg(long)]
        from_stdin: bool,
    },
    /// Say whether the profile has credentials (never shows them). Exit 1 when not.
    Status {
        #[arg(long)]
        profile: String,
        /// The AWS keys instead of the target's.
        #[arg(long)]
        aws: bool,
    },
    /// Remove the profile's credentials from the keychain.
    Delete {
        #[arg(long)]
        profile: String,
        /// The AWS keys instead of the target's.
        #[arg(long)]
        aws: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

fn ask(prompt: &str) -> std::io::Result<Secret> {
    rpassword::prompt_password(prompt).map(Secret::new)
}

fn read_from_stdin() -> Result<Credentials, String> {
    let mut lines = std::io::stdin().lock().lines();
    let mut next = |what: &str| -> Result<Secret, String> {
        match lines.next() {
            Some(Ok(line)) if !line.trim().is_empty() => Ok(Secret::new(line.trim())),
            _ => Err(format!("standard input must hold the key, then the secret, one per line; the {what} is missing")),
        }
    };
    Ok(Credentials {
        key: next("key")?,
        secret: next("secret")?,
    })
}

fn kind(aws: bool) -> (Kind, &'static str) {
    if aws {
        (Kind::Aws, "AWS keys")
    } else {
        (Kind::Target, "credentials")
    }
}

pub fn run(args: Args) -> u8 {
    match args.action {
        Action::Set {
            profile,
            aws,
            from_stdin,
        } => {
            let (kind, what) = kind(aws);
            let creds = if from_stdin {
                match read_from_stdin() {
                    Ok(c) => c,
                    Err(e) => return fail(e),
                }
            } else {
                let first = if aws {
                    "AWS access key id"
                } else {
                    "Target key or client id"
                };
                let asked = ask(&format!("{first} for profile {profile}: ")).and_then(|key| {
                    Ok(Credentials {
                        key,
                        secret: ask("Secret: ")?,
                    })
                });
                match asked {
                    Ok(c) if !c.key.expose().is_empty() && !c.secret.expose().is_empty() => c,
                    Ok(_) => {
                        return fail("the key and the secret must not be empty; nothing was stored")
                    }
                    Err(e) => {
                        return fail(format!(
                            "cannot read from the terminal ({e}); use --from-stdin in scripts"
                        ))
                    }
                }
            };
            match credentials::store(&profile, kind, &creds) {
                Ok(()) => {
                    println!("Stored the {what} of profile {profile} in the OS keychain.");
                    0
                }
                Err(e) => fail(e),
            }
        }
        Action::Status { profile, aws } => {
            let (kind, what) = kind(aws);
            let flag = if aws { " --aws" } else { "" };
            match credentials::is_set(&profile, kind) {
                Ok(true) => {
                    println!("Profile {profile}: {what} are set in the OS keychain.");
                    0
                }
                Ok(false) => {
                    println!("Profile {profile}: no {what}. Run: metasync credentials set --profile {profile}{flag}");
                    EXIT_FINDINGS
                }
                Err(e) => fail(e),
            }
        }
        Action::Delete { profile, aws, yes } => {
            let (kind, what) = kind(aws);
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return fail("deleting credentials needs a confirmation: run it in a terminal, or add --yes");
                }
                eprint!("Delete the {what} of profile {profile} from the OS keychain? [y/N] ");
                let mut answer = String::new();
                if std::io::stdin().read_line(&mut answer).is_err()
                    || !answer.trim().eq_ignore_ascii_case("y")
                {
                    println!("Nothing deleted.");
                    return 0;
                }
            }
            match credentials::delete(&profile, kind) {
                Ok(true) => {
                    println!("Deleted the {what} of profile {profile}.");
                    0
                }
                Ok(false) => {
                    println!("Profile {profile} had no {what}.");
                    0
                }
                Err(e) => fail(e),
            }
        }
    }
}
