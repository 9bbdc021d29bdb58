//! Acceptance benchmark of the target side (issue 4), against the sandbox in-process
//! over loopback HTTP. Run: `make bench-target` (release build; about two minutes).
//!
//! 1. Known quota 100/s, 5,000 creates: achieved rate ≥ 95% of the quota, 429s ≤ 1%.
//! 2. Faults (5% 503, 1% resets, 1% hangs): every create ends with an outcome — ok, or
//!    a reported failure (refused, or out of retries: those go to triage) — none is
//!    lost or doubled, and attempts per create are ≤ 1.1 on average.
//! 3. Quota unknown to the client, sandbox at 50/s: 429s ≤ 5% after the first 10 s.

use metasync_catalog_client::{MediaManager, MediaManagerConfig, Secret};
use metasync_engine::gen::Rng;
use metasync_engine::ratelimit::{LimiterConfig, RateLimiter};
use metasync_engine::retry::RetryPolicy;
use metasync_engine::target::{call_with_retries, Attributes, CallError, Identity, Target};
use metasync_engine::EntityType;
use metasync_sandbox::{Config, Credentials, Sandbox};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    permanent: AtomicU64,
    /// Out of retries: reported as failed (the pipeline sends these to triage).
    gave_up: AtomicU64,
    attempts: AtomicU64,
}

fn client(sandbox: &Sandbox, timeout: Duration, limiter: &Arc<RateLimiter>) -> Arc<MediaManager> {
    let cfg = MediaManagerConfig {
        base_url: format!("{}/api/v1", sandbox.url()),
        key: Credentials::default().key,
        secret: Secret::new(Credentials::default().secret),
        timeout,
    };
    match MediaManager::new(cfg, Some(limiter.clone())) {
        Ok(c) => Arc::new(c),
        Err(e) => panic!("{e}"),
    }
}

/// One create through the limiter with retries; a retry looks the slug up first.
async fn create(
    t: Arc<MediaManager>,
    limiter: Arc<RateLimiter>,
    policy: RetryPolicy,
    i: u64,
    tally: Arc<Tally>,
) {
    let slug = format!("bench-show-{i}");
    let attrs: Attributes = match json!({"slug": slug, "title": format!("Bench show {i}")}) {
        serde_json::Value::Object(m) => m,
        _ => Attributes::new(),
    };
    let mut rng = Rng::new(i);
    let mut jitter = move || rng.unit();
    let mut first = true;
    let called = call_with_retries(&policy, &limiter, &mut jitter, || {
        let retry = !std::mem::replace(&mut first, false);
        let (t, attrs, slug) = (t.clone(), attrs.clone(), slug.clone());
        async move {
            if retry {
                if let Some(id) = t
                    .find(EntityType::Show, None, &Identity::Slug(slug.to_string()))
                    .await?
                {
                    return Ok(id);
                }
            }
            t.create(EntityType::Show, None, &attrs).await
        }
    })
    .await;
    tally
        .attempts
        .fetch_add(u64::from(called.attempts), Ordering::Relaxed);
    let counter = match called.result {
        Ok(_) => &tally.ok,
        Err(CallError::Permanent { .. } | CallError::NotFound) => &tally.permanent,
        Err(_) => &tally.gave_up,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

async fn run(
    sandbox: &Sandbox,
    limiter: Arc<RateLimiter>,
    policy: RetryPolicy,
    timeout: Duration,
    creates: u64,
    concurrency: usize,
) -> (Arc<Tally>, Duration) {
    let t = client(sandbox, timeout, &limiter);
    let tally = Arc::new(Tally::default());
    let gate = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..creates {
        let Ok(permit) = gate.clone().acquire_owned().await else {
            break;
        };
        let (t, limiter, tally) = (t.clone(), limiter.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            create(t, limiter, policy, i, tally).await;
            drop(permit);
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    (tally, start.elapsed())
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

async fn known_quota() -> bool {
    let sandbox = Sandbox::start(
        Config {
            quota: Some(100.0),
            burst: 10,
            latency: Duration::from_millis(5),
            access: metasync_sandbox::Access::Full,
            ..Config::default()
        },
        0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let limiter = Arc::new(RateLimiter::new(LimiterConfig {
        max_in_flight: 16,
        ..LimiterConfig::with_quota(100.0, 1)
    }));
    let (tally, elapsed) = run(
        &sandbox,
        limiter,
        RetryPolicy::default(),
        Duration::from_secs(10),
        5000,
        16,
    )
    .await;
    let stats = sandbox.stats();
    let ok = tally.ok.load(Ordering::Relaxed);
    let rate = ok as f64 / elapsed.as_secs_f64();
    let throttled = pct(stats.throttled, stats.requests);
    println!(
        "1. known quota 100/s: {ok} creates in {:.1} s = {rate:.1}/s ({:.1}% of quota); {} requests, {} answered 429 ({throttled:.2}%); duplicates {}",
        elapsed.as_secs_f64(),
        rate,
        stats.requests,
        stats.throttled,
        stats.duplicates
    );
    sandbox.stop().await;
    ok == 5000 && rate >= 95.0 && throttled <= 1.0 && stats.duplicates == 0
}

async fn faults() -> bool {
    let cfg = Config {
        quota: Some(200.0),
        burst: 20,
        latency: Duration::from_millis(5),
        fail_rate: 0.05,
        reset_rate: 0.01,
        timeout_rate: 0.01,
        hang: Duration::from_secs(3),
        seed: 42,
        access: metasync_sandbox::Access::Full,
        ..Config::default()
    };
    let sandbox = Sandbox::start(cfg, 0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let limiter = Arc::new(RateLimiter::new(LimiterConfig {
        max_in_flight: 64,
        ..LimiterConfig::with_quota(200.0, 1)
    }));
    let policy = RetryPolicy::from_env().unwrap_or_else(|e| panic!("{e}"));
    let n = 3000;
    let (tally, elapsed) = run(&sandbox, limiter, policy, Duration::from_secs(1), n, 64).await;
    let stats = sandbox.stats();
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let (ok, permanent, gave_up) = (
        load(&tally.ok),
        load(&tally.permanent),
        load(&tally.gave_up),
    );
    let attempts = load(&tally.attempts) as f64 / n as f64;
    let objects = stats.objects.get("show").copied().unwrap_or(0);
    // Lost: a create with no outcome, or an object the client does not know it made
    // (beyond the given-up ones, whose last attempt may have been done late).
    let without_outcome = n - ok - permanent - gave_up;
    let unknown_objects = objects.saturating_sub(ok + gave_up);
    println!(
        "2. faults 5% 503 + 1% reset + 1% hang: {n} creates in {:.1} s: {ok} ok, {permanent} refused, {gave_up} out of retries (reported); {without_outcome} without outcome, {unknown_objects} unknown objects; {} faults injected; {attempts:.3} attempts per create; duplicates {}",
        elapsed.as_secs_f64(),
        stats.faults,
        stats.duplicates
    );
    sandbox.stop().await;
    without_outcome == 0 && unknown_objects == 0 && attempts <= 1.1 && stats.duplicates == 0
}

async fn unknown_quota() -> bool {
    let sandbox = Sandbox::start(
        Config {
            quota: Some(50.0),
            burst: 5,
            latency: Duration::from_millis(5),
            access: metasync_sandbox::Access::Full,
            ..Config::default()
        },
        0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let limiter = Arc::new(RateLimiter::new(LimiterConfig {
        max_in_flight: 8,
        ..LimiterConfig::default()
    }));
    let sampler = {
        let limiter = limiter.clone();
        tokio::spawn(async move {
            let mut rates = Vec::new();
            for _ in 0..8 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                rates.push(limiter.rate());
            }
            rates
        })
    };
    let policy = RetryPolicy {
        max_retries: 10,
        ..RetryPolicy::default()
    };
    let stats_at_10 = {
        let url = sandbox.url();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let body = reqwest_stats(&url).await;
            body
        })
    };
    let (tally, elapsed) = run(&sandbox, limiter, policy, Duration::from_secs(5), 2000, 8).await;
    let early = stats_at_10.await.ok().flatten().unwrap_or_default();
    let stats = sandbox.stats();
    let late_requests = stats.requests.saturating_sub(early.requests);
    let late_throttled = stats.throttled.saturating_sub(early.throttled);
    let share = pct(late_throttled, late_requests);
    let rates: Vec<String> = sampler
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| format!("{r:.0}"))
        .collect();
    let ok = tally.ok.load(Ordering::Relaxed);
    println!(
        "3. unknown quota (sandbox 50/s): {ok} creates in {:.1} s = {:.1}/s; after 10 s: {late_requests} requests, {late_throttled} answered 429 ({share:.2}%); client rate every 5 s: {}",
        elapsed.as_secs_f64(),
        ok as f64 / elapsed.as_secs_f64(),
        rates.join(", ")
    );
    sandbox.stop().await;
    ok == 2000 && share <= 5.0
}

/// The sandbox's counters as a client sees them (GET /_sandbox/stats).
async fn reqwest_stats(url: &str) -> Option<metasync_sandbox::Stats> {
    let body = reqwest::get(format!("{url}/_sandbox/stats"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    serde_json::from_str(&body).ok()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let results = [known_quota().await, faults().await, unknown_quota().await];
    let passed = results.iter().filter(|r| **r).count();
    println!("{passed} passed, {} failed", results.len() - passed);
    if passed != results.len() {
        std::process::exit(1);
    }
}
