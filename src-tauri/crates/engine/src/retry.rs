//! Retry decisions as data: what kind of failure happened, and what to do next.
//! (In the spirit of Vector's `RetryLogic`: classify once, decide in one place.)

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
}
