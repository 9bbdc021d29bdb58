//! SDK errors to the ports' error kinds: throttling, timeouts and 5xx are transient, a
//! missing resource points at `metasync infra up`, refused credentials stop, a request
//! refused for a skewed clock is retried once the skew is known.
//!
//! The codes follow the AWS SDKs' own retry classifiers (`aws-runtime`'s
//! `THROTTLING_ERRORS`, `TRANSIENT_ERRORS` and clock-skew codes): SDK retries are off
//! here, so the same judgement has to be made in this one place.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use metasync_engine::ports::{ErrorKind, Service, StoreError};

const THROTTLED: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "AWS.SimpleQueueService.RequestThrottled",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "LimitExceededException",
    "BandwidthLimitExceeded",
    "PriorRequestNotComplete",
    "TransactionInProgressException",
];

/// Timeouts the service reports as errors (S3's `RequestTimeout` is an HTTP 400).
const TRANSIENT: &[&str] = &["RequestTimeout", "RequestTimeoutException"];

/// Codes a request signed with a skewed clock comes back with. A retry helps once the
/// SDK has measured the skew from the answer's `Date` (its clock-skew interceptor
/// signs the next request with the corrected time).
const SKEW: &[&str] = &[
    "RequestTimeTooSkewed",
    "RequestExpired",
    "RequestInTheFuture",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "AccessDeniedException",
];

/// Below this difference from the service's clock, a skew code is a real refusal (the
/// SDKs' threshold too).
const SKEW_THRESHOLD: std::time::Duration = std::time::Duration::from_secs(4 * 60);

const MISSING: &[&str] = &[
    "ResourceNotFoundException",
    "NoSuchBucket",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NotFound",
];

const DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "MissingAuthenticationToken",
];

/// The kind of an error code (and HTTP status) from an AWS service.
pub fn kind_of(code: Option<&str>, status: Option<u16>) -> ErrorKind {
    match code {
        Some(c) if THROTTLED.contains(&c) => ErrorKind::Throttled,
        Some(c) if TRANSIENT.contains(&c) => ErrorKind::Unavailable,
        // A handle SQS does not know (another queue's, or deleted).
        Some("ReceiptHandleIsInvalid") => ErrorKind::Stale,
        Some(c) if MISSING.contains(&c) => ErrorKind::Missing,
        Some(c) if DENIED.contains(&c) => ErrorKind::Denied,
        _ => match status {
            Some(429) => ErrorKind::Throttled,
            Some(500..=599) => ErrorKind::Unavailable,
            Some(401 | 403) => ErrorKind::Denied,
            _ => ErrorKind::Other,
        },
    }
}

/// One SDK error as a port error.
pub fn store_error<E>(
    service: Service,
    operation: &'static str,
    resource: &str,
    err: SdkError<E, HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = match &err {
        SdkError::ServiceError(e) => format!(
            "{} (HTTP {}): {}",
            err.code().unwrap_or("error"),
            e.raw().status().as_u16(),
            err.message().unwrap_or("no message")
        ),
        _ => chain(&err),
    };
    let kind = match &err {
        // Resolving credentials happens while dispatching: no keys anywhere in the
        // chain is not worth a retry.
        SdkError::DispatchFailure(_) if detail.contains("credentials") => ErrorKind::Denied,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ErrorKind::Unavailable
        }
        SdkError::ConstructionFailure(_) => ErrorKind::Denied,
        SdkError::ServiceError(e) => {
            let skew = skew_of(e.raw());
            match (err.code(), err.message()) {
                // SQS FIFO: "Value … for parameter ReceiptHandle is invalid. Reason: The
                // receipt handle has expired." (AWS knowledge center,
                // "sqs-receipt-handle-error").
                (_, Some(m)) if m.contains("receipt handle has expired") => ErrorKind::Stale,
                (Some(c), _) if SKEW.contains(&c) && skew.is_some() => ErrorKind::Unavailable,
                (code, _) => kind_of(code, Some(e.raw().status().as_u16())),
            }
        }
        _ => ErrorKind::Other,
    };
    let mut detail = detail;
    if let (SdkError::ServiceError(e), ErrorKind::Unavailable) = (&err, kind) {
        if let Some(skew) = skew_of(e.raw()) {
            detail.push_str(&format!(
                " (this machine's clock is {} s off the service's; retried with the corrected time — set the clock right)",
                skew
            ));
        }
    }
    let mut message = format!("{resource}: {detail}");
    match kind {
        ErrorKind::Missing => message.push_str(" (create it with `metasync infra up --profile …`)"),
        ErrorKind::Denied if detail.contains("credentials") => message.push_str(
            " (no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, name an \
             `aws_profile` in the profile, or run `aws sso login`)",
        ),
        _ => {}
    }
    StoreError::new(kind, service, operation, message)
}

/// How far the service's clock (its answer's `Date`) is from ours, in seconds, when it
/// is past [`SKEW_THRESHOLD`].
fn skew_of(response: &HttpResponse) -> Option<i64> {
    let date = response.headers().get("date")?;
    let server =
        aws_smithy_types::DateTime::from_str(date, aws_smithy_types::date_time::Format::HttpDate)
            .ok()?;
    let ours = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    let skew = server.secs() - ours.secs();
    (skew.unsigned_abs() > SKEW_THRESHOLD.as_secs()).then_some(skew)
}

/// An error and its sources in one line, each cause once.
fn chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Build errors of request types (a field the port should have set): never the
/// service's fault.
pub fn build_error(
    service: Service,
    operation: &'static str,
    e: &aws_smithy_types::error::operation::BuildError,
) -> StoreError {
    StoreError::invalid(service, operation, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_classify() {
        assert_eq!(
            kind_of(Some("ThrottlingException"), Some(400)),
            ErrorKind::Throttled
        );
        assert_eq!(
            kind_of(Some("ProvisionedThroughputExceededException"), Some(400)),
            ErrorKind::Throttled
        );
        assert_eq!(kind_of(Some("SlowDown"), Some(503)), ErrorKind::Throttled);
        assert_eq!(
            kind_of(Some("ResourceNotFoundException"), Some(400)),
            ErrorKind::Missing
        );
        assert_eq!(
            kind_of(Some("AWS.SimpleQueueService.NonExistentQueue"), Some(400)),
            ErrorKind::Missing
        );
        assert_eq!(
            kind_of(Some("InternalError"), Some(500)),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind_of(Some("InvalidClientTokenId"), Some(403)),
            ErrorKind::Denied
        );
        assert_eq!(
            kind_of(Some("ValidationException"), Some(400)),
            ErrorKind::Other
        );
        assert_eq!(kind_of(None, Some(429)), ErrorKind::Throttled);
        assert_eq!(
            kind_of(Some("RequestTimeout"), Some(400)),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind_of(Some("RequestTimeoutException"), Some(400)),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind_of(Some("BandwidthLimitExceeded"), Some(400)),
            ErrorKind::Throttled
        );
        assert_eq!(
            kind_of(Some("ReceiptHandleIsInvalid"), Some(400)),
            ErrorKind::Stale
        );
    }
}
