//! A local server that behaves like the target catalog API, for the demo and the tests.
//!
//! It speaks both dialects over one in-memory catalog: **Media Manager v1** (HTTP Basic,
//! JSON:API, `/api/v1/...`) and **generic REST** (`/rest/...`, bearer JWTs from its own
//! OAuth2 client-credentials endpoint, HS256, verified). It enforces a quota with 429 +
//! Retry-After, injects latency, 5xx, resets and hangs (deterministic for a seed), rejects
//! what breaks a strict target's rules with a JSON:API 400, and exposes
//! `GET /_sandbox/stats`, `GET /_sandbox/catalog` and `GET /_sandbox/writes` (every
//! accepted create and update with the fields it carried) so tests can check the final
//! state, count duplicates and see what each PATCH sent.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use metasync_engine::gen::Rng;
use metasync_engine::schema::Kind;
pub use metasync_engine::target::Access;
use metasync_engine::text::{check, trim};
use metasync_engine::EntityType;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

mod mm;

/// Who may call the sandbox. Development values, never real secrets.
#[derive(Clone)]
pub struct Credentials {
    /// Media Manager dialect: HTTP Basic key and secret.
    pub key: String,
    pub secret: String,
    /// REST dialect: OAuth2 client credentials.
    pub client_id: String,
    pub client_secret: String,
    /// Signs the JWTs the token endpoint issues.
    pub jwt_key: Vec<u8>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("key", &self.key)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            key: "sandbox-key".into(),
            secret: "sandbox-secret".into(),
            client_id: "sandbox-client".into(),
            client_secret: "sandbox-client-secret".into(),
            jwt_key: b"sandbox-jwt-signing-key".to_vec(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Requests per second; none means unlimited.
    pub quota: Option<f64>,
    pub burst: u32,
    pub latency: Duration,
    /// Shares of requests answered 503, reset, or left hanging.
    pub fail_rate: f64,
    pub reset_rate: f64,
    pub timeout_rate: f64,
    /// How long a hanging request waits before its (late) answer.
    pub hang: Duration,
    pub seed: u64,
    /// Send `X-RateLimit-Remaining` / `X-RateLimit-Reset` on every answer.
    pub rate_headers: bool,
    pub token_ttl: Duration,
    pub credentials: Credentials,
    /// Refuse (400) any title containing this text: a record the target turns down
    /// although our validation passes it, for triage demos and tests.
    pub refuse_title: Option<String>,
    /// Do the first POST whose path ends with this, then answer it only after `hang`
    /// (a create whose answer is lost, on demand).
    pub hang_first_post_to: Option<String>,
    /// Answer the first PATCH whose path ends with this with a 429, without doing it.
    pub fail_first_patch_to: Option<String>,
    /// What the Media Manager key may write: a station's (the default) cannot create
    /// or change shows, nor change seasons, and is answered 403 as Media Manager
    /// answers a key without the permission.
    pub access: Access,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            quota: None,
            burst: 10,
            latency: Duration::ZERO,
            fail_rate: 0.0,
            reset_rate: 0.0,
            timeout_rate: 0.0,
            hang: Duration::from_secs(30),
            seed: 1,
            rate_headers: false,
            token_ttl: Duration::from_secs(300),
            credentials: Credentials::default(),
            refuse_title: None,
            hang_first_post_to: None,
            fail_first_patch_to: None,
            access: Access::Station,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Stats {
    pub requests: u64,
    /// Answered 2xx.
    pub accepted: u64,
    /// Answered 429.
    pub throttled: u64,
    /// Injected 503s, resets and hangs.
    pub faults: u64,
    /// Answered 400 or 404.
    pub rejected: u64,
    /// Answered 401.
    pub unauthorized: u64,
    pub tokens_issued: u64,
    /// Objects by type.
    pub objects: BTreeMap<String, u64>,
    /// Objects whose identity an earlier object already had: a show's slug; a season's
    /// or episode's ordinal under its parent; an asset's object type and title under
    /// its parent.
    pub duplicates: u64,
}

/// One accepted write, as a test sees it: which fields a PATCH carried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Write {
    pub method: String,
    pub path: String,
    /// The attribute names the body carried, sorted.
    pub fields: Vec<String>,
}

struct Obj {
    id: String,
    kind: EntityType,
    slug: Option<String>,
    parent: Option<String>,
    attributes: Map<String, Value>,
    /// An asset's video and caption as sent to its edit endpoint.
    video: Option<Ingest>,
    caption: Option<Ingest>,
}

/// A file sent for ingest. Its status moves from `in_progress` to `done` at the next
/// read of the asset's edit endpoint (ingest takes minutes in Media Manager: console
/// FAQ), or `failed` for a source that does not end in a file name.
#[derive(Clone)]
struct Ingest {
    source: String,
    status: &'static str,
}

/// One entry of Media Manager's changelog.
struct Change {
    kind: EntityType,
    id: String,
    action: &'static str,
    /// Microseconds since the epoch (the API's timestamps carry microseconds).
    at_micros: i64,
    updated_fields: Vec<String>,
}

struct Inner {
    objects: Vec<Obj>,
    /// Creates and updates, oldest first (`GET /api/v1/changelog/`).
    changes: Vec<Change>,
    /// Every accepted POST and PATCH of a catalog object, in order.
    writes: Vec<Write>,
    by_id: HashMap<String, usize>,
    /// Parent id → its children's indexes, in creation order (listings and the
    /// uniqueness checks look at siblings only).
    children: HashMap<String, Vec<usize>>,
    stats: Stats,
    rng: Rng,
    /// GCRA: theoretical arrival time of the next request.
    tat: Instant,
    /// Tokens from earlier generations are refused (`/_sandbox/revoke-tokens`).
    token_generation: u64,
    /// `hang_first_post_to` was used.
    hung_first_post: bool,
    /// `fail_first_patch_to` was used.
    failed_first_patch: bool,
}

struct Shared {
    cfg: Config,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running sandbox on a loopback port.
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Serve on 127.0.0.1:`port` (0: a free port).
    pub async fn start(cfg: Config, port: u16) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                objects: Vec::new(),
                changes: Vec::new(),
                writes: Vec::new(),
                by_id: HashMap::new(),
                children: HashMap::new(),
                stats: Stats::default(),
                rng: Rng::new(cfg.seed),
                tat: Instant::now(),
                token_generation: 0,
                hung_first_post: false,
                failed_first_patch: false,
            }),
            cfg,
        });
        let app = Router::new().fallback(dispatch).with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                eprintln!("sandbox stopped: {e}");
            }
        });
        Ok(Self {
            addr,
            shared,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> Stats {
        stats_of(&self.shared.lock())
    }

    pub fn catalog(&self) -> Value {
        catalog_of(&self.shared.lock())
    }

    /// Every accepted create and update so far, with the fields each carried.
    pub fn writes(&self) -> Vec<Write> {
        self.shared.lock().writes.clone()
    }

    /// Add an object as PBS would, whatever the key's access (the shows a station's
    /// catalog already holds). Checked as a create; returns its id.
    pub fn seed(
        &self,
        kind: EntityType,
        parent: Option<&str>,
        mut attributes: Map<String, Value>,
    ) -> Result<String, String> {
        mm::check_write(kind, &mut attributes, mm::Write::Create)
            .map_err(|r| format!("{}: {}", r.field, r.message))?;
        let parent_kind = match kind {
            EntityType::Asset => None,
            other => other.parent().map(|(t, _)| t),
        };
        insert(&self.shared, kind, parent_kind.zip(parent), attributes).map_err(|r| r.detail)
    }

    /// Refuse every token issued so far (they look expired to clients).
    pub fn revoke_tokens(&self) {
        self.shared.lock().token_generation += 1;
    }

    /// Wait until the server stops (for `metasync sandbox`).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            // Hanging requests would hold a graceful shutdown: stop waiting for them.
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                eprintln!("sandbox: requests still open at shutdown were dropped");
            }
        }
    }
}

fn stats_of(inner: &Inner) -> Stats {
    let mut stats = inner.stats.clone();
    let mut seen = HashSet::new();
    for o in &inner.objects {
        *stats.objects.entry(o.kind.to_string()).or_insert(0) += 1;
        if !seen.insert(identity_of(o)) {
            stats.duplicates += 1;
        }
    }
    stats
}

/// What makes an object unique in the catalog (see [`Stats::duplicates`]).
fn identity_of(o: &Obj) -> (EntityType, Option<String>, String) {
    let text = |n: &str| match o.attributes.get(n) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(x)) => x.to_string(),
        _ => String::new(),
    };
    let id = match o.kind {
        EntityType::Show => o.slug.clone().unwrap_or_else(|| o.id.clone()),
        EntityType::Season => text("ordinal"),
        EntityType::Episode => format!("{}\u{1f}{}", text("ordinal"), text("segment")),
        EntityType::Asset if text("object_type") == "full_length" => "full_length".into(),
        EntityType::Asset => format!("{}\u{1f}{}", text("object_type"), text("title")),
    };
    (o.kind, o.parent.clone(), id)
}

fn catalog_of(inner: &Inner) -> Value {
    let objects: Vec<Value> = inner
        .objects
        .iter()
        .map(|o| {
            json!({"type": o.kind, "id": o.id, "slug": o.slug, "parent": o.parent, "attributes": o.attributes})
        })
        .collect();
    json!({ "objects": objects })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the gate decided for one request, before it is handled.
enum Gate {
    Pass,
    Throttled(Duration),
    Fail,
    Reset,
    Hang,
}

/// An error answer in JSON:API form.
fn error(status: StatusCode, title: &str, detail: &str, pointer: Option<&str>) -> Response {
    let mut e = json!({"status": status.as_u16().to_string(), "title": title, "detail": detail});
    if let Some(p) = pointer {
        e["source"] = json!({ "pointer": p });
    }
    (status, axum::Json(json!({ "errors": [e] }))).into_response()
}

/// Why the sandbox refuses a request, answered as a JSON:API error.
struct Rejection {
    status: StatusCode,
    title: &'static str,
    detail: String,
    pointer: Option<String>,
}

fn reject(
    status: StatusCode,
    title: &'static str,
    detail: &str,
    pointer: Option<&str>,
) -> Rejection {
    Rejection {
        status,
        title,
        detail: detail.to_string(),
        pointer: pointer.map(String::from),
    }
}

/// Errors as Media Manager words them: `{"errors": {"field": ["…"]}}` for a refused
/// attribute, `{"detail": "…"}` otherwise (pbs-media-manager-php's fixtures).
impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let _ = self.title;
        let body = match self.pointer.as_deref().and_then(|p| p.rsplit('/').next()) {
            Some(field) if !field.is_empty() => json!({ "errors": { field: [self.detail] } }),
            _ => json!({ "detail": self.detail }),
        };
        (self.status, axum::Json(body)).into_response()
    }
}

async fn dispatch(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();

    if segs.first() == Some(&"_sandbox") {
        let inner = shared.lock();
        return match segs.get(1) {
            Some(&"stats") => axum::Json(stats_of(&inner)).into_response(),
            Some(&"catalog") => axum::Json(catalog_of(&inner)).into_response(),
            Some(&"writes") => axum::Json(&inner.writes).into_response(),
            _ => error(
                StatusCode::NOT_FOUND,
                "Not found",
                "no such sandbox endpoint",
                None,
            ),
        };
    }

    let gate = {
        let cfg = &shared.cfg;
        let mut inner = shared.lock();
        inner.stats.requests += 1;
        let throttle = cfg.quota.and_then(|q| {
            let now = Instant::now();
            let interval = Duration::from_secs_f64(1.0 / q.max(0.001));
            let tolerance = interval * cfg.burst.saturating_sub(1);
            let tat = inner.tat.max(now);
            if tat.duration_since(now) > tolerance {
                Some(tat.duration_since(now) - tolerance)
            } else {
                inner.tat = tat + interval;
                None
            }
        });
        let hang_first = parts.method == Method::POST
            && !inner.hung_first_post
            && cfg
                .hang_first_post_to
                .as_deref()
                .is_some_and(|suffix| path.ends_with(suffix));
        let fail_first = parts.method == Method::PATCH
            && !inner.failed_first_patch
            && cfg
                .fail_first_patch_to
                .as_deref()
                .is_some_and(|suffix| path.ends_with(suffix));
        match throttle {
            Some(wait) => {
                inner.stats.throttled += 1;
                Gate::Throttled(wait)
            }
            None if fail_first => {
                inner.failed_first_patch = true;
                inner.stats.throttled += 1;
                Gate::Throttled(Duration::from_millis(100))
            }
            None if hang_first => {
                inner.hung_first_post = true;
                inner.stats.faults += 1;
                Gate::Hang
            }
            None => {
                let draw = inner.rng.unit();
                let gate = if draw < cfg.fail_rate {
                    Gate::Fail
                } else if draw < cfg.fail_rate + cfg.reset_rate {
                    Gate::Reset
                } else if draw < cfg.fail_rate + cfg.reset_rate + cfg.timeout_rate {
                    Gate::Hang
                } else {
                    Gate::Pass
                };
                if !matches!(gate, Gate::Pass) {
                    inner.stats.faults += 1;
                }
                gate
            }
        }
    };
    if !shared.cfg.latency.is_zero() {
        tokio::time::sleep(shared.cfg.latency).await;
    }
    // A broken connection answers 200 before its body breaks: not an acceptance.
    let broken = matches!(gate, Gate::Reset);
    let mut response = match gate {
        Gate::Throttled(wait) => {
            // Retry-After is whole seconds (RFC 9110); X-RateLimit-Reset says more.
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                "The quota is exhausted; retry later.",
                None,
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            r
        }
        Gate::Fail => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
            "Injected failure.",
            None,
        ),
        // Headers go out, then the body breaks off: the client sees a broken connection.
        Gate::Reset => {
            let broken = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("injected reset"))
            });
            Response::new(Body::from_stream(broken))
        }
        Gate::Pass | Gate::Hang => {
            let bytes = axum::body::to_bytes(body, 4 << 20)
                .await
                .unwrap_or_default();
            let r = route(
                &shared,
                &parts.method,
                &segs,
                &query,
                &parts.headers,
                &bytes,
            );
            let write = matches!(parts.method, Method::POST | Method::PATCH)
                && r.status().is_success()
                && segs.first() != Some(&"oauth2");
            if write {
                let fields = attribute_names(&bytes);
                shared.lock().writes.push(Write {
                    method: parts.method.to_string(),
                    path: path.clone(),
                    fields,
                });
            }
            if matches!(gate, Gate::Hang) {
                // The work is done; the answer comes too late for the client.
                tokio::time::sleep(shared.cfg.hang).await;
            }
            r
        }
    };
    {
        let mut inner = shared.lock();
        let status = response.status();
        if status.is_success() && !broken {
            inner.stats.accepted += 1;
        } else if status == StatusCode::UNAUTHORIZED {
            inner.stats.unauthorized += 1;
        } else if matches!(status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND) {
            inner.stats.rejected += 1;
        }
        if shared.cfg.rate_headers {
            if let Some(q) = shared.cfg.quota {
                let now = Instant::now();
                let interval = 1.0 / q.max(0.001);
                let backlog = inner.tat.saturating_duration_since(now).as_secs_f64();
                let remaining = (f64::from(shared.cfg.burst) - backlog / interval)
                    .floor()
                    .max(0.0);
                let h = response.headers_mut();
                h.insert("x-ratelimit-remaining", HeaderValue::from(remaining as u64));
                h.insert(
                    "x-ratelimit-reset",
                    HeaderValue::from(backlog.ceil() as u64),
                );
            }
        }
    }
    response
}

/// The attribute names of a write's body (JSON:API `data.attributes`, or the REST
/// dialect's top-level object), sorted.
fn attribute_names(body: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let attrs = v.pointer("/data/attributes").unwrap_or(&v);
    let mut names: Vec<String> = attrs
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn route(
    shared: &Shared,
    method: &Method,
    segs: &[&str],
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    match segs {
        ["oauth2", "token"] if method == Method::POST => token(shared, headers, body),
        ["api", "v1", ..] => {
            if !basic_ok(&shared.cfg.credentials, headers) {
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized",
                    "Invalid API key or secret.",
                    None,
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"sandbox\""),
                );
                return r;
            }
            media_manager(shared, method, &segs[2..], query, body)
        }
        ["rest", ..] => {
            if let Err(why) = bearer_ok(shared, headers) {
                let mut r = error(StatusCode::UNAUTHORIZED, "Unauthorized", why, None);
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
                return r;
            }
            rest(shared, method, &segs[1..], query, body)
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "Not found",
            "No such endpoint.",
            None,
        ),
    }
}

fn kind_of_collection(collection: &str) -> Option<EntityType> {
    collection.strip_suffix('s')?.parse().ok()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query_params(query, name).next()
}

/// Every value of a repeated parameter (`type=a&type=b`), decoded.
fn query_params<'q>(query: &'q str, name: &'q str) -> impl Iterator<Item = String> + 'q {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn media_manager(
    shared: &Shared,
    method: &Method,
    segs: &[&str],
    query: &str,
    body: &[u8],
) -> Response {
    let doc = |o: &Obj| json!({"type": o.kind, "id": o.id, "attributes": o.attributes});
    let station = shared.cfg.access == Access::Station;
    let forbidden = || {
        (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"detail": "You do not have permission to perform this action."})),
        )
            .into_response()
    };
    match (method, segs) {
        (&Method::POST, ["shows"]) | (&Method::PATCH, ["shows" | "seasons", _]) if station => {
            forbidden()
        }
        (&Method::GET, ["changelog"]) => changelog(shared, query),
        (&Method::GET, [collection]) => {
            let Some(kind) = kind_of_collection(collection) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "No such collection.",
                    None,
                );
            };
            let slug = query_param(query, "slug");
            let inner = shared.lock();
            let data: Vec<Value> = inner
                .objects
                .iter()
                .filter(|o| o.kind == kind && (slug.is_none() || o.slug == slug))
                .map(doc)
                .collect();
            axum::Json(json!({ "data": data })).into_response()
        }
        (&Method::GET, ["assets", id, "edit"]) => {
            let mut inner = shared.lock();
            let Some(&i) = inner.by_id.get(*id) else {
                return not_found();
            };
            let o = &mut inner.objects[i];
            if o.kind != EntityType::Asset {
                return not_found();
            }
            let mut attributes = o.attributes.clone();
            let file = |f: &mut Option<Ingest>| match f {
                Some(f) => {
                    let shown = json!({
                        "source": f.source,
                        "ingestion_status": f.status,
                        "ingestion_error": (f.status == "failed").then_some("The source could not be fetched."),
                    });
                    if f.status == "in_progress" {
                        f.status = "done";
                    }
                    shown
                }
                None => Value::Null,
            };
            // Published once its video is in (as shown by this read, before it moves on).
            let published = o.video.as_ref().is_some_and(|v| v.status == "done");
            attributes.insert("original_video".into(), file(&mut o.video));
            attributes.insert("original_caption".into(), file(&mut o.caption));
            attributes.insert("publish_state".into(), json!(i32::from(published)));
            axum::Json(json!({
                "data": {"type": o.kind, "id": o.id, "attributes": attributes},
                "meta": {"type": "resource"},
                "jsonapi": {"version": "1.0"},
            }))
            .into_response()
        }
        (&Method::GET, [collection, id]) | (&Method::GET, [collection, id, "edit"]) => {
            let inner = shared.lock();
            let kind = kind_of_collection(collection);
            // Shows are found by id or by slug (`GET /shows/{slug}/`).
            let found = inner.by_id.get(*id).copied().or_else(|| {
                inner
                    .objects
                    .iter()
                    .position(|o| Some(o.kind) == kind && o.slug.as_deref() == Some(*id))
            });
            match found.filter(|&i| Some(inner.objects[i].kind) == kind) {
                Some(i) => axum::Json(json!({
                    "data": doc(&inner.objects[i]),
                    "meta": {"type": "resource"},
                    "jsonapi": {"version": "1.0"},
                }))
                .into_response(),
                None => not_found(),
            }
        }
        (&Method::GET, [parent_collection, parent_id, collection]) => {
            let (Some(parent_kind), Some(kind)) = (
                kind_of_collection(parent_collection),
                kind_of_collection(collection),
            ) else {
                return not_found();
            };
            children_page(shared, parent_kind, parent_id, kind, segs, query)
        }
        (&Method::POST, ["shows"]) => mm_create(shared, EntityType::Show, None, body),
        (&Method::POST, [parent_collection, parent_id, collection]) => {
            let (Some(parent_kind), Some(kind)) = (
                kind_of_collection(parent_collection),
                kind_of_collection(collection),
            ) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "No such collection.",
                    None,
                );
            };
            mm_create(shared, kind, Some((parent_kind, parent_id)), body)
        }
        (&Method::PATCH, ["assets", id, "edit"]) => {
            mm_update(shared, EntityType::Asset, id, body, mm::Write::Edit)
        }
        (&Method::PATCH, [collection, id]) if *collection != "assets" => {
            match kind_of_collection(collection) {
                Some(kind) => mm_update(shared, kind, id, body, mm::Write::Update),
                None => error(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "No such collection.",
                    None,
                ),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "Not found",
            "No such endpoint.",
            None,
        ),
    }
}

/// Media Manager's changelog: `since` (UTC), repeatable `type`, `action` and `id`,
/// oldest first, a page at a time ([`paged`]) (Changelog Endpoint page, docs.pbs.org;
/// recorded pages of pbs-media-manager-php).
fn changelog(shared: &Shared, query: &str) -> Response {
    let all = |name: &str| -> Vec<String> { query_params(query, name).collect() };
    let since = match query_param(query, "since") {
        None => None,
        Some(s) => match mm::parse_since(&s) {
            Some((secs, micros)) => Some(secs * 1_000_000 + i64::from(micros)),
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"errors": {"since": ["Format: %Y-%m-%dT%H:%M:%S (Example: 2017-08-05T20:14:07.272507Z)"]}})),
                )
                    .into_response()
            }
        },
    };
    let (types, actions, ids) = (all("type"), all("action"), all("id"));
    let inner = shared.lock();
    let matching: Vec<&Change> = inner
        .changes
        .iter()
        .filter(|c| since.is_none_or(|s| c.at_micros >= s))
        .filter(|c| types.is_empty() || types.iter().any(|t| t == c.kind.as_str()))
        .filter(|c| actions.is_empty() || actions.iter().any(|a| a == c.action))
        .filter(|c| ids.is_empty() || ids.contains(&c.id))
        .collect();
    paged(query, &matching, "/api/v1/changelog/", |c| {
        json!({
            "type": c.kind,
            "id": c.id,
            "links": {"self": format!("/api/v1/{}s/{}/", c.kind, c.id)},
            "attributes": {
                "action": c.action,
                "timestamp": micros_utc(c.at_micros),
                "updated_fields": c.updated_fields,
            },
        })
    })
}

/// One page of a Media Manager listing: `page` (from 1) and `page-size` (25 by
/// default, at most 50), `links.next` keeping the other query parameters while more
/// remain, a page past the end a 404 "Invalid page." (pbs-media-manager-php's
/// fixtures and tests; PBS_Media_Manager_Client README).
fn paged<T>(query: &str, items: &[T], path: &str, render: impl Fn(&T) -> Value) -> Response {
    let size: usize = query_param(query, "page-size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(25)
        .clamp(1, 50);
    let page: usize = query_param(query, "page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let start = (page - 1) * size;
    if start > 0 && start >= items.len() {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"detail": "Invalid page."})),
        )
            .into_response();
    }
    let data: Vec<Value> = items.iter().skip(start).take(size).map(render).collect();
    let next = (start + size < items.len()).then(|| {
        let mut params: Vec<String> = query
            .split('&')
            .filter(|kv| {
                !kv.is_empty() && !kv.starts_with("page=") && !kv.starts_with("page-size=")
            })
            .map(String::from)
            .collect();
        params.push(format!("page={}", page + 1));
        params.push(format!("page-size={size}"));
        format!("{path}?{}", params.join("&"))
    });
    axum::Json(json!({
        "data": data,
        "links": {"next": next},
        "meta": {"type": "collection", "pagination": {"count": items.len(), "per_page": size}},
        "jsonapi": {"version": "1.0"},
    }))
    .into_response()
}

/// `2019-07-02T21:00:11.101526Z` of microseconds since the epoch.
fn micros_utc(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let whole = metasync_engine::pipeline::record::utc(secs);
    format!("{}.{frac:06}Z", whole.trim_end_matches('Z'))
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"detail": "Not found."})),
    )
        .into_response()
}

/// Children of one parent, a page at a time ([`paged`]).
fn children_page(
    shared: &Shared,
    parent_kind: EntityType,
    parent_id: &str,
    kind: EntityType,
    segs: &[&str],
    query: &str,
) -> Response {
    let inner = shared.lock();
    let parent_ok = inner
        .by_id
        .get(parent_id)
        .is_some_and(|&i| inner.objects[i].kind == parent_kind);
    if !parent_ok {
        return not_found();
    }
    let all: Vec<&Obj> = inner
        .children
        .get(parent_id)
        .into_iter()
        .flatten()
        .map(|&i| &inner.objects[i])
        .filter(|o| o.kind == kind)
        .collect();
    let path = format!("/api/v1/{}/", segs.join("/"));
    paged(
        query,
        &all,
        &path,
        |o| json!({"type": o.kind, "id": o.id, "attributes": o.attributes}),
    )
}

fn jsonapi_attributes(body: &[u8], kind: EntityType) -> Result<Map<String, Value>, Rejection> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        reject(
            StatusCode::BAD_REQUEST,
            "Bad request",
            &format!("The body is not JSON: {e}"),
            None,
        )
    })?;
    let data = &v["data"];
    if data["type"].as_str() != Some(kind.as_str()) {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "Bad request",
            &format!("data.type must be \"{kind}\"."),
            Some("/data/type"),
        ));
    }
    match &data["attributes"] {
        Value::Object(m) => Ok(m.clone()),
        _ => Err(reject(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "data.attributes must be an object.",
            Some("/data/attributes"),
        )),
    }
}

fn mm_refusal(r: mm::Refusal, status: StatusCode) -> Response {
    (
        status,
        axum::Json(json!({ "errors": { r.field: [r.message] } })),
    )
        .into_response()
}

/// Media Manager keeps a season's ordinal unique under its show, and an episode's
/// (ordinal, segment) under its season; the second answers 500 with the field named
/// (pbs-media-manager-php's test: `{"errors":{"meta":{"segment":["Episode with this
/// ordinal and segment already exists."]}}}`).
fn mm_unique(
    inner: &Inner,
    kind: EntityType,
    parent: Option<&str>,
    attributes: &Map<String, Value>,
    except: Option<&str>,
) -> Result<(), (StatusCode, Value)> {
    let text = |a: &Map<String, Value>, n: &str| match a.get(n) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(x)) => x.to_string(),
        _ => String::new(),
    };
    let same = |o: &&Obj| {
        o.kind == kind
            && o.parent.as_deref() == parent
            && Some(o.id.as_str()) != except
            && text(&o.attributes, "ordinal") == text(attributes, "ordinal")
    };
    let siblings = || {
        parent
            .and_then(|p| inner.children.get(p))
            .into_iter()
            .flatten()
            .map(|&i| &inner.objects[i])
    };
    match kind {
        EntityType::Season if siblings().any(|o| same(&o)) => Err((
            StatusCode::BAD_REQUEST,
            json!({"errors": {"ordinal": ["Season with this ordinal already exists for this show."]}}),
        )),
        EntityType::Episode
            if siblings().any(|o| {
                same(&o) && text(&o.attributes, "segment") == text(attributes, "segment")
            }) =>
        {
            Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"errors": {"meta": {"segment": ["Episode with this ordinal and segment already exists."]}}}),
            ))
        }
        _ => Ok(()),
    }
}

fn mm_create(
    shared: &Shared,
    kind: EntityType,
    parent: Option<(EntityType, &str)>,
    body: &[u8],
) -> Response {
    if let Some((parent_kind, parent_id)) = parent {
        let inner = shared.lock();
        let known = inner
            .by_id
            .get(parent_id)
            .is_some_and(|&i| inner.objects[i].kind == parent_kind);
        if !known {
            return not_found();
        }
    }
    let mut attributes = match jsonapi_attributes(body, kind) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = mm::check_write(kind, &mut attributes, mm::Write::Create) {
        return mm_refusal(r, StatusCode::BAD_REQUEST);
    }
    if let Err(r) = refused_title(shared, &attributes, "/data/attributes") {
        return r.into_response();
    }
    let unique = mm_unique(
        &shared.lock(),
        kind,
        parent.map(|(_, p)| p),
        &attributes,
        None,
    );
    if let Err((status, body)) = unique {
        return (status, axum::Json(body)).into_response();
    }
    if kind == EntityType::Asset
        && attributes.get("object_type").and_then(Value::as_str) == Some("full_length")
    {
        // The episode's own title, as Media Manager shows a full-length asset.
        let inner = shared.lock();
        if let Some(title) = parent
            .and_then(|(_, p)| inner.by_id.get(p))
            .and_then(|&i| inner.objects[i].attributes.get("title").cloned())
        {
            attributes.insert("title".into(), title);
        }
    }
    match insert(shared, kind, parent, attributes) {
        Ok(id) => {
            // No body; the new object's edit URL in `location` (header names go out in
            // lowercase; station clients strip the trailing `edit/`).
            let mut r = StatusCode::NO_CONTENT.into_response();
            let location = format!("/api/v1/{kind}s/{id}/edit/");
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Err(r) => r.into_response(),
    }
}

fn mm_update(
    shared: &Shared,
    kind: EntityType,
    id: &str,
    body: &[u8],
    write: mm::Write,
) -> Response {
    let mut attributes = match jsonapi_attributes(body, kind) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = mm::check_write(kind, &mut attributes, write) {
        return mm_refusal(r, StatusCode::BAD_REQUEST);
    }
    if let Err(r) = refused_title(shared, &attributes, "/data/attributes") {
        return r.into_response();
    }
    let files: Vec<(String, Value)> = ["video", "caption"]
        .into_iter()
        .filter_map(|n| attributes.remove(n).map(|v| (n.to_string(), v)))
        .collect();
    attributes.remove("replace");
    if attributes.contains_key("ordinal") || attributes.contains_key("segment") {
        let inner = shared.lock();
        if let Some(&i) = inner.by_id.get(id) {
            let mut after = inner.objects[i].attributes.clone();
            after.extend(attributes.clone());
            let parent = inner.objects[i].parent.clone();
            if let Err((status, body)) =
                mm_unique(&inner, kind, parent.as_deref(), &after, Some(id))
            {
                return (status, axum::Json(body)).into_response();
            }
        }
    }
    if let Err(r) = apply_update(shared, kind, id, attributes) {
        return r.into_response();
    }
    if !files.is_empty() {
        let mut inner = shared.lock();
        if let Some(&i) = inner.by_id.get(id) {
            let o = &mut inner.objects[i];
            for (name, v) in files {
                let source = match name.as_str() {
                    "video" => v["source"].as_str().map(String::from),
                    _ => v.as_str().map(String::from),
                };
                let file = source.map(|source| Ingest {
                    status: if source.rsplit('/').next().is_some_and(|f| f.contains('.')) {
                        "in_progress"
                    } else {
                        "failed"
                    },
                    source,
                });
                match name.as_str() {
                    "video" => o.video = file,
                    _ => o.caption = file,
                }
            }
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

fn rest(shared: &Shared, method: &Method, segs: &[&str], query: &str, body: &[u8]) -> Response {
    let Some(kind) = segs.first().and_then(|c| kind_of_collection(c)) else {
        return error(
            StatusCode::NOT_FOUND,
            "Not found",
            "No such collection.",
            None,
        );
    };
    match (method, &segs[1..]) {
        (&Method::GET, []) => {
            let slug = query_param(query, "slug");
            let parent = query_param(query, "parent_id");
            let inner = shared.lock();
            let items: Vec<Value> = inner
                .objects
                .iter()
                .filter(|o| o.kind == kind && (slug.is_none() || o.slug == slug))
                .filter(|o| parent.is_none() || o.parent == parent)
                .map(|o| json!({"id": o.id, "slug": o.slug, "parent_id": o.parent, "attributes": o.attributes}))
                .collect();
            axum::Json(json!({ "items": items })).into_response()
        }
        (&Method::POST, []) => {
            let v: Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => {
                    return error(StatusCode::BAD_REQUEST, "Bad request", &e.to_string(), None)
                }
            };
            let Value::Object(attributes) = v["attributes"].clone() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Bad request",
                    "attributes must be an object.",
                    Some("/attributes"),
                );
            };
            let parent_id = v["parent_id"].as_str().map(String::from);
            // An asset names its parent's type; the others have one fixed parent type.
            let parent_kind = match kind {
                EntityType::Asset => v["parent_type"].as_str().and_then(|t| t.parse().ok()),
                _ => kind.parent().map(|(t, _)| t),
            };
            let parent = match (parent_kind, parent_id.as_deref()) {
                (None, _) => None,
                (Some(k), Some(id)) => Some((k, id)),
                (Some(_), None) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "Bad request",
                        "parent_id is required.",
                        Some("/parent_id"),
                    )
                }
            };
            match create(shared, kind, parent, attributes, "/attributes") {
                Ok(id) => (StatusCode::CREATED, axum::Json(json!({ "id": id }))).into_response(),
                Err(r) => r.into_response(),
            }
        }
        (&Method::PATCH, [id]) => {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let Value::Object(attributes) = v["attributes"].clone() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Bad request",
                    "attributes must be an object.",
                    Some("/attributes"),
                );
            };
            match update(shared, kind, id, attributes, "/attributes") {
                Ok(()) => StatusCode::OK.into_response(),
                Err(r) => r.into_response(),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "Not found",
            "No such endpoint.",
            None,
        ),
    }
}

/// A strict target's rules: the engine's cell rules for every attribute it knows, a
/// title on every object and a slug on every show.
fn validate(
    kind: EntityType,
    attributes: &Map<String, Value>,
    creating: bool,
    base: &str,
) -> Result<(), Rejection> {
    // A full-length asset takes its episode's title.
    let full_length = attributes.get("object_type").and_then(Value::as_str) == Some("full_length");
    let needs = |name: &str| {
        creating
            && ((name == "title" && !full_length) || (name == "slug" && kind == EntityType::Show))
    };
    for field in kind.fields() {
        let pointer = format!("{base}/{}", field.name);
        match attributes.get(field.name) {
            None | Some(Value::Null) if needs(field.name) => {
                return Err(reject(
                    StatusCode::BAD_REQUEST,
                    "Invalid attribute",
                    &format!("{} is required.", field.name),
                    Some(&pointer),
                ))
            }
            Some(Value::String(s)) => {
                let v = trim(s);
                if v.is_empty() && needs(field.name) {
                    return Err(reject(
                        StatusCode::BAD_REQUEST,
                        "Invalid attribute",
                        &format!("{} is required.", field.name),
                        Some(&pointer),
                    ));
                }
                // Keys are the source system's, not the target's.
                if !v.is_empty() && field.kind != Kind::Key {
                    if let Err(p) = check(field.kind, field.name, v) {
                        return Err(reject(
                            StatusCode::BAD_REQUEST,
                            "Invalid attribute",
                            &p.message,
                            Some(&pointer),
                        ));
                    }
                }
            }
            Some(Value::Number(_)) | None | Some(Value::Null) => {}
            Some(_) => {
                return Err(reject(
                    StatusCode::BAD_REQUEST,
                    "Invalid attribute",
                    &format!("{} must be a string or number.", field.name),
                    Some(&pointer),
                ))
            }
        }
    }
    Ok(())
}

fn refused_title(
    shared: &Shared,
    attributes: &Map<String, Value>,
    base: &str,
) -> Result<(), Rejection> {
    let (Some(refuse), Some(title)) = (
        shared.cfg.refuse_title.as_deref(),
        attributes.get("title").and_then(Value::as_str),
    ) else {
        return Ok(());
    };
    if title.contains(refuse) {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "Invalid attribute",
            &format!("Titles containing \"{refuse}\" are not accepted."),
            Some(&format!("{base}/title")),
        ));
    }
    Ok(())
}

fn create(
    shared: &Shared,
    kind: EntityType,
    parent: Option<(EntityType, &str)>,
    attributes: Map<String, Value>,
    base: &str,
) -> Result<String, Rejection> {
    validate(kind, &attributes, true, base)?;
    refused_title(shared, &attributes, base)?;
    insert(shared, kind, parent, attributes)
}

/// Store a checked object under its parent, and note it in the changelog.
fn insert(
    shared: &Shared,
    kind: EntityType,
    parent: Option<(EntityType, &str)>,
    attributes: Map<String, Value>,
) -> Result<String, Rejection> {
    let mut inner = shared.lock();
    if let Some((parent_kind, parent_id)) = parent {
        let ok = inner
            .by_id
            .get(parent_id)
            .is_some_and(|&i| inner.objects[i].kind == parent_kind);
        if !ok {
            return Err(reject(
                StatusCode::NOT_FOUND,
                "Parent not found",
                &format!("No {parent_kind} with id {parent_id}."),
                None,
            ));
        }
    }
    let n = inner.objects.len() + 1;
    let id = format!("{}-{n:07}", kind.as_str());
    let slug = attributes
        .get("slug")
        .and_then(Value::as_str)
        .map(String::from);
    let index = inner.objects.len();
    inner.by_id.insert(id.clone(), index);
    if let Some((_, p)) = parent {
        inner.children.entry(p.to_string()).or_default().push(index);
    }
    let mut fields: Vec<String> = attributes.keys().cloned().collect();
    fields.sort();
    inner.objects.push(Obj {
        id: id.clone(),
        kind,
        slug,
        parent: parent.map(|(_, p)| p.to_string()),
        attributes,
        video: None,
        caption: None,
    });
    inner.changes.push(Change {
        kind,
        id: id.clone(),
        action: "create",
        at_micros: now_micros(),
        updated_fields: fields,
    });
    Ok(id)
}

fn update(
    shared: &Shared,
    kind: EntityType,
    id: &str,
    changed: Map<String, Value>,
    base: &str,
) -> Result<(), Rejection> {
    validate(kind, &changed, false, base)?;
    refused_title(shared, &changed, base)?;
    apply_update(shared, kind, id, changed)
}

/// Apply a checked update, and note it in the changelog.
fn apply_update(
    shared: &Shared,
    kind: EntityType,
    id: &str,
    changed: Map<String, Value>,
) -> Result<(), Rejection> {
    let mut inner = shared.lock();
    let Some(&i) = inner.by_id.get(id) else {
        return Err(reject(
            StatusCode::NOT_FOUND,
            "Not found",
            "No such object.",
            None,
        ));
    };
    let o = &mut inner.objects[i];
    if o.kind != kind {
        return Err(reject(
            StatusCode::NOT_FOUND,
            "Not found",
            "No such object of this type.",
            None,
        ));
    }
    if let Some(slug) = changed.get("slug").and_then(Value::as_str) {
        o.slug = Some(slug.to_string());
    }
    let mut fields: Vec<String> = changed.keys().cloned().collect();
    fields.sort();
    o.attributes.extend(changed);
    inner.changes.push(Change {
        kind,
        id: id.to_string(),
        action: "update",
        at_micros: now_micros(),
        updated_fields: fields,
    });
    Ok(())
}

fn basic_ok(c: &Credentials, headers: &HeaderMap) -> bool {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{}:{}", c.key, c.secret);
    constant_time_eq(&decoded, expected.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

type HmacSha256 = Hmac<Sha256>;

fn sign(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn issue_jwt(shared: &Shared, client_id: &str) -> (String, u64) {
    let ttl = shared.cfg.token_ttl.as_secs().max(1);
    let now = now_secs();
    let generation = {
        let mut inner = shared.lock();
        inner.stats.tokens_issued += 1;
        inner.token_generation
    };
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"sub": client_id, "iat": now, "exp": now + ttl, "gen": generation});
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(sign(
        &shared.cfg.credentials.jwt_key,
        signing_input.as_bytes(),
    ));
    (format!("{signing_input}.{signature}"), ttl)
}

fn bearer_ok(shared: &Shared, headers: &HeaderMap) -> Result<(), &'static str> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or("A bearer token is required.")?;
    let mut parts = token.trim().split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("The token is not a JWT.");
    };
    let expected = sign(
        &shared.cfg.credentials.jwt_key,
        format!("{h}.{p}").as_bytes(),
    );
    let given = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| "The token's signature is malformed.")?;
    if !constant_time_eq(&expected, &given) {
        return Err("The token's signature is invalid.");
    }
    let claims: Value = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("The token's claims are malformed.")?;
    if claims["exp"].as_u64().is_none_or(|exp| exp <= now_secs()) {
        return Err("The token has expired.");
    }
    if claims["gen"].as_u64() != Some(shared.lock().token_generation) {
        return Err("The token has expired.");
    }
    Ok(())
}

/// OAuth2 client credentials: client id and secret in HTTP Basic or in the form body.
fn token(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let form = String::from_utf8_lossy(body);
    let from_form = |name: &str| query_param(&form, name);
    if from_form("grant_type").as_deref() != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| STANDARD.decode(v.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    let (id, secret) = match basic {
        Some(pair) => pair,
        None => (
            from_form("client_id").unwrap_or_default(),
            from_form("client_secret").unwrap_or_default(),
        ),
    };
    let c = &shared.cfg.credentials;
    if !(constant_time_eq(id.as_bytes(), c.client_id.as_bytes())
        && constant_time_eq(secret.as_bytes(), c.client_secret.as_bytes()))
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let (jwt, ttl) = issue_jwt(shared, &id);
    axum::Json(json!({"access_token": jwt, "token_type": "Bearer", "expires_in": ttl}))
        .into_response()
}
