//! Calling the target: one call through the limiter with the retry policy. The port
//! itself (the `Target` trait and its types) lives in `ports::target`.

pub use crate::ports::target::{
    Access, Attributes, CallError, Identity, Target, TargetCounters, TargetId,
};

use crate::ratelimit::RateLimiter;
use crate::retry::{drive, RetryAction, RetryPolicy};
use std::future::Future;

/// How a call ended, with the attempts it took.
#[derive(Debug, PartialEq)]
pub struct Called<T> {
    pub result: Result<T, CallError>,
    pub attempts: u32,
}

/// Make one call through the limiter, retrying transient failures by `policy` (the one
/// driver, [`crate::retry::drive`]). `jitter` yields numbers in 0..1 (a seeded source
/// in tests).
pub async fn call_with_retries<T, Fut>(
    policy: &RetryPolicy,
    limiter: &RateLimiter,
    jitter: &mut impl FnMut() -> f64,
    mut call: impl FnMut() -> Fut,
) -> Called<T>
where
    Fut: Future<Output = Result<T, CallError>>,
{
    let r = drive(
        policy,
        jitter,
        (),
        |()| {
            let call = call();
            async move {
                let permit = limiter.acquire().await;
                let outcome = call.await;
                // Free the place before any backoff: waiting is not being in flight.
                drop(permit);
                match &outcome {
                    Ok(_) => limiter.on_success(),
                    Err(CallError::Transient {
                        retry_after,
                        throttled: true,
                        ..
                    }) => limiter.on_throttled(*retry_after),
                    Err(_) => {}
                }
                outcome
            }
        },
        |(), outcome| match outcome {
            Ok(_) => RetryAction::Successful,
            Err(e) => RetryAction::Retry {
                class: e.class(),
                retry_after: match e {
                    CallError::Transient { retry_after, .. } => *retry_after,
                    _ => None,
                },
            },
        },
    )
    .await;
    Called {
        result: r.result,
        attempts: r.attempts,
    }
}

/// The slug the connection check looks up: no show has it, so the answer is "not
/// found" from a target that is there and lets us in.
pub const PROBE_SLUG: &str = "metasync-connection-check";

/// One harmless lookup through the limiter and the retry policy: proves the target is
/// reachable and takes the credentials, before a run lands or sends anything.
pub async fn probe<T: Target>(
    target: &T,
    policy: &RetryPolicy,
    limiter: &RateLimiter,
    jitter: &mut impl FnMut() -> f64,
) -> Called<Option<TargetId>> {
    let identity = Identity::Slug(PROBE_SLUG.into());
    call_with_retries(policy, limiter, jitter, || {
        target.find(crate::EntityType::Show, None, &identity)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::LimiterConfig;
    use std::cell::RefCell;
    use std::time::Duration;
    use tokio::time::Instant;

    fn transient(retry_after: Option<u64>, throttled: bool) -> CallError {
        CallError::Transient {
            reason: "reset".into(),
            retry_after: retry_after.map(Duration::from_secs),
            throttled,
        }
    }

    /// Plays back scripted outcomes: the faults a real server cannot be told to make
    /// at an exact moment.
    async fn run(script: Vec<Result<u32, CallError>>) -> (Called<u32>, f64) {
        let script = RefCell::new(script.into_iter());
        let limiter = RateLimiter::new(LimiterConfig::with_quota(1000.0, 1));
        let start = Instant::now();
        let called = call_with_retries(&RetryPolicy::default(), &limiter, &mut || 1.0, || {
            let next = script.borrow_mut().next();
            async move { next.unwrap_or(Err(CallError::NotFound)) }
        })
        .await;
        (called, start.elapsed().as_secs_f64())
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_with_backoff() {
        let (c, t) = run(vec![
            Err(transient(None, false)),
            Err(transient(None, false)),
            Ok(7),
        ])
        .await;
        assert_eq!(
            c,
            Called {
                result: Ok(7),
                attempts: 3
            }
        );
        assert!((6.0..6.1).contains(&t), "2 s + 4 s of backoff, took {t}");
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_are_not_retried() {
        let refused = CallError::Permanent {
            status: 400,
            message: "title too long".into(),
        };
        let (c, t) = run(vec![Err(refused.clone()), Ok(1)]).await;
        assert_eq!(
            c,
            Called {
                result: Err(refused),
                attempts: 1
            }
        );
        assert!(t < 0.01);
    }

    #[tokio::test(start_paused = true)]
    async fn the_retry_budget_ends_in_the_last_error() {
        let (c, _) = run(vec![Err(transient(None, false)); 10]).await;
        assert_eq!(c.attempts, 4, "one attempt and three retries");
        assert!(matches!(c.result, Err(CallError::Transient { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_honours_retry_after() {
        let (c, t) = run(vec![Err(transient(Some(10), true)), Ok(3)]).await;
        assert_eq!(
            c,
            Called {
                result: Ok(3),
                attempts: 2
            }
        );
        assert!((10.0..10.1).contains(&t), "waited {t}");
    }
}
