//! Faults a real emulator cannot produce on demand (moto never throttles and never
//! returns unprocessed items), injected around a real store so the engine's handling
//! of them is tested against both adapter sets.

use super::{
    Calls, ErrorKind, Expect, Page, QuotaState, QuotaStore, Record, RecordKey, RecordStatus, Run,
    Service, StateStore, StoreError, Written,
};
use async_trait::async_trait;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// A state store that, on demand, fails calls with throttling or writes only part of a
/// batch and returns the rest as unprocessed (as DynamoDB does under load).
pub struct FaultyState {
    inner: Arc<dyn StateStore>,
    throttle: AtomicU32,
    partial: AtomicU32,
}

impl FaultyState {
    pub fn new(inner: Arc<dyn StateStore>) -> Self {
        Self {
            inner,
            throttle: AtomicU32::new(0),
            partial: AtomicU32::new(0),
        }
    }
    /// The next `n` calls fail with a throttling error and reach nothing.
    pub fn throttle_next(&self, n: u32) {
        self.throttle.store(n, Ordering::SeqCst);
    }
    /// The next `n` batch puts write only the first half (rounded down) of their
    /// records and return the rest as unprocessed.
    pub fn partial_next(&self, n: u32) {
        self.partial.store(n, Ordering::SeqCst);
    }

    fn take(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn throttled(&self, operation: &'static str) -> Result<(), StoreError> {
        if Self::take(&self.throttle) {
            return Err(StoreError::new(
                ErrorKind::Throttled,
                Service::State,
                operation,
                "injected: rate of requests exceeds the allowed throughput",
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl QuotaStore for FaultyState {
    async fn read_quota(&self, name: &str) -> Result<Option<QuotaState>, StoreError> {
        self.throttled("GetItem")?;
        self.inner.read_quota(name).await
    }
    async fn swap_quota(
        &self,
        name: &str,
        prev: Option<&QuotaState>,
        next: &QuotaState,
    ) -> Result<bool, StoreError> {
        self.throttled("PutItem")?;
        self.inner.swap_quota(name, prev, next).await
    }
}

#[async_trait]
impl StateStore for FaultyState {
    async fn get(&self, key: &RecordKey) -> Result<Option<Record>, StoreError> {
        self.throttled("GetItem")?;
        self.inner.get(key).await
    }
    async fn batch_get(&self, keys: &[RecordKey]) -> Result<Vec<Record>, StoreError> {
        self.throttled("BatchGetItem")?;
        self.inner.batch_get(keys).await
    }
    async fn put(&self, record: &Record, expect: Expect) -> Result<Written, StoreError> {
        self.throttled("PutItem")?;
        self.inner.put(record, expect).await
    }
    async fn batch_put(&self, records: &[Record]) -> Result<Vec<Record>, StoreError> {
        self.throttled("BatchWriteItem")?;
        if records.len() > 1 && Self::take(&self.partial) {
            let (now, later) = records.split_at(records.len() / 2);
            let mut unprocessed = self.inner.batch_put(now).await?;
            unprocessed.extend_from_slice(later);
            return Ok(unprocessed);
        }
        self.inner.batch_put(records).await
    }
    async fn query(
        &self,
        status: RecordStatus,
        error_code: Option<&str>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Record>, StoreError> {
        self.throttled("Query")?;
        self.inner.query(status, error_code, limit, after).await
    }
    async fn put_run(&self, run: &Run) -> Result<(), StoreError> {
        self.throttled("PutItem")?;
        self.inner.put_run(run).await
    }
    async fn get_run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        self.throttled("GetItem")?;
        self.inner.get_run(id).await
    }
    async fn list_runs(&self, limit: usize) -> Result<Vec<Run>, StoreError> {
        self.throttled("Query")?;
        self.inner.list_runs(limit).await
    }
    fn calls(&self) -> Calls {
        self.inner.calls()
    }
}
