//! A quota shared by every consumer of one target: GCRA over a bucket in the state
//! store ([`QuotaStore`]), leased in blocks.
//!
//! A lease reads the bucket and moves its theoretical arrival time (TAT) on by a
//! block of permits, by compare-and-swap: the blocks of all consumers tile the
//! timeline without overlap, so together they never exceed the quota, and a block
//! costs one read and one write (plus a retry when two consumers lease at the same
//! instant). A block covers [`LEASE_SECONDS`] of the quota; permits of a block left
//! unused past their time are dropped, never spent late in a burst. A 429's
//! Retry-After is written to the bucket and pauses every consumer at its next lease.

use crate::ports::{QuotaState, QuotaStore, StoreError};
use serde::Serialize;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A block covers this much of the quota's time: at 100 requests/s, 15 permits.
/// Longer blocks cost fewer writes; shorter ones let a 429's pause reach every
/// consumer sooner (at most one block late).
pub const LEASE_SECONDS: f64 = 0.15;

/// Never lease further ahead than this: a consumer that would wait longer sleeps
/// first, so the bucket never holds a long backlog of promised permits.
pub const MAX_AHEAD: Duration = Duration::from_secs(2);

/// How late a permit may still be used, in slots: the quota's burst tolerance (a
/// call sent late is overtaken by calls of later slots, which the target's own GCRA
/// absorbs only within its tolerance), and at least this many. Past it, the rest of
/// the block is dropped, never saved up for a burst.
pub const MIN_LATE_SLOTS: u32 = 2;

/// The demand of a consumer that never said what it expects.
const UNKNOWN: u64 = u64::MAX;

/// Microseconds since the Unix epoch.
pub type MicrosClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock: every consumer, on every host, reads the same time.
pub fn wall_clock() -> MicrosClock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    })
}

/// What a lease decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The bucket is booked further ahead than [`MAX_AHEAD`]: come back at this time.
    WaitUntil(i64),
    /// Write `next`; the block's permits are due from `start`, one per interval.
    Take { start: i64, next: QuotaState },
}

/// GCRA for a block of `n` permits at `now` (all times in µs).
pub fn decide(
    current: Option<&QuotaState>,
    now: i64,
    n: u32,
    interval_us: i64,
    burst: u32,
) -> Decision {
    let cur = current.copied().unwrap_or_default();
    let tolerance = interval_us * i64::from(burst.saturating_sub(1));
    let start = cur.tat_us.max(now - tolerance).max(cur.paused_until_us);
    let ahead = i64::try_from(MAX_AHEAD.as_micros()).unwrap_or(i64::MAX);
    if start - now > ahead {
        return Decision::WaitUntil(start - ahead);
    }
    Decision::Take {
        start,
        next: QuotaState {
            tat_us: start + interval_us * i64::from(n),
            paused_until_us: cur.paused_until_us,
            version: cur.version + 1,
            writer: 0,
        },
    }
}

/// What leasing cost, for the run's report (writes per permit is the figure to watch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QuotaStats {
    /// Permits handed to calls.
    pub permits: u64,
    pub blocks: u64,
    pub reads: u64,
    /// Conditional writes sent, conflicts included.
    pub writes: u64,
    /// Writes refused because another consumer wrote first.
    pub conflicts: u64,
    /// Permits of a block that went unused (dropped when their time had passed).
    pub dropped: u64,
}

impl QuotaStats {
    pub fn writes_per_permit(&self) -> f64 {
        if self.permits == 0 {
            0.0
        } else {
            self.writes as f64 / self.permits as f64
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    permits: AtomicU64,
    blocks: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    conflicts: AtomicU64,
    dropped: AtomicU64,
}

/// The permits of this consumer's current block.
#[derive(Debug, Default)]
struct Block {
    next_us: i64,
    left: u32,
}

pub struct SharedQuota {
    store: Arc<dyn QuotaStore>,
    name: String,
    interval_us: i64,
    burst: u32,
    block: u32,
    clock: MicrosClock,
    local: tokio::sync::Mutex<Block>,
    /// A Retry-After heard here, not yet written to the bucket.
    pause_until_us: AtomicI64,
    /// Draws the ids of this consumer's writes.
    writers: std::sync::Mutex<crate::gen::Rng>,
    /// Calls this consumer still expects to make ([`UNKNOWN`]: no idea). A lease takes
    /// no more than that, so a block never outlives the batch it was leased for (its
    /// unused permits would be lost time for every consumer); past the estimate
    /// (lookups, retries), leases are small.
    demand: AtomicU64,
    counters: Counters,
}

impl std::fmt::Debug for SharedQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedQuota")
            .field("name", &self.name)
            .field("interval_us", &self.interval_us)
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}

impl SharedQuota {
    /// A bucket named `name` (the target's URL) for `quota` requests per second.
    pub fn new(
        store: Arc<dyn QuotaStore>,
        name: impl Into<String>,
        quota: f64,
        burst: u32,
    ) -> Self {
        Self::with_clock(store, name, quota, burst, wall_clock())
    }

    pub fn with_clock(
        store: Arc<dyn QuotaStore>,
        name: impl Into<String>,
        quota: f64,
        burst: u32,
        clock: MicrosClock,
    ) -> Self {
        let quota = if quota.is_finite() && quota > 0.0 {
            quota
        } else {
            1.0
        };
        Self {
            store,
            name: name.into(),
            interval_us: ((1e6 / quota).round() as i64).max(1),
            burst: burst.max(1),
            block: ((quota * LEASE_SECONDS).round() as u32).max(1),
            clock,
            local: tokio::sync::Mutex::new(Block::default()),
            pause_until_us: AtomicI64::new(0),
            writers: std::sync::Mutex::new(crate::gen::Rng::new(crate::ports::jitter_seed())),
            demand: AtomicU64::new(UNKNOWN),
            counters: Counters::default(),
        }
    }

    pub fn stats(&self) -> QuotaStats {
        let c = &self.counters;
        QuotaStats {
            permits: c.permits.load(Ordering::Relaxed),
            blocks: c.blocks.load(Ordering::Relaxed),
            reads: c.reads.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            conflicts: c.conflicts.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }

    /// Permits per lease.
    pub fn block_size(&self) -> u32 {
        self.block
    }

    /// This consumer is about to make about `calls` calls (a batch's records).
    pub fn expect(&self, calls: u64) {
        self.demand.store(calls, Ordering::SeqCst);
    }

    /// The target said wait `for`: every consumer waits, from its next lease.
    pub fn pause(&self, wait: Duration) {
        let until = (self.clock)() + i64::try_from(wait.as_micros()).unwrap_or(i64::MAX / 2);
        self.pause_until_us.fetch_max(until, Ordering::SeqCst);
    }

    /// Wait for this consumer's next permit of the shared quota. Returns the permit's
    /// slot (µs since the epoch): the slots of all consumers never overlap.
    pub async fn wait_turn(&self) -> Result<i64, StoreError> {
        let at = {
            let mut b = self.local.lock().await;
            let pause = self.pause_until_us.swap(0, Ordering::SeqCst);
            if pause > 0 {
                if let Err(e) = self.write_pause(pause).await {
                    // Kept for the next turn: every consumer must still hear of it.
                    self.pause_until_us.fetch_max(pause, Ordering::SeqCst);
                    return Err(e);
                }
                self.drop_block(&mut b);
            }
            let now = (self.clock)();
            let late =
                self.interval_us * i64::from(self.burst.saturating_sub(1).max(MIN_LATE_SLOTS));
            while b.left > 0 && b.next_us < now - late {
                // Long past: spending it now would be a burst on top of the other
                // consumers' slots. Only the slots that are too late go.
                b.next_us += self.interval_us;
                b.left -= 1;
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            if b.left == 0 {
                let want = match self.demand.load(Ordering::SeqCst) {
                    UNKNOWN => self.block,
                    0 => (self.block / 4).max(1),
                    d => self.block.min(u32::try_from(d).unwrap_or(u32::MAX)),
                };
                *b = self.lease(want).await?;
            }
            let _ = self
                .demand
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| {
                    (d != UNKNOWN).then(|| d.saturating_sub(1))
                });
            let at = b.next_us;
            b.next_us += self.interval_us;
            b.left -= 1;
            at
        };
        self.counters.permits.fetch_add(1, Ordering::Relaxed);
        let wait = at - (self.clock)();
        if wait > 0 {
            tokio::time::sleep(Duration::from_micros(wait.unsigned_abs())).await;
        }
        Ok(at)
    }

    fn writer_id(&self) -> u64 {
        self.writers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_u64()
    }

    fn drop_block(&self, b: &mut Block) {
        self.counters
            .dropped
            .fetch_add(u64::from(b.left), Ordering::Relaxed);
        b.left = 0;
    }

    async fn read(&self) -> Result<Option<QuotaState>, StoreError> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        self.store.read_quota(&self.name).await
    }

    async fn swap(&self, prev: Option<&QuotaState>, next: &QuotaState) -> Result<bool, StoreError> {
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        let done = self.store.swap_quota(&self.name, prev, next).await?;
        if !done {
            self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
        }
        Ok(done)
    }

    async fn lease(&self, n: u32) -> Result<Block, StoreError> {
        loop {
            let cur = self.read().await?;
            let now = (self.clock)();
            match decide(cur.as_ref(), now, n, self.interval_us, self.burst) {
                Decision::WaitUntil(t) => {
                    tokio::time::sleep(Duration::from_micros((t - now).unsigned_abs())).await;
                }
                Decision::Take { start, mut next } => {
                    next.writer = self.writer_id();
                    if self.swap(cur.as_ref(), &next).await? {
                        self.counters.blocks.fetch_add(1, Ordering::Relaxed);
                        return Ok(Block {
                            next_us: start,
                            left: n,
                        });
                    }
                    // Another consumer leased at the same instant: step aside for a
                    // moment, so the two do not collide again.
                    let pause = (now.unsigned_abs() % 7 + 1) * 1_000;
                    tokio::time::sleep(Duration::from_micros(pause)).await;
                }
            }
        }
    }

    /// No permit for anyone before `until`.
    async fn write_pause(&self, until: i64) -> Result<(), StoreError> {
        loop {
            let cur = self.read().await?;
            let c = cur.unwrap_or_default();
            if c.paused_until_us >= until {
                return Ok(());
            }
            let next = QuotaState {
                tat_us: c.tat_us.max(until),
                paused_until_us: until,
                version: c.version + 1,
                writer: self.writer_id(),
            };
            if self.swap(cur.as_ref(), &next).await? {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::sync::Mutex;

    #[test]
    fn blocks_follow_each_other_and_a_pause_moves_the_start() {
        let interval = 10_000;
        let Decision::Take { start, next } = decide(None, 1_000_000, 15, interval, 1) else {
            panic!("a fresh bucket leases at once");
        };
        assert_eq!(start, 1_000_000);
        assert_eq!(next.tat_us, 1_150_000);
        assert_eq!(next.version, 1);
        // A second consumer a moment later gets the next block, not the same one.
        let Decision::Take { start, .. } = decide(Some(&next), 1_000_500, 15, interval, 1) else {
            panic!()
        };
        assert_eq!(start, 1_150_000);
        // A pause holds everyone.
        let paused = QuotaState {
            paused_until_us: 3_000_000,
            ..next
        };
        let Decision::Take { start, .. } = decide(Some(&paused), 2_000_000, 15, interval, 1) else {
            panic!()
        };
        assert_eq!(start, 3_000_000);
        // Booked too far ahead: wait instead of writing.
        let far = QuotaState {
            tat_us: 10_000_000,
            ..next
        };
        assert_eq!(
            decide(Some(&far), 1_000_000, 15, interval, 1),
            Decision::WaitUntil(10_000_000 - 2_000_000)
        );
        // After a quiet spell, a burst may start in the past (GCRA's tolerance).
        let Decision::Take { start, .. } = decide(Some(&next), 5_000_000, 15, interval, 5) else {
            panic!()
        };
        assert_eq!(start, 5_000_000 - 4 * interval);
    }

    /// The bucket in memory, with a compare-and-swap like the adapters'.
    #[derive(Default)]
    struct Mem(Mutex<Option<QuotaState>>);

    #[async_trait]
    impl QuotaStore for Mem {
        async fn read_quota(&self, _: &str) -> Result<Option<QuotaState>, StoreError> {
            tokio::task::yield_now().await;
            Ok(*self.0.lock().unwrap_or_else(|e| e.into_inner()))
        }
        async fn swap_quota(
            &self,
            _: &str,
            prev: Option<&QuotaState>,
            next: &QuotaState,
        ) -> Result<bool, StoreError> {
            tokio::task::yield_now().await;
            let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if s.as_ref() != prev {
                return Ok(false);
            }
            *s = Some(*next);
            Ok(true)
        }
    }

    fn tokio_clock() -> MicrosClock {
        let base = tokio::time::Instant::now();
        Arc::new(move || 1_000_000_000 + base.elapsed().as_micros() as i64)
    }

    #[tokio::test(start_paused = true)]
    async fn eight_consumers_together_keep_to_the_quota_at_a_write_per_block() {
        let store: Arc<dyn QuotaStore> = Arc::new(Mem::default());
        let clock = tokio_clock();
        let consumers: Vec<Arc<SharedQuota>> = (0..8)
            .map(|_| {
                Arc::new(SharedQuota::with_clock(
                    store.clone(),
                    "t",
                    100.0,
                    1,
                    clock.clone(),
                ))
            })
            .collect();
        let start = tokio::time::Instant::now();
        let times = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for q in &consumers {
            for _ in 0..3 {
                let (q, times) = (q.clone(), times.clone());
                tasks.push(tokio::spawn(async move {
                    while start.elapsed() < Duration::from_secs(20) {
                        q.wait_turn().await.expect("memory store");
                        times
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(start.elapsed());
                    }
                }));
            }
        }
        for t in tasks {
            t.await.expect("task");
        }
        let times = times.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // Never more than the quota in any second (+1 for the boundary).
        for s in 0..19 {
            let n = times
                .iter()
                .filter(|t| (s as f64..s as f64 + 1.0).contains(&t.as_secs_f64()))
                .count();
            assert!(n <= 101, "second {s}: {n} permits");
            assert!(n >= 95, "second {s}: only {n} permits of 100");
        }
        let (mut writes, mut permits) = (0, 0);
        for q in &consumers {
            let s = q.stats();
            writes += s.writes;
            permits += s.permits;
        }
        let wpp = writes as f64 / permits as f64;
        assert!(wpp <= 0.15, "{writes} writes for {permits} permits");
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_heard_by_one_consumer_pauses_the_others() {
        let store: Arc<dyn QuotaStore> = Arc::new(Mem::default());
        let clock = tokio_clock();
        let a = SharedQuota::with_clock(store.clone(), "t", 100.0, 1, clock.clone());
        let b = SharedQuota::with_clock(store.clone(), "t", 100.0, 1, clock.clone());
        a.wait_turn().await.expect("memory");
        b.wait_turn().await.expect("memory");
        a.pause(Duration::from_secs(3));
        // a writes the pause at its next turn; b, meanwhile, spends the rest of its
        // block, then its next lease meets the pause.
        let start = tokio::time::Instant::now();
        let b_turns = async {
            for _ in 0..b.block_size() {
                b.wait_turn().await.expect("memory");
            }
            start.elapsed()
        };
        let (a_done, b_waited) = tokio::join!(a.wait_turn(), b_turns);
        a_done.expect("memory");
        assert!(
            b_waited >= Duration::from_millis(2900),
            "b waited out a's Retry-After: {b_waited:?}"
        );
    }
}
