//! Media Manager v1: HTTP Basic, JSON:API, and Media Manager's own shapes for the
//! values the CSV keeps flat (availability windows, tags, audience), following the
//! public record: docs.pbs.org and the clients stations run (see README, "Media
//! Manager as documented").

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

/// The largest page Media Manager serves ("'page-size' generally supports sizes of
/// 1-50": PBS_Media_Manager_Client README; pbs-media-manager-php `MAX_PAGE_SIZE`).
pub const MAX_PAGE_SIZE: usize = 50;

/// The mezzanine profile a video source is ingested as: the name the newest station
/// client in production sends (wnet-ieg-2/cove-asset-manager, 2025; older clients
/// wrote `hd-1080p-mezzanine-16x9`).
pub const VIDEO_PROFILE: &str = "hd-16x9-mezzanine-1080p";

/// Availability windows: CSV column prefix → Media Manager's key.
const WINDOW_KEYS: &[(&str, &str)] = &[
    ("public", "public"),
    ("all_members", "all_members"),
    ("station_members", "station_members"),
];

/// The canonical attributes in Media Manager's shapes:
/// - availability columns `{window}_start` / `{window}_end` (UTC, `Z`) become
///   `availabilities: {window: {start, end}}` (a recorded asset of
///   pbs-media-manager-php's fixtures; PBS_Media_Manager_Client's
///   change_asset_availability example);
/// - `tags` "a, b" becomes `["a", "b"]`;
/// - a show's `audience` and `station` become `audience: [{scope, station}]`;
/// - a full-length asset sends no title or descriptions: it takes its episode's
///   ("Full length assets inherit title from parent episode", console guide, Assets;
///   pbs-media-manager-php ignores them on update);
/// - video and caption sources travel separately, through the asset's edit endpoint.
pub fn mm_attributes(entity: EntityType, attributes: &Attributes) -> Attributes {
    let mut out = Attributes::new();
    let mut windows = serde_json::Map::new();
    let full_length = attributes.get("object_type").and_then(Value::as_str) == Some("full_length");
    for (name, value) in attributes {
        if entity == EntityType::Asset {
            if let Some((window, edge)) = window_of(name) {
                let w = windows.entry(window).or_insert_with(|| json!({}));
                w[edge] = value.clone();
                continue;
            }
            match name.as_str() {
                "video_source" | "caption_source" => continue,
                "title" | "description_short" | "description_long" if full_length => continue,
                "tags" => {
                    out.insert(name.clone(), tags(value));
                    continue;
                }
                _ => {}
            }
        }
        if entity == EntityType::Show && (name == "audience" || name == "station") {
            continue;
        }
        out.insert(name.clone(), value.clone());
    }
    if !windows.is_empty() {
        out.insert("availabilities".into(), Value::Object(windows));
    }
    if entity == EntityType::Show && attributes.contains_key("audience") {
        let scope = attributes.get("audience").cloned().unwrap_or(Value::Null);
        let station = attributes.get("station").cloned().unwrap_or(Value::Null);
        let audience = if scope.is_null() {
            Value::Null
        } else {
            json!([{ "scope": scope, "station": station }])
        };
        out.insert("audience".into(), audience);
    }
    out
}

/// `public_start` → ("public", "start").
fn window_of(name: &str) -> Option<(String, &'static str)> {
    let (prefix, edge) = if let Some(p) = name.strip_suffix("_start") {
        (p, "start")
    } else {
        (name.strip_suffix("_end")?, "end")
    };
    WINDOW_KEYS
        .iter()
        .find(|(column, _)| *column == prefix)
        .map(|(_, key)| ((*key).to_string(), edge))
}

fn tags(value: &Value) -> Value {
    match value.as_str() {
        Some(s) => Value::Array(
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| Value::String(t.to_string()))
                .collect(),
        ),
        None => Value::Null,
    }
}

/// What the asset's edit endpoint carries: `video: {profile, source}` and
/// `caption` (a URL), from the `video_source` / `caption_source` columns
/// (PBS_Media_Manager_Client and cove-asset-manager send these; pbs-media-manager-php
/// adds `replace` when a file is already there). `None` if neither is in
/// `attributes`.
pub fn mm_media(attributes: &Attributes) -> Option<Attributes> {
    let mut out = Attributes::new();
    match attributes.get("video_source") {
        Some(Value::String(url)) => {
            out.insert(
                "video".into(),
                json!({"profile": VIDEO_PROFILE, "source": url}),
            );
        }
        // Cleared: null deletes the file ("submitting a null video … triggers a file
        // delete": cove-asset-manager).
        Some(Value::Null) => {
            out.insert("video".into(), Value::Null);
        }
        _ => {}
    }
    if let Some(v) = attributes.get("caption_source") {
        out.insert("caption".into(), v.clone());
    }
    (!out.is_empty()).then(|| {
        out.insert("replace".into(), Value::Bool(true));
        out
    })
}

/// An asset's video and caption as the edit endpoint reports them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ingest {
    /// `original_video.ingestion_status` (`done`, `failed`, or in progress), if a
    /// video was sent.
    pub video: Option<String>,
    pub video_error: Option<String>,
    /// `original_caption.ingestion_status`.
    pub caption: Option<String>,
    pub caption_error: Option<String>,
    /// `publish_state` 1: published.
    pub published: bool,
}

/// One entry of the changelog.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// `asset`, `episode`, … (and types the documentation does not list, such as
    /// `availability`).
    pub entity: String,
    /// `None` for some deletions (a `link`'s).
    pub id: Option<String>,
    /// `create`, `update` or `delete`.
    pub action: String,
    /// UTC, as the API writes it.
    pub timestamp: String,
    pub updated_fields: Vec<String>,
}

/// Which changes to read (`GET /changelog/`, Changelog Endpoint page of docs.pbs.org).
#[derive(Debug, Clone, Default)]
pub struct ChangeQuery {
    /// `%Y-%m-%dT%H:%M:%S` with optional fraction and `Z`.
    pub since: Option<String>,
    pub types: Vec<String>,
    pub actions: Vec<String>,
    pub ids: Vec<String>,
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
                "{}/{}/{}/{}/?page-size={MAX_PAGE_SIZE}",
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
                Some(next) if !next.is_empty() => {
                    url = absolute(&self.base, next);
                    self.pace().await;
                }
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
        let doc =
            json!({"data": {"type": entity, "attributes": mm_attributes(entity, attributes)}});
        let (headers, body) = self.send(self.http.post(url).json(&doc)).await?;
        // Media Manager answers a create with no body (204) and the new object's URL in
        // `Location`, which may end in `/{id}/edit/` and may come as `location`
        // (header names are case-insensitive here).
        let from_location = headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(id_from_location);
        let from_body = || {
            let v: Value = serde_json::from_str(&body).ok()?;
            v["data"]["id"].as_str().map(String::from)
        };
        let id = from_location
            .or_else(from_body)
            .map(TargetId)
            .ok_or(CallError::Permanent {
                status: 204,
                message: "the target created the object but named no id (no Location header)"
                    .into(),
            })?;
        if entity == EntityType::Asset {
            if let Some(media) = mm_media(attributes) {
                // The asset exists now: a failure here must not read as a failed create
                // (a retry would create it twice). A transient one says "it may exist",
                // so the retry finds the asset and sends its files with an update.
                self.edit_asset(&id, &media).await.map_err(|e| match e {
                    CallError::Transient {
                        reason,
                        retry_after,
                        ..
                    } => CallError::Transient {
                        reason: format!(
                            "the asset was created; sending its files failed: {reason}"
                        ),
                        retry_after,
                        throttled: false,
                    },
                    other => other,
                })?;
            }
        }
        Ok(id)
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
        let mut attributes = mm_attributes(entity, changed);
        if entity == EntityType::Asset {
            // The asset's PATCH already goes to its edit endpoint: the files ride along.
            if let Some(media) = mm_media(changed) {
                attributes.extend(media);
            }
        }
        if attributes.is_empty() {
            return Ok(());
        }
        let doc = json!({"data": {"type": entity, "id": id.0, "attributes": attributes}});
        self.send(self.http.patch(url).json(&doc)).await.map(|_| ())
    }
}

impl MediaManager {
    /// Wait for a slot of the rate for a request beyond a call's first: the caller's
    /// permit covers one request, and a second one unpaced would overrun the quota.
    /// (The rate only: the call already holds its place among those in flight.)
    async fn pace(&self) {
        if let Some(l) = &self.limiter {
            tokio::time::sleep_until(l.reserve()).await;
        }
    }

    /// Send an asset's video and caption sources through its edit endpoint.
    async fn edit_asset(&self, id: &TargetId, media: &Attributes) -> Result<(), CallError> {
        self.pace().await;
        let url = format!("{}/assets/{}/edit/", self.base, id.0);
        let doc = json!({"data": {"type": "asset", "id": id.0, "attributes": media}});
        self.send(self.http.patch(url).json(&doc)).await.map(|_| ())
    }

    /// An asset's ingest status, read where unpublished assets can be read too
    /// (`GET /assets/{id}/edit/`: "unpublished assets … are only available with a GET
    /// from the edit endpoint", PBS_Media_Manager_Client README).
    pub async fn ingest(&self, id: &TargetId) -> Result<Ingest, CallError> {
        let url = format!("{}/assets/{}/edit/", self.base, encode_segment(&id.0));
        let (_, body) = self.send(self.http.get(url)).await?;
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let a = &v["data"]["attributes"];
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        Ok(Ingest {
            video: text(&a["original_video"]["ingestion_status"]),
            video_error: text(&a["original_video"]["ingestion_error"]),
            caption: text(&a["original_caption"]["ingestion_status"]),
            caption_error: text(&a["original_caption"]["ingestion_error"]),
            published: a["publish_state"].as_i64() == Some(1),
        })
    }

    /// The changelog from `since`, every page (25 a page by default, 50 here),
    /// following `links.next`; at most `limit` entries.
    pub async fn changelog(
        &self,
        query: &ChangeQuery,
        limit: usize,
    ) -> Result<Vec<Change>, CallError> {
        let mut params: Vec<(&str, &str)> = Vec::new();
        if let Some(since) = &query.since {
            params.push(("since", since));
        }
        for t in &query.types {
            params.push(("type", t));
        }
        for a in &query.actions {
            params.push(("action", a));
        }
        for i in &query.ids {
            params.push(("id", i));
        }
        let size = MAX_PAGE_SIZE.to_string();
        params.push(("page-size", &size));
        let mut request = self
            .http
            .get(format!("{}/changelog/", self.base))
            .query(&params);
        let mut out = Vec::new();
        loop {
            let (_, body) = match self.send(request).await {
                Ok(ok) => ok,
                Err(CallError::NotFound) => return Ok(out),
                Err(e) => return Err(e),
            };
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            for item in v["data"].as_array().into_iter().flatten() {
                let a = &item["attributes"];
                out.push(Change {
                    entity: item["type"].as_str().unwrap_or_default().to_string(),
                    id: item["id"].as_str().map(String::from),
                    action: a["action"].as_str().unwrap_or_default().to_string(),
                    timestamp: a["timestamp"].as_str().unwrap_or_default().to_string(),
                    updated_fields: a["updated_fields"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|f| f.as_str().map(String::from))
                        .collect(),
                });
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            match v["links"]["next"].as_str() {
                Some(next) if !next.is_empty() => {
                    request = self.http.get(absolute(&self.base, next));
                    self.pace().await;
                }
                _ => return Ok(out),
            }
        }
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

    fn attrs(v: Value) -> Attributes {
        match v {
            Value::Object(m) => m,
            _ => Attributes::new(),
        }
    }

    #[test]
    fn flat_columns_take_media_managers_shapes() {
        let a = attrs(json!({
            "object_type": "clip", "title": "Owls | Clip 1",
            "public_start": "2026-01-01T05:00:00Z", "public_end": "2026-02-01T05:00:00Z",
            "station_members_start": "2025-12-01T05:00:00Z",
            "tags": "owls, night", "video_source": "https://cdn.example.org/a.mov",
        }));
        let mm = mm_attributes(EntityType::Asset, &a);
        assert_eq!(
            mm["availabilities"],
            json!({"public": {"start": "2026-01-01T05:00:00Z", "end": "2026-02-01T05:00:00Z"},
                   "station_members": {"start": "2025-12-01T05:00:00Z"}})
        );
        assert_eq!(mm["tags"], json!(["owls", "night"]));
        assert!(mm.get("video_source").is_none() && mm.get("public_start").is_none());
        assert_eq!(mm["title"], "Owls | Clip 1");
        assert_eq!(
            mm_media(&a).map(Value::Object),
            Some(
                json!({"video": {"profile": VIDEO_PROFILE, "source": "https://cdn.example.org/a.mov"}, "replace": true})
            )
        );

        let full =
            attrs(json!({"object_type": "full_length", "title": "Owls", "description_short": "x"}));
        let mm = mm_attributes(EntityType::Asset, &full);
        assert!(mm.get("title").is_none() && mm.get("description_short").is_none());
        assert_eq!(mm_media(&full), None);

        let show = attrs(json!({"title": "Nova", "audience": "local", "station": "WGBH"}));
        assert_eq!(
            mm_attributes(EntityType::Show, &show)["audience"],
            json!([{"scope": "local", "station": "WGBH"}])
        );
    }

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
