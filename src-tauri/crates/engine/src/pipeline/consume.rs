//! Consume: workers receive messages, process their records in group order and write
//! the outcome to the sync state. For each record: skip it if the state already holds
//! its hash; wait (the message comes back later) while its parent has no target id;
//! create or update only the changed fields; record target id and hash.
//!
//! Nothing created twice: an earlier attempt may have reached the target when the
//! message was received before (a crash between the call and the state write), when a
//! transient failure hit a create (a timeout after the target did the work), or when
//! triage sends a record again. Only then does a create first find the object again
//! ([`Identity`]); a clean first attempt spends no lookup. The receive count is the
//! intent marker, so no per-record in-progress write is needed: one state write per
//! record.
//!
//! A message is deleted only when every record in it is resolved (synced, unchanged or
//! failed for good); while it is worked on, its visibility is extended so no second
//! worker takes it.

use super::enqueue::{Message, QueuedRecord};
use super::record::CanonicalRecord;
use super::summary::{FailureCode, Outcome};
use crate::gen::Rng;
use crate::ports::{
    Backend, Expect, Lane, LastError, Queue, Receipt, Received, Record, RecordKey, RecordStatus,
    StoreError, Written, MAX_BATCH_ENTRIES, MAX_BATCH_GET, MAX_RECEIVE,
};
use crate::ratelimit::RateLimiter;
use crate::retry::RetryPolicy;
use crate::target::{call_with_retries, Access, CallError, Target, TargetId};
use crate::EntityType;
use futures_util::future::{join_all, select, Either};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Messages in flight per queue: three receives of ten. A group with a message in
/// flight hands out nothing, so this stays below the
/// [`LANES`](super::enqueue::LANES) groups of a type: when a receive loop has finished
/// its ten, ten groups are free again and its next receive comes back full (more loops
/// would mostly poll locked groups, paying receives for nothing). Thirty messages of
/// ten records keep far more calls ready than a quota of a few hundred a second needs.
pub const DEFAULT_CONCURRENCY: usize = 30;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Who is working (recorded with failures).
    pub owner: String,
    /// Messages worked on at once per queue (each a different group); every receive
    /// loop holds up to ten. See [`DEFAULT_CONCURRENCY`].
    pub concurrency: usize,
    /// How long a received message stays hidden; extended while it is worked on.
    pub visibility: Duration,
    /// Long poll of one receive.
    pub wait: Duration,
    pub retry: RetryPolicy,
    /// What the target's credentials may write: objects of a type they may not create
    /// are looked up, never created; changes they may not make fail without a call.
    pub access: Access,
    /// Records of one message worked side by side. A worker that receives many groups
    /// at once keeps 1; a Lambda consumer, which works its batch in order, uses more
    /// to keep up with its share of the quota.
    pub records_at_once: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            owner: "metasync".into(),
            concurrency: DEFAULT_CONCURRENCY,
            visibility: Duration::from_secs(60),
            wait: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            access: Access::default(),
            records_at_once: 1,
        }
    }
}

/// What happened to one record, as the worker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub run_id: String,
    pub key: RecordKey,
    pub outcome: Outcome,
    /// Set for a record that was already resolved when it was received again.
    pub already: bool,
    /// Target calls this record took (lookups included) and how many were 429s.
    pub calls: u32,
    pub throttled: u32,
    /// Time of the successful write call, for latency percentiles.
    pub latency: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the target refused the credentials; the worker stopped: {0}")]
    Auth(String),
}

/// The record could not be resolved now; the message comes back after `after`.
struct Later {
    after: Duration,
}

pub struct Worker<'a, T: Target> {
    backend: &'a Backend,
    target: &'a T,
    limiter: &'a RateLimiter,
    cfg: WorkerConfig,
    /// Target ids known to this worker (parents synced here, or read once).
    ids: Mutex<HashMap<RecordKey, String>>,
    jitter: Mutex<Rng>,
    stopped: Mutex<Option<String>>,
    cancelled: AtomicBool,
    on_event: &'a (dyn Fn(&Event) + Send + Sync),
}

impl<'a, T: Target> Worker<'a, T> {
    pub fn new(
        backend: &'a Backend,
        target: &'a T,
        limiter: &'a RateLimiter,
        cfg: WorkerConfig,
        on_event: &'a (dyn Fn(&Event) + Send + Sync),
    ) -> Self {
        Self {
            backend,
            target,
            limiter,
            cfg,
            ids: Mutex::default(),
            jitter: Mutex::new(Rng::new(crate::ports::jitter_seed())),
            stopped: Mutex::new(None),
            cancelled: AtomicBool::new(false),
            on_event,
        }
    }

    /// Target ids the caller already knows (the plan read them).
    pub fn know(&self, ids: impl IntoIterator<Item = (RecordKey, String)>) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(ids);
    }

    /// Hand over the target ids this worker knows (parents it synced or read) for
    /// `ids`, without copying: a caller keeps them across workers (a Lambda process,
    /// invocation after invocation).
    pub fn swap_known(&self, ids: HashMap<RecordKey, String>) -> HashMap<RecordKey, String> {
        std::mem::replace(
            &mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()),
            ids,
        )
    }

    /// Stop receiving; messages in hand are finished.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    fn unit(&self) -> f64 {
        self.jitter.lock().unwrap_or_else(|e| e.into_inner()).unit()
    }

    fn auth_stopped(&self) -> Result<(), WorkerError> {
        match &*self.stopped.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(m) => Err(WorkerError::Auth(m.clone())),
            None => Ok(()),
        }
    }

    /// Work one type's queue. With `until_empty`, return once the queue holds nothing
    /// visible or in flight; else keep polling until cancelled.
    pub async fn run(&self, entity: EntityType, until_empty: bool) -> Result<(), WorkerError> {
        let queue = self.backend.queue(entity).as_ref();
        let n = self.cfg.concurrency.div_ceil(MAX_RECEIVE).max(1);
        let loops = Loops {
            active: AtomicUsize::new(n),
            draining: AtomicBool::new(false),
        };
        let work = (0..n).map(|_| self.receive_loop(queue, until_empty, &loops));
        for r in join_all(work).await {
            r?;
        }
        self.auth_stopped()
    }

    /// With `until_empty`, the tail of a queue is polled by one loop, not by all: a
    /// receive that comes back short means the queue is draining, and from then on a
    /// loop that is not the last leaves instead of receiving again. The last one stays
    /// for messages still in flight or coming back (a parent not synced yet, a
    /// visibility timeout) and returns once the queue holds nothing at all.
    async fn receive_loop(
        &self,
        queue: &dyn Queue,
        until_empty: bool,
        loops: &Loops,
    ) -> Result<(), WorkerError> {
        loop {
            self.auth_stopped()?;
            if self.cancelled.load(Ordering::SeqCst) {
                return Ok(());
            }
            if until_empty && loops.draining.load(Ordering::SeqCst) && loops.leave_unless_last() {
                return Ok(());
            }
            let msgs = queue
                .receive(Lane::Main, MAX_RECEIVE, self.cfg.visibility, self.cfg.wait)
                .await?;
            if msgs.len() < MAX_RECEIVE {
                loops.draining.store(true, Ordering::SeqCst);
            }
            if msgs.is_empty() {
                if until_empty {
                    if loops.leave_unless_last() {
                        return Ok(());
                    }
                    let d = queue.depth().await?;
                    if d.visible == 0 && d.in_flight == 0 {
                        return Ok(());
                    }
                }
                continue;
            }
            self.work_batch(queue, msgs).await?;
        }
    }

    /// Process received messages: groups side by side, a group's messages in order,
    /// visibility extended while it takes.
    async fn work_batch(&self, queue: &dyn Queue, msgs: Vec<Received>) -> Result<(), WorkerError> {
        let mut parsed: Vec<(Received, Message)> = Vec::new();
        for m in msgs {
            match serde_json::from_str::<Message>(&m.body) {
                Ok(body) => parsed.push((m, body)),
                // Not ours to read: straight to the dead-letter queue, where the drainer
                // files it for staff.
                Err(_) => unless_stale(queue.send_to_dead_letter(&m).await)?,
            }
        }
        let states = self.read_batch(parsed.iter().map(|(_, b)| b)).await?;
        let mut groups: Vec<Vec<&(Received, Message)>> = Vec::new();
        for m in &parsed {
            match groups.iter_mut().find(|g| g[0].0.group_id == m.0.group_id) {
                Some(g) => g.push(m),
                None => groups.push(vec![m]),
            }
        }
        let states = &states;
        let work = join_all(groups.into_iter().map(|g| async move {
            let mut out = Vec::new();
            let mut seen = Seen::default();
            for (m, body) in g {
                let r = match self.read_again(body, &mut seen).await {
                    Ok(()) => self.work_message(m, body, states, &seen.fresh).await,
                    Err(e) => Err(e.into()),
                };
                seen.worked(body);
                out.push((m, r));
            }
            out
        }));
        let mut work = std::pin::pin!(work);
        let results = loop {
            let tick = std::pin::pin!(tokio::time::sleep(self.cfg.visibility / 3));
            match select(work.as_mut(), tick).await {
                Either::Left((r, _)) => break r,
                Either::Right(_) => {
                    for (m, _) in &parsed {
                        // A message whose receipt is gone was already handled.
                        let _ = queue
                            .change_visibility(&m.receipt, self.cfg.visibility)
                            .await;
                    }
                }
            }
        };
        let mut done: Vec<Receipt> = Vec::new();
        for (m, r) in results.into_iter().flatten() {
            match r {
                Ok(None) => done.push(m.receipt.clone()),
                Ok(Some(later)) => {
                    tracing::info!(
                        stage = "consume",
                        batch = %m.message_id,
                        group = %m.group_id,
                        attempt = m.receive_count,
                        after_ms = later.after.as_millis() as u64,
                        "message not resolved yet; it comes back later"
                    );
                    unless_stale(queue.change_visibility(&m.receipt, later.after).await)?;
                }
                Err(e) => return Err(e),
            }
        }
        for chunk in done.chunks(MAX_BATCH_ENTRIES) {
            queue.delete_batch(chunk).await?;
        }
        Ok(())
    }

    /// Work a batch another poller received, in its order, as an AWS Lambda SQS FIFO
    /// consumer must: at the first message not resolved, stop; that message and every
    /// later one are reported, and nothing is deleted here (the event source mapping
    /// deletes the rest). The unresolved message stays hidden for its backoff; the
    /// later ones, never tried, are made visible again at once (a later message of the
    /// same group still waits behind it: SQS FIFO holds a group while one of its
    /// messages is in flight). "When using FIFO queues, your function should stop
    /// processing messages after the first failure and return all failed and
    /// unprocessed messages in batchItemFailures" (AWS Lambda developer guide, "Handling
    /// errors for an SQS event source", partial batch responses).
    pub async fn work_in_order(&self, queue: &dyn Queue, msgs: &[Received]) -> InOrder {
        let mut parsed: Vec<Option<Message>> = Vec::with_capacity(msgs.len());
        for m in msgs {
            parsed.push(serde_json::from_str::<Message>(&m.body).ok());
        }
        let (states, mut stopped) = match self.read_batch(parsed.iter().flatten()).await {
            Ok(states) => (states, None),
            Err(e) => (HashMap::new(), Some(WorkerError::Store(e))),
        };
        // Every record of the batch is about one call: the shared quota's leases fit
        // the batch instead of outliving it.
        let records: usize = parsed.iter().flatten().map(|b| b.records.len()).sum();
        self.limiter.expect_calls(records as u64);
        let mut first_failed = if stopped.is_some() { 0 } else { msgs.len() };
        let mut seen = Seen::default();
        for (i, (m, body)) in msgs.iter().zip(&parsed).enumerate() {
            if first_failed < msgs.len() {
                break;
            }
            let Some(body) = body else {
                // Not ours to read: it goes round until the queue's redrive moves it to
                // the dead-letter queue, where the drainer keeps it for staff.
                tracing::warn!(stage = "consume", batch = %m.message_id, "unreadable message body; left for the dead-letter queue");
                first_failed = i;
                break;
            };
            if let Err(e) = self.read_again(body, &mut seen).await {
                stopped = Some(e.into());
                first_failed = i;
                break;
            }
            let worked = self.work_message(m, body, &states, &seen.fresh).await;
            seen.worked(body);
            match worked {
                Ok(None) => {}
                Ok(Some(later)) => {
                    if let Err(e) =
                        unless_stale(queue.change_visibility(&m.receipt, later.after).await)
                    {
                        tracing::warn!(stage = "consume", batch = %m.message_id, error = %e, "could not push the message's visibility out; it comes back after the queue's timeout");
                    }
                    first_failed = i;
                }
                Err(e) => {
                    stopped = Some(e);
                    first_failed = i;
                }
            }
        }
        for m in msgs.iter().skip(first_failed + 1) {
            // Never tried: back at once (behind its group's unresolved head, if any).
            let _ = queue.change_visibility(&m.receipt, Duration::ZERO).await;
        }
        InOrder {
            failed: msgs
                .iter()
                .skip(first_failed)
                .map(|m| m.message_id.clone())
                .collect(),
            stopped,
        }
    }

    /// The state of every record in `bodies`, in as few reads as the store allows. The
    /// parents this worker does not know yet are read in the same requests, so a batch
    /// of children costs no lookup per record.
    async fn read_batch<'m>(
        &self,
        bodies: impl Iterator<Item = &'m Message>,
    ) -> Result<HashMap<RecordKey, Record>, StoreError> {
        let mut keys: Vec<RecordKey> = Vec::new();
        let mut parents: Vec<RecordKey> = Vec::new();
        {
            let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
            for r in bodies.flat_map(|b| &b.records) {
                keys.push(r.record.record_key());
                parents.extend(r.record.parent().filter(|p| !ids.contains_key(p)));
            }
        }
        keys.sort();
        keys.dedup();
        parents.sort();
        parents.dedup();
        parents.retain(|p| keys.binary_search(p).is_err());
        let mut states: HashMap<RecordKey, Record> = HashMap::new();
        let mut known: Vec<(RecordKey, String)> = Vec::new();
        let all: Vec<RecordKey> = keys.into_iter().chain(parents.iter().cloned()).collect();
        for chunk in all.chunks(MAX_BATCH_GET) {
            for r in self.backend.state.batch_get(chunk).await? {
                if parents.binary_search(&r.key).is_ok() {
                    // Only a parent with a target id is an answer; one still on its way
                    // is read again when its child needs it.
                    if let Some(id) = &r.target_id {
                        known.push((r.key.clone(), id.clone()));
                    }
                } else {
                    states.insert(r.key.clone(), r);
                }
            }
        }
        self.know(known);
        Ok(states)
    }

    /// Read again the records of `body` that an earlier message of the same sequence
    /// worked: their state in the batch's first read is no longer theirs.
    async fn read_again(&self, body: &Message, seen: &mut Seen) -> Result<(), StoreError> {
        let mut again: Vec<RecordKey> = body
            .records
            .iter()
            .map(|r| r.record.record_key())
            .filter(|k| seen.keys.contains(k))
            .collect();
        again.sort();
        again.dedup();
        for chunk in again.chunks(MAX_BATCH_GET) {
            let found: HashMap<RecordKey, Record> = self
                .backend
                .state
                .batch_get(chunk)
                .await?
                .into_iter()
                .map(|r| (r.key.clone(), r))
                .collect();
            for k in chunk {
                seen.fresh.insert(k.clone(), found.get(k).cloned());
            }
        }
        Ok(())
    }

    /// `None`: every record resolved, delete the message.
    async fn work_message(
        &self,
        m: &Received,
        body: &Message,
        states: &HashMap<RecordKey, Record>,
        fresh: &HashMap<RecordKey, Option<Record>>,
    ) -> Result<Option<Later>, WorkerError> {
        let mut later: Option<Later> = None;
        let mut error: Option<WorkerError> = None;
        // The records of one message are different records (one lane of one type):
        // nothing orders them among themselves, so they go side by side, a new one as
        // soon as one is done (not in rounds that wait for the slowest: its quota
        // slots would pass unused).
        let mut waiting = body.records.iter();
        let mut running = FuturesUnordered::new();
        loop {
            while error.is_none() && running.len() < self.cfg.records_at_once.max(1) {
                let Some(qr) = waiting.next() else { break };
                if let Err(e) = self.auth_stopped() {
                    error = Some(e);
                    break;
                }
                let key = qr.record.record_key();
                let prior = match fresh.get(&key) {
                    Some(again) => again.as_ref(),
                    None => states.get(&key),
                };
                let may_exist = m.receive_count > 1 || qr.may_exist;
                running.push(self.work_record(&body.run_id, qr, prior, may_exist, m.receive_count));
            }
            match running.next().await {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(l))) => {
                    let after = later.as_ref().map_or(l.after, |x| x.after.max(l.after));
                    later = Some(Later { after });
                }
                // Records already under way finish (their calls may have reached the
                // target); no new one starts.
                Some(Err(e)) => {
                    error.get_or_insert(e);
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(later),
        }
    }

    fn emit(&self, run_id: &str, key: &RecordKey, outcome: Outcome, f: impl FnOnce(&mut Event)) {
        let mut e = Event {
            run_id: run_id.to_string(),
            key: key.clone(),
            outcome,
            already: false,
            calls: 0,
            throttled: 0,
            latency: None,
        };
        f(&mut e);
        tracing::info!(
            stage = "consume",
            run_id = %e.run_id,
            entity = e.key.entity.as_str(),
            key = %e.key.key,
            outcome = ?e.outcome,
            attempt = e.calls,
            already = e.already,
            "record resolved"
        );
        (self.on_event)(&e);
    }

    async fn parent_id(&self, parent: &RecordKey) -> Result<Result<String, Record>, StoreError> {
        if let Some(id) = self
            .ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(parent)
        {
            return Ok(Ok(id.clone()));
        }
        let state = self.backend.state.get(parent).await?;
        match state {
            Some(r) => match (&r.target_id, r.status) {
                (Some(id), _) => {
                    self.ids
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(parent.clone(), id.clone());
                    Ok(Ok(id.clone()))
                }
                _ => Ok(Err(r)),
            },
            None => Ok(Err(Record::new(parent.clone(), "", RecordStatus::Pending))),
        }
    }

    async fn work_record(
        &self,
        run_id: &str,
        qr: &QueuedRecord,
        prior: Option<&Record>,
        may_exist: bool,
        receive_count: u32,
    ) -> Result<Result<(), Later>, WorkerError> {
        let rec = &qr.record;
        let key = rec.record_key();
        if let Some(p) = prior.filter(|p| p.hash == qr.hash) {
            let outcome = match p.status {
                RecordStatus::Synced => Some(Outcome::Unchanged),
                RecordStatus::Failed => Some(Outcome::Failed),
                RecordStatus::Discarded => Some(Outcome::Discarded),
                _ => None,
            };
            if let Some(outcome) = outcome {
                self.emit(run_id, &key, outcome, |e| e.already = true);
                return Ok(Ok(()));
            }
        }
        let parent = match rec.parent() {
            None => None,
            Some(pk) => match self.parent_id(&pk).await? {
                Ok(id) => Some((pk.entity, TargetId(id))),
                Err(p) if matches!(p.status, RecordStatus::Failed | RecordStatus::Discarded) => {
                    let message = format!(
                        "Its parent {} {} is {} (not in the target), so this {} cannot be created under it.",
                        pk.entity,
                        pk.key,
                        p.status.as_str(),
                        rec.entity
                    );
                    self.fail(run_id, qr, prior, FailureCode::ParentFailed, message, 0)
                        .await?;
                    return Ok(Ok(()));
                }
                Err(_) => {
                    // The parent is on its way (another queue): come back later, a
                    // little later each time (consumers of all types run at once on
                    // Lambda, and the parent's queue may be long).
                    let after = self
                        .cfg
                        .retry
                        .backoff(receive_count.max(1), self.unit())
                        .max(Duration::from_secs(1));
                    return Ok(Err(Later { after }));
                }
            },
        };
        let existing = prior.and_then(|p| p.target_id.clone()).map(TargetId);
        if existing.is_some() && !self.cfg.access.may_update(rec.entity) {
            // The plan reports these and does not send them; one re-sent from triage
            // ends here, without a doomed request.
            let message = format!(
                "A station cannot change {}s in Media Manager: ask PBS to make this change, or leave the {} as it is there.",
                rec.entity, rec.entity
            );
            self.fail(run_id, qr, prior, FailureCode::NotWritable, message, 0)
                .await?;
            return Ok(Ok(()));
        }
        let resolve_only = existing.is_none() && !self.cfg.access.may_create(rec.entity);
        let flagged = AtomicBool::new(may_exist);
        let (calls, throttled) = (Mutex::new(0u32), Mutex::new(0u32));
        let count = |e: Option<&CallError>| {
            *calls.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            if matches!(
                e,
                Some(CallError::Transient {
                    throttled: true,
                    ..
                })
            ) {
                *throttled.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            }
        };
        let mut rng = Rng::new(self.unit().to_bits());
        let mut jitter = move || rng.unit();
        let started = Instant::now();
        let parent_ref = parent.as_ref().map(|(t, id)| (*t, id));
        let called = match &existing {
            Some(id) => {
                let changed = if qr.changed.is_empty() || may_exist {
                    rec.attributes()
                } else {
                    rec.attributes_of(qr.changed.iter().map(String::as_str))
                };
                call_with_retries(&self.cfg.retry, self.limiter, &mut jitter, || async {
                    let r = self.target.update(rec.entity, id, &changed).await;
                    count(r.as_ref().err());
                    r.map(|()| (id.clone(), false))
                })
                .await
            }
            None if resolve_only => {
                // Look it up and take it as it is there: never written.
                let identity = rec.identity();
                call_with_retries(&self.cfg.retry, self.limiter, &mut jitter, || async {
                    let found = self.target.find(rec.entity, parent_ref, &identity).await;
                    count(found.as_ref().err());
                    match found {
                        Ok(Some(id)) => Ok((id, false)),
                        Ok(None) => Err(CallError::Permanent {
                            status: 404,
                            message: format!(
                                "The {} is not in Media Manager, and a station cannot create {}s: ask PBS to create it, then sync again.",
                                rec.entity, rec.entity
                            ),
                        }),
                        Err(e) => Err(e),
                    }
                })
                .await
            }
            None => {
                let attributes = rec.attributes();
                let identity = rec.identity();
                call_with_retries(&self.cfg.retry, self.limiter, &mut jitter, || async {
                    if flagged.load(Ordering::SeqCst) {
                        let found = self.target.find(rec.entity, parent_ref, &identity).await;
                        count(found.as_ref().err());
                        match found {
                            // It is there, and these credentials may not change it (a
                            // station's season, made by an earlier attempt): take it.
                            Ok(Some(id)) if !self.cfg.access.may_update(rec.entity) => {
                                return Ok((id, false));
                            }
                            Ok(Some(id)) => {
                                // It is there: bring it up to date instead.
                                let r = self.target.update(rec.entity, &id, &attributes).await;
                                count(r.as_ref().err());
                                return r.map(|()| (id, false));
                            }
                            Ok(None) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    let r = self
                        .target
                        .create(rec.entity, parent_ref, &attributes)
                        .await;
                    count(r.as_ref().err());
                    if let Err(CallError::Transient {
                        throttled: false, ..
                    }) = &r
                    {
                        // The request may have been done even though the answer was lost.
                        flagged.store(true, Ordering::SeqCst);
                    }
                    r.map(|id| (id, true))
                })
                .await
            }
        };
        let latency = started.elapsed();
        let (calls, throttled) = (
            *calls.lock().unwrap_or_else(|e| e.into_inner()),
            *throttled.lock().unwrap_or_else(|e| e.into_inner()),
        );
        match called.result {
            Ok((id, created)) => {
                self.write_synced(run_id, qr, prior, &id).await?;
                self.ids
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key.clone(), id.0.clone());
                let outcome = if resolve_only {
                    Outcome::Synced
                } else if created || existing.is_none() {
                    Outcome::Created
                } else {
                    Outcome::Updated
                };
                self.emit(run_id, &key, outcome, |e| {
                    e.calls = calls;
                    e.throttled = throttled;
                    e.latency = Some(latency);
                });
                Ok(Ok(()))
            }
            Err(CallError::Auth { message }) => {
                *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = Some(message.clone());
                Err(WorkerError::Auth(message))
            }
            Err(CallError::Transient { reason, .. }) => {
                tracing::info!(
                    stage = "consume",
                    run_id = %run_id,
                    entity = rec.entity.as_str(),
                    key = %rec.key,
                    attempt = called.attempts,
                    %reason,
                    "retries used up for now; the message comes back later"
                );
                let after = self
                    .cfg
                    .retry
                    .backoff(called.attempts, self.unit())
                    .max(Duration::from_secs(1));
                Ok(Err(Later { after }))
            }
            Err(e @ (CallError::Permanent { .. } | CallError::NotFound)) => {
                let code = match &e {
                    _ if resolve_only => FailureCode::NotWritable,
                    CallError::Permanent { status, .. } => FailureCode::Refused(*status),
                    _ => FailureCode::NotFound,
                };
                let message = match &e {
                    CallError::Permanent { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                self.fail(run_id, qr, prior, code, message, called.attempts)
                    .await?;
                Ok(Ok(()))
            }
        }
    }

    /// Write the synced state; a conflicting writer is re-read and written over (our
    /// call succeeded, so the target holds this content now).
    async fn write_synced(
        &self,
        run_id: &str,
        qr: &QueuedRecord,
        prior: Option<&Record>,
        id: &TargetId,
    ) -> Result<(), StoreError> {
        let mut expect = prior.map_or(Expect::Absent, |p| Expect::Version(p.version));
        let mut version = prior.map_or(1, |p| p.version + 1);
        for _ in 0..5 {
            let mut r = Record::new(
                qr.record.record_key(),
                qr.hash.clone(),
                RecordStatus::Synced,
            );
            r.target_id = Some(id.0.clone());
            r.version = version;
            r.payload = Some(qr.record.to_json());
            r.run_id = Some(run_id.to_string());
            r.updated_at_ms = crate::ports::SystemClock.now_ms();
            if self.backend.state.put(&r, expect).await? == Written::Done {
                return Ok(());
            }
            match self.backend.state.get(&r.key).await? {
                Some(now) => {
                    expect = Expect::Version(now.version);
                    version = now.version + 1;
                }
                None => {
                    expect = Expect::Absent;
                    version = 1;
                }
            }
        }
        Err(StoreError::new(
            crate::ports::ErrorKind::Throttled,
            crate::ports::Service::State,
            "PutItem",
            "the record kept changing under us; it will be tried again",
        ))
    }

    async fn fail(
        &self,
        run_id: &str,
        qr: &QueuedRecord,
        prior: Option<&Record>,
        code: FailureCode,
        message: String,
        attempts: u32,
    ) -> Result<(), StoreError> {
        write_failure(
            self.backend,
            run_id,
            &qr.record,
            &qr.hash,
            prior,
            code,
            message,
            attempts,
        )
        .await?;
        self.emit(run_id, &qr.record.record_key(), Outcome::Failed, |_| {});
        Ok(())
    }

    /// Move what reached the dead-letter queue into the failure store. Returns how many
    /// records were filed.
    pub async fn drain_dead_letters(&self, entity: EntityType) -> Result<u64, WorkerError> {
        drain_dead_letters(self.backend, entity, self.on_event).await
    }
}

use crate::ports::Clock;

/// The records a sequence of messages (a group's, a batch's in order) worked so far,
/// and their state as read again. SQS FIFO may hand out two messages of one group
/// holding the same record (sent twice, or in two uploaded files): the second is
/// decided on what the first wrote, never on the batch's first read, which would
/// create it twice.
#[derive(Default)]
struct Seen {
    keys: std::collections::HashSet<RecordKey>,
    fresh: HashMap<RecordKey, Option<Record>>,
}

impl Seen {
    fn worked(&mut self, body: &Message) {
        for r in &body.records {
            let k = r.record.record_key();
            // Worked now: the next message that holds it reads it again.
            self.fresh.remove(&k);
            self.keys.insert(k);
        }
    }
}

/// What [`Worker::work_in_order`] left: the messages to report as failures (the first
/// unresolved one and every later one, in order), and the error that stopped the batch
/// if one did (a store that cannot be reached, refused credentials).
#[derive(Debug)]
pub struct InOrder {
    pub failed: Vec<String>,
    pub stopped: Option<WorkerError>,
}

/// The receive loops of one queue.
struct Loops {
    /// Loops still running.
    active: AtomicUsize,
    /// A receive came back short: the queue is draining.
    draining: AtomicBool,
}

impl Loops {
    /// Count one loop out unless it is the last one running; true if it may leave.
    fn leave_unless_last(&self) -> bool {
        self.active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n > 1).then(|| n - 1)
            })
            .is_ok()
    }
}

/// Write a record's failure (status failed, the error, the record itself for triage),
/// keeping the target id it may already have.
#[allow(clippy::too_many_arguments)]
pub async fn write_failure(
    backend: &Backend,
    run_id: &str,
    record: &CanonicalRecord,
    hash: &str,
    prior: Option<&Record>,
    code: FailureCode,
    message: String,
    attempts: u32,
) -> Result<(), StoreError> {
    let key = record.record_key();
    let mut prior = prior.cloned();
    for _ in 0..5 {
        let mut r = Record::new(key.clone(), hash, RecordStatus::Failed);
        r.target_id = prior.as_ref().and_then(|p| p.target_id.clone());
        r.version = prior.as_ref().map_or(1, |p| p.version + 1);
        r.payload = Some(record.to_json());
        r.run_id = Some(run_id.to_string());
        r.updated_at_ms = crate::ports::SystemClock.now_ms();
        r.last_error = Some(LastError {
            code: code.to_string(),
            message: message.clone(),
            attempts,
        });
        let expect = prior
            .as_ref()
            .map_or(Expect::Absent, |p| Expect::Version(p.version));
        if backend.state.put(&r, expect).await? == Written::Done {
            return Ok(());
        }
        prior = backend.state.get(&key).await?;
        if prior
            .as_ref()
            .is_some_and(|p| p.hash == hash && p.status == RecordStatus::Synced)
        {
            // Someone else synced this very content meanwhile: nothing failed.
            return Ok(());
        }
    }
    Ok(())
}

/// The drainer: every dead-letter message's unresolved records become failures (code
/// `parent_missing` when its parent never reached the target, else
/// `retries_exhausted`), then the message is deleted. A version a later run synced is
/// left as it is; a body that is not ours is kept under `rejected/dead-letters/`.
pub async fn drain_dead_letters(
    backend: &Backend,
    entity: EntityType,
    on_event: &(dyn Fn(&Event) + Send + Sync),
) -> Result<u64, WorkerError> {
    let queue = backend.queue(entity);
    let mut filed = 0;
    loop {
        let msgs = queue
            .receive(
                Lane::Dead,
                MAX_RECEIVE,
                Duration::from_secs(60),
                Duration::ZERO,
            )
            .await?;
        if msgs.is_empty() {
            return Ok(filed);
        }
        let mut receipts = Vec::new();
        for m in &msgs {
            let body: Message = match serde_json::from_str(&m.body) {
                Ok(b) => b,
                Err(_) => {
                    // Not a message of ours: kept as it came, where staff can find it,
                    // before it leaves the queue.
                    let key = format!(
                        "rejected/dead-letters/{entity}/date={}/{}.txt",
                        super::land::date_of(crate::ports::SystemClock.now_ms()),
                        m.message_id
                    );
                    backend
                        .objects
                        .put(&key, m.body.clone().into_bytes(), "text/plain")
                        .await?;
                    tracing::error!(stage = "drain", entity = entity.as_str(), batch = %m.message_id, %key, "an unreadable dead letter was kept as an object and removed from the queue");
                    receipts.push(m.receipt.clone());
                    continue;
                }
            };
            let keys: Vec<RecordKey> = body.records.iter().map(|r| r.record.record_key()).collect();
            let mut states = HashMap::new();
            for chunk in keys.chunks(MAX_BATCH_GET) {
                for r in backend.state.batch_get(chunk).await? {
                    states.insert(r.key.clone(), r);
                }
            }
            for qr in &body.records {
                let key = qr.record.record_key();
                let prior = states.get(&key);
                if prior.is_some_and(|p| {
                    p.hash == qr.hash
                        && matches!(
                            p.status,
                            RecordStatus::Synced | RecordStatus::Failed | RecordStatus::Discarded
                        )
                }) {
                    continue;
                }
                // A later run synced another version of it (run ids sort by time):
                // this dead letter is superseded, not a failure.
                if prior.is_some_and(|p| {
                    p.status == RecordStatus::Synced
                        && p.run_id
                            .as_deref()
                            .is_some_and(|r| r > body.run_id.as_str())
                }) {
                    continue;
                }
                let waited_for = match qr.record.parent() {
                    Some(pk) => match backend.state.get(&pk).await? {
                        Some(p) if p.target_id.is_some() => None,
                        _ => Some(pk),
                    },
                    None => None,
                };
                let (code, message) = match &waited_for {
                    Some(pk) => (
                        FailureCode::ParentMissing,
                        format!(
                            "Its parent {} {} was not in the target over {} deliveries, so this {} was never sent: sync the file that has the parent (or fix the parent in Triage), then retry this.",
                            pk.entity, pk.key, m.receive_count, qr.record.entity
                        ),
                    ),
                    None => (
                        FailureCode::RetriesExhausted,
                        format!(
                            "The target kept failing (timeouts, errors or throttling) over {} deliveries, so the message went to the dead-letter queue.",
                            m.receive_count
                        ),
                    ),
                };
                tracing::warn!(
                    stage = "drain",
                    run_id = %body.run_id,
                    entity = entity.as_str(),
                    key = %key.key,
                    batch = %m.message_id,
                    attempt = m.receive_count,
                    "dead letter filed as a failure"
                );
                write_failure(
                    backend,
                    &body.run_id,
                    &qr.record,
                    &qr.hash,
                    prior,
                    code,
                    message,
                    m.receive_count,
                )
                .await?;
                filed += 1;
                on_event(&Event {
                    run_id: body.run_id.clone(),
                    key,
                    outcome: Outcome::Failed,
                    already: false,
                    calls: 0,
                    throttled: 0,
                    latency: None,
                });
            }
            receipts.push(m.receipt.clone());
        }
        for chunk in receipts.chunks(MAX_BATCH_ENTRIES) {
            backend.queue(entity).delete_batch(chunk).await?;
        }
    }
}

/// A receipt that expired while the message was worked (a stall past the visibility
/// timeout): the message is back in the queue and whoever receives it next decides
/// again, guarded by the record's lease. Not a reason to stop the worker.
fn unless_stale(r: Result<(), StoreError>) -> Result<(), StoreError> {
    match r {
        Err(e) if e.kind == crate::ports::ErrorKind::Stale => {
            tracing::warn!(stage = "consume", error = %e, "receipt expired; the message comes back");
            Ok(())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_receive_loops_leave_but_the_last_one_stays() {
        let loops = Loops {
            active: AtomicUsize::new(3),
            draining: AtomicBool::new(true),
        };
        assert!(loops.leave_unless_last());
        assert!(loops.leave_unless_last());
        assert!(!loops.leave_unless_last(), "one loop always stays");
        assert!(!loops.leave_unless_last());
        assert_eq!(loops.active.load(Ordering::SeqCst), 1);
    }
}
