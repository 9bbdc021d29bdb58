//! Target catalog clients: the engine's [`Target`](metasync_engine::target::Target)
//! port over HTTP, in two dialects.
//!
//! - [`MediaManager`]: Media Manager v1 — HTTP Basic key/secret, JSON:API envelopes,
//!   create under the parent's collection (new id from `Location`), PATCH updates.
//! - [`Rest`]: generic REST with OAuth2 client credentials — a bearer JWT cached until
//!   shortly before it expires and refreshed once on 401; URLs from templates.
//!
//! Both stop sending once credentials are refused, so wrong credentials give one clear
//! error rather than a storm of 401s.

pub mod credentials;
mod http;
pub mod media_manager;
pub mod rest;
pub mod secret;

pub use media_manager::{MediaManager, MediaManagerConfig};
pub use rest::{Rest, RestConfig, Templates};
pub use secret::Secret;

use metasync_engine::config::{Dialect, TargetProfile};
use metasync_engine::gen::Rng;
use metasync_engine::ratelimit::RateLimiter;
use metasync_engine::target::{
    probe, Attributes, CallError, Called, Identity, Target, TargetCounters, TargetId,
};
use metasync_engine::EntityType;
use std::sync::Arc;
use std::time::Duration;

/// The client a profile names.
pub enum AnyTarget {
    MediaManager(MediaManager),
    Rest(Rest),
}

/// Build the client of a validated profile, with its credentials from the keychain.
pub fn connect(
    profile: &TargetProfile,
    credentials: &credentials::Credentials,
    limiter: Option<Arc<RateLimiter>>,
) -> Result<AnyTarget, BuildError> {
    Ok(match profile.dialect {
        Dialect::MediaManager => AnyTarget::MediaManager(MediaManager::new(
            MediaManagerConfig {
                base_url: profile.url.clone(),
                key: credentials.key.expose().to_string(),
                secret: credentials.secret.clone(),
                timeout: profile.timeout,
            },
            limiter,
        )?),
        Dialect::Rest => AnyTarget::Rest(Rest::new(
            RestConfig {
                base_url: profile.url.clone(),
                token_url: profile.token_url.clone().unwrap_or_default(),
                client_id: credentials.key.expose().to_string(),
                client_secret: credentials.secret.clone(),
                templates: profile.templates.clone(),
                timeout: profile.timeout,
            },
            limiter,
        )?),
    })
}

/// Can the profile's target be reached with these credentials? One lookup of a slug
/// that does not exist, through the profile's limiter and retries; nothing changes.
pub async fn check_connection(
    profile: &TargetProfile,
    credentials: &credentials::Credentials,
) -> Result<Called<Option<TargetId>>, BuildError> {
    let limiter = RateLimiter::new(profile.limiter);
    let client = connect(profile, credentials, None)?;
    let mut rng = Rng::new(0x2545_F491_4F6C_DD1D);
    let mut jitter = move || rng.unit();
    Ok(probe(&client, &profile.retry, &limiter, &mut jitter).await)
}

impl Target for AnyTarget {
    async fn find(
        &self,
        entity: EntityType,
        parent: Option<(EntityType, &TargetId)>,
        identity: &Identity,
    ) -> Result<Option<TargetId>, CallError> {
        match self {
            Self::MediaManager(t) => t.find(entity, parent, identity).await,
            Self::Rest(t) => t.find(entity, parent, identity).await,
        }
    }

    fn counters(&self) -> TargetCounters {
        match self {
            Self::MediaManager(t) => t.counters(),
            Self::Rest(t) => t.counters(),
        }
    }

    async fn create(
        &self,
        entity: EntityType,
        parent: Option<(EntityType, &TargetId)>,
        attributes: &Attributes,
    ) -> Result<TargetId, CallError> {
        match self {
            Self::MediaManager(t) => t.create(entity, parent, attributes).await,
            Self::Rest(t) => t.create(entity, parent, attributes).await,
        }
    }

    async fn update(
        &self,
        entity: EntityType,
        id: &TargetId,
        changed: &Attributes,
    ) -> Result<(), CallError> {
        match self {
            Self::MediaManager(t) => t.update(entity, id, changed).await,
            Self::Rest(t) => t.update(entity, id, changed).await,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("{field} is not a usable URL: {value:?}")]
    Url { field: &'static str, value: String },
}

fn client(timeout: Duration) -> Result<reqwest::Client, BuildError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("metasync/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| BuildError::Client(e.to_string()))
}

fn check_url(field: &'static str, value: &str) -> Result<String, BuildError> {
    let v = value.trim().trim_end_matches('/');
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(v.to_string())
    } else {
        Err(BuildError::Url {
            field,
            value: value.to_string(),
        })
    }
}

/// The new object's id from a `Location` header: the last path segment that is not
/// `edit` (Media Manager answers asset creates with `…/assets/{id}/edit/`; see the
/// station clients tamw-wnet/PBS_Media_Manager_Client and pbs-media-manager-php).
fn id_from_location(location: &str) -> Option<String> {
    location
        .split(['?', '#'])
        .next()?
        .rsplit('/')
        .find(|s| !s.is_empty() && *s != "edit")
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_location_path() {
        assert_eq!(
            id_from_location("/api/v1/episodes/ep-1/").as_deref(),
            Some("ep-1")
        );
        assert_eq!(
            id_from_location("https://h/api/v1/shows/abc?x=1").as_deref(),
            Some("abc")
        );
        assert_eq!(id_from_location("/"), None);
        assert_eq!(
            id_from_location("https://media.pbs.org/api/v1/assets/0f3c-9a/edit/").as_deref(),
            Some("0f3c-9a")
        );
    }

    #[test]
    fn urls_are_checked_once() {
        assert_eq!(
            check_url("base_url", "http://h/api/v1/").ok().as_deref(),
            Some("http://h/api/v1")
        );
        assert!(check_url("base_url", "h/api").is_err_and(|e| e.to_string().contains("base_url")));
    }
}
