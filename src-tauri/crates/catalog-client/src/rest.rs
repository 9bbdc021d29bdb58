//! Generic REST with OAuth2 client credentials.

use crate::http::{matches, read, Counters};
use crate::{check_url, client, id_from_location, BuildError, Secret};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use metasync_engine::ratelimit::RateLimiter;
use metasync_engine::target::{Attributes, CallError, Identity, Target, TargetCounters, TargetId};
use metasync_engine::EntityType;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Paths below `base_url`, with `{type}`, `{id}` and `{slug}` filled in.
pub use metasync_engine::config::UrlTemplates as Templates;

#[derive(Debug, Clone)]
pub struct RestConfig {
    pub base_url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub templates: Templates,
    pub timeout: Duration,
}

struct Token {
    value: Secret,
    refresh_at: Instant,
}

pub struct Rest {
    http: reqwest::Client,
    base: String,
    token_url: String,
    client_id: String,
    client_secret: Secret,
    templates: Templates,
    token: tokio::sync::Mutex<Option<Token>>,
    limiter: Option<Arc<RateLimiter>>,
    refused: AtomicBool,
    token_fetches: AtomicU64,
    counters: Counters,
}

/// Percent-encode a value for a URL (everything but RFC 3986 unreserved characters).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn fill(template: &str, entity: EntityType, id: Option<&str>, slug: Option<&str>) -> String {
    let mut s = template.replace("{type}", entity.as_str());
    if let Some(id) = id {
        s = s.replace("{id}", &encode(id));
    }
    if let Some(slug) = slug {
        s = s.replace("{slug}", &encode(slug));
    }
    s
}

/// Seconds until a JWT's `exp`, read without verifying (the server verifies).
fn jwt_lifetime(token: &str) -> Option<Duration> {
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let exp = claims["exp"].as_u64()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(exp.saturating_sub(now)))
}

impl Rest {
    pub fn new(cfg: RestConfig, limiter: Option<Arc<RateLimiter>>) -> Result<Self, BuildError> {
        Ok(Self {
            http: client(cfg.timeout)?,
            base: check_url("base_url", &cfg.base_url)?,
            token_url: check_url("token_url", &cfg.token_url)?,
            client_id: cfg.client_id,
            client_secret: cfg.client_secret,
            templates: cfg.templates,
            token: tokio::sync::Mutex::new(None),
            limiter,
            refused: AtomicBool::new(false),
            token_fetches: AtomicU64::new(0),
            counters: Counters::default(),
        })
    }

    /// Tokens fetched so far.
    pub fn token_fetches(&self) -> u64 {
        self.token_fetches.load(Ordering::Relaxed)
    }

    /// The cached token, or a new one when it is about to expire or when `stale` (a
    /// token the target just refused) is still the cached one. Callers that saw the
    /// same refusal share one refresh.
    async fn bearer(&self, stale: Option<&Secret>) -> Result<Secret, CallError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref() {
            let fresh = Instant::now() < t.refresh_at;
            if fresh && stale.is_none_or(|s| *s != t.value) {
                return Ok(t.value.clone());
            }
        }
        self.token_fetches.fetch_add(1, Ordering::Relaxed);
        let request = self
            .http
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body("grant_type=client_credentials");
        let (_, _, body) = match read(request.send().await, None, &self.counters).await {
            Err(CallError::Auth { message }) | Err(CallError::Permanent { message, .. }) => {
                self.refused.store(true, Ordering::Relaxed);
                return Err(CallError::Auth {
                    message: format!(
                        "the token endpoint refused the client id and secret ({message}); check them and try again"
                    ),
                });
            }
            other => other?,
        };
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let Some(token) = v["access_token"].as_str() else {
            return Err(CallError::Auth {
                message: "the token endpoint answered without an access_token".into(),
            });
        };
        let lifetime = [
            v["expires_in"].as_u64().map(Duration::from_secs),
            jwt_lifetime(token),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(Duration::from_secs(60));
        // Shortly before expiry: a tenth of the lifetime, between 1 and 60 seconds.
        let margin = (lifetime / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let value = Secret::new(token);
        *cached = Some(Token {
            value: value.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
        });
        Ok(value)
    }

    /// Send with the bearer token; on 401 refresh it once and send again.
    async fn send(
        &self,
        build: impl Fn(&Secret) -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::header::HeaderMap, String), CallError> {
        if self.refused.load(Ordering::Relaxed) {
            return Err(CallError::Auth {
                message: "the credentials were refused earlier; nothing more was sent".into(),
            });
        }
        let token = self.bearer(None).await?;
        let send = |t: &Secret| {
            let request = build(t).bearer_auth(t.expose());
            async move {
                read(
                    request.send().await,
                    self.limiter.as_deref(),
                    &self.counters,
                )
                .await
            }
        };
        let result = match send(&token).await {
            Err(CallError::Auth { .. }) => {
                let fresh = self.bearer(Some(&token)).await?;
                send(&fresh).await
            }
            other => other,
        };
        match result {
            Ok((_, headers, body)) => Ok((headers, body)),
            Err(CallError::Auth { message }) => {
                self.refused.store(true, Ordering::Relaxed);
                Err(CallError::Auth {
                    message: format!("a fresh token was refused too ({message})"),
                })
            }
            Err(e) => Err(e),
        }
    }
}

impl Target for Rest {
    /// A show by the lookup template's slug; a child among `/{type}s?parent_id={id}`.
    /// Either way the identity of what comes back is checked.
    async fn find(
        &self,
        entity: EntityType,
        parent: Option<(EntityType, &TargetId)>,
        identity: &Identity,
    ) -> Result<Option<TargetId>, CallError> {
        let url = match (identity, parent) {
            (Identity::Slug(slug), _) => format!(
                "{}{}",
                self.base,
                fill(&self.templates.lookup, entity, None, Some(slug))
            ),
            (_, Some((_, pid))) => format!(
                "{}{}?parent_id={}",
                self.base,
                fill(&self.templates.create, entity, None, None),
                encode(&pid.0)
            ),
            _ => return Ok(None),
        };
        let (_, body) = self.send(|_| self.http.get(&url)).await?;
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        Ok(v["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|o| matches(identity, &o["attributes"]))
                .and_then(|o| o["id"].as_str())
                .map(|id| TargetId(id.to_string()))
        }))
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
        let url = format!(
            "{}{}",
            self.base,
            fill(&self.templates.create, entity, None, None)
        );
        let doc = json!({
            "parent_type": parent.map(|(t, _)| t),
            "parent_id": parent.map(|(_, id)| &id.0),
            "attributes": attributes,
        });
        let (headers, body) = self.send(|_| self.http.post(&url).json(&doc)).await?;
        let from_body = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["id"].as_str().map(String::from));
        let from_location = || {
            headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(id_from_location)
        };
        from_body
            .or_else(from_location)
            .map(TargetId)
            .ok_or(CallError::Permanent {
                status: 201,
                message: "the target created the object but named no id".into(),
            })
    }

    async fn update(
        &self,
        entity: EntityType,
        id: &TargetId,
        changed: &Attributes,
    ) -> Result<(), CallError> {
        let url = format!(
            "{}{}",
            self.base,
            fill(&self.templates.update, entity, Some(&id.0), None)
        );
        let doc = json!({ "attributes": changed });
        self.send(|_| self.http.patch(&url).json(&doc))
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_and_encode() {
        let t = Templates::default();
        assert_eq!(
            fill(&t.lookup, EntityType::Episode, None, Some("a b/c")),
            "/episodes?slug=a%20b%2Fc"
        );
        assert_eq!(
            fill(&t.update, EntityType::Show, Some("id-1"), None),
            "/shows/id-1"
        );
    }

    #[test]
    fn jwt_lifetime_reads_exp() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = URL_SAFE_NO_PAD.encode(format!("{{\"exp\":{}}}", now + 120));
        let lifetime = jwt_lifetime(&format!("h.{claims}.s"));
        assert!(lifetime.is_some_and(|l| (118..=120).contains(&l.as_secs())));
        assert_eq!(jwt_lifetime("not-a-jwt"), None);
    }
}
