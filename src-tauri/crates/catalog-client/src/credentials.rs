//! Credentials in the OS keychain (Secret Service on Linux, Keychain on macOS,
//! Credential Manager on Windows): a profile's target key and secret, and optionally
//! its AWS access key pair. They are never written to a file by Metasync. Without the
//! `keychain` feature (the Lambda build) the keychain is absent and only the
//! environment's credentials, or the caller's, are used.

use crate::Secret;

const SERVICE: &str = "metasync";

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "the profile name {0:?} is empty or has characters other than letters, digits, - and _"
    )]
    BadProfile(String),
    #[error("no credentials for profile {0}: run `metasync credentials set --profile {0}`, or set METASYNC_TARGET_KEY and METASYNC_TARGET_SECRET")]
    Missing(String),
    #[error("the OS keychain is not available: {0}. On Linux a Secret Service (GNOME Keyring or KWallet) must be running and unlocked")]
    Keychain(String),
}

/// Which credentials of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The target's key (or OAuth2 client id) and secret.
    Target,
    /// An AWS access key id and secret access key (else the AWS chain is used).
    Aws,
}

impl Kind {
    fn account_prefix(self) -> &'static str {
        match self {
            Kind::Target => "target",
            Kind::Aws => "aws",
        }
    }
}

/// A key (or OAuth2 client id, or AWS access key id) and its secret.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub key: Secret,
    pub secret: Secret,
}

/// The keychain account of one part of a profile's credentials, the profile name
/// checked first.
fn account(profile: &str, kind: Kind, what: &str) -> Result<String, CredentialsError> {
    let ok = !profile.is_empty()
        && profile
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(CredentialsError::BadProfile(profile.to_string()));
    }
    Ok(format!("{profile}/{}-{what}", kind.account_prefix()))
}

/// The OS keychain, through `keyring`.
#[cfg(feature = "keychain")]
mod keychain {
    use super::{CredentialsError, SERVICE};

    fn entry(account: &str) -> Result<keyring::Entry, CredentialsError> {
        keyring::Entry::new(SERVICE, account).map_err(|e| CredentialsError::Keychain(e.to_string()))
    }

    pub fn get(account: &str) -> Result<Option<String>, CredentialsError> {
        match entry(account)?.get_password() {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(CredentialsError::Keychain(e.to_string())),
        }
    }

    pub fn set(account: &str, value: &str) -> Result<(), CredentialsError> {
        entry(account)?
            .set_password(value)
            .map_err(|e| CredentialsError::Keychain(e.to_string()))
    }

    /// `false` when there was nothing to delete.
    pub fn delete(account: &str) -> Result<bool, CredentialsError> {
        match entry(account)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(CredentialsError::Keychain(e.to_string())),
        }
    }
}

/// A build without the keychain (the Lambda handlers: secrets come from Secrets
/// Manager there): every keychain call says so, and the environment still works.
#[cfg(not(feature = "keychain"))]
mod keychain {
    use super::CredentialsError;

    fn absent() -> CredentialsError {
        CredentialsError::Keychain("this build has no OS keychain".into())
    }
    pub fn get(_: &str) -> Result<Option<String>, CredentialsError> {
        Err(absent())
    }
    pub fn set(_: &str, _: &str) -> Result<(), CredentialsError> {
        Err(absent())
    }
    pub fn delete(_: &str) -> Result<bool, CredentialsError> {
        Err(absent())
    }
}

fn read(profile: &str, kind: Kind, what: &str) -> Result<Option<Secret>, CredentialsError> {
    Ok(keychain::get(&account(profile, kind, what)?)?.map(Secret::new))
}

/// The profile's credentials of this kind, if both parts are set.
pub fn find(profile: &str, kind: Kind) -> Result<Option<Credentials>, CredentialsError> {
    match (read(profile, kind, "key")?, read(profile, kind, "secret")?) {
        (Some(key), Some(secret)) => Ok(Some(Credentials { key, secret })),
        _ => Ok(None),
    }
}

/// Where a profile's target credentials came from (logged; the values never are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Keychain,
    /// `METASYNC_TARGET_KEY` / `METASYNC_TARGET_SECRET`.
    Environment,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Keychain => "the OS keychain",
            Source::Environment => "METASYNC_TARGET_KEY / METASYNC_TARGET_SECRET",
        }
    }
}

/// The environment variables a headless run (CI, a server, a container) sets instead
/// of the keychain.
pub const ENV_KEY: &str = "METASYNC_TARGET_KEY";
pub const ENV_SECRET: &str = "METASYNC_TARGET_SECRET";

/// A profile's target credentials: the keychain's when it has them (it wins when both
/// are set), else the environment's. Call it outside an async runtime: the keychain
/// client blocks.
pub fn resolve(
    profile: &str,
    var: impl Fn(&str) -> Option<String>,
) -> Result<(Credentials, Source), CredentialsError> {
    let keychain = find(profile, Kind::Target);
    if let Ok(Some(c)) = keychain {
        return Ok((c, Source::Keychain));
    }
    let env = (var(ENV_KEY), var(ENV_SECRET));
    if let (Some(key), Some(secret)) = env {
        if !key.is_empty() && !secret.is_empty() {
            return Ok((
                Credentials {
                    key: Secret::new(key),
                    secret: Secret::new(secret),
                },
                Source::Environment,
            ));
        }
    }
    match keychain {
        Err(CredentialsError::Keychain(e)) => Err(CredentialsError::Keychain(format!(
            "{e}; or set {ENV_KEY} and {ENV_SECRET}"
        ))),
        Err(e) => Err(e),
        Ok(_) => Err(CredentialsError::Missing(profile.to_string())),
    }
}

pub fn is_set(profile: &str, kind: Kind) -> Result<bool, CredentialsError> {
    Ok(find(profile, kind)?.is_some())
}

pub fn store(profile: &str, kind: Kind, credentials: &Credentials) -> Result<(), CredentialsError> {
    for (what, value) in [("key", &credentials.key), ("secret", &credentials.secret)] {
        keychain::set(&account(profile, kind, what)?, value.expose())?;
    }
    Ok(())
}

/// Remove a profile's credentials; `false` when there were none.
pub fn delete(profile: &str, kind: Kind) -> Result<bool, CredentialsError> {
    let mut removed = false;
    for what in ["key", "secret"] {
        removed |= keychain::delete(&account(profile, kind, what)?)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_are_checked_before_the_keychain_is_touched() {
        for bad in ["", "a b", "../x", "prod/target"] {
            assert!(
                matches!(
                    account(bad, Kind::Aws, "key"),
                    Err(CredentialsError::BadProfile(_))
                ),
                "{bad:?}"
            );
        }
        assert!(CredentialsError::Missing("staging".into())
            .to_string()
            .contains("metasync credentials set --profile staging"));
    }
}
