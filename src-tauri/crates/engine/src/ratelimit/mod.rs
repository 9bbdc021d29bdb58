//! One rate limiter per target: GCRA (a leaky bucket kept as one timestamp) that
//! adapts. With a known quota it runs at the quota and backs off on 429; with none it
//! probes upward until the target pushes back (additive increase, multiplicative
//! decrease). Retry-After and rate-limit headers pause it outright.
//!
//! Time is tokio's, so tests run on paused time. With a [`SharedQuota`], every consumer
//! of the target (other processes, other hosts) also draws from one bucket in the
//! state store, so together they keep to the quota.

mod shared;

pub use shared::{
    decide, wall_clock, Decision, MicrosClock, QuotaStats, SharedQuota, LEASE_SECONDS, MAX_AHEAD,
    MIN_LATE_SLOTS,
};

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimiterConfig {
    /// The target's quota in requests per second, when known.
    pub quota: Option<f64>,
    /// Requests that may go at once after a quiet spell.
    pub burst: u32,
    /// Where an unknown quota starts.
    pub initial_rate: f64,
    pub min_rate: f64,
    /// With no quota: the most the rate may grow to.
    pub max_rate: f64,
    /// Growth while requests succeed, in requests/second per second.
    pub increase_per_sec: f64,
    /// Share of the rate kept after a 429.
    pub decrease_factor: f64,
    /// Calls in flight at once.
    pub max_in_flight: usize,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        Self {
            quota: None,
            burst: 1,
            initial_rate: 5.0,
            min_rate: 0.2,
            max_rate: 1000.0,
            increase_per_sec: 2.0,
            decrease_factor: 0.7,
            max_in_flight: 8,
        }
    }
}

impl LimiterConfig {
    pub fn with_quota(quota: f64, burst: u32) -> Self {
        Self {
            quota: Some(quota),
            burst,
            ..Self::default()
        }
    }
}

/// What a response said about the target's budget.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateHeaders {
    pub remaining: Option<u64>,
    /// Until the budget resets.
    pub reset: Option<Duration>,
}

#[derive(Debug)]
struct State {
    rate: f64,
    /// Theoretical arrival time of the next request.
    tat: Instant,
    last_decrease: Option<Instant>,
    last_increase: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    cfg: LimiterConfig,
    state: Mutex<State>,
    in_flight: tokio::sync::Semaphore,
    shared: Option<Arc<SharedQuota>>,
}

/// A call's place among those in flight; dropping it frees the place.
#[derive(Debug)]
pub struct Permit<'a>(#[allow(dead_code)] Option<tokio::sync::SemaphorePermit<'a>>);

/// Rate changes at most this often on 429s: the answers to requests already in flight
/// all say the same thing.
const DECREASE_WINDOW: Duration = Duration::from_secs(1);

impl RateLimiter {
    pub fn new(cfg: LimiterConfig) -> Self {
        let now = Instant::now();
        let rate = cfg.quota.unwrap_or(cfg.initial_rate).max(cfg.min_rate);
        Self {
            in_flight: tokio::sync::Semaphore::new(cfg.max_in_flight.max(1)),
            cfg,
            state: Mutex::new(State {
                rate,
                tat: now,
                last_decrease: None,
                last_increase: now,
            }),
            shared: None,
        }
    }

    /// A limiter that also keeps to a quota shared with other consumers.
    pub fn with_shared(cfg: LimiterConfig, shared: Arc<SharedQuota>) -> Self {
        Self {
            shared: Some(shared),
            ..Self::new(cfg)
        }
    }

    /// The caller is about to make about `calls` calls: a shared quota leases no more
    /// than that (see [`SharedQuota::expect`]).
    pub fn expect_calls(&self, calls: u64) {
        if let Some(s) = &self.shared {
            s.expect(calls);
        }
    }

    /// The shared quota's figures, when there is one.
    pub fn shared_stats(&self) -> Option<QuotaStats> {
        self.shared.as_ref().map(|s| s.stats())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain numbers behind: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests per second the limiter lets through now.
    pub fn rate(&self) -> f64 {
        self.lock().rate
    }

    fn ceiling(&self) -> f64 {
        self.cfg.quota.unwrap_or(self.cfg.max_rate)
    }

    /// Reserve the next slot; returns when it may be used.
    pub fn reserve(&self) -> Instant {
        let now = Instant::now();
        let mut s = self.lock();
        let interval = Duration::from_secs_f64(1.0 / s.rate);
        let tolerance = interval * self.cfg.burst.saturating_sub(1);
        let tat = s.tat.max(now);
        let at = tat.checked_sub(tolerance).map_or(now, |t| t.max(now));
        s.tat = tat + interval;
        at
    }

    /// Wait for a place among the calls in flight, then for a slot in the rate.
    /// Hold the permit for the duration of the call.
    pub async fn acquire(&self) -> Permit<'_> {
        // The semaphore is never closed, so this only fails if it were.
        let permit = self.in_flight.acquire().await.ok();
        let at = self.reserve();
        tokio::time::sleep_until(at).await;
        if let Some(shared) = &self.shared {
            if let Err(e) = shared.wait_turn().await {
                // Paced here alone until the store answers again: a 429 then slows
                // this consumer down, as it would without the shared quota.
                tracing::warn!(stage = "limiter", error = %e, "the shared quota could not be read; pacing this consumer alone");
            }
        }
        Permit(permit)
    }

    /// A request went through: an unknown or reduced rate grows back.
    pub fn on_success(&self) {
        let now = Instant::now();
        let ceiling = self.ceiling();
        let mut s = self.lock();
        let elapsed = now.duration_since(s.last_increase).as_secs_f64();
        s.last_increase = now;
        s.rate = (s.rate + self.cfg.increase_per_sec * elapsed).min(ceiling);
    }

    /// The target answered 429: slow down, and wait out its Retry-After.
    pub fn on_throttled(&self, retry_after: Option<Duration>) {
        let now = Instant::now();
        let mut s = self.lock();
        if s.last_decrease
            .is_none_or(|t| now.duration_since(t) >= DECREASE_WINDOW)
        {
            s.rate = (s.rate * self.cfg.decrease_factor).max(self.cfg.min_rate);
            s.last_decrease = Some(now);
            s.last_increase = now;
        }
        if let Some(wait) = retry_after {
            self.pause(&mut s, now + wait);
            if let Some(shared) = &self.shared {
                shared.pause(wait);
            }
        }
    }

    /// Follow rate-limit headers: an exhausted budget pauses until it resets, and the
    /// rate never exceeds what the rest of the budget allows.
    pub fn on_headers(&self, h: RateHeaders) {
        let now = Instant::now();
        let (Some(remaining), Some(reset)) = (h.remaining, h.reset) else {
            return;
        };
        let mut s = self.lock();
        if remaining == 0 {
            self.pause(&mut s, now + reset);
            if let Some(shared) = &self.shared {
                shared.pause(reset);
            }
        } else if !reset.is_zero() {
            let sustainable = remaining as f64 / reset.as_secs_f64();
            s.rate = s.rate.min(sustainable.max(self.cfg.min_rate));
        }
    }

    /// No slot before `until`, and no burst right after it.
    fn pause(&self, s: &mut State, until: Instant) {
        let interval = Duration::from_secs_f64(1.0 / s.rate);
        let tolerance = interval * self.cfg.burst.saturating_sub(1);
        s.tat = s.tat.max(until + tolerance);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Virtual seconds `n` acquisitions take.
    async fn time_for(l: &RateLimiter, n: usize) -> f64 {
        let start = Instant::now();
        for _ in 0..n {
            l.acquire().await;
        }
        start.elapsed().as_secs_f64()
    }

    #[tokio::test(start_paused = true)]
    async fn a_known_quota_spaces_requests_evenly() {
        let l = RateLimiter::new(LimiterConfig::with_quota(10.0, 1));
        let t = time_for(&l, 21).await;
        assert!(
            (t - 2.0).abs() < 0.01,
            "21 requests at 10/s take 2 s, took {t}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn burst_lets_the_first_few_go_at_once() {
        let l = RateLimiter::new(LimiterConfig::with_quota(10.0, 5));
        assert!(time_for(&l, 5).await < 0.001);
        let t = time_for(&l, 10).await;
        assert!((t - 1.0).abs() < 0.01, "then one every 100 ms, took {t}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_slows_down_once_per_window_and_waits_out_retry_after() {
        let l = RateLimiter::new(LimiterConfig::with_quota(100.0, 1));
        l.acquire().await;
        for _ in 0..10 {
            l.on_throttled(Some(Duration::from_secs(3)));
        }
        assert!(
            (l.rate() - 70.0).abs() < 1e-9,
            "one decrease, not ten: {}",
            l.rate()
        );
        let t = time_for(&l, 1).await;
        assert!((3.0..3.1).contains(&t), "waited {t}");
        tokio::time::advance(Duration::from_secs(2)).await;
        l.on_throttled(None);
        assert!((l.rate() - 49.0).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reduced_rate_grows_back_to_the_quota_and_no_further() {
        let l = RateLimiter::new(LimiterConfig::with_quota(20.0, 1));
        l.on_throttled(None);
        assert!((l.rate() - 14.0).abs() < 1e-9);
        for _ in 0..200 {
            l.acquire().await;
            l.on_success();
        }
        assert!(
            (l.rate() - 20.0).abs() < 1e-9,
            "back at the quota: {}",
            l.rate()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn exhausted_budget_headers_pause_until_reset() {
        let l = RateLimiter::new(LimiterConfig::with_quota(50.0, 1));
        l.acquire().await;
        l.on_headers(RateHeaders {
            remaining: Some(0),
            reset: Some(Duration::from_secs(4)),
        });
        let t = time_for(&l, 1).await;
        assert!((4.0..4.1).contains(&t), "waited {t}");
        l.on_headers(RateHeaders {
            remaining: Some(10),
            reset: Some(Duration::from_secs(2)),
        });
        assert!((l.rate() - 5.0).abs() < 1e-9, "10 left for 2 s: 5/s");
    }

    #[tokio::test(start_paused = true)]
    async fn calls_in_flight_are_bounded() {
        let l = RateLimiter::new(LimiterConfig {
            max_in_flight: 2,
            ..LimiterConfig::with_quota(1000.0, 10)
        });
        let (a, b) = (l.acquire().await, l.acquire().await);
        let third = tokio::time::timeout(Duration::from_secs(5), l.acquire()).await;
        assert!(third.is_err(), "a third call waits while two are in flight");
        drop(a);
        let third = tokio::time::timeout(Duration::from_secs(5), l.acquire()).await;
        assert!(third.is_ok(), "and goes when one finishes");
        drop(b);
    }

    /// A server with a quota the client does not know: a token bucket of `quota`/s.
    struct Server {
        quota: f64,
        tokens: f64,
        last: Instant,
    }

    impl Server {
        fn handle(&mut self) -> bool {
            let now = Instant::now();
            let dt = now.duration_since(self.last).as_secs_f64();
            self.last = now;
            self.tokens = (self.tokens + dt * self.quota).min(self.quota.max(1.0));
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                true
            } else {
                false
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_quota_is_found_and_kept_with_few_429s() {
        let l = RateLimiter::new(LimiterConfig::default());
        let mut server = Server {
            quota: 50.0,
            tokens: 50.0,
            last: Instant::now(),
        };
        let start = Instant::now();
        let (mut late, mut late_throttled, mut late_ok) = (0u32, 0u32, 0u32);
        while start.elapsed() < Duration::from_secs(60) {
            l.acquire().await;
            let ok = server.handle();
            if ok {
                l.on_success();
            } else {
                l.on_throttled(Some(Duration::from_millis(200)));
            }
            if start.elapsed() >= Duration::from_secs(10) {
                late += 1;
                late_throttled += u32::from(!ok);
                late_ok += u32::from(ok);
            }
        }
        let share = f64::from(late_throttled) / f64::from(late);
        let rate = f64::from(late_ok) / 50.0;
        assert!(share <= 0.05, "429s after 10 s: {:.1}%", share * 100.0);
        assert!(
            rate >= 0.85 * 50.0,
            "uses most of the quota: {rate:.1}/s of 50"
        );
    }
}
