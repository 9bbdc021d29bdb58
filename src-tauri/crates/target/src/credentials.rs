//! Target credentials in the OS keychain (Secret Service on Linux, Keychain on macOS,
//! Credential Manager on Windows). They are never written to a file by Metasync.

use crate::Secret;

const SERVICE: &str = "metasync";

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "the profile name {0:?} is empty or has characters other than letters, digits, - and _"
    )]
    BadProfile(String),
    #[error("no credentials for profile {0}: run `metasync credentials set --profile {0}`")]
    Missing(String),
    #[error("the OS keychain is not available: {0}. On Linux a Secret Service (GNOME Keyring or KWallet) must be running and unlocked")]
    Keychain(String),
}

/// The key (or OAuth2 client id) and secret of a profile's target.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub key: Secret,
    pub secret: Secret,
}

fn entry(profile: &str, what: &str) -> Result<keyring::Entry, CredentialsError> {
    let ok = !profile.is_empty()
        && profile
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(CredentialsError::BadProfile(profile.to_string()));
    }
    keyring::Entry::new(SERVICE, &format!("{profile}/target-{what}"))
        .map_err(|e| CredentialsError::Keychain(e.to_string()))
}

fn read(profile: &str, what: &str) -> Result<Option<Secret>, CredentialsError> {
    match entry(profile, what)?.get_password() {
        Ok(v) => Ok(Some(Secret::new(v))),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(CredentialsError::Keychain(e.to_string())),
    }
}

pub fn load(profile: &str) -> Result<Credentials, CredentialsError> {
    match (read(profile, "key")?, read(profile, "secret")?) {
        (Some(key), Some(secret)) => Ok(Credentials { key, secret }),
        _ => Err(CredentialsError::Missing(profile.to_string())),
    }
}

pub fn is_set(profile: &str) -> Result<bool, CredentialsError> {
    Ok(read(profile, "key")?.is_some() && read(profile, "secret")?.is_some())
}

pub fn store(profile: &str, credentials: &Credentials) -> Result<(), CredentialsError> {
    for (what, value) in [("key", &credentials.key), ("secret", &credentials.secret)] {
        entry(profile, what)?
            .set_password(value.expose())
            .map_err(|e| CredentialsError::Keychain(e.to_string()))?;
    }
    Ok(())
}

/// Remove a profile's credentials; `false` when there were none.
pub fn delete(profile: &str) -> Result<bool, CredentialsError> {
    let mut removed = false;
    for what in ["key", "secret"] {
        match entry(profile, what)?.delete_credential() {
            Ok(()) => removed = true,
            Err(keyring::Error::NoEntry) => {}
            Err(e) => return Err(CredentialsError::Keychain(e.to_string())),
        }
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
                matches!(entry(bad, "key"), Err(CredentialsError::BadProfile(_))),
                "{bad:?}"
            );
        }
        assert!(CredentialsError::Missing("staging".into())
            .to_string()
            .contains("metasync credentials set --profile staging"));
    }
}
