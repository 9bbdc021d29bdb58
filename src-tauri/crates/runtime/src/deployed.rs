//! The deployed side (AWS Lambda): what the ingest, consume, drain and refresh
//! handlers do, over the same operations as the CLI and the desktop. The handlers
//! (`metasync-lambda`) only turn events into these calls and answers into responses.
//!
//! A function's profile comes from its environment (deploy/template.yaml sets it):
//! `METASYNC_BUCKET`, `METASYNC_TABLE`, `METASYNC_QUEUE_PREFIX`, `METASYNC_KMS_KEY_ID`,
//! `METASYNC_MAX_RECEIVE_COUNT`, `METASYNC_TARGET_DIALECT`, `METASYNC_TARGET_URL`,
//! `METASYNC_TARGET_TOKEN_URL`, `METASYNC_TARGET_QUOTA`, `METASYNC_TARGET_BURST`,
//! `METASYNC_TARGET_ACCESS`, `METASYNC_TARGET_TIMEOUT_SECONDS`, `METASYNC_BATCH_SIZE`,
//! `MAX_RETRIES`, `BASE_DELAY_SECONDS`; the target's credentials from the Secrets
//! Manager secret `METASYNC_TARGET_SECRET_ID`, read once per process.

use crate::env::{Chosen, Connected, Env, RuntimeError};
use crate::ops::{self, SyncRequest};
use metasync_engine::config::{self, AwsProfile, BackendProfile};
use metasync_engine::pipeline::consume::{drain_dead_letters, Worker, WorkerConfig};
use metasync_engine::pipeline::land::{date_of, Landed};
use metasync_engine::pipeline::plan::{self, Action, PlanOptions};
use metasync_engine::pipeline::record::sha256_hex;
use metasync_engine::pipeline::summary::Outcome;
use metasync_engine::pipeline::sync::{new_run_id, Cancel};
use metasync_engine::ports::{
    Clock, Lane, Receipt, Received, RecordKey, Run, RunKind, SystemClock,
};
use metasync_engine::ratelimit::QuotaStats;
use metasync_engine::{validate, EntityType};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Which handler a function runs (`METASYNC_HANDLER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// `s3:ObjectCreated` under `incoming/`: validate, land, enqueue.
    Ingest,
    /// One type's SQS FIFO queue (`METASYNC_ENTITY`).
    Consume(EntityType),
    /// On a schedule: dead letters into the failure store.
    Drain,
    /// On the daily schedule: the files under `METASYNC_REFRESH_PREFIX` again.
    Refresh,
}

/// Files staff upload arrive under this prefix (the template's S3 event filter).
pub const INCOMING_PREFIX: &str = "incoming/";
/// Records per message when the function does not say.
pub const DEFAULT_BATCH_SIZE: usize = 10;
/// Records of a message a consumer calls the target for at once (its batch stays in
/// order; the records of one message have no order among themselves). The target
/// profile's `concurrency` bounds the calls in flight.
pub const RECORDS_AT_ONCE: usize = 8;
/// The name the deployed side's runs carry as their profile.
pub const PROFILE_NAME: &str = "lambda";

/// A function's settings, read from its environment.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub handler: Handler,
    pub chosen: Chosen,
    /// The Secrets Manager secret holding `{"key": …, "secret": …}`.
    pub secret_id: Option<String>,
    pub refresh_prefix: String,
    pub batch_size: usize,
    /// Recorded with runs and failures: the function's name.
    pub who: String,
}

impl Deployment {
    /// Read the settings through `var` (the process environment, or a test's map).
    /// A missing or wrong setting is named, as a profile's would be.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, RuntimeError> {
        let get = |k: &str| {
            var(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let need = |k: &str| {
            get(k)
                .ok_or_else(|| RuntimeError::Unusable(format!("{k} is not set for this function")))
        };
        let handler = match need("METASYNC_HANDLER")?.as_str() {
            "ingest" => Handler::Ingest,
            "drain" => Handler::Drain,
            "refresh" => Handler::Refresh,
            "consume" => {
                let name = need("METASYNC_ENTITY")?;
                let entity = EntityType::ALL
                    .into_iter()
                    .find(|e| e.as_str() == name)
                    .ok_or_else(|| {
                        RuntimeError::Unusable(format!(
                            "METASYNC_ENTITY {name:?} is not a type: show, season, episode or asset"
                        ))
                    })?;
                Handler::Consume(entity)
            }
            other => {
                return Err(RuntimeError::Unusable(format!(
                    "METASYNC_HANDLER {other:?} is not a handler: ingest, consume, drain or refresh"
                )))
            }
        };
        // The settings become a profile and go through the same checks as
        // metasync.toml's (names AWS would refuse, URLs, quotas, retries).
        let mut doc = toml_edit::DocumentMut::new();
        let mut p = toml_edit::Table::new();
        p["backend"] = toml_edit::value("aws");
        p["consumers"] = toml_edit::value("lambda");
        for (key, var_name) in [
            ("bucket", "METASYNC_BUCKET"),
            ("table", "METASYNC_TABLE"),
            ("queue_prefix", "METASYNC_QUEUE_PREFIX"),
        ] {
            p[key] = toml_edit::value(need(var_name)?);
        }
        for (key, var_name) in [
            ("region", "AWS_REGION"),
            ("endpoint_url", "METASYNC_ENDPOINT_URL"),
            ("kms_key_id", "METASYNC_KMS_KEY_ID"),
        ] {
            if let Some(v) = get(var_name) {
                p[key] = toml_edit::value(v);
            }
        }
        let number = |k: &str| -> Result<Option<f64>, RuntimeError> {
            get(k)
                .map(|v| {
                    v.parse::<f64>()
                        .map_err(|_| RuntimeError::Unusable(format!("{k} {v:?} is not a number")))
                })
                .transpose()
        };
        if let Some(n) = number("METASYNC_MAX_RECEIVE_COUNT")? {
            p["max_receive_count"] = toml_edit::value(n as i64);
        }
        let mut t = toml_edit::Table::new();
        t["dialect"] = toml_edit::value(need("METASYNC_TARGET_DIALECT")?);
        t["url"] = toml_edit::value(need("METASYNC_TARGET_URL")?);
        if let Some(v) = get("METASYNC_TARGET_TOKEN_URL") {
            t["token_url"] = toml_edit::value(v);
        }
        if let Some(v) = get("METASYNC_TARGET_ACCESS") {
            t["access"] = toml_edit::value(v);
        }
        if let Some(q) = number("METASYNC_TARGET_QUOTA")? {
            t["quota"] = toml_edit::value(q);
        }
        if let Some(b) = number("METASYNC_TARGET_BURST")? {
            t["burst"] = toml_edit::value(b as i64);
        }
        if let Some(s) = number("METASYNC_TARGET_TIMEOUT_SECONDS")? {
            t["timeout_seconds"] = toml_edit::value(s);
        }
        p["target"] = toml_edit::Item::Table(t);
        let mut profiles = toml_edit::Table::new();
        profiles[PROFILE_NAME] = toml_edit::Item::Table(p);
        doc["profiles"] = toml_edit::Item::Table(profiles);
        let profile = config::parse_profile(
            Path::new("the function's environment"),
            &doc.to_string(),
            PROFILE_NAME,
            &var,
        )
        .map_err(RuntimeError::unusable)?;
        let batch_size = match number("METASYNC_BATCH_SIZE")? {
            None => DEFAULT_BATCH_SIZE,
            Some(n) if (1.0..=100.0).contains(&n) => n as usize,
            Some(_) => {
                return Err(RuntimeError::Unusable(
                    "METASYNC_BATCH_SIZE must be between 1 and 100 records per message".into(),
                ))
            }
        };
        Ok(Self {
            handler,
            chosen: Chosen {
                label: format!("the deployed profile ({})", PROFILE_NAME),
                name: Some(PROFILE_NAME.into()),
                production: profile.production,
                backend: profile.backend,
                target: profile.target,
            },
            secret_id: get("METASYNC_TARGET_SECRET_ID"),
            refresh_prefix: get("METASYNC_REFRESH_PREFIX")
                .unwrap_or_else(|| INCOMING_PREFIX.into()),
            batch_size,
            who: get("AWS_LAMBDA_FUNCTION_NAME")
                .map_or_else(|| "aws lambda".into(), |f| format!("aws lambda {f}")),
        })
    }

    pub fn aws(&self) -> Option<&AwsProfile> {
        match &self.chosen.backend {
            BackendProfile::Aws(a) => Some(a),
            BackendProfile::Local { .. } => None,
        }
    }
}

/// An S3 event's object key as stored: S3 sends keys form-encoded (`+` for a space,
/// `%XX` for other bytes; AWS Lambda developer guide, "Using AWS Lambda with Amazon
/// S3": "the object key name is URL encoded"). `None` for bytes that are not UTF-8.
pub fn decode_s3_key(raw: &str) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b'%' => return None,
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The upload folder of an object key, with its trailing `/` (empty at the top).
fn folder_of(key: &str) -> &str {
    key.rfind('/').map_or("", |i| &key[..=i])
}

/// A CSV staff uploaded (not an errors CSV Metasync wrote beside one).
fn is_catalog_csv(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with(".csv") && !key.ends_with(".errors.csv")
}

/// What an ingest did with one object.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub key: String,
    /// `enqueued`, `unusable` (nothing sent; its errors CSV beside its bronze file),
    /// `unchanged` (a refresh found nothing to send: nothing landed, no run), or
    /// `skipped` (not a catalog CSV).
    pub outcome: &'static str,
    pub run_id: Option<String>,
    pub rows: u64,
    pub unchanged: u64,
    pub rejected: u64,
    pub enqueued: u64,
    pub landed: Landed,
    /// The errors CSV of an unusable file.
    pub errors_csv: Option<String>,
}

/// What one consume invocation did with its batch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConsumeReport {
    /// Message ids to report in `batchItemFailures` (the first unresolved one and every
    /// later one).
    pub failed: Vec<String>,
    pub synced: u64,
    pub record_failures: u64,
    /// What stopped the batch early, if anything (a store down, refused credentials).
    pub error: Option<String>,
    /// The shared quota's cost so far in this process.
    pub quota: Option<QuotaStats>,
}

/// A function's opened profile: its stores, and its target connected once per process
/// (credentials from Secrets Manager are read then and kept while the process lives).
pub struct Deployed {
    pub deployment: Deployment,
    pub env: Env,
    target: tokio::sync::OnceCell<Connected>,
    /// Target ids of parents this process has seen, kept between invocations (a
    /// record's target id never changes once set): a parent is read once per process,
    /// not once per batch. Bounded: cleared when it grows past [`MAX_KNOWN_IDS`].
    known: std::sync::Mutex<std::collections::HashMap<RecordKey, String>>,
}

/// Target ids a consumer process keeps between invocations.
pub const MAX_KNOWN_IDS: usize = 200_000;

impl Deployed {
    /// Open the stores with the clients given (the function's role, or an emulator's
    /// keys) and, for handlers that call the target, read its credentials.
    pub async fn open(
        deployment: Deployment,
        clients: &metasync_aws::Clients,
    ) -> Result<Self, RuntimeError> {
        let mut env = crate::env::open_aws(deployment.chosen.clone(), clients)?;
        if deployment.handler != Handler::Drain {
            env.credentials = Some(read_secret(&deployment, clients).await?);
        }
        Ok(Self {
            deployment,
            env,
            target: tokio::sync::OnceCell::new(),
            known: std::sync::Mutex::default(),
        })
    }

    async fn target(&self) -> Result<&Connected, RuntimeError> {
        self.target.get_or_try_init(|| self.env.connect()).await
    }

    /// The shared quota's cost so far in this process (once the target is connected).
    pub fn quota_stats(&self) -> Option<QuotaStats> {
        self.target.get().and_then(|t| t.limiter.shared_stats())
    }

    /// A queue receipt of this function's queue, from an event's receipt handle.
    pub fn receipt(&self, entity: EntityType, handle: String) -> Receipt {
        Receipt {
            queue: self.env.backend.queue(entity).name().to_string(),
            lane: Lane::Main,
            handle,
        }
    }

    /// Validate, land and enqueue one uploaded object (its key decoded already).
    pub async fn ingest(&self, key: &str) -> Result<IngestReport, RuntimeError> {
        self.ingest_as(key, false, &mut HashMap::new()).await
    }

    /// [`ingest`](Self::ingest); with `only_if_changed` (the refresh), a file whose
    /// records are all unchanged (or that is not a catalog CSV: it was reported when it
    /// was uploaded) lands nothing and records no run, so a daily refresh of the same
    /// exports does not copy them into bronze and silver every day. `folders` keeps the
    /// parents of each upload folder already read (a refresh reads each folder once,
    /// not once per file in it).
    async fn ingest_as(
        &self,
        key: &str,
        only_if_changed: bool,
        folders: &mut HashMap<String, Arc<HashSet<RecordKey>>>,
    ) -> Result<IngestReport, RuntimeError> {
        let skipped = |why: &str| {
            tracing::info!(stage = "ingest", key, "{why}; skipped");
            IngestReport {
                key: key.to_string(),
                outcome: "skipped",
                run_id: None,
                rows: 0,
                unchanged: 0,
                rejected: 0,
                enqueued: 0,
                landed: Landed::default(),
                errors_csv: None,
            }
        };
        if !is_catalog_csv(key) {
            return Ok(skipped("not a catalog CSV"));
        }
        // Credentials or settings that cannot work fail the invocation here, before
        // the file could be mistaken for a bad one.
        self.target().await?;
        let objects = self.env.backend.objects.as_ref();
        let Some(object) = objects.get(key).await.map_err(RuntimeError::failed)? else {
            return Ok(skipped("gone before it was read"));
        };
        // The engine reads files: the object goes to the function's scratch space
        // under its own name, and is removed after.
        let name = key.rsplit('/').next().unwrap_or("upload.csv");
        let dir = std::env::temp_dir().join(format!("metasync-ingest-{}", new_run_id()));
        std::fs::create_dir_all(&dir).map_err(RuntimeError::failed)?;
        let path = dir.join(name);
        let result = async {
            std::fs::write(&path, &object.body).map_err(RuntimeError::failed)?;
            let elsewhere = match folders.get(folder_of(key)) {
                Some(parents) => parents.clone(),
                None => {
                    let parents = Arc::new(self.folder_parents(key, &path, &dir).await?);
                    folders.insert(folder_of(key).to_string(), parents.clone());
                    parents
                }
            };
            if only_if_changed {
                let opts = PlanOptions {
                    validate: validate::Options::default(),
                    keep_rejected: false,
                    access: self.env.access(),
                    parents_elsewhere: Some(elsewhere.clone()),
                };
                let mut to_send = 0u64;
                let planned = plan::plan(
                    std::slice::from_ref(&path),
                    &opts,
                    self.env.backend.state.as_ref(),
                    |p| {
                        if matches!(p.action, Action::New | Action::Changed | Action::Resolve) {
                            to_send += 1;
                        }
                    },
                )
                .await
                .map_err(RuntimeError::failed)?;
                let usable = planned
                    .validation
                    .files
                    .iter()
                    .all(|(_, o)| !matches!(o, validate::FileOutcome::Unusable(_)));
                if to_send == 0 {
                    return Ok(Err(IngestReport {
                        key: key.to_string(),
                        outcome: if usable { "unchanged" } else { "skipped" },
                        run_id: None,
                        rows: planned.counts.rows,
                        unchanged: planned.counts.unchanged,
                        rejected: planned.counts.rejected,
                        enqueued: 0,
                        landed: Landed::default(),
                        errors_csv: None,
                    }));
                }
            }
            let req = SyncRequest {
                files: vec![path.clone()],
                batch_size: self.deployment.batch_size,
                limit: None,
                rank_by: None,
                wait: false,
                concurrency: 1,
                who: self.deployment.who.clone(),
                parents_elsewhere: Some(elsewhere),
            };
            ops::sync_with(
                &self.env,
                &req,
                validate::Options::default(),
                Cancel::default(),
                &|_| {},
            )
            .await
            .map(Ok)
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        match result {
            Ok(Err(nothing_to_do)) => {
                tracing::info!(
                    stage = "refresh",
                    key,
                    rows = nothing_to_do.rows,
                    "nothing changed; nothing landed"
                );
                Ok(nothing_to_do)
            }
            Ok(Ok(r)) => {
                let s = &r.summary;
                tracing::info!(stage = "ingest", key, run_id = %s.run_id, rows = s.rows, rejected = s.rejected, enqueued = s.queued, "ingested");
                Ok(IngestReport {
                    key: key.to_string(),
                    outcome: "enqueued",
                    run_id: Some(s.run_id.clone()),
                    rows: s.rows,
                    unchanged: s.unchanged,
                    rejected: s.rejected,
                    enqueued: s.queued,
                    landed: r.landed,
                    errors_csv: None,
                })
            }
            Err(RuntimeError::Unusable(problem)) => {
                self.reject_file(key, object.body, problem).await
            }
            Err(e) => Err(e),
        }
    }

    /// The files of one upload folder are one export: a record's parent may be in
    /// another of them, ingested before or after this one. The valid records of the
    /// folder's other CSVs (planned together with this file against the state, so a
    /// parent row that is rejected there stays unknown here and its children are
    /// blocked, as in one sync of all the files) are the parents that may follow.
    async fn folder_parents(
        &self,
        key: &str,
        this: &Path,
        scratch: &Path,
    ) -> Result<HashSet<RecordKey>, RuntimeError> {
        let folder = folder_of(key);
        let objects = self.env.backend.objects.as_ref();
        let mut paths = vec![this.to_path_buf()];
        for (i, o) in objects
            .list(folder)
            .await
            .map_err(RuntimeError::failed)?
            .into_iter()
            .enumerate()
        {
            let rest = &o.key[folder.len()..];
            if o.key == key || rest.contains('/') || !is_catalog_csv(&o.key) {
                continue;
            }
            let Some(body) = objects.get(&o.key).await.map_err(RuntimeError::failed)? else {
                continue;
            };
            let path = scratch.join(format!("sibling-{i}-{rest}"));
            std::fs::write(&path, body.body).map_err(RuntimeError::failed)?;
            paths.push(path);
        }
        let mut keys = HashSet::new();
        if paths.len() == 1 {
            return Ok(keys);
        }
        let opts = PlanOptions {
            validate: validate::Options::default(),
            keep_rejected: false,
            access: self.env.access(),
            parents_elsewhere: None,
        };
        plan::plan(&paths, &opts, self.env.backend.state.as_ref(), |p| {
            if p.record.entity != EntityType::Asset
                && !matches!(p.action, Action::Blocked | Action::NotWritable)
            {
                keys.insert(p.record.record_key());
            }
        })
        .await
        .map_err(RuntimeError::failed)?;
        Ok(keys)
    }

    /// A file that cannot be read as a catalog CSV: its bytes to bronze, its errors CSV
    /// beside them, and a run that says why, so staff find it in the app's Runs.
    async fn reject_file(
        &self,
        key: &str,
        raw: Vec<u8>,
        problem: String,
    ) -> Result<IngestReport, RuntimeError> {
        let started = SystemClock.now_ms();
        let run_id = new_run_id();
        let sha = sha256_hex(&raw);
        let base = format!("bronze/unusable/date={}/{run_id}/{sha}", date_of(started));
        let objects = self.env.backend.objects.as_ref();
        let bronze = format!("{base}.csv");
        objects
            .put_if_absent(&bronze, raw, "text/csv")
            .await
            .map_err(RuntimeError::failed)?;
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.write_record(["file", "problem"])
            .and_then(|()| csv.write_record([key, problem.as_str()]))
            .map_err(RuntimeError::failed)?;
        let errors = format!("{base}.errors.csv");
        let body = csv.into_inner().map_err(RuntimeError::failed)?;
        objects
            .put(&errors, body, "text/csv")
            .await
            .map_err(RuntimeError::failed)?;
        let run = Run {
            id: run_id.clone(),
            kind: RunKind::Sync,
            profile: PROFILE_NAME.into(),
            note: Some(format!("{key} was not synced: {problem}")),
            who: self.deployment.who.clone(),
            started_at_ms: started,
            finished_at_ms: Some(SystemClock.now_ms()),
            file_hashes: vec![sha],
            counts: BTreeMap::from([("rows".into(), 0), ("rejected_files".into(), 1)]),
        };
        self.env
            .backend
            .state
            .put_run(&run)
            .await
            .map_err(RuntimeError::failed)?;
        tracing::warn!(stage = "ingest", key, run_id = %run_id, %problem, "file rejected; its errors are beside its bronze copy");
        Ok(IngestReport {
            key: key.to_string(),
            outcome: "unusable",
            run_id: Some(run_id),
            rows: 0,
            unchanged: 0,
            rejected: 0,
            enqueued: 0,
            landed: Landed {
                bronze: vec![bronze],
                ..Landed::default()
            },
            errors_csv: Some(errors),
        })
    }

    /// Work one SQS batch of this function's type in order (see
    /// [`Worker::work_in_order`]): never an error for the whole batch.
    pub async fn consume(&self, entity: EntityType, msgs: &[Received]) -> ConsumeReport {
        let target = match self.target().await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(stage = "consume", error = %e, "cannot reach the target; the batch comes back");
                return ConsumeReport {
                    failed: msgs.iter().map(|m| m.message_id.clone()).collect(),
                    error: Some(e.to_string()),
                    ..ConsumeReport::default()
                };
            }
        };
        let (synced, failed) = (AtomicU64::new(0), AtomicU64::new(0));
        let on_event = |e: &metasync_engine::pipeline::consume::Event| match e.outcome {
            Outcome::Failed => {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Created | Outcome::Updated | Outcome::Synced | Outcome::Unchanged => {
                synced.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        };
        let cfg = WorkerConfig {
            owner: self.deployment.who.clone(),
            retry: target.retry,
            access: target.access,
            records_at_once: RECORDS_AT_ONCE,
            ..WorkerConfig::default()
        };
        let worker = Worker::new(
            &self.env.backend,
            &target.client,
            &target.limiter,
            cfg,
            &on_event,
        );
        let kept = std::mem::take(&mut *self.known.lock().unwrap_or_else(|e| e.into_inner()));
        worker.swap_known(kept);
        let queue = self.env.backend.queue(entity).as_ref();
        let done = worker.work_in_order(queue, msgs).await;
        let mut known = worker.swap_known(std::collections::HashMap::new());
        if known.len() > MAX_KNOWN_IDS {
            known.clear();
        }
        *self.known.lock().unwrap_or_else(|e| e.into_inner()) = known;
        if let Some(e) = &done.stopped {
            tracing::error!(stage = "consume", entity = entity.as_str(), error = %e, reported = done.failed.len(), "batch stopped early; the rest comes back");
        }
        ConsumeReport {
            failed: done.failed,
            synced: synced.into_inner(),
            record_failures: failed.into_inner(),
            error: done.stopped.map(|e| e.to_string()),
            quota: target.limiter.shared_stats(),
        }
    }

    /// Move every dead letter into the failure store; records filed per type.
    pub async fn drain(&self) -> Result<BTreeMap<String, u64>, RuntimeError> {
        let mut filed = BTreeMap::new();
        for entity in EntityType::ALL {
            let n = drain_dead_letters(&self.env.backend, entity, &|_| {})
                .await
                .map_err(RuntimeError::failed)?;
            filed.insert(entity.as_str().to_string(), n);
        }
        Ok(filed)
    }

    /// Ingest every CSV under the refresh prefix again: unchanged records cost no call,
    /// so the catalog follows the latest exports. One file's problem does not stop the
    /// others.
    pub async fn refresh(&self) -> Result<Vec<Result<IngestReport, String>>, RuntimeError> {
        let prefix = &self.deployment.refresh_prefix;
        let mut keys: Vec<String> = self
            .env
            .backend
            .objects
            .list(prefix)
            .await
            .map_err(RuntimeError::failed)?
            .into_iter()
            .map(|o| o.key)
            .collect();
        keys.sort();
        let mut out = Vec::new();
        let mut folders = HashMap::new();
        for key in keys {
            let r = self.ingest_as(&key, true, &mut folders).await;
            if let Err(e) = &r {
                tracing::error!(stage = "refresh", key, error = %e, "file not refreshed");
            }
            out.push(r.map_err(|e| e.to_string()));
        }
        Ok(out)
    }
}

/// The target's credentials from Secrets Manager, or (with no secret named) from
/// `METASYNC_TARGET_KEY` / `METASYNC_TARGET_SECRET`.
async fn read_secret(
    deployment: &Deployment,
    clients: &metasync_aws::Clients,
) -> Result<metasync_catalog_client::credentials::Credentials, RuntimeError> {
    use metasync_catalog_client::{credentials::Credentials, Secret};
    let Some(id) = &deployment.secret_id else {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        return match (
            var(metasync_catalog_client::credentials::ENV_KEY),
            var(metasync_catalog_client::credentials::ENV_SECRET),
        ) {
            (Some(key), Some(secret)) => Ok(Credentials {
                key: Secret::new(key),
                secret: Secret::new(secret),
            }),
            _ => Err(RuntimeError::Unusable(
                "no target credentials: set METASYNC_TARGET_SECRET_ID to a Secrets Manager secret"
                    .into(),
            )),
        };
    };
    secret_pair(clients, id).await
}

#[cfg(feature = "secrets")]
async fn secret_pair(
    clients: &metasync_aws::Clients,
    id: &str,
) -> Result<metasync_catalog_client::credentials::Credentials, RuntimeError> {
    let pair = metasync_aws::secrets::key_pair(&clients.config, id)
        .await
        .map_err(RuntimeError::unusable)?;
    tracing::info!(stage = "connect", "target credentials from Secrets Manager");
    Ok(metasync_catalog_client::credentials::Credentials {
        key: metasync_catalog_client::Secret::new(pair.key),
        secret: metasync_catalog_client::Secret::new(pair.secret),
    })
}

#[cfg(not(feature = "secrets"))]
async fn secret_pair(
    _: &metasync_aws::Clients,
    id: &str,
) -> Result<metasync_catalog_client::credentials::Credentials, RuntimeError> {
    Err(RuntimeError::Unusable(format!(
        "this build reads no Secrets Manager secret ({id}): build with the `secrets` feature"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn s3_keys_arrive_form_encoded() {
        assert_eq!(
            decode_s3_key("incoming/Episodes+Fall+2026%282%29.csv").as_deref(),
            Some("incoming/Episodes Fall 2026(2).csv")
        );
        assert_eq!(
            decode_s3_key("incoming/caf%C3%A9.csv").as_deref(),
            Some("incoming/café.csv")
        );
        assert_eq!(decode_s3_key("a%2Bb.csv").as_deref(), Some("a+b.csv"));
        assert_eq!(decode_s3_key("bad%zz.csv"), None);
        assert_eq!(decode_s3_key("cut%4"), None);
        assert_eq!(decode_s3_key("%FF.csv"), None, "not UTF-8");
    }

    fn vars(extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = [
            ("METASYNC_HANDLER", "consume"),
            ("METASYNC_ENTITY", "episode"),
            ("METASYNC_BUCKET", "cat-123-us-east-1"),
            ("METASYNC_TABLE", "cat"),
            ("METASYNC_QUEUE_PREFIX", "cat"),
            ("METASYNC_TARGET_DIALECT", "media_manager"),
            (
                "METASYNC_TARGET_URL",
                "https://media.services.pbs.org/api/v1",
            ),
            ("METASYNC_TARGET_QUOTA", "100"),
            ("METASYNC_TARGET_ACCESS", "station"),
            ("MAX_RETRIES", "4"),
            ("AWS_LAMBDA_FUNCTION_NAME", "metasync-episode"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    fn parse(m: &HashMap<String, String>) -> Result<Deployment, RuntimeError> {
        Deployment::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn a_function_environment_is_a_profile_checked_like_any_other() {
        let d = parse(&vars(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.handler, Handler::Consume(EntityType::Episode));
        let aws = d.aws().expect("aws");
        assert_eq!(
            aws.queue_name(EntityType::Episode, false),
            "cat-episode.fifo"
        );
        assert_eq!(aws.consumers, config::Consumers::Lambda);
        let t = d.chosen.target.as_ref().expect("target");
        assert_eq!(t.limiter.quota, Some(100.0));
        assert_eq!(t.retry.max_retries, 4, "MAX_RETRIES reaches the policy");
        assert_eq!(d.who, "aws lambda metasync-episode");
        assert_eq!(d.refresh_prefix, INCOMING_PREFIX);

        let wrong = |extra: &[(&str, &str)]| match parse(&vars(extra)) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted {extra:?}"),
        };
        assert!(wrong(&[("METASYNC_HANDLER", "eat")]).contains("METASYNC_HANDLER"));
        assert!(wrong(&[("METASYNC_ENTITY", "clip")]).contains("METASYNC_ENTITY"));
        assert!(wrong(&[("METASYNC_BUCKET", "Not_A_Bucket")]).contains("bucket"));
        assert!(wrong(&[("METASYNC_TARGET_QUOTA", "fast")]).contains("METASYNC_TARGET_QUOTA"));
        assert!(wrong(&[("METASYNC_TARGET_URL", "ftp://x")]).contains("target.url"));
        let mut m = vars(&[]);
        m.remove("METASYNC_TABLE");
        assert!(parse(&m)
            .err()
            .is_some_and(|e| e.to_string().contains("METASYNC_TABLE")));
    }
}
