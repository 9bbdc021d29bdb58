//! Land: the raw file in bronze (immutable, by content hash), the canonical records in
//! silver (NDJSON), the rejected rows with their findings in `rejected/` — the layout
//! of DESIGN §5. Every put is encrypted at rest by the adapter.

use super::record::sha256_hex;
use crate::ports::{ObjectStore, StoreError};
use crate::text::civil_from_days;
use crate::EntityType;
use serde::Serialize;

/// Where a run's files went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Landed {
    pub bronze: Vec<String>,
    pub silver: Vec<String>,
    pub rejected: Vec<String>,
}

/// `YYYY-MM-DD` (UTC) of milliseconds since the epoch.
pub fn date_of(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn bronze_key(entity: EntityType, date: &str, run_id: &str, sha256: &str) -> String {
    format!("bronze/{entity}/date={date}/{run_id}/{sha256}.csv")
}

pub fn silver_key(entity: EntityType, date: &str, run_id: &str) -> String {
    format!("silver/{entity}/date={date}/{run_id}.ndjson")
}

pub fn rejected_key(entity: EntityType, date: &str, run_id: &str, sha256: &str) -> String {
    format!("rejected/{entity}/date={date}/{run_id}/{sha256}.csv")
}

/// Put the raw file in bronze unless that exact content is already there. Returns the
/// key and the file's sha256.
pub async fn land_bronze(
    store: &dyn ObjectStore,
    entity: EntityType,
    date: &str,
    run_id: &str,
    raw: Vec<u8>,
) -> Result<(String, String), StoreError> {
    let sha = sha256_hex(&raw);
    let key = bronze_key(entity, date, run_id, &sha);
    store.put_if_absent(&key, raw, "text/csv").await?;
    Ok((key, sha))
}

pub async fn land_silver(
    store: &dyn ObjectStore,
    entity: EntityType,
    date: &str,
    run_id: &str,
    ndjson: Vec<u8>,
) -> Result<String, StoreError> {
    let key = silver_key(entity, date, run_id);
    store.put(&key, ndjson, "application/x-ndjson").await?;
    Ok(key)
}

pub async fn land_rejected(
    store: &dyn ObjectStore,
    entity: EntityType,
    date: &str,
    run_id: &str,
    file_sha256: &str,
    csv: Vec<u8>,
) -> Result<String, StoreError> {
    let key = rejected_key(entity, date, run_id, file_sha256);
    store.put(&key, csv, "text/csv").await?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(1_795_000_000_000), "2026-11-18");
        assert_eq!(
            bronze_key(EntityType::Episode, "2026-11-23", "r1", "ab"),
            "bronze/episode/date=2026-11-23/r1/ab.csv"
        );
        assert_eq!(
            silver_key(EntityType::Show, "2026-11-23", "r1"),
            "silver/show/date=2026-11-23/r1.ndjson"
        );
        assert!(crate::ports::check_key(
            "PutObject",
            &rejected_key(EntityType::Asset, "d", "r", "x")
        )
        .is_ok());
    }
}
