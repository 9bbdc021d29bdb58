//! Turning HTTP answers into the engine's typed outcomes; shared by both dialects.

use metasync_engine::ratelimit::{RateHeaders, RateLimiter};
use metasync_engine::retry::{classify_status, ErrorClass};
use metasync_engine::target::{CallError, Identity, TargetCounters};
use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A transport failure (timeout, refused or reset connection, broken body).
pub fn transport(e: &reqwest::Error) -> CallError {
    let reason = if e.is_timeout() {
        "the target did not answer in time".to_string()
    } else if e.is_connect() {
        "cannot connect to the target".to_string()
    } else {
        // Without the URL: it may carry query values.
        format!("the connection broke: {}", e.without_url_ref())
    };
    CallError::Transient {
        reason,
        retry_after: None,
        throttled: false,
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut s = self.to_string();
        if let Some(url) = self.url() {
            s = s.replace(url.as_str(), "<url>");
        }
        s
    }
}

/// Seconds form of Retry-After (the HTTP-date form is rare for APIs; ignored).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

pub fn rate_headers(headers: &HeaderMap) -> RateHeaders {
    let num = |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    RateHeaders {
        remaining: num("x-ratelimit-remaining").or_else(|| num("ratelimit-remaining")),
        reset: num("x-ratelimit-reset")
            .or_else(|| num("ratelimit-reset"))
            .map(Duration::from_secs),
    }
}

/// The target's own words from an error body, as a sentence naming the field: Media
/// Manager's `{"detail": …}` and `{"errors": {"field": ["…"]}}` (nested under `meta` for
/// some), JSON:API `errors[0]`, an OAuth2 `error`, or the start of the text.
pub fn message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        if let Some(d) = v["detail"].as_str() {
            return d.to_string();
        }
        if let Some(obj) = v["errors"].as_object() {
            let mut parts = Vec::new();
            collect_field_errors(obj, &mut parts);
            if !parts.is_empty() {
                return parts.join("; ");
            }
        }
        if let Some(e) = v["errors"].get(0) {
            let detail = e["detail"].as_str().or(e["title"].as_str()).unwrap_or("");
            return match e["source"]["pointer"].as_str() {
                Some(p) => format!("{detail} ({p})"),
                None => detail.to_string(),
            };
        }
        if let Some(e) = v["error"].as_str() {
            return e.to_string();
        }
    }
    body.chars().take(300).collect()
}

/// Is this body a refusal of named fields (`{"errors": {"field": […]}}`)?
pub fn names_fields(body: &str) -> bool {
    serde_json::from_str::<Value>(body).is_ok_and(|v| {
        v["errors"].as_object().is_some_and(|o| {
            let mut parts = Vec::new();
            collect_field_errors(o, &mut parts);
            !parts.is_empty()
        })
    })
}

fn collect_field_errors(obj: &serde_json::Map<String, Value>, out: &mut Vec<String>) {
    for (field, v) in obj {
        match v {
            Value::Array(items) => {
                let texts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                if !texts.is_empty() {
                    out.push(format!("{field}: {}", texts.join(" ")));
                }
            }
            Value::String(s) => out.push(format!("{field}: {s}")),
            Value::Object(inner) => collect_field_errors(inner, out),
            _ => {}
        }
    }
}

/// Requests a client sent and how many were answered 429.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    throttled: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> TargetCounters {
        TargetCounters {
            requests: self.requests.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
        }
    }
}

/// Does an object's attributes carry this identity? A lookup never takes a result on
/// trust: it checks what came back.
pub fn matches(identity: &Identity, attributes: &Value) -> bool {
    let text = |name: &str| attributes[name].as_str().map(str::trim);
    match identity {
        Identity::Slug(slug) => text("slug") == Some(slug.as_str()),
        Identity::Ordinal(n) => ordinal(attributes) == Some(u64::from(*n)),
        Identity::Episode {
            ordinal: n,
            segment,
        } => {
            ordinal(attributes) == Some(u64::from(*n))
                && text("segment").unwrap_or_default() == segment.as_str()
        }
        Identity::Asset { object_type, title } => {
            text("object_type") == Some(object_type.as_str())
                && text("title") == Some(title.as_str())
        }
        Identity::FullLength => text("object_type") == Some("full_length"),
    }
}

/// An `ordinal` attribute, whether the API sends it as a number or as text.
fn ordinal(attributes: &Value) -> Option<u64> {
    let v = &attributes["ordinal"];
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// Read an answer: the success with its headers and body, or the typed failure.
pub async fn read(
    response: Result<Response, reqwest::Error>,
    limiter: Option<&RateLimiter>,
    counters: &Counters,
) -> Result<(StatusCode, HeaderMap, String), CallError> {
    counters.requests.fetch_add(1, Ordering::Relaxed);
    if response
        .as_ref()
        .is_ok_and(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
    {
        counters.throttled.fetch_add(1, Ordering::Relaxed);
    }
    let response = response.map_err(|e| transport(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    if let Some(l) = limiter {
        l.on_headers(rate_headers(&headers));
    }
    let body = response.text().await.map_err(|e| transport(&e))?;
    // Media Manager answers some refusals of the values sent (a duplicate ordinal and
    // segment) with a 500 whose body names the field (pbs-media-manager-php's test of
    // `{"errors":{"meta":{"segment":[…]}}}`): sending it again cannot help.
    if status.is_server_error() && names_fields(&body) {
        return Err(CallError::Permanent {
            status: status.as_u16(),
            message: message(&body),
        });
    }
    match classify_status(status.as_u16()) {
        None => Ok((status, headers, body)),
        Some(_) if status == StatusCode::NOT_FOUND => Err(CallError::NotFound),
        Some(ErrorClass::Auth) => Err(CallError::Auth {
            message: message(&body),
        }),
        Some(ErrorClass::Transient) => Err(CallError::Transient {
            reason: format!("HTTP {}: {}", status.as_u16(), message(&body)),
            retry_after: retry_after(&headers),
            throttled: status == StatusCode::TOO_MANY_REQUESTS,
        }),
        Some(ErrorClass::Permanent) => Err(CallError::Permanent {
            status: status.as_u16(),
            message: message(&body),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_json_api_oauth_or_text() {
        let jsonapi = r#"{"errors":[{"status":"400","title":"Invalid","detail":"title is required.","source":{"pointer":"/data/attributes/title"}}]}"#;
        assert_eq!(
            message(jsonapi),
            "title is required. (/data/attributes/title)"
        );
        assert_eq!(message(r#"{"error":"invalid_client"}"#), "invalid_client");
        assert_eq!(message(r#"{"detail":"Not found."}"#), "Not found.");
        assert_eq!(
            message(
                r#"{"errors":{"meta":{"segment":["Episode with this ordinal and segment already exists."]}}}"#
            ),
            "segment: Episode with this ordinal and segment already exists."
        );
        assert_eq!(
            message(r#"{"errors":{"title":["This field may not be blank."]}}"#),
            "title: This field may not be blank."
        );
        assert_eq!(message("plain"), "plain");
        assert!(names_fields(
            r#"{"errors":{"meta":{"segment":["exists."]}}}"#
        ));
        assert!(!names_fields(r#"{"detail":"Server Error"}"#));
        assert!(!names_fields("<html>502</html>"));
    }

    #[test]
    fn retry_after_and_rate_headers_parse() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap_or_else(|_| panic!()));
        h.insert(
            "x-ratelimit-remaining",
            "0".parse().unwrap_or_else(|_| panic!()),
        );
        h.insert(
            "x-ratelimit-reset",
            "2".parse().unwrap_or_else(|_| panic!()),
        );
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        assert_eq!(
            rate_headers(&h),
            RateHeaders {
                remaining: Some(0),
                reset: Some(Duration::from_secs(2))
            }
        );
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT"
                .parse()
                .unwrap_or_else(|_| panic!()),
        );
        assert_eq!(retry_after(&h), None);
    }
}
