//! The target catalog port: what the sync needs from a catalog API, whatever its
//! dialect. Adapters (the `catalog-client` crate) speak HTTP; the engine only sees
//! typed outcomes.

use crate::retry::ErrorClass;
use crate::EntityType;
use std::future::Future;
use std::time::Duration;

/// An object's id in the target catalog.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TargetId(pub String);

/// Canonical attributes sent to the target, by field name.
pub type Attributes = serde_json::Map<String, serde_json::Value>;

/// Why a call did not succeed, typed so the caller can decide without parsing text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The object (or the parent named in the call) does not exist.
    #[error("not found in the target catalog")]
    NotFound,
    /// The target refused the request as it is; `message` is its own answer.
    #[error("the target refused it (HTTP {status}): {message}")]
    Permanent { status: u16, message: String },
    /// It may work later. `throttled` is a 429.
    #[error("temporary failure: {reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
        throttled: bool,
    },
    /// Credentials were refused (after one token refresh, where there is a token).
    #[error("the target refused the credentials: {message}")]
    Auth { message: String },
}

impl CallError {
    pub fn class(&self) -> ErrorClass {
        match self {
            CallError::NotFound | CallError::Permanent { .. } => ErrorClass::Permanent,
            CallError::Transient { .. } => ErrorClass::Transient,
            CallError::Auth { .. } => ErrorClass::Auth,
        }
    }
}

/// What identifies an object among its parent's children, so it can be found again
/// after a create whose answer was lost. Media Manager generates episode and asset
/// slugs itself and seasons have none, so only a show is found by a key of ours.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    /// A show, by its slug.
    Slug(String),
    /// A season, by its ordinal under its show.
    Ordinal(u32),
    /// An episode, by ordinal and segment (empty: none) under its season: Media
    /// Manager keeps the pair unique there.
    Episode { ordinal: u32, segment: String },
    /// A clip or preview, by object type and title under its parent.
    Asset { object_type: String, title: String },
    /// The one full-length asset of an episode (its title is the episode's).
    FullLength,
}

/// What the credentials may write. Media Manager: "Shows can be added and deleted by
/// PBS only" (console guide, Shows), and stations cannot change shows or seasons
/// (pbs-media-manager-php: "~~Show~~, ~~Season~~ (unsupported by API)"); a station
/// creates seasons, episodes and assets. Other dialects write everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// A station's key: shows are looked up, never written; seasons are created but
    /// not changed.
    Station,
    /// PBS's (or a dialect without such limits): everything.
    #[default]
    Full,
}

impl Access {
    pub fn may_create(self, entity: EntityType) -> bool {
        !(self == Self::Station && entity == EntityType::Show)
    }

    pub fn may_update(self, entity: EntityType) -> bool {
        !(self == Self::Station && matches!(entity, EntityType::Show | EntityType::Season))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Station => "station",
            Self::Full => "pbs",
        }
    }
}

/// What a client has sent so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TargetCounters {
    /// HTTP requests, every attempt and page counted.
    pub requests: u64,
    /// Of which answered 429.
    pub throttled: u64,
}

/// A target catalog: find an object again, create under a parent, update fields.
pub trait Target: Send + Sync {
    /// The object of this type under `parent` (none for shows) with this identity, if
    /// there is one. Implementations check the identity of what they get back.
    fn find(
        &self,
        entity: EntityType,
        parent: Option<(EntityType, &TargetId)>,
        identity: &Identity,
    ) -> impl Future<Output = Result<Option<TargetId>, CallError>> + Send;

    /// Create an object (under `parent`, with its type, for all but shows); returns
    /// its new id.
    fn create(
        &self,
        entity: EntityType,
        parent: Option<(EntityType, &TargetId)>,
        attributes: &Attributes,
    ) -> impl Future<Output = Result<TargetId, CallError>> + Send;

    /// Send only the changed attributes of an existing object.
    fn update(
        &self,
        entity: EntityType,
        id: &TargetId,
        changed: &Attributes,
    ) -> impl Future<Output = Result<(), CallError>> + Send;

    /// Requests made so far (for the run summary).
    fn counters(&self) -> TargetCounters {
        TargetCounters::default()
    }
}
