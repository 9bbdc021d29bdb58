//! Retry decisions as data, and the one driver that acts on them. Every retry in
//! Metasync (target calls, storage calls, partial batch writes and sends) goes through
//! [`drive`]: a call site says what an attempt's result means ([`RetryAction`], after
//! Vector's `RetryLogic`), the [`RetryPolicy`] says whether and when to try again.

use std::future::Future;
use std::time::Duration;

/// What a failed call means for retrying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Timeouts, resets, 408, 429, 5xx: the same call may succeed later.
    Transient,
    /// Any other 4xx: the target refuses this record as it is; retrying cannot help.
    Permanent,
    /// 401: credentials or token; refresh once, then stop.
    Auth,
}

/// How an HTTP status classifies (DESIGN.md §3: 4xx other than 401/408/429 are permanent).
pub fn classify_status(status: u16) -> Option<ErrorClass> {
    match status {
        200..=399 => None,
        401 => Some(ErrorClass::Auth),
        408 | 429 => Some(ErrorClass::Transient),
        500..=599 => Some(ErrorClass::Transient),
        _ => Some(ErrorClass::Permanent),
    }
}

/// Exponential backoff with full jitter, bounded by a number of retries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub base_delay: Duration,
    /// No single wait is longer than this (a Retry-After may still ask for more).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{name} is {value:?}: {expected}")]
pub struct EnvError {
    pub name: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    RetryAfter(Duration),
    GiveUp,
}

impl RetryPolicy {
    /// `MAX_RETRIES` and `BASE_DELAY_SECONDS` from the environment (defaults 3 and 2).
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), reading variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let mut policy = Self::default();
        if let Some(v) = var("MAX_RETRIES") {
            policy.max_retries = v.trim().parse().map_err(|_| EnvError {
                name: "MAX_RETRIES",
                value: v.clone(),
                expected: "a whole number of retries, e.g. 3",
            })?;
        }
        if let Some(v) = var("BASE_DELAY_SECONDS") {
            let secs: f64 = v.trim().parse().unwrap_or(f64::NAN);
            if !(secs.is_finite() && (0.0..=3600.0).contains(&secs)) {
                return Err(EnvError {
                    name: "BASE_DELAY_SECONDS",
                    value: v,
                    expected: "seconds between 0 and 3600, e.g. 2 or 0.5",
                });
            }
            policy.base_delay = Duration::from_secs_f64(secs);
        }
        Ok(policy)
    }

    /// The wait before retry number `retry` (0 for the first retry): a uniformly random
    /// share (`jitter` in 0..1) of `base × 2^retry`, capped at `max_delay`.
    pub fn backoff(&self, retry: u32, jitter: f64) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(30)))
            .min(self.max_delay);
        ceiling.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// After `attempts` attempts (≥ 1) the last of which failed with `class`: retry, and
    /// when, or give up. A server's Retry-After is a floor on the wait.
    pub fn decide(
        &self,
        attempts: u32,
        class: ErrorClass,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Decision {
        match class {
            ErrorClass::Permanent | ErrorClass::Auth => Decision::GiveUp,
            ErrorClass::Transient if attempts > self.max_retries => Decision::GiveUp,
            ErrorClass::Transient => {
                let wait = self.backoff(attempts.saturating_sub(1), jitter);
                Decision::RetryAfter(retry_after.map_or(wait, |floor| wait.max(floor)))
            }
        }
    }
}

/// What one attempt's result means for retrying it (Vector's `RetryAction`).
#[derive(Debug, Clone, PartialEq)]
pub enum RetryAction<R> {
    /// Done: keep the result.
    Successful,
    /// The attempt failed as a whole; the policy decides by `class` (only transient
    /// failures are tried again) and waits at least `retry_after`.
    Retry {
        class: ErrorClass,
        retry_after: Option<Duration>,
    },
    /// Part of the request was done: send only `R`, the rest. Progress restarts the
    /// budget (under load DynamoDB and SQS do some of every batch and return the rest).
    RetryPartial(R),
    /// Retrying cannot help: keep the result.
    DontRetry,
}

impl<R> RetryAction<R> {
    /// A failed attempt, judged by its error class alone.
    pub fn failed(class: ErrorClass) -> Self {
        Self::Retry {
            class,
            retry_after: None,
        }
    }
}

/// The judgement of a batch call that answers with what it left undone (DynamoDB's
/// unprocessed items and keys): nothing left is success, less than was sent is
/// progress (send the rest), all of it a transient failure; an error is judged by its
/// class.
pub fn judge_rest<T: Clone, E>(
    sent: &[T],
    result: &Result<Vec<T>, E>,
    class: impl Fn(&E) -> ErrorClass,
) -> RetryAction<Vec<T>> {
    match result {
        Ok(rest) if rest.is_empty() => RetryAction::Successful,
        Ok(rest) if rest.len() < sent.len() => RetryAction::RetryPartial(rest.clone()),
        Ok(_) => RetryAction::failed(ErrorClass::Transient),
        Err(e) => RetryAction::failed(class(e)),
    }
}

/// How a driven call ended: the last attempt's result and how many attempts were made.
#[derive(Debug, PartialEq)]
pub struct Retried<T> {
    pub result: T,
    pub attempts: u32,
}

/// The retry driver. Sends `request` through `attempt`, asks `judge` what the result
/// means, and retries by `policy` with jittered backoff (`jitter` yields numbers in
/// 0..1; a seeded source in tests) until it succeeds, is refused, or the budget is
/// spent. The result is the last attempt's, whatever it was; `attempts` counts calls.
pub async fn drive<R, T, Fut>(
    policy: &RetryPolicy,
    jitter: &mut impl FnMut() -> f64,
    mut request: R,
    mut attempt: impl FnMut(R) -> Fut,
    judge: impl Fn(&R, &T) -> RetryAction<R>,
) -> Retried<T>
where
    R: Clone,
    Fut: Future<Output = T>,
{
    let mut attempts = 0;
    // Attempts since the last progress: what the policy's budget counts.
    let mut spent = 0;
    loop {
        attempts += 1;
        spent += 1;
        let result = attempt(request.clone()).await;
        let (class, retry_after) = match judge(&request, &result) {
            RetryAction::Successful | RetryAction::DontRetry => {
                return Retried { result, attempts }
            }
            RetryAction::Retry { class, retry_after } => (class, retry_after),
            RetryAction::RetryPartial(rest) => {
                request = rest;
                spent = 1;
                (ErrorClass::Transient, None)
            }
        };
        match policy.decide(spent, class, retry_after, jitter()) {
            Decision::RetryAfter(wait) => tokio::time::sleep(wait).await,
            Decision::GiveUp => return Retried { result, attempts },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_classify_as_the_design_says() {
        assert_eq!(classify_status(200), None);
        assert_eq!(classify_status(201), None);
        assert_eq!(classify_status(401), Some(ErrorClass::Auth));
        assert_eq!(classify_status(408), Some(ErrorClass::Transient));
        assert_eq!(classify_status(429), Some(ErrorClass::Transient));
        assert_eq!(classify_status(503), Some(ErrorClass::Transient));
        assert_eq!(classify_status(400), Some(ErrorClass::Permanent));
        assert_eq!(classify_status(403), Some(ErrorClass::Permanent));
        assert_eq!(classify_status(404), Some(ErrorClass::Permanent));
        assert_eq!(classify_status(409), Some(ErrorClass::Permanent));
    }

    #[test]
    fn full_jitter_stays_under_a_doubling_capped_ceiling() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0, 1.0), Duration::from_secs(2));
        assert_eq!(p.backoff(1, 1.0), Duration::from_secs(4));
        assert_eq!(p.backoff(2, 0.5), Duration::from_secs(4));
        assert_eq!(p.backoff(0, 0.0), Duration::ZERO);
        assert_eq!(p.backoff(10, 1.0), Duration::from_secs(60), "capped");
        assert_eq!(
            p.backoff(u32::MAX, 1.0),
            Duration::from_secs(60),
            "no overflow"
        );
    }

    #[test]
    fn transient_failures_retry_until_the_budget_is_spent() {
        let p = RetryPolicy::default();
        let t = ErrorClass::Transient;
        assert_eq!(
            p.decide(1, t, None, 1.0),
            Decision::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            p.decide(3, t, None, 1.0),
            Decision::RetryAfter(Duration::from_secs(8))
        );
        assert_eq!(
            p.decide(4, t, None, 1.0),
            Decision::GiveUp,
            "1 attempt + 3 retries"
        );
        assert_eq!(
            p.decide(1, ErrorClass::Permanent, None, 1.0),
            Decision::GiveUp
        );
        assert_eq!(p.decide(1, ErrorClass::Auth, None, 1.0), Decision::GiveUp);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = RetryPolicy::default();
        let t = ErrorClass::Transient;
        let ra = Some(Duration::from_secs(30));
        assert_eq!(
            p.decide(1, t, ra, 0.1),
            Decision::RetryAfter(Duration::from_secs(30))
        );
        let short = Some(Duration::from_millis(100));
        assert_eq!(
            p.decide(1, t, short, 1.0),
            Decision::RetryAfter(Duration::from_secs(2))
        );
    }

    #[test]
    fn environment_overrides_and_names_a_bad_variable() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(RetryPolicy::from_vars(env(&[])), Ok(RetryPolicy::default()));
        let p = RetryPolicy::from_vars(env(&[("MAX_RETRIES", "5"), ("BASE_DELAY_SECONDS", "0.5")]));
        assert_eq!(
            p.map(|p| (p.max_retries, p.base_delay)),
            Ok((5, Duration::from_millis(500)))
        );
        let e = RetryPolicy::from_vars(env(&[("MAX_RETRIES", "three")]));
        assert!(e.is_err_and(|e| e.name == "MAX_RETRIES" && e.to_string().contains("three")));
        let e = RetryPolicy::from_vars(env(&[("BASE_DELAY_SECONDS", "-1")]));
        assert!(e.is_err_and(|e| e.name == "BASE_DELAY_SECONDS"));
    }

    /// A batch call that does `take` items of whatever it is sent, scripted per attempt.
    async fn partial_batches(script: Vec<usize>, max_retries: u32) -> (Retried<Vec<u32>>, f64) {
        let policy = RetryPolicy {
            max_retries,
            ..RetryPolicy::default()
        };
        let script = std::cell::RefCell::new(script.into_iter());
        let start = tokio::time::Instant::now();
        let r = drive(
            &policy,
            &mut || 1.0,
            vec![1u32, 2, 3, 4, 5],
            |pending: Vec<u32>| {
                let take = script.borrow_mut().next().unwrap_or(0);
                async move { pending.into_iter().skip(take).collect::<Vec<u32>>() }
            },
            |sent, rest| match rest.len() {
                0 => RetryAction::Successful,
                n if n < sent.len() => RetryAction::RetryPartial(rest.clone()),
                _ => RetryAction::Retry {
                    class: ErrorClass::Transient,
                    retry_after: None,
                },
            },
        )
        .await;
        (r, start.elapsed().as_secs_f64())
    }

    #[tokio::test(start_paused = true)]
    async fn partial_results_send_only_the_rest_and_progress_restarts_the_budget() {
        // Two items, nothing, one, nothing, two: five attempts although two retries are
        // allowed, because each step forward restarts the budget.
        let (r, t) = partial_batches(vec![2, 0, 1, 0, 2], 2).await;
        assert_eq!(
            r,
            Retried {
                result: vec![],
                attempts: 5
            }
        );
        // Waits: 2 (after progress), 4 (no progress), 2, 4 s.
        assert!((12.0..12.1).contains(&t), "took {t}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_without_progress_gives_up_with_what_is_left() {
        let (r, _) = partial_batches(vec![1, 0, 0, 0], 2).await;
        assert_eq!(r.result, vec![2, 3, 4, 5], "the first item was done");
        assert_eq!(
            r.attempts, 3,
            "one with progress, then two retries of the rest"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dont_retry_and_permanent_classes_stop_at_once() {
        let policy = RetryPolicy::default();
        for action in [
            RetryAction::DontRetry,
            RetryAction::Retry {
                class: ErrorClass::Permanent,
                retry_after: None,
            },
            RetryAction::Retry {
                class: ErrorClass::Auth,
                retry_after: None,
            },
        ] {
            let r = drive(
                &policy,
                &mut || 1.0,
                (),
                |()| async { 7 },
                |_, _| action.clone(),
            )
            .await;
            assert_eq!(r.attempts, 1, "{action:?}");
        }
    }
}
