//! The quota port: one target's request budget, kept in the state store so every
//! consumer of that target (Lambda consumers, desktops, CLI workers) draws from the
//! same bucket. The store keeps a GCRA bucket as one small item, changed only by
//! compare-and-swap; the limiter ([`crate::ratelimit::SharedQuota`]) leases permits
//! from it in blocks, so the cost stays near one write per block.

use super::StoreError;
use async_trait::async_trait;

/// The id of a bucket item: `quota#{name}` (DynamoDB's `pk`, SQLite's key). Names are
/// the target's URL; the longest id the port accepts.
pub const MAX_QUOTA_NAME: usize = 512;

/// A shared GCRA bucket: when the next permit is due, and until when every consumer
/// waits after a 429's Retry-After. Times are microseconds since the Unix epoch (all
/// consumers read the same wall clock; NTP keeps hosts within milliseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaState {
    /// The theoretical arrival time of the next permit.
    pub tat_us: i64,
    /// No permit before this (a 429's Retry-After, shared).
    pub paused_until_us: i64,
    /// Bumped by every write; a swap succeeds only on the version it read.
    pub version: u64,
    /// A random id of the write: a write retried after its answer was lost knows its
    /// own from another consumer's that computed the same block.
    pub writer: u64,
}

#[async_trait]
pub trait QuotaStore: Send + Sync {
    /// The bucket as it is now (read consistently), `None` if nobody used it yet.
    async fn read_quota(&self, name: &str) -> Result<Option<QuotaState>, StoreError>;

    /// Write `next` if the bucket is still `prev` (`None`: still absent). `false` when
    /// another consumer wrote first: read again and decide again.
    async fn swap_quota(
        &self,
        name: &str,
        prev: Option<&QuotaState>,
        next: &QuotaState,
    ) -> Result<bool, StoreError>;
}

/// Refuse a name the stores cannot key (before any call).
pub fn check_quota_name(operation: &'static str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > MAX_QUOTA_NAME {
        return Err(StoreError::invalid(
            super::Service::State,
            operation,
            format!("a quota name is 1 to {MAX_QUOTA_NAME} bytes"),
        ));
    }
    Ok(())
}
