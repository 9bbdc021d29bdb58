//! The object store port (S3, or a local directory).

use super::{Calls, Service, StoreError};
use async_trait::async_trait;

/// An object as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub body: Vec<u8>,
    pub content_type: String,
    /// The server-side encryption the store applied (`AES256`, `aws:kms`), if any.
    pub encryption: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Write (or replace) the object at `key`, encrypted at rest where the store can.
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), StoreError>;

    /// Write only if nothing is at `key` yet (immutable bronze files). `false` when an
    /// object was already there; it is left as it was.
    async fn put_if_absent(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<bool, StoreError>;

    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError>;

    /// Every object whose key starts with `prefix`, sorted by key (all pages).
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError>;

    fn calls(&self) -> Calls;
}

/// Keys are relative, `/`-separated paths of plain segments, the same on both adapters:
/// no empty, `.` or `..` segment, no backslash or control character, at most 1024 bytes.
pub fn check_key(operation: &'static str, key: &str) -> Result<(), StoreError> {
    let bad = |why: &str| {
        Err(StoreError::invalid(
            Service::Objects,
            operation,
            format!("object key {key:?} {why}"),
        ))
    };
    if key.is_empty() || key.len() > 1024 {
        return bad("must be 1 to 1024 bytes long");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return bad("must not contain control characters or backslashes");
    }
    if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return bad("must be a relative path without empty, '.' or '..' parts");
    }
    Ok(())
}

/// A list prefix: empty, or the start of a key that [`check_key`] would accept (its
/// last segment may be partial or empty).
pub fn check_prefix(prefix: &str) -> Result<(), StoreError> {
    let whole = prefix.rsplit_once('/').map_or("", |(dirs, _)| dirs);
    let last = prefix.rsplit('/').next().unwrap_or_default();
    let bad = prefix.starts_with('/')
        || prefix.chars().any(|c| c.is_control() || c == '\\')
        || (!whole.is_empty() && check_key("ListObjectsV2", whole).is_err())
        || last == ".."
        || prefix.len() > 1024;
    if bad {
        return Err(StoreError::invalid(
            Service::Objects,
            "ListObjectsV2",
            format!("list prefix {prefix:?} must be the start of a relative key"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_key, check_prefix};

    #[test]
    fn prefixes_are_starts_of_keys() {
        for ok in ["", "bronze/", "silver/show", "gold/x/y", "a."] {
            assert!(check_prefix(ok).is_ok(), "{ok:?} refused");
        }
        for bad in ["/", "/etc", "../", "a/../b", "..", "a//b/", "a\\b"] {
            assert!(check_prefix(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn keys_are_plain_relative_paths() {
        assert!(check_key("PutObject", "bronze/show/date=2026-11-22/r1/ab.csv").is_ok());
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/../b",
            "a/./b",
            "a\\b",
            "trailing/",
            "a\nb",
        ] {
            assert!(check_key("PutObject", bad).is_err(), "{bad:?} accepted");
        }
    }
}
