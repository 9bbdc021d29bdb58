//! Media Manager v1: HTTP Basic, JSON:API.

use crate::http::{matches, read, Counters};
use crate::{check_url, client, id_from_location, BuildError, Secret};
use metasync_engine::ratelimit::RateLimiter;
use metasync_engine::target::{Attributes, CallError, Identity, Target, TargetCounters, TargetId};
use metasync_engine::EntityType;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct MediaManagerConfig {
    /// E.g. `https://media.example.org/api/v1`.
    pub base_url: String,
    pub key: String,
    pub secret: Secret,
    pub timeout: Duration,
}

pub struct MediaManager {
    http: reqwest::Client,
    base: String,
    key: String,
    secret: Secret,
    limiter: Option<Arc<RateLimiter>>,
    refused: AtomicBool,
    counters: Counters,
}

/// Pages followed at most when looking for a child (50 a page: 5,000 children).
const MAX_PAGES: usize = 100;

impl MediaManager {
    pub fn new(
        cfg: MediaManagerConfig,
        limiter: Option<Arc<RateLimiter>>,
    ) -> Result<Self, BuildError> {
        Ok(Self {
            http: client(cfg.timeout)?,
            base: check_url("base_url", &cfg.base_url)?,
            key: cfg.key,
            secret: cfg.secret,
            limiter,
            refused: AtomicBool::new(false),
            counters: Counters::default(),
        })
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::header::HeaderMap, String), CallError> {
        if self.refused.load(Ordering::Relaxed) {
            return Err(refused());
        }
        let request = request.basic_auth(&self.key, Some(self.secret.expose()));
        match read(
            request.send().await,
            self.limiter.as_deref(),
            &self.counters,
        )
        .await
        {
            Ok((_, headers, body)) => Ok((headers, body)),
            Err(CallError::Auth { message }) => {
                self.refused.store(true, Ordering::Relaxed);
                Err(CallError::Auth {
                    message: format!(
                        "the API key and secret were refused ({message}); check them and try again"
                    ),
                })
            }
            Err(e) => Err(e),
        }
    }
}

fn refused() -> CallError {
    CallError::Auth {
        message: "the API key and secret were refused earlier; nothing more was sent".into(),
    }
}

fn collection(t: EntityType) -> String {
    format!("{t}s")
}

impl Target for MediaManager {
    /// A show by slug (`GET /shows/{slug}/`); a season, episode or asset among its
    /// parent's children (`GET /shows/{id}/seasons/`, `/seasons/{id}/episodes/`,
    /// `/{parent}s/{id}/assets/`), following `links.next`, matched on the identity.
    async fn find(
        &self,
        entity: EntityType,
        parent: Option<(EntityType, &TargetId)>,
        identity: &Identity,
    ) -> Result<Option<TargetId>, CallError> {
        let mut url = match (entity, parent, identity) {
            (EntityType::Show, _, Identity::Slug(slug)) => {
                let url = format!("{}/shows/{}/", self.base, encode_segment(slug));
                return match self.send(self.http.get(url)).await {
                    Ok((_, body)) => {
                        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                        let data = &v["data"];
                        Ok(data["id"]
                            .as_str()
                            .filter(|_| matches(identity, &data["attributes"]))
                            .map(|id| TargetId(id.to_string())))
                    }
                    Err(CallError::NotFound) => Ok(None),
                    Err(e) => Err(e),
                };
            }
            (_, Some((pt, pid)), _) => format!(
                "{}/{}/{}/{}/?page-size=50",
                self.base,
                collection(pt),
                pid.0,
                collection(entity)
            ),
            _ => return Ok(None),
        };
        for _ in 0..MAX_PAGES {
            let (_, body) = match self.send(self.http.get(&url)).await {
                Ok(ok) => ok,
                // A page past the end, or a parent with no children yet.
                Err(CallError::NotFound) => return Ok(None),
                Err(e) => return Err(e),
            };
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let found = v["data"].as_array().and_then(|items| {
                items
                    .iter()
                    .find(|o| matches(identity, &o["attributes"]))
                    .and_then(|o| o["id"].as_str())
            });
            if let Some(id) = found {
                return Ok(Some(TargetId(id.to_string())));
            }
            match v["links"]["next"].as_str() {
                Some(next) if !next.is_empty() => url = absolute(&self.base, next),
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    fn counters(&self) -> TargetCounters {
        self.counters.snapshot()
    }

    async fn create(
        &self,
        entity: EntityType,
        parent: Option<(EntityType, &TargetId)>,
        attributes: &Attributes,
    ) -> Result<TargetId, CallError> {
        let url = match parent {
            None => format!("{}/{}/", self.base, collection(entity)),
            Some((pt, pid)) => format!(
                "{}/{}/{}/{}/",
                self.base,
                collection(pt),
                pid.0,
                collection(entity)
            ),
        };
        let doc = json!({"data": {"type": entity, "attributes": attributes}});
        let (headers, body) = self.send(self.http.post(url).json(&doc)).await?;
        let from_location = headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(id_from_location);
        let from_body = || {
            let v: Value = serde_json::from_str(&body).ok()?;
            v["data"]["id"].as_str().map(String::from)
        };
        from_location
            .or_else(from_body)
            .map(TargetId)
            .ok_or(CallError::Permanent {
                status: 201,
                message: "the target created the object but named no id (no Location header)"
                    .into(),
            })
    }

    async fn update(
        &self,
        entity: EntityType,
        id: &TargetId,
        changed: &Attributes,
    ) -> Result<(), CallError> {
        let url = match entity {
            EntityType::Asset => format!("{}/assets/{}/edit/", self.base, id.0),
            _ => format!("{}/{}/{}/", self.base, collection(entity), id.0),
        };
        let doc = json!({"data": {"type": entity, "id": id.0, "attributes": changed}});
        self.send(self.http.patch(url).json(&doc)).await.map(|_| ())
    }
}

/// A path segment with everything but unreserved characters percent-encoded.
fn encode_segment(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `links.next` may be a full URL or a path on the API's host.
fn absolute(base: &str, next: &str) -> String {
    if next.starts_with("http://") || next.starts_with("https://") {
        return next.to_string();
    }
    let origin_end = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(base.len());
    format!("{}{}", &base[..origin_end], next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_resolve_against_the_host() {
        assert_eq!(
            absolute(
                "http://127.0.0.1:9/api/v1",
                "/api/v1/shows/x/seasons/?page=2"
            ),
            "http://127.0.0.1:9/api/v1/shows/x/seasons/?page=2"
        );
        assert_eq!(absolute("http://h/api/v1", "https://o/p"), "https://o/p");
        assert_eq!(encode_segment("a b/é"), "a%20b%2F%C3%A9");
    }
}
