//! Media Manager v1: HTTP Basic, JSON:API.

use crate::http::{first_id, read};
use crate::{check_url, client, id_from_location, BuildError, Secret};
use metasync_engine::ratelimit::RateLimiter;
use metasync_engine::target::{Attributes, CallError, Target, TargetId};
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
}

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
        match read(request.send().await, self.limiter.as_deref()).await {
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
    async fn lookup(&self, entity: EntityType, slug: &str) -> Result<Option<TargetId>, CallError> {
        let url = format!("{}/{}/", self.base, collection(entity));
        let (_, body) = self
            .send(self.http.get(url).query(&[("slug", slug)]))
            .await?;
        Ok(first_id(&body, "data"))
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
