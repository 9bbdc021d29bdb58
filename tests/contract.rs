//! The storage contract: one suite of behaviours of the engine's ports (objects, FIFO
//! queues, state), run once against the embedded adapters (`metasync-local`) and once
//! against the AWS adapters (`metasync-aws`) talking to a moto server this binary
//! starts on a free loopback port. Then the AWS-only and local-only checks: `metasync
//! infra up` twice against moto, and kill -9 of a process holding the local backend.
//!
//! The sync pipeline end to end (`pipeline.rs`) runs here too, on both backends, since
//! this binary has the moto server.
//!
//! Where moto differs from AWS, the suite does not trust it; the path is covered
//! another way:
//! - Dedup after delete: AWS keeps a dedup id for 5 minutes even after the message is
//!   deleted; moto forgets it with the message. Checked on `local` only
//!   (`local_only::dedup_outlives_delete_and_expires_after_five_minutes`); on AWS it is
//!   AWS's documented behaviour, and a second delivery is harmless anyway because
//!   consumers skip records whose hash the state store already has.
//! - StartMessageMoveTask (redrive from a dead-letter queue): not used. Dead-letter
//!   messages are drained into the failure store and retried from triage, so only
//!   receive/delete on the dead-letter queue matter, and those are in the suite.
//! - UnprocessedItems / UnprocessedKeys: moto processes every item of a batch. An
//!   HTTP client under the real SDK answers "nothing processed" with the request's
//!   items (`aws_faults`), so the adapters' reading and re-sending run as against AWS;
//!   the engine's re-send loop (`put_all`) also runs over both adapter sets with a
//!   store that leaves half of each batch unprocessed (`FaultyState`).
//! - Throttling and 5xx: moto never throttles. The same HTTP client answers with
//!   DynamoDB's, SQS's and S3's throttling errors and with 500s (`aws_faults`): the
//!   adapters retry through the engine's policy and give up with the error's kind.
//! - Expired receipts: SQS FIFO refuses a delete or visibility change whose receipt
//!   outlived its visibility timeout ("The receipt handle has expired"); moto accepts
//!   any receipt the message ever had. Local refuses it
//!   (`local_only::an_expired_receipt_is_refused`); the AWS adapter's reading of SQS's
//!   refusals is checked with SQS's answers injected
//!   (`aws_faults::expired_receipts_are_stale_not_fatal`). The engine relies on
//!   neither: leases in the state store guard the work, and the worker carries on past
//!   a stale receipt.
//! - ReceiveRequestAttemptId: moto ignores it. The injected lost answer replays what
//!   SQS documents (a retry with the same attempt id gets the same messages), and the
//!   test checks the adapter keeps the id across a lost answer and renews it after
//!   throttling (`aws_faults::a_lost_receive_answer_is_asked_again_with_the_same_attempt_id`).
//! - Clock skew: moto does not check signatures' time. An injected
//!   `RequestTimeTooSkewed` with a `Date` an hour ahead checks that the adapters retry
//!   it and sign the retry with the corrected time.
//! - Visibility and waits: moto runs on real time, so the aws run sleeps where the
//!   local run advances a manual clock (about 3 s of sleeping in all).
//! - Cost of a deep queue: moto builds every queue attribute, counting the whole queue
//!   three times, to read one of them, for each message it receives or sends; SQS has
//!   no such cost. moto runs through `tests/moto_server.py`, which reads one attribute
//!   at a time (same answers): without it a queue of a few thousand messages stalled
//!   the emulator for up to a second per receive, and the shared-quota bench measured
//!   those stalls (82–84/s) instead of the limiter (99.9/s).
//! - FIFO hand-out: SQS returns "as many messages with the same message group ID as
//!   possible" in one receive, so other consumers take other groups (SQS Developer
//!   Guide, "FIFO queue delivery logic"); moto hands out visible messages in send
//!   order, skipping only the groups in flight when the receive started. Messages are
//!   enqueued round-robin over the lanes, so a receive of ten here mostly takes ten
//!   groups, and of 8 consumers on 32 lanes only about 3 hold messages at once. Left
//!   as moto does it: the tests that count on spreading (conservation, shared quota)
//!   pass either way, and a consumer works a batch of several groups as one of one
//!   group.

use metasync_aws::{Clients, StaticKeys};
use metasync_engine::config::AwsProfile;
use metasync_engine::gen::Rng;
use metasync_engine::ports::faults::FaultyState;
use metasync_engine::ports::{
    put_all, Backend, ErrorKind, Expect, Lane, LastError, ManualClock, Outgoing, QuotaState,
    Record, RecordKey, RecordStatus, Run, Service, Written, MAX_BATCH_BYTES, MAX_ITEM_BYTES,
};
use metasync_engine::retry::RetryPolicy;
use metasync_engine::EntityType;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

mod lambda;
mod pipeline;

const MAX_RECEIVES: u32 = 2;

/// Held by the tests that keep moto busy for minutes (the conservation runs, the shared
/// quota): run side by side they starve each other on one emulator, and the quota test
/// would measure moto's backlog, not the limiter.
static MOTO_HEAVY: Mutex<()> = Mutex::new(());

fn moto_heavy() -> std::sync::MutexGuard<'static, ()> {
    MOTO_HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A backend under test, with a way to let time pass.
struct Harness {
    backend: Backend,
    clock: Option<ManualClock>,
    /// S3 reports the encryption it applied; a local directory has none to report.
    encrypts: bool,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    async fn pass(&self, d: Duration) {
        match &self.clock {
            Some(c) => c.advance(d),
            // moto keeps real time; SQS counts in whole seconds.
            None => tokio::time::sleep(d + Duration::from_millis(300)).await,
        }
    }
}

fn local() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = ManualClock::new(1_800_000_000_000);
    let backend = metasync_local::open_with_clock(
        dir.path(),
        metasync_local::QueueSettings {
            max_receive_count: MAX_RECEIVES,
        },
        Arc::new(clock.clone()),
    )
    .expect("open local backend");
    Harness {
        backend,
        clock: Some(clock),
        encrypts: false,
        _dir: Some(dir),
    }
}

// ---------------------------------------------------------------------------------
// moto

struct Moto {
    url: String,
    /// Dropping the last handle (this process ending, however) ends moto: its
    /// launcher waits on this pipe.
    _keepalive: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        // moto's own server, through tests/moto_server.py: it takes out a cost of
        // moto's SQS model that grows with the queue's depth (see that file).
        let (server, script) = match std::env::var_os("METASYNC_MOTO_SERVER") {
            Some(s) => (PathBuf::from(s), None),
            None => (
                workspace().join(".venv/bin/python"),
                Some(workspace().join("tests/moto_server.py")),
            ),
        };
        assert!(
            server.exists(),
            "moto is not installed at {}: run `make moto` (or `make test`), or set METASYNC_MOTO_SERVER",
            server.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::env::temp_dir().join(format!("metasync-moto-{port}.log"));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" ${3:+"$3"} -H 127.0.0.1 -p "$1" >"$2" 2>&1 & pid=$!; cat >/dev/null; kill $pid"#)
            .arg(&server)
            .arg(port.to_string())
            .arg(&log)
            .arg(script.unwrap_or_default())
            .stdin(Stdio::piped())
            .spawn()
            .expect("start moto");
        let stdin = child.stdin.take().expect("moto's pipe");
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Moto {
                    url,
                    _keepalive: Mutex::new(stdin),
                    _child: Mutex::new(child),
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(stdin);
        let _ = child.wait();
        let mut text = String::new();
        let _ = std::fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut text));
        panic!("moto did not start on port {port}: {text}");
    })
}

/// A profile naming fresh resources on moto (each test its own).
fn moto_profile() -> AwsProfile {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let tag = format!("t{}-{n}", std::process::id());
    AwsProfile {
        region: Some("us-east-1".into()),
        endpoint_url: Some(moto().url.clone()),
        aws_profile: None,
        bucket: format!("metasync-{tag}"),
        table: format!("metasync-{tag}"),
        queue_prefix: format!("metasync-{tag}"),
        kms_key_id: None,
        max_receive_count: MAX_RECEIVES,
        consumers: Default::default(),
    }
}

fn moto_keys() -> StaticKeys {
    StaticKeys {
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
    }
}

async fn aws() -> Harness {
    let profile = moto_profile();
    let clients = Clients::new(&profile, Some(moto_keys()))
        .await
        .expect("clients");
    metasync_aws::infra::up(&clients, &profile)
        .await
        .expect("infra up on moto");
    Harness {
        backend: metasync_aws::backend(&clients, &profile, fast_retries()),
        clock: None,
        encrypts: true,
        _dir: None,
    }
}

// ---------------------------------------------------------------------------------
// The contract: every function runs against both adapter sets.

fn msg(group: &str, dedup: &str, body: &str) -> Outgoing {
    Outgoing {
        group_id: group.into(),
        dedup_id: dedup.into(),
        body: body.into(),
    }
}

const LONG: Duration = Duration::from_secs(30);
const NOW: Duration = Duration::ZERO;

async fn bodies(h: &Harness, lane: Lane, max: usize) -> Vec<String> {
    let q = h.backend.queue(EntityType::Episode);
    q.receive(lane, max, LONG, NOW)
        .await
        .expect("receive")
        .into_iter()
        .map(|m| m.body)
        .collect()
}

async fn objects_round_trip(h: Harness) {
    let o = &h.backend.objects;
    let before = h.backend.calls();
    o.put(
        "silver/show/date=2026-11-22/r1.ndjson",
        b"{\"a\":1}\n".to_vec(),
        "application/x-ndjson",
    )
    .await
    .expect("put");
    o.put(
        "silver/show/date=2026-11-22/r2.ndjson",
        b"{}\n".to_vec(),
        "application/x-ndjson",
    )
    .await
    .expect("put");
    o.put(
        "silver/season/date=2026-11-22/r1.ndjson",
        b"x".to_vec(),
        "text/plain",
    )
    .await
    .expect("put");
    o.put("silver/showcase.txt", b"y".to_vec(), "text/plain")
        .await
        .expect("put");

    let got = o
        .get("silver/show/date=2026-11-22/r1.ndjson")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.body, b"{\"a\":1}\n");
    assert_eq!(got.content_type, "application/x-ndjson");
    assert_eq!(got.encryption.is_some(), h.encrypts, "{:?}", got.encryption);
    assert_eq!(
        o.get("silver/show/missing.ndjson").await.expect("get"),
        None
    );

    let keys = |v: Vec<metasync_engine::ports::ObjectMeta>| {
        v.into_iter().map(|m| (m.key, m.size)).collect::<Vec<_>>()
    };
    assert_eq!(
        keys(o.list("silver/show/").await.expect("list")),
        vec![
            ("silver/show/date=2026-11-22/r1.ndjson".to_string(), 8),
            ("silver/show/date=2026-11-22/r2.ndjson".to_string(), 3)
        ]
    );
    // A prefix is a prefix of the key, not a folder.
    assert_eq!(
        keys(o.list("silver/show").await.expect("list")).len(),
        3,
        "silver/show* includes silver/showcase.txt"
    );
    assert!(o.list("gold/").await.expect("list").is_empty());

    // A put replaces.
    o.put(
        "silver/show/date=2026-11-22/r2.ndjson",
        b"{}\n{}\n".to_vec(),
        "application/x-ndjson",
    )
    .await
    .expect("put");
    let got = o
        .get("silver/show/date=2026-11-22/r2.ndjson")
        .await
        .expect("get");
    assert_eq!(got.map(|g| g.body), Some(b"{}\n{}\n".to_vec()));

    let calls = h.backend.calls().since(&before);
    assert_eq!(calls.get(Service::Objects, "PutObject"), 5);
    assert_eq!(calls.get(Service::Objects, "GetObject"), 3);
    assert_eq!(calls.get(Service::Objects, "ListObjectsV2"), 3);
}

async fn objects_bronze_is_immutable(h: Harness) {
    let o = &h.backend.objects;
    let key = "bronze/episode/date=2026-11-22/run-1/ab12.csv";
    assert!(o
        .put_if_absent(key, b"first".to_vec(), "text/csv")
        .await
        .expect("put"));
    assert!(!o
        .put_if_absent(key, b"second".to_vec(), "text/csv")
        .await
        .expect("put"));
    let got = o.get(key).await.expect("get").expect("present");
    assert_eq!(got.body, b"first");
    assert_eq!(got.content_type, "text/csv");
}

async fn objects_refuse_bad_keys_before_any_call(h: Harness) {
    let o = &h.backend.objects;
    let before = h.backend.calls();
    for key in ["", "/abs", "a/../b", "a//b"] {
        let err = o
            .put(key, b"x".to_vec(), "text/plain")
            .await
            .expect_err(key);
        assert_eq!(
            err.kind,
            metasync_engine::ports::ErrorKind::Invalid,
            "{key:?}"
        );
    }
    for prefix in ["../", "/etc", "a/../"] {
        assert!(o.list(prefix).await.is_err(), "{prefix:?}");
    }
    assert_eq!(h.backend.calls().since(&before).total(), 0);
}

async fn queue_is_fifo_per_group_and_parallel_across_groups(h: Harness) {
    let q = h.backend.queue(EntityType::Episode);
    let failed = q
        .send_batch(&[
            msg("show-a", "a1", "a1"),
            msg("show-a", "a2", "a2"),
            msg("show-b", "b1", "b1"),
            msg("show-a", "a3", "a3"),
        ])
        .await
        .expect("send");
    assert!(failed.is_empty(), "{failed:?}");

    let first = q.receive(Lane::Main, 1, LONG, NOW).await.expect("receive");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].body, "a1");
    assert_eq!(first[0].group_id, "show-a");
    assert_eq!(first[0].dedup_id, "a1");
    assert_eq!(first[0].receive_count, 1);
    // show-a has a message in flight: only show-b can be handed out.
    assert_eq!(bodies(&h, Lane::Main, 10).await, vec!["b1"]);
    assert!(bodies(&h, Lane::Main, 10).await.is_empty());

    let left = q
        .delete_batch(std::slice::from_ref(&first[0].receipt))
        .await
        .expect("delete");
    assert!(left.is_empty());
    // With a1 gone, show-a goes on in order.
    let rest = q.receive(Lane::Main, 10, LONG, NOW).await.expect("receive");
    let got: Vec<&str> = rest.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(got, vec!["a2", "a3"]);
    let depth = q.depth().await.expect("depth");
    assert_eq!((depth.visible, depth.in_flight, depth.dead), (0, 3, 0));

    let receipts: Vec<_> = rest.iter().map(|m| m.receipt.clone()).collect();
    assert!(q.delete_batch(&receipts).await.expect("delete").is_empty());
    let calls = q.calls();
    assert_eq!(calls.get(Service::Queue, "SendMessageBatch"), 1);
    assert_eq!(calls.get(Service::Queue, "DeleteMessageBatch"), 2);
    assert!(calls.get(Service::Queue, "ReceiveMessage") >= 4);
}

async fn queue_visibility_timeout_and_change(h: Harness) {
    let q = h.backend.queue(EntityType::Episode);
    q.send_batch(&[msg("g", "m1", "m1")]).await.expect("send");
    let got = q
        .receive(Lane::Main, 10, Duration::from_secs(1), NOW)
        .await
        .expect("receive");
    assert_eq!(got.len(), 1);
    assert!(
        bodies(&h, Lane::Main, 10).await.is_empty(),
        "hidden while in flight"
    );
    h.pass(Duration::from_secs(1)).await;
    let again = q.receive(Lane::Main, 10, LONG, NOW).await.expect("receive");
    assert_eq!(again.len(), 1, "back after the visibility timeout");
    assert_eq!(again[0].message_id, got[0].message_id);
    assert_eq!(again[0].receive_count, 2);

    // A worker that cannot finish hands the message back at once.
    q.change_visibility(&again[0].receipt, Duration::ZERO)
        .await
        .expect("change visibility");
    let depth = q.depth().await.expect("depth");
    assert_eq!((depth.visible, depth.in_flight), (1, 0));
}

async fn queue_dead_letters_after_max_receives(h: Harness) {
    let q = h.backend.queue(EntityType::Episode);
    q.send_batch(&[msg("g", "poison", "poison"), msg("h", "fine", "fine")])
        .await
        .expect("send");
    for round in 1..=MAX_RECEIVES {
        let got = q.receive(Lane::Main, 10, LONG, NOW).await.expect("receive");
        let poison = got
            .iter()
            .find(|m| m.body == "poison")
            .unwrap_or_else(|| panic!("round {round}: {got:?}"));
        assert_eq!(poison.receive_count, round);
        q.change_visibility(&poison.receipt, Duration::ZERO)
            .await
            .expect("hand back");
        if let Some(fine) = got.iter().find(|m| m.body == "fine") {
            q.delete_batch(std::slice::from_ref(&fine.receipt))
                .await
                .expect("delete");
        }
    }
    // Received MAX_RECEIVES times: the next receive moves it to the dead-letter queue.
    assert!(bodies(&h, Lane::Main, 10).await.is_empty());
    let depth = q.depth().await.expect("depth");
    assert_eq!((depth.visible, depth.in_flight, depth.dead), (0, 0, 1));
    let dead = q
        .receive(Lane::Dead, 10, LONG, NOW)
        .await
        .expect("receive dead");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].group_id, "g");
    // Moved by the redrive policy: the same message, its receive count carrying on.
    assert_eq!(dead[0].dedup_id, "poison");
    assert!(
        dead[0].receive_count > MAX_RECEIVES,
        "{}",
        dead[0].receive_count
    );
    // The drainer deletes what it moved to the failure store.
    assert!(q
        .delete_batch(std::slice::from_ref(&dead[0].receipt))
        .await
        .expect("delete dead")
        .is_empty());
    assert_eq!(q.depth().await.expect("depth").dead, 0);
}

async fn queue_explicit_dead_letter(h: Harness) {
    let q = h.backend.queue(EntityType::Asset);
    q.send_batch(&[msg("g", "refused", "refused"), msg("g", "next", "next")])
        .await
        .expect("send");
    let got = q.receive(Lane::Main, 1, LONG, NOW).await.expect("receive");
    q.send_to_dead_letter(&got[0])
        .await
        .expect("to dead letter");
    // The group is free again: the next message comes.
    let next = q.receive(Lane::Main, 10, LONG, NOW).await.expect("receive");
    assert_eq!(
        next.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["next"]
    );
    let dead = q
        .receive(Lane::Dead, 10, LONG, NOW)
        .await
        .expect("receive dead");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].body.as_str(), dead[0].group_id.as_str()),
        ("refused", "g")
    );
    // A new message there (SQS has no move): a new id, received once so far.
    assert_ne!(dead[0].message_id, got[0].message_id);
    assert_eq!(dead[0].receive_count, 1);
}

/// A receipt works only on the queue that handed it out, and is refused before any
/// call: SQS answers `ReceiptHandleIsInvalid`, and a local handle could name another
/// queue's message.
async fn queue_refuses_receipts_of_another_queue(h: Harness) {
    let episodes = h.backend.queue(EntityType::Episode);
    let seasons = h.backend.queue(EntityType::Season);
    episodes
        .send_batch(&[msg("g", "e1", "e1")])
        .await
        .expect("send");
    seasons
        .send_batch(&[msg("g", "s1", "s1")])
        .await
        .expect("send");
    let got = episodes
        .receive(Lane::Main, 1, LONG, NOW)
        .await
        .expect("receive");
    let before = seasons.calls();
    let err = seasons
        .delete_batch(std::slice::from_ref(&got[0].receipt))
        .await
        .expect_err("another queue's receipt");
    assert_eq!(err.kind, ErrorKind::Invalid, "{err}");
    let err = seasons
        .change_visibility(&got[0].receipt, NOW)
        .await
        .expect_err("another queue's receipt");
    assert_eq!(err.kind, ErrorKind::Invalid, "{err}");
    assert!(seasons.send_to_dead_letter(&got[0]).await.is_err());
    assert_eq!(seasons.calls().since(&before).total(), 0, "before any call");
    let depth = episodes.depth().await.expect("depth");
    assert_eq!((depth.visible, depth.in_flight), (0, 1), "still in flight");
    assert_eq!(seasons.depth().await.expect("depth").visible, 1);
    assert!(episodes
        .delete_batch(std::slice::from_ref(&got[0].receipt))
        .await
        .expect("delete")
        .is_empty());
}

/// The next message of a group is handed out once its head went to the dead-letter
/// queue.
async fn queue_group_goes_on_after_its_head_is_dead_lettered(h: Harness) {
    let q = h.backend.queue(EntityType::Episode);
    q.send_batch(&[msg("g", "h1", "h1"), msg("g", "h2", "h2")])
        .await
        .expect("send");
    for _ in 0..MAX_RECEIVES {
        let got = q.receive(Lane::Main, 1, LONG, NOW).await.expect("receive");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, "h1", "the head, again and again");
        q.change_visibility(&got[0].receipt, NOW)
            .await
            .expect("hand back");
    }
    // The receive that finds h1 received too often moves it; h2 comes next.
    let mut next = Vec::new();
    for _ in 0..2 {
        next.extend(bodies(&h, Lane::Main, 10).await);
        if !next.is_empty() {
            break;
        }
    }
    assert_eq!(next, ["h2"]);
    assert_eq!(bodies(&h, Lane::Dead, 10).await, ["h1"]);
}

/// A head whose visibility timeout ran out comes back before the messages behind it.
async fn queue_head_comes_back_first_after_its_timeout(h: Harness) {
    let q = h.backend.queue(EntityType::Episode);
    q.send_batch(&[
        msg("g", "m1", "m1"),
        msg("g", "m2", "m2"),
        msg("g", "m3", "m3"),
    ])
    .await
    .expect("send");
    let first = q
        .receive(Lane::Main, 1, Duration::from_secs(1), NOW)
        .await
        .expect("receive");
    assert_eq!(first[0].body, "m1");
    h.pass(Duration::from_secs(1)).await;
    let again = q.receive(Lane::Main, 10, LONG, NOW).await.expect("receive");
    assert_eq!(again.first().map(|m| m.body.as_str()), Some("m1"));
    assert_eq!(again[0].receive_count, 2);
    let order: Vec<&str> = again.iter().map(|m| m.body.as_str()).collect();
    assert!(
        ["m1", "m2", "m3"].starts_with(&order),
        "in send order: {order:?}"
    );
}

/// Extending a message's visibility keeps its group blocked past the first timeout.
async fn queue_extended_visibility_keeps_the_group_blocked(h: Harness) {
    let q = h.backend.queue(EntityType::Episode);
    q.send_batch(&[msg("g", "m1", "m1"), msg("g", "m2", "m2")])
        .await
        .expect("send");
    let got = q
        .receive(Lane::Main, 1, Duration::from_secs(1), NOW)
        .await
        .expect("receive");
    q.change_visibility(&got[0].receipt, LONG)
        .await
        .expect("extend");
    h.pass(Duration::from_secs(1)).await;
    assert!(
        bodies(&h, Lane::Main, 10).await.is_empty(),
        "m1 is still in flight: neither it nor m2 is handed out"
    );
    assert!(q
        .delete_batch(std::slice::from_ref(&got[0].receipt))
        .await
        .expect("delete")
        .is_empty());
    assert_eq!(bodies(&h, Lane::Main, 10).await, ["m2"]);
}

async fn queue_drops_duplicates_within_the_window(h: Harness) {
    let q = h.backend.queue(EntityType::Episode);
    q.send_batch(&[msg("g", "same", "first")])
        .await
        .expect("send");
    let failed = q
        .send_batch(&[msg("g", "same", "second"), msg("g", "other", "other")])
        .await
        .expect("send again");
    assert!(failed.is_empty(), "a duplicate is accepted, not failed");
    assert_eq!(bodies(&h, Lane::Main, 10).await, vec!["first", "other"]);
}

/// A cancelled sync's enqueue: asked before each send batch, it stops between two and
/// counts exactly the records of the messages the queue took.
async fn queue_enqueue_stops_between_send_batches(h: Harness) {
    use metasync_engine::pipeline::enqueue::{enqueue_until, Message, QueuedRecord};
    use metasync_engine::pipeline::record::CanonicalRecord;
    let records: Vec<QueuedRecord> = (0..250)
        .map(|i| QueuedRecord {
            record: CanonicalRecord {
                entity: EntityType::Episode,
                key: format!("ep-{i}"),
                fields: std::collections::BTreeMap::from([("title".to_string(), format!("T {i}"))]),
            },
            hash: format!("h{i}"),
            changed: Vec::new(),
            may_exist: false,
        })
        .collect();
    let asked = AtomicU64::new(0);
    // Yes from the second question on: only the first send batch goes.
    let stop = || asked.fetch_add(1, Ordering::SeqCst) >= 1;
    let q = h.backend.queue(EntityType::Episode);
    let mut rng = Rng::new(7);
    let sent = enqueue_until(
        q.as_ref(),
        "run-1",
        records,
        5,
        &fast_retries(),
        &mut rng,
        &stop,
    )
    .await
    .expect("enqueue");
    assert_eq!(sent.messages, 10, "one send batch of ten messages");
    let mut received = 0;
    loop {
        let got = bodies(&h, Lane::Main, 10).await;
        if got.is_empty() {
            break;
        }
        for b in got {
            received += serde_json::from_str::<Message>(&b)
                .expect("a message")
                .records
                .len() as u64;
        }
    }
    assert_eq!(received, sent.records);
    assert!(sent.records > 0 && sent.records < 250, "{sent:?}");
}

async fn queue_refuses_oversized_batches_before_any_call(h: Harness) {
    let q = h.backend.queue(EntityType::Show);
    let before = q.calls();
    let eleven: Vec<Outgoing> = (0..11).map(|i| msg("g", &format!("d{i}"), "x")).collect();
    assert!(q.send_batch(&eleven).await.is_err());
    let half = "x".repeat(MAX_BATCH_BYTES / 2 + 1);
    assert!(q
        .send_batch(&[msg("g", "a", &half), msg("g", "b", &half)])
        .await
        .is_err());
    assert!(q.receive(Lane::Main, 11, LONG, NOW).await.is_err());
    assert_eq!(q.calls().since(&before).total(), 0);
    // At the limit exactly, it goes.
    let exact = "x".repeat(MAX_BATCH_BYTES / 2);
    assert!(q
        .send_batch(&[msg("g", "a", &exact), msg("g", "b", &exact)])
        .await
        .expect("send at the limit")
        .is_empty());
}

/// SQS takes only letters, digits and ASCII punctuation in group and dedup ids: a show
/// called "Café Society" as a group id is a sender fault on AWS, so both refuse it.
async fn queue_refuses_ids_sqs_would_refuse(h: Harness) {
    let q = h.backend.queue(EntityType::Show);
    let before = q.calls();
    for (group, dedup) in [
        ("Café Society", "d1"),
        ("with space", "d2"),
        ("g", "dédup"),
        ("g", ""),
        (&"g".repeat(129)[..], "d3"),
    ] {
        let err = q
            .send_batch(&[msg(group, dedup, "x")])
            .await
            .expect_err("refused");
        assert_eq!(err.kind, ErrorKind::Invalid, "{group:?} {dedup:?}: {err}");
    }
    assert_eq!(q.calls().since(&before).total(), 0, "before any call");
    let punctuation = "a-Z_0.9:!#$%&'()*+,/;<=>?@[]^`{|}~";
    assert!(q
        .send_batch(&[msg(punctuation, punctuation, "x")])
        .await
        .expect("letters, digits and punctuation go")
        .is_empty());
}

async fn queue_long_poll_wakes_on_arrival(h: Harness) {
    let q = h.backend.queue(EntityType::Season).clone();
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move {
            q.receive(Lane::Main, 10, LONG, Duration::from_secs(10))
                .await
                .expect("long poll")
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    q.send_batch(&[msg("g", "late", "late")])
        .await
        .expect("send");
    let got = waiter.await.expect("join");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "late");
}

fn record(entity: EntityType, key: &str, status: RecordStatus, code: Option<&str>) -> Record {
    let mut r = Record::new(RecordKey::new(entity, key), format!("hash-{key}"), status);
    r.payload = Some(format!("{{\"key\":\"{key}\"}}"));
    r.updated_at_ms = 1_800_000_000_000;
    r.last_error = code.map(|c| LastError {
        code: c.into(),
        message: format!("{c} on {key}"),
        attempts: 2,
    });
    r
}

async fn state_conditional_writes(h: Harness) {
    let s = &h.backend.state;
    let key = RecordKey::new(EntityType::Episode, "ep-1");
    let mut r = record(EntityType::Episode, "ep-1", RecordStatus::Pending, None);
    assert_eq!(s.put(&r, Expect::Absent).await.expect("put"), Written::Done);
    assert_eq!(
        s.put(&r, Expect::Absent).await.expect("put"),
        Written::Conflict
    );

    r.version = 2;
    r.status = RecordStatus::InProgress;
    r.lease = Some(metasync_engine::ports::Lease {
        owner: "worker-1".into(),
        until_ms: 1_800_000_060_000,
    });
    assert_eq!(
        s.put(&r, Expect::Version(1)).await.expect("put"),
        Written::Done
    );
    // A second worker that read version 1 loses.
    let mut other = r.clone();
    other.lease = None;
    assert_eq!(
        s.put(&other, Expect::Version(1)).await.expect("put"),
        Written::Conflict
    );
    assert_eq!(s.get(&key).await.expect("get"), Some(r.clone()));
    assert_eq!(
        s.put(&other, Expect::Version(9)).await.expect("put"),
        Written::Conflict
    );
    assert_eq!(
        s.put(&other, Expect::Any).await.expect("put"),
        Written::Done
    );
    assert_eq!(s.get(&key).await.expect("get").and_then(|r| r.lease), None);
    assert_eq!(
        s.get(&RecordKey::new(EntityType::Episode, "nope"))
            .await
            .expect("get"),
        None
    );
    let calls = s.calls();
    assert_eq!(calls.get(Service::State, "PutItem"), 6);
    assert_eq!(calls.get(Service::State, "GetItem"), 3);
}

async fn state_batches_keep_their_limits(h: Harness) {
    let s = &h.backend.state;
    let records: Vec<Record> = (0..30)
        .map(|i| {
            record(
                EntityType::Show,
                &format!("s{i:02}"),
                RecordStatus::Synced,
                None,
            )
        })
        .collect();
    assert!(s.batch_put(&records).await.is_err(), "30 > 25");
    assert!(s.batch_put(&records[..25]).await.expect("batch").is_empty());
    assert!(s.batch_put(&records[25..]).await.expect("batch").is_empty());

    let mut keys: Vec<RecordKey> = (0..70)
        .map(|i| RecordKey::new(EntityType::Show, format!("missing{i}")))
        .collect();
    keys.extend(records.iter().map(|r| r.key.clone()));
    keys.reverse();
    let got = s.batch_get(&keys).await.expect("batch get");
    assert_eq!(got, records, "the 30 that exist, by key");
    keys.push(RecordKey::new(EntityType::Show, "one-too-many"));
    assert!(s.batch_get(&keys).await.is_err(), "101 > 100");
}

/// DynamoDB refuses a whole batch that names a key twice, an item over 400 KB and an
/// index key over 1,024 bytes: both adapters refuse them alike, naming the record,
/// before any call.
async fn state_refuses_what_dynamodb_would_refuse(h: Harness) {
    let s = &h.backend.state;
    let before = s.calls();
    let a = record(EntityType::Show, "twice", RecordStatus::Synced, None);
    let err = s
        .batch_put(&[a.clone(), a.clone()])
        .await
        .expect_err("a key twice in a put");
    assert!(err.message.contains("show#twice"), "{err}");
    let err = s
        .batch_get(&[a.key.clone(), a.key.clone()])
        .await
        .expect_err("a key twice in a get");
    assert!(err.message.contains("show#twice"), "{err}");
    let mut big = record(EntityType::Episode, "big", RecordStatus::Synced, None);
    big.payload = Some("x".repeat(MAX_ITEM_BYTES));
    let err = s.put(&big, Expect::Absent).await.expect_err("too big");
    assert!(err.message.contains("episode#big"), "{err}");
    assert!(s.batch_put(&[big]).await.is_err());
    let long_key = "k".repeat(1_100);
    let long = record(
        EntityType::Show,
        &long_key,
        RecordStatus::Failed,
        Some("http_400"),
    );
    assert!(s.put(&long, Expect::Absent).await.is_err(), "index key");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(s.calls().since(&before).total(), 0, "before any call");
    // Under the limits, the same shapes go.
    let mut fits = record(EntityType::Episode, "fits", RecordStatus::Synced, None);
    fits.payload = Some("x".repeat(MAX_ITEM_BYTES - 4_096));
    assert_eq!(
        s.put(&fits, Expect::Absent).await.expect("fits"),
        Written::Done
    );
}

async fn state_queries_by_status_and_error_code(h: Harness) {
    let s = &h.backend.state;
    let mut all = Vec::new();
    for (i, code) in [
        "timeout",
        "bad_request",
        "timeout",
        "bad_request",
        "bad_request",
    ]
    .iter()
    .enumerate()
    {
        all.push(record(
            EntityType::Asset,
            &format!("a{i}"),
            RecordStatus::Failed,
            Some(code),
        ));
    }
    all.push(record(EntityType::Asset, "ok1", RecordStatus::Synced, None));
    all.push(record(EntityType::Show, "ok2", RecordStatus::Synced, None));
    let mut rng = Rng::new(7);
    put_all(s.as_ref(), &all, &fast_retries(), &mut rng)
        .await
        .expect("put all");

    // Pages of 2 walk all five failures, grouped by code, without repeats.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s
            .query(RecordStatus::Failed, None, 2, after.as_deref())
            .await
            .expect("query");
        seen.extend(page.items.iter().map(|r| {
            let code = r.last_error.as_ref().map(|e| e.code.clone());
            (code.unwrap_or_default(), r.key.key.clone())
        }));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
        assert!(seen.len() <= 5, "paging does not end: {seen:?}");
    }
    let expect: Vec<(String, String)> = [
        ("bad_request", "a1"),
        ("bad_request", "a3"),
        ("bad_request", "a4"),
        ("timeout", "a0"),
        ("timeout", "a2"),
    ]
    .iter()
    .map(|(c, k)| (c.to_string(), k.to_string()))
    .collect();
    assert_eq!(seen, expect);

    let timeouts = s
        .query(RecordStatus::Failed, Some("timeout"), 100, None)
        .await
        .expect("query");
    assert_eq!(timeouts.items.len(), 2);
    assert_eq!(timeouts.next, None);
    assert_eq!(timeouts.items[0], all[0]);
    let synced = s
        .query(RecordStatus::Synced, None, 100, None)
        .await
        .expect("query");
    assert_eq!(synced.items.len(), 2);
    assert!(s
        .query(RecordStatus::Discarded, None, 100, None)
        .await
        .expect("query")
        .items
        .is_empty());
}

async fn state_keeps_runs_newest_first(h: Harness) {
    let s = &h.backend.state;
    for (i, started) in [300, 100, 200].iter().enumerate() {
        let run = Run {
            id: format!("run-{i}"),
            who: "catalog@station".into(),
            started_at_ms: 1_800_000_000_000 + started,
            finished_at_ms: None,
            file_hashes: vec![format!("sha-{i}")],
            counts: [("synced".to_string(), 10 * i as u64)].into(),
            ..Run::default()
        };
        s.put_run(&run).await.expect("put run");
    }
    let runs = s.list_runs(2).await.expect("list runs");
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["run-0", "run-2"]);
    let one = s.get_run("run-1").await.expect("get run").expect("present");
    assert_eq!(one.file_hashes, ["sha-1"]);
    assert_eq!(one.counts.get("synced"), Some(&10));
    assert_eq!(s.get_run("run-9").await.expect("get run"), None);
    // Runs are not records.
    assert!(s
        .query(RecordStatus::Pending, None, 100, None)
        .await
        .expect("query")
        .items
        .is_empty());
}

async fn state_put_all_survives_throttling_and_unprocessed_items(h: Harness) {
    let faulty = FaultyState::new(h.backend.state.clone());
    faulty.throttle_next(2);
    faulty.partial_next(3);
    let records: Vec<Record> = (0..60)
        .map(|i| {
            record(
                EntityType::Episode,
                &format!("e{i:02}"),
                RecordStatus::Synced,
                None,
            )
        })
        .collect();
    let mut rng = Rng::new(1);
    let calls = put_all(&faulty, &records, &fast_retries(), &mut rng)
        .await
        .expect("put all");
    // 3 chunks + 2 throttled + 3 partial re-sends.
    assert_eq!(calls, 3 + 2 + 3);
    for chunk in records.chunks(100) {
        let keys: Vec<RecordKey> = chunk.iter().map(|r| r.key.clone()).collect();
        assert_eq!(h.backend.state.batch_get(&keys).await.expect("get"), chunk);
    }

    // A store that never catches up: the policy gives up with the count left.
    faulty.throttle_next(10);
    let err = put_all(&faulty, &records[..5], &fast_retries(), &mut rng)
        .await
        .expect_err("gives up");
    assert_eq!(err.kind, metasync_engine::ports::ErrorKind::Throttled);
}

/// The quota bucket changes only by compare-and-swap, and is not a record: listing
/// records by status never shows it.
async fn state_quota_is_swapped_only_from_what_was_read(h: Harness) {
    let st = h.backend.state.as_ref();
    let name = "https://media.example.org/api/v1";
    assert_eq!(st.read_quota(name).await.expect("read"), None);
    let a = QuotaState {
        tat_us: 1_000,
        paused_until_us: 0,
        version: 1,
        writer: 7,
    };
    let b = QuotaState {
        tat_us: 2_000,
        paused_until_us: 5_000,
        version: 2,
        writer: u64::MAX,
    };
    assert!(st.swap_quota(name, None, &a).await.expect("create"));
    assert!(
        !st.swap_quota(name, None, &b).await.expect("create again"),
        "it exists now"
    );
    assert!(st.swap_quota(name, Some(&a), &b).await.expect("swap"));
    assert!(
        !st.swap_quota(name, Some(&a), &a).await.expect("stale swap"),
        "a swap from a version no longer there is refused"
    );
    assert_eq!(st.read_quota(name).await.expect("read"), Some(b));
    assert_eq!(st.read_quota("other").await.expect("read"), None);
    for status in RecordStatus::ALL {
        let page = st.query(status, None, 100, None).await.expect("query");
        assert!(page.items.is_empty(), "{status:?}: {:?}", page.items);
    }
    assert!(st.list_runs(10).await.expect("runs").is_empty());
    assert!(st.swap_quota("", None, &a).await.is_err(), "no empty name");
}

/// Four limiters over one real store, leasing at once: together they keep to the
/// quota (GCRA's blocks never overlap: the slots handed out, whenever each call then
/// runs on a loaded machine), at about one write per block.
async fn state_quota_shared_by_four_limiters_keeps_to_the_rate(h: Harness) {
    use metasync_engine::ratelimit::SharedQuota;
    let store: Arc<dyn metasync_engine::ports::QuotaStore> = h.backend.state.clone();
    let quota = 50.0;
    let limiters: Vec<Arc<SharedQuota>> = (0..4)
        .map(|_| Arc::new(SharedQuota::new(store.clone(), "t", quota, 1)))
        .collect();
    let start = std::time::Instant::now();
    let run_for = Duration::from_secs(3);
    let times = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for q in &limiters {
        for _ in 0..2 {
            let (q, times) = (q.clone(), times.clone());
            tasks.push(tokio::spawn(async move {
                while start.elapsed() < run_for {
                    let slot = q.wait_turn().await.expect("lease");
                    times.lock().expect("times").push(slot);
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("limiter task");
    }
    let mut times = times.lock().expect("times").clone();
    times.sort();
    let distinct = times.windows(2).all(|w| w[1] - w[0] >= 19_000);
    assert!(distinct, "two slots closer than the 20 ms interval");
    // Slots in any window of one second.
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|u| **u < t + 1_000_000)
            .count();
        assert!(
            in_window as f64 <= quota + 1.0,
            "{in_window} slots in the second from {t} µs"
        );
    }
    let (writes, permits): (u64, u64) = limiters
        .iter()
        .map(|q| q.stats())
        .fold((0, 0), |(w, p), s| (w + s.writes, p + s.permits));
    assert!(permits as f64 <= quota * (start.elapsed().as_secs_f64() + 0.1) + 1.0);
    assert!(
        (writes as f64) / (permits as f64) <= 0.5,
        "{writes} writes for {permits} permits"
    );
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::local()).await;
                }
            )*
        }
        mod on_aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::aws().await).await;
                }
            )*
        }
    };
}

contract!(
    objects_round_trip,
    objects_bronze_is_immutable,
    objects_refuse_bad_keys_before_any_call,
    queue_is_fifo_per_group_and_parallel_across_groups,
    queue_visibility_timeout_and_change,
    queue_dead_letters_after_max_receives,
    queue_explicit_dead_letter,
    queue_refuses_receipts_of_another_queue,
    queue_group_goes_on_after_its_head_is_dead_lettered,
    queue_head_comes_back_first_after_its_timeout,
    queue_extended_visibility_keeps_the_group_blocked,
    queue_drops_duplicates_within_the_window,
    queue_enqueue_stops_between_send_batches,
    queue_refuses_oversized_batches_before_any_call,
    queue_refuses_ids_sqs_would_refuse,
    queue_long_poll_wakes_on_arrival,
    state_conditional_writes,
    state_batches_keep_their_limits,
    state_refuses_what_dynamodb_would_refuse,
    state_queries_by_status_and_error_code,
    state_keeps_runs_newest_first,
    state_put_all_survives_throttling_and_unprocessed_items,
    state_quota_is_swapped_only_from_what_was_read,
    state_quota_shared_by_four_limiters_keeps_to_the_rate,
);

// ---------------------------------------------------------------------------------
// Behaviour moto does not have (see the notes at the top): local only.

mod local_only {
    use super::*;

    #[tokio::test]
    async fn dedup_outlives_delete_and_expires_after_five_minutes() {
        let h = local();
        let q = h.backend.queue(EntityType::Episode);
        q.send_batch(&[msg("g", "d1", "first")])
            .await
            .expect("send");
        let got = q.receive(Lane::Main, 10, LONG, NOW).await.expect("receive");
        q.delete_batch(std::slice::from_ref(&got[0].receipt))
            .await
            .expect("delete");
        h.pass(Duration::from_secs(4 * 60)).await;
        q.send_batch(&[msg("g", "d1", "again")])
            .await
            .expect("send");
        assert!(
            bodies(&h, Lane::Main, 10).await.is_empty(),
            "dropped: within 5 minutes"
        );
        h.pass(Duration::from_secs(61)).await;
        q.send_batch(&[msg("g", "d1", "later")])
            .await
            .expect("send");
        assert_eq!(bodies(&h, Lane::Main, 10).await, vec!["later"]);
    }

    /// A receipt holds while its receive does: once the visibility timeout ran out it
    /// is refused, whether or not the message was received again (SQS FIFO: "The
    /// receipt handle has expired"; moto accepts it, see the notes at the top).
    #[tokio::test]
    async fn an_expired_receipt_is_refused() {
        let h = local();
        let q = h.backend.queue(EntityType::Episode);
        q.send_batch(&[msg("g", "d1", "m")]).await.expect("send");
        let first = q
            .receive(Lane::Main, 1, Duration::from_secs(1), NOW)
            .await
            .expect("receive");
        h.pass(Duration::from_secs(2)).await;
        // Expired, and the message not received again yet.
        let failed = q
            .delete_batch(std::slice::from_ref(&first[0].receipt))
            .await
            .expect("delete");
        assert_eq!(failed.len(), 1);
        let err = q
            .change_visibility(&first[0].receipt, LONG)
            .await
            .expect_err("expired");
        assert_eq!(err.kind, ErrorKind::Stale, "{err}");
        let err = q.send_to_dead_letter(&first[0]).await.expect_err("expired");
        assert_eq!(err.kind, ErrorKind::Stale, "{err}");
        assert_eq!(q.depth().await.expect("depth").dead, 0);

        let second = q.receive(Lane::Main, 1, LONG, NOW).await.expect("receive");
        assert_eq!(second.len(), 1);
        // The slow first worker must not delete what the second one now holds.
        let failed = q
            .delete_batch(std::slice::from_ref(&first[0].receipt))
            .await
            .expect("delete");
        assert_eq!(failed.len(), 1);
        assert!(q.change_visibility(&first[0].receipt, NOW).await.is_err());
        assert!(q
            .delete_batch(std::slice::from_ref(&second[0].receipt))
            .await
            .expect("delete")
            .is_empty());
    }

    /// A status index that lags (DynamoDB's is read eventually): it still lists as
    /// failed a record the table now has as synced. Triage acts on what the table
    /// says, read again, never on the index's copy.
    #[tokio::test]
    async fn triage_acts_on_the_table_not_on_a_lagging_index() {
        use metasync_engine::pipeline::failures::{discard, Selection};
        use metasync_engine::ports::{Page, StateStore};

        struct LaggingIndex {
            inner: Arc<dyn StateStore>,
            /// What the index still shows.
            stale: Record,
        }

        #[async_trait::async_trait]
        impl metasync_engine::ports::QuotaStore for LaggingIndex {
            async fn read_quota(
                &self,
                name: &str,
            ) -> Result<Option<QuotaState>, metasync_engine::ports::StoreError> {
                self.inner.read_quota(name).await
            }
            async fn swap_quota(
                &self,
                name: &str,
                prev: Option<&QuotaState>,
                next: &QuotaState,
            ) -> Result<bool, metasync_engine::ports::StoreError> {
                self.inner.swap_quota(name, prev, next).await
            }
        }

        #[async_trait::async_trait]
        impl StateStore for LaggingIndex {
            async fn get(
                &self,
                key: &RecordKey,
            ) -> Result<Option<Record>, metasync_engine::ports::StoreError> {
                self.inner.get(key).await
            }
            async fn batch_get(
                &self,
                keys: &[RecordKey],
            ) -> Result<Vec<Record>, metasync_engine::ports::StoreError> {
                self.inner.batch_get(keys).await
            }
            async fn put(
                &self,
                r: &Record,
                e: Expect,
            ) -> Result<Written, metasync_engine::ports::StoreError> {
                self.inner.put(r, e).await
            }
            async fn batch_put(
                &self,
                r: &[Record],
            ) -> Result<Vec<Record>, metasync_engine::ports::StoreError> {
                self.inner.batch_put(r).await
            }
            async fn query(
                &self,
                status: RecordStatus,
                code: Option<&str>,
                limit: usize,
                after: Option<&str>,
            ) -> Result<Page<Record>, metasync_engine::ports::StoreError> {
                let mut page = self.inner.query(status, code, limit, after).await?;
                if status == self.stale.status && after.is_none() {
                    page.items.insert(0, self.stale.clone());
                }
                Ok(page)
            }
            async fn put_run(&self, run: &Run) -> Result<(), metasync_engine::ports::StoreError> {
                self.inner.put_run(run).await
            }
            async fn get_run(
                &self,
                id: &str,
            ) -> Result<Option<Run>, metasync_engine::ports::StoreError> {
                self.inner.get_run(id).await
            }
            async fn list_runs(
                &self,
                limit: usize,
            ) -> Result<Vec<Run>, metasync_engine::ports::StoreError> {
                self.inner.list_runs(limit).await
            }
            fn calls(&self) -> metasync_engine::ports::Calls {
                self.inner.calls()
            }
        }

        let h = local();
        let failed = record(
            EntityType::Episode,
            "e1",
            RecordStatus::Failed,
            Some("target_refused"),
        );
        h.backend
            .state
            .put(&failed, Expect::Absent)
            .await
            .expect("put");
        let mut synced = failed.clone();
        synced.status = RecordStatus::Synced;
        synced.last_error = None;
        synced.version = failed.version + 1;
        h.backend
            .state
            .put(&synced, Expect::Version(failed.version))
            .await
            .expect("synced since");
        let mut backend = h.backend.clone();
        backend.state = Arc::new(LaggingIndex {
            inner: h.backend.state.clone(),
            stale: failed.clone(),
        });
        for sel in [Selection::All, Selection::Code("target_refused".into())] {
            let done = discard(&backend, &sel, "not ours", "tester", "test")
                .await
                .expect("discard");
            assert!(
                done.records.is_empty(),
                "{sel:?}: acted on {:?}",
                done.records
            );
        }
        assert_eq!(
            h.backend.state.get(&failed.key).await.expect("get"),
            Some(synced),
            "still synced"
        );
    }

    /// Processes that open one fresh folder at the same moment all get in: the wait
    /// for a lock is set before the switch to WAL, which takes one.
    #[test]
    fn openers_racing_on_a_fresh_folder_all_get_in() {
        for _ in 0..4 {
            let dir = tempfile::tempdir().expect("temp dir");
            let start = Arc::new(std::sync::Barrier::new(12));
            let openers: Vec<_> = (0..12)
                .map(|_| {
                    let (dir, start) = (dir.path().to_owned(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        metasync_local::open(&dir, Default::default())
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    })
                })
                .collect();
            for o in openers {
                o.join().expect("opener").expect("open");
            }
        }
    }

    /// The CLI and the desktop app may hold one folder at once: two connections see
    /// each other's writes, and a long poll in one wakes for a send in the other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_openers_of_one_folder_share_queues_and_state() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = metasync_local::open(dir.path(), Default::default()).expect("open a");
        let b = metasync_local::open(dir.path(), Default::default()).expect("open b");
        let waiter = {
            let q = b.queue(EntityType::Show).clone();
            tokio::spawn(async move {
                q.receive(Lane::Main, 10, LONG, Duration::from_secs(10))
                    .await
                    .expect("long poll")
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        a.queue(EntityType::Show)
            .send_batch(&[msg("g", "x", "from a")])
            .await
            .expect("send");
        let got = waiter.await.expect("join");
        assert_eq!(
            got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["from a"]
        );
        // b holds it in flight; a sees that.
        assert_eq!(
            a.queue(EntityType::Show)
                .depth()
                .await
                .expect("depth")
                .in_flight,
            1
        );

        let r = record(EntityType::Show, "s1", RecordStatus::Pending, None);
        assert_eq!(
            a.state.put(&r, Expect::Absent).await.expect("put"),
            Written::Done
        );
        assert_eq!(
            b.state.put(&r, Expect::Absent).await.expect("put"),
            Written::Conflict
        );
        assert!(a
            .objects
            .put_if_absent("bronze/x.csv", b"a".to_vec(), "text/csv")
            .await
            .expect("put"));
        assert!(!b
            .objects
            .put_if_absent("bronze/x.csv", b"b".to_vec(), "text/csv")
            .await
            .expect("put"));
    }

    /// A child process (this test binary, re-run) writes to the local backend and
    /// consumes its queue, printing each acknowledged write and delete; the parent
    /// kills it with SIGKILL mid-stream, three times over the same folder, then drains
    /// the queue. Every acknowledged message and state write is there, once; and each
    /// group's messages were deleted in the order they were sent, across the kills.
    #[test]
    fn kill_9_loses_no_acknowledged_write() {
        if let (Some(dir), Ok(round)) = (
            std::env::var_os("METASYNC_KILL_CHILD_DIR"),
            std::env::var("METASYNC_KILL_ROUND"),
        ) {
            child_writes_forever(Path::new(&dir), &round);
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let exe = std::env::current_exe().expect("test binary");
        let mut acks = Acks::default();
        // Kill after different amounts of work, with writes in flight each time.
        for (round, kill_after) in [150usize, 420, 90].into_iter().enumerate() {
            let mut child = Command::new(&exe)
                .args([
                    "--exact",
                    "local_only::kill_9_loses_no_acknowledged_write",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("METASYNC_KILL_CHILD_DIR", dir.path())
                .env("METASYNC_KILL_ROUND", round.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the writer");
            let out = child.stdout.take().expect("stdout");
            let mut lines = BufReader::new(out).lines();
            let mut seen = 0;
            while seen < kill_after {
                let Some(Ok(line)) = lines.next() else {
                    panic!("the writer stopped early");
                };
                seen += usize::from(acks.note(&line));
            }
            child.kill().expect("SIGKILL");
            let status = child.wait().expect("wait");
            assert!(!status.success(), "killed, not finished: {status:?}");
            // Lines already in the pipe before the kill were acknowledged too.
            for line in lines.map_while(Result::ok) {
                acks.note(&line);
            }
        }

        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let b = metasync_local::open(dir.path(), Default::default()).expect("reopen");
            let q = b.queue(EntityType::Episode);
            // Messages the last child held come back after their visibility timeout.
            let mut drained = Vec::new();
            loop {
                let got = q
                    .receive(Lane::Main, 10, LONG, Duration::from_secs(1))
                    .await
                    .expect("receive");
                if got.is_empty() {
                    let d = q.depth().await.expect("depth");
                    if d.visible + d.in_flight == 0 {
                        break;
                    }
                    continue;
                }
                drained.extend(got.iter().map(|m| m.body.clone()));
                let receipts: Vec<_> = got.iter().map(|m| m.receipt.clone()).collect();
                assert!(q.delete_batch(&receipts).await.expect("delete").is_empty());
            }
            let mut found = std::collections::HashSet::new();
            for m in acks.deleted.iter().chain(&drained) {
                assert!(found.insert(m.clone()), "{m} deleted twice");
            }
            for m in &acks.sent {
                assert!(
                    found.contains(m) || acks.deleting.contains(m),
                    "acknowledged message {m} lost"
                );
            }
            // Per group, in send order: (round, i, j) rises.
            let mut last: std::collections::HashMap<String, (u64, u64, u64)> = Default::default();
            for m in acks.deleted.iter().chain(&drained) {
                let (group, at) = place(m);
                if let Some(before) = last.insert(group.clone(), at) {
                    assert!(before < at, "group {group}: {m} after {before:?}");
                }
            }
            for k in &acks.records {
                let r = b
                    .state
                    .get(&RecordKey::new(EntityType::Episode, k.clone()))
                    .await
                    .expect("get");
                assert_eq!(r.map(|r| r.hash), Some(format!("hash-{k}")), "record {k}");
            }
            let bronze = b.objects.list("bronze/").await.expect("list");
            assert!(!bronze.is_empty());
            eprintln!(
                "after 3 × kill -9: {} acknowledged messages and {} records all present; \
                 {} deleted by the writers and {} drained, each group in send order",
                acks.sent.len(),
                acks.records.len(),
                acks.deleted.len(),
                drained.len()
            );
        });
    }

    /// What the killed writers acknowledged.
    #[derive(Default)]
    struct Acks {
        sent: Vec<String>,
        records: Vec<String>,
        /// About to be deleted (the delete may or may not have happened).
        deleting: std::collections::HashSet<String>,
        /// Deleted, in the order of the deletes.
        deleted: Vec<String>,
    }

    impl Acks {
        /// Records one acknowledgement line; true for a sent message.
        fn note(&mut self, line: &str) -> bool {
            if let Some(n) = line.strip_prefix("sent ") {
                self.sent.push(n.to_string());
                return true;
            }
            if let Some(n) = line.strip_prefix("put ") {
                self.records.push(n.to_string());
            } else if let Some(n) = line.strip_prefix("deleting ") {
                self.deleting.insert(n.to_string());
            } else if let Some(n) = line.strip_prefix("deleted ") {
                self.deleted.push(n.to_string());
            }
            false
        }
    }

    /// A message body `m{round}-{i}-{j}`: its group (`show-{i % 7}`) and place in it.
    fn place(body: &str) -> (String, (u64, u64, u64)) {
        let n: Vec<u64> = body
            .trim_start_matches('m')
            .split('-')
            .map(|x| x.parse().expect("a number"))
            .collect();
        (format!("show-{}", n[1] % 7), (n[0], n[1], n[2]))
    }

    fn child_writes_forever(dir: &Path, round: &str) {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let b = metasync_local::open(dir, Default::default()).expect("open");
            let q = b.queue(EntityType::Episode);
            for i in 0u64.. {
                let batch: Vec<Outgoing> = (0..5)
                    .map(|j| {
                        let id = format!("m{round}-{i}-{j}");
                        msg(&format!("show-{}", i % 7), &id, &id)
                    })
                    .collect();
                q.send_batch(&batch).await.expect("send");
                for m in &batch {
                    println!("sent {}", m.body);
                }
                let key = format!("k{round}-{i}");
                let r = record(EntityType::Episode, &key, RecordStatus::Synced, None);
                let r = Record {
                    hash: format!("hash-{key}"),
                    ..r
                };
                b.state.put(&r, Expect::Any).await.expect("put");
                println!("put {key}");
                b.objects
                    .put_if_absent(
                        &format!("bronze/episode/{round}-{i}.csv"),
                        vec![b'x'; 4096],
                        "text/csv",
                    )
                    .await
                    .expect("object");
                // Consume a little slower than sending, so a backlog builds up.
                if i % 2 == 0 {
                    let got = q
                        .receive(Lane::Main, 7, Duration::from_secs(1), NOW)
                        .await
                        .expect("receive");
                    for m in &got {
                        println!("deleting {}", m.body);
                    }
                    let receipts: Vec<_> = got.iter().map(|m| m.receipt.clone()).collect();
                    if !receipts.is_empty() {
                        let failed = q.delete_batch(&receipts).await.expect("delete");
                        assert!(failed.is_empty(), "deleted within the visibility timeout");
                        for m in &got {
                            println!("deleted {}", m.body);
                        }
                    }
                }
            }
        });
    }
}

// ---------------------------------------------------------------------------------
// `metasync infra up` / `down` against moto, through the binary.

mod infra_cli {
    use super::*;

    fn metasync(config: &Path, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_metasync"))
            .args(args)
            .arg("--config")
            .arg(config)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
            .output()
            .expect("run metasync")
    }

    fn text(o: &std::process::Output) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn infra_up_creates_then_changes_nothing_and_down_removes() {
        let p = moto_profile();
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("metasync.toml");
        std::fs::write(
            &config,
            format!(
                "[profiles.staging]\nbackend = \"aws\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\nbucket = \"{}\"\ntable = \"{}\"\nqueue_prefix = \"{}\"\nmax_receive_count = 4\n",
                moto().url, p.bucket, p.table, p.queue_prefix
            ),
        )
        .expect("write config");

        let actions = |v: &serde_json::Value, action: &str| {
            v.as_array()
                .map(|a| a.iter().filter(|c| c["action"] == action).count())
                .unwrap_or(0)
        };
        let check = |config: &std::path::Path| {
            let out = metasync(
                config,
                &["infra", "check", "--profile", "staging", "--format", "json"],
            );
            let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            (out.status.code(), seen)
        };
        // check only looks: nothing there yet, exit 1, and still nothing after it.
        let (code, seen) = check(&config);
        assert_eq!(code, Some(1), "{seen}");
        assert_eq!(actions(&seen, "absent"), 1 + 8 + 1, "{seen}");
        assert_eq!(check(&config).1, seen);
        let clients = Clients::new(&p, Some(moto_keys())).await.expect("clients");
        let queues = || async {
            clients
                .sqs
                .list_queues()
                .queue_name_prefix(&p.queue_prefix)
                .send()
                .await
                .expect("list queues")
                .queue_urls()
                .len()
        };
        assert_eq!(queues().await, 0, "check created queues");
        assert!(clients
            .s3
            .head_bucket()
            .bucket(&p.bucket)
            .send()
            .await
            .is_err());

        let up = metasync(
            &config,
            &["infra", "up", "--profile", "staging", "--format", "json"],
        );
        assert!(up.status.success(), "{}", text(&up));
        let changes: serde_json::Value = serde_json::from_slice(&up.stdout).expect("json");
        assert_eq!(actions(&changes, "created"), 1 + 8 + 1, "{changes}");
        let (code, seen) = check(&config);
        assert_eq!(code, Some(0), "{seen}");
        assert_eq!(actions(&seen, "exists"), 1 + 8 + 1, "{seen}");

        assert_eq!(queues().await, 8);
        let url = clients
            .sqs
            .get_queue_url()
            .queue_name(p.queue_name(EntityType::Asset, false))
            .send()
            .await
            .expect("url");
        let attrs = clients
            .sqs
            .get_queue_attributes()
            .queue_url(url.queue_url().unwrap_or_default())
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .expect("attributes");
        let attrs = attrs.attributes().cloned().unwrap_or_default();
        let redrive = attrs
            .get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
            .cloned()
            .unwrap_or_default();
        assert!(redrive.contains("asset-dlq.fifo"), "{redrive}");
        assert!(
            redrive.contains('4'),
            "max receive count from the profile: {redrive}"
        );
        assert_eq!(
            attrs
                .get(&aws_sdk_sqs::types::QueueAttributeName::FifoQueue)
                .map(String::as_str),
            Some("true")
        );
        let table = clients
            .dynamodb
            .describe_table()
            .table_name(&p.table)
            .send()
            .await
            .expect("table");
        let indexes = table
            .table()
            .map(|t| t.global_secondary_indexes().len())
            .unwrap_or(0);
        assert_eq!(indexes, 1);
        let encryption = clients
            .s3
            .get_bucket_encryption()
            .bucket(&p.bucket)
            .send()
            .await
            .expect("bucket encryption");
        assert!(encryption.server_side_encryption_configuration().is_some());

        // The second run changes nothing.
        let again = metasync(
            &config,
            &["infra", "up", "--profile", "staging", "--format", "json"],
        );
        assert!(again.status.success(), "{}", text(&again));
        let changes: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
        assert_eq!(actions(&changes, "exists"), 10, "{changes}");
        assert_eq!(actions(&changes, "created"), 0, "{changes}");

        // down asks first; with no terminal and no --yes it refuses and keeps all.
        let refused = metasync(&config, &["infra", "down", "--profile", "staging"]);
        assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
        assert!(text(&refused).contains("--yes"), "{}", text(&refused));
        assert_eq!(queues().await, 8);

        let down = metasync(&config, &["infra", "down", "--profile", "staging", "--yes"]);
        assert!(down.status.success(), "{}", text(&down));
        assert!(text(&down).contains("deleted"), "{}", text(&down));
        assert_eq!(queues().await, 0);
        assert!(clients
            .dynamodb
            .describe_table()
            .table_name(&p.table)
            .send()
            .await
            .is_err());
    }

    #[test]
    fn a_wrong_profile_fails_naming_the_field_before_any_call() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("metasync.toml");
        // The endpoint is a closed port: any call would fail differently.
        std::fs::write(
            &config,
            "[profiles.staging]\nbackend = \"aws\"\nendpoint_url = \"http://127.0.0.1:9\"\nbucket = \"Bad_Bucket\"\ntable = \"t1t\"\nqueue_prefix = \"q\"\n",
        )
        .expect("write");
        let out = metasync(&config, &["infra", "up", "--profile", "staging"]);
        assert_eq!(out.status.code(), Some(2));
        let t = text(&out);
        assert!(t.contains("profile staging: bucket:"), "{t}");
        assert!(!t.contains("dispatch"), "no call was made: {t}");
    }
}

// ---------------------------------------------------------------------------------
// Faults moto cannot produce, injected at the HTTP layer under the real SDK: the
// adapters' own handling (retries through the engine's policy, error kinds, and
// DynamoDB's UnprocessedItems / UnprocessedKeys) runs as it would against AWS.

mod aws_faults {
    use super::*;
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
        SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::body::SdkBody;
    use metasync_engine::ports::ErrorKind;

    /// What to answer instead of the service.
    #[derive(Debug, Clone, Copy)]
    enum Fault {
        /// DynamoDB / SQS (JSON protocols): 400 with this error type.
        Json(&'static str),
        /// S3: this status with this XML error code.
        Xml(u16, &'static str),
        /// A 500 with no usable body.
        ServerError,
        /// BatchWriteItem / BatchGetItem: 200, nothing processed, all handed back.
        NothingProcessed,
        /// The request reaches moto and is carried out, but the answer is lost (a
        /// timeout after the work was done): the caller sees a 500. A lost
        /// ReceiveMessage answer is kept under its ReceiveRequestAttemptId and given
        /// to a retry with the same id, as SQS does (moto ignores the id).
        LoseAnswer,
        /// JSON protocols: 400 with this error type and message.
        Refuse(&'static str, &'static str),
        /// SQS DeleteMessageBatch: 200, every entry failed with this code and message.
        EntriesFailed(&'static str, &'static str),
        /// JSON protocols: 400 with this error type, the answer's `Date` this far
        /// ahead of now (a service whose clock differs from ours).
        Skewed(&'static str, Duration),
    }

    /// Faults to inject: the next `n` requests of an operation get `fault`.
    #[derive(Debug, Clone, Default)]
    struct Plan(Arc<Mutex<PlanState>>);

    #[derive(Debug, Default)]
    struct PlanState {
        planned: Vec<Planned>,
        /// Lost ReceiveMessage answers by attempt id.
        lost_receives: std::collections::HashMap<String, Vec<u8>>,
        /// Every request: its operation, `X-Amz-Date` and JSON body.
        seen: Vec<(String, String, serde_json::Value)>,
    }

    /// An operation, how many more of its requests to answer, and with what.
    type Planned = (&'static str, u32, Fault);

    impl Plan {
        fn add(&self, operation: &'static str, n: u32, fault: Fault) {
            self.0
                .lock()
                .expect("plan")
                .planned
                .push((operation, n, fault));
        }
        fn take(&self, operation: &str) -> Option<Fault> {
            let mut plan = self.0.lock().expect("plan");
            let slot = plan
                .planned
                .iter_mut()
                .find(|(op, n, _)| *op == operation && *n > 0)?;
            slot.1 -= 1;
            Some(slot.2)
        }
        /// The requests of an operation so far: `X-Amz-Date` and JSON body.
        fn seen(&self, operation: &str) -> Vec<(String, serde_json::Value)> {
            let plan = self.0.lock().expect("plan");
            plan.seen
                .iter()
                .filter(|(op, _, _)| op == operation)
                .map(|(_, date, body)| (date.clone(), body.clone()))
                .collect()
        }
    }

    #[derive(Debug)]
    struct FaultClient {
        inner: SharedHttpClient,
        plan: Plan,
    }

    impl HttpClient for FaultClient {
        fn http_connector(
            &self,
            settings: &HttpConnectorSettings,
            components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(FaultConnector {
                inner: self.inner.http_connector(settings, components),
                plan: self.plan.clone(),
            })
        }
    }

    #[derive(Debug)]
    struct FaultConnector {
        inner: SharedHttpConnector,
        plan: Plan,
    }

    /// The operation of a request: `X-Amz-Target` for the JSON protocols
    /// (`DynamoDB_20120810.PutItem`, `AmazonSQS.SendMessageBatch`), `PUT`/`GET` for S3.
    fn operation(request: &HttpRequest) -> String {
        match request.headers().get("x-amz-target") {
            Some(t) => t.rsplit('.').next().unwrap_or_default().to_string(),
            None => format!("s3:{}", request.method()),
        }
    }

    fn response(status: u16, content_type: &str, body: String) -> HttpResponse {
        let mut r = HttpResponse::new(
            status.try_into().expect("a valid status"),
            SdkBody::from(body),
        );
        r.headers_mut()
            .insert("content-type", content_type.to_string());
        r
    }

    /// DynamoDB's answer when it processed none of a batch: the request's items back.
    fn nothing_processed(op: &str, request: &HttpRequest) -> String {
        let body: serde_json::Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        let items = body["RequestItems"].clone();
        match op {
            "BatchWriteItem" => serde_json::json!({ "UnprocessedItems": items }),
            _ => serde_json::json!({ "Responses": {}, "UnprocessedKeys": items }),
        }
        .to_string()
    }

    impl HttpConnector for FaultConnector {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let op = operation(&request);
            let body: serde_json::Value = request
                .body()
                .bytes()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or_default();
            let date = request
                .headers()
                .get("x-amz-date")
                .unwrap_or_default()
                .to_string();
            let attempt = body["ReceiveRequestAttemptId"].as_str().map(str::to_string);
            let json = "application/x-amz-json-1.0";
            {
                let mut state = self.plan.0.lock().expect("plan");
                state.seen.push((op.clone(), date, body));
                if let Some(kept) = attempt.as_ref().and_then(|a| state.lost_receives.get(a)) {
                    let kept = String::from_utf8_lossy(kept).into_owned();
                    return HttpConnectorFuture::ready(Ok(response(200, json, kept)));
                }
            }
            let Some(fault) = self.plan.take(&op) else {
                return self.inner.call(request);
            };
            if let Fault::LoseAnswer = fault {
                let done = self.inner.call(request);
                let plan = self.plan.clone();
                return HttpConnectorFuture::new(async move {
                    if let (Ok(answer), Some(id)) = (done.await, attempt) {
                        let bytes =
                            aws_smithy_types::byte_stream::ByteStream::new(answer.into_body())
                                .collect()
                                .await
                                .expect("moto's answer")
                                .into_bytes()
                                .to_vec();
                        plan.0.lock().expect("plan").lost_receives.insert(id, bytes);
                    }
                    Ok(response(500, "text/plain", "answer lost".into()))
                });
            }
            let answer = match fault {
                Fault::Json(kind) => response(
                    400,
                    json,
                    format!(
                        r#"{{"__type":"com.amazonaws.injected#{kind}","message":"injected {kind}"}}"#
                    ),
                ),
                Fault::Xml(status, code) => response(
                    status,
                    "application/xml",
                    format!("<Error><Code>{code}</Code><Message>injected</Message></Error>"),
                ),
                Fault::ServerError => response(500, "text/plain", "boom".into()),
                Fault::NothingProcessed => response(200, json, nothing_processed(&op, &request)),
                Fault::Refuse(kind, message) => response(
                    400,
                    json,
                    serde_json::json!({ "__type": format!("com.amazonaws.sqs#{kind}"), "message": message })
                        .to_string(),
                ),
                Fault::EntriesFailed(code, message) => {
                    let body: serde_json::Value = request
                        .body()
                        .bytes()
                        .and_then(|b| serde_json::from_slice(b).ok())
                        .unwrap_or_default();
                    let failed: Vec<serde_json::Value> = body["Entries"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|e| {
                            serde_json::json!({
                                "Id": e["Id"], "SenderFault": true, "Code": code, "Message": message
                            })
                        })
                        .collect();
                    response(
                        200,
                        json,
                        serde_json::json!({ "Successful": [], "Failed": failed }).to_string(),
                    )
                }
                Fault::Skewed(kind, ahead) => {
                    let mut r = response(
                        400,
                        json,
                        format!(r#"{{"__type":"com.amazonaws.injected#{kind}","message":"Signature expired"}}"#),
                    );
                    let date = aws_smithy_types::DateTime::from(std::time::SystemTime::now() + ahead)
                        .fmt(aws_smithy_types::date_time::Format::HttpDate)
                        .expect("an HTTP date");
                    r.headers_mut().insert("date", date);
                    r
                }
                Fault::LoseAnswer => unreachable!("answered above"),
            };
            HttpConnectorFuture::ready(Ok(answer))
        }
    }

    async fn faulty_aws() -> (Harness, Plan) {
        let profile = moto_profile();
        let plan = Plan::default();
        let http = SharedHttpClient::new(FaultClient {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            plan: plan.clone(),
        });
        let clients = Clients::with_http_client(&profile, Some(moto_keys()), Some(http))
            .await
            .expect("clients");
        metasync_aws::infra::up(&clients, &profile)
            .await
            .expect("infra up on moto");
        let h = Harness {
            backend: metasync_aws::backend(&clients, &profile, fast_retries()),
            clock: None,
            encrypts: true,
            _dir: None,
        };
        (h, plan)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn throttling_and_5xx_are_retried_by_the_adapters() {
        let (h, plan) = faulty_aws().await;
        plan.add(
            "PutItem",
            2,
            Fault::Json("ProvisionedThroughputExceededException"),
        );
        plan.add("SendMessageBatch", 1, Fault::Json("ThrottlingException"));
        plan.add("s3:PUT", 1, Fault::Xml(503, "SlowDown"));
        plan.add("GetItem", 1, Fault::ServerError);

        let r = record(EntityType::Show, "s1", RecordStatus::Synced, None);
        assert_eq!(
            h.backend.state.put(&r, Expect::Absent).await.expect("put"),
            Written::Done
        );
        assert_eq!(
            h.backend.state.get(&r.key).await.expect("get"),
            Some(r.clone())
        );
        let q = h.backend.queue(EntityType::Show);
        q.send_batch(&[msg("g", "d", "once")]).await.expect("send");
        assert_eq!(
            bodies_of(q.as_ref()).await,
            ["once"],
            "sent once, not twice"
        );
        h.backend
            .objects
            .put("gold/counts.json", b"{}".to_vec(), "application/json")
            .await
            .expect("put object");

        let calls = h.backend.calls();
        assert_eq!(calls.get(Service::State, "PutItem"), 3, "2 throttled + 1");
        assert_eq!(calls.get(Service::State, "GetItem"), 2, "1 × 500 + 1");
        assert_eq!(calls.get(Service::Queue, "SendMessageBatch"), 2);
        assert_eq!(calls.get(Service::Objects, "PutObject"), 2);
    }

    async fn bodies_of(q: &dyn metasync_engine::ports::Queue) -> Vec<String> {
        q.receive(Lane::Main, 10, LONG, NOW)
            .await
            .expect("receive")
            .into_iter()
            .map(|m| m.body)
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_adapters_give_up_after_the_policy_and_say_why() {
        let (h, plan) = faulty_aws().await;
        plan.add("PutItem", 10, Fault::Json("ThrottlingException"));
        let r = record(EntityType::Show, "s1", RecordStatus::Synced, None);
        let err = h
            .backend
            .state
            .put(&r, Expect::Any)
            .await
            .expect_err("throttled for good");
        assert_eq!(err.kind, ErrorKind::Throttled);
        assert!(err.to_string().contains("ThrottlingException"), "{err}");
        // max_retries 3: four attempts, then the error.
        assert_eq!(h.backend.calls().get(Service::State, "PutItem"), 4);

        plan.add("GetItem", 1, Fault::Json("AccessDeniedException"));
        let err = h.backend.state.get(&r.key).await.expect_err("denied");
        assert_eq!(err.kind, ErrorKind::Denied);
        assert_eq!(
            h.backend.calls().get(Service::State, "GetItem"),
            1,
            "not retried"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unprocessed_items_and_keys_are_sent_again() {
        let (h, plan) = faulty_aws().await;
        let records: Vec<Record> = (0..40)
            .map(|i| {
                record(
                    EntityType::Episode,
                    &format!("e{i:02}"),
                    RecordStatus::Pending,
                    None,
                )
            })
            .collect();
        // The first batch write of each chunk processes nothing and hands all back.
        plan.add("BatchWriteItem", 1, Fault::NothingProcessed);
        let unprocessed = h
            .backend
            .state
            .batch_put(&records[..25])
            .await
            .expect("batch put");
        assert_eq!(
            unprocessed,
            records[..25],
            "read back from DynamoDB's answer"
        );
        plan.add("BatchWriteItem", 2, Fault::NothingProcessed);
        let calls = put_all(
            h.backend.state.as_ref(),
            &records,
            &fast_retries(),
            &mut Rng::new(3),
        )
        .await
        .expect("put all");
        assert_eq!(calls, 2 + 2);

        plan.add("BatchGetItem", 1, Fault::NothingProcessed);
        let keys: Vec<RecordKey> = records.iter().map(|r| r.key.clone()).collect();
        let got = h.backend.state.batch_get(&keys).await.expect("batch get");
        assert_eq!(got, records);
        // 1 unprocessed answer, then the real read.
        assert_eq!(h.backend.calls().get(Service::State, "BatchGetItem"), 2);
    }

    /// The ambiguous failure: the write happened, its answer did not arrive. The retry
    /// must not report a conflict (state), a pre-existing object (bronze) or send the
    /// message twice (queue).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_answer_is_not_mistaken_for_a_conflict_or_sent_twice() {
        let (h, plan) = faulty_aws().await;
        plan.add("PutItem", 1, Fault::LoseAnswer);
        let r = record(EntityType::Season, "s1", RecordStatus::Pending, None);
        assert_eq!(
            h.backend.state.put(&r, Expect::Absent).await.expect("put"),
            Written::Done
        );
        let mut next = r.clone();
        next.version = 2;
        next.status = RecordStatus::Synced;
        plan.add("PutItem", 1, Fault::LoseAnswer);
        assert_eq!(
            h.backend
                .state
                .put(&next, Expect::Version(1))
                .await
                .expect("put"),
            Written::Done
        );
        // A real conflict stays one.
        assert_eq!(
            h.backend
                .state
                .put(&r, Expect::Version(1))
                .await
                .expect("put"),
            Written::Conflict
        );
        assert_eq!(h.backend.calls().get(Service::State, "PutItem"), 5);

        plan.add("s3:PUT", 1, Fault::LoseAnswer);
        let key = "bronze/season/date=2026-11-22/r1/abc.csv";
        assert!(h
            .backend
            .objects
            .put_if_absent(key, b"ours".to_vec(), "text/csv")
            .await
            .expect("put"));
        assert!(!h
            .backend
            .objects
            .put_if_absent(key, b"other".to_vec(), "text/csv")
            .await
            .expect("put"));

        plan.add("SendMessageBatch", 1, Fault::LoseAnswer);
        let q = h.backend.queue(EntityType::Season);
        q.send_batch(&[msg("g", "d1", "one"), msg("g", "d2", "two")])
            .await
            .expect("send");
        assert_eq!(q.calls().get(Service::Queue, "SendMessageBatch"), 2);
        assert_eq!(
            bodies_of(q.as_ref()).await,
            ["one", "two"],
            "dedup ids: once each"
        );
    }

    /// SQS documents that a receive retried with the same attempt id after a lost
    /// answer gets the same messages and receipts; without the id they would stay in
    /// flight, unseen, for the visibility timeout and spend a receive each.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_receive_answer_is_asked_again_with_the_same_attempt_id() {
        let (h, plan) = faulty_aws().await;
        let q = h.backend.queue(EntityType::Episode);
        q.send_batch(&[msg("a", "a1", "a1"), msg("b", "b1", "b1")])
            .await
            .expect("send");
        plan.add("ReceiveMessage", 1, Fault::LoseAnswer);
        let got = q.receive(Lane::Main, 10, LONG, NOW).await.expect("receive");
        let mut bodies: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
        bodies.sort_unstable();
        assert_eq!(
            bodies,
            ["a1", "b1"],
            "the lost answer's messages, not nothing"
        );
        let receipts: Vec<_> = got.iter().map(|m| m.receipt.clone()).collect();
        assert!(q.delete_batch(&receipts).await.expect("delete").is_empty());
        let depth = q.depth().await.expect("depth");
        assert_eq!((depth.visible, depth.in_flight), (0, 0));
        let ids = |plan: &Plan| -> Vec<String> {
            plan.seen("ReceiveMessage")
                .iter()
                .map(|(_, b)| {
                    b["ReceiveRequestAttemptId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        };
        let first = ids(&plan);
        assert_eq!(first.len(), 2);
        assert!(!first[0].is_empty());
        assert_eq!(first[0], first[1], "the same id after a lost answer");

        // Throttled: SQS will not take the id again, so the retry has a new one.
        q.send_batch(&[msg("a", "a2", "a2")]).await.expect("send");
        plan.add("ReceiveMessage", 1, Fault::Json("RequestThrottled"));
        let got = q.receive(Lane::Main, 10, LONG, NOW).await.expect("receive");
        assert_eq!(got.len(), 1);
        let all = ids(&plan);
        assert_eq!(all.len(), 4);
        assert_ne!(all[2], all[3], "a new id after throttling");
        assert!(!first.contains(&all[2]), "each receive has its own id");
    }

    /// SQS FIFO refuses a receipt whose visibility timeout ran out; the adapter says
    /// so as `Stale` (not a failure to stop on), and a delete reports it undone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_receipts_are_stale_not_fatal() {
        const EXPIRED: &str = "Value AQEB for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.";
        let (h, plan) = faulty_aws().await;
        let q = h.backend.queue(EntityType::Show);
        q.send_batch(&[msg("g", "m1", "m1")]).await.expect("send");
        let got = q.receive(Lane::Main, 1, LONG, NOW).await.expect("receive");
        plan.add(
            "ChangeMessageVisibility",
            1,
            Fault::Refuse("InvalidParameterValue", EXPIRED),
        );
        let err = q
            .change_visibility(&got[0].receipt, NOW)
            .await
            .expect_err("expired");
        assert_eq!(err.kind, ErrorKind::Stale, "{err}");
        plan.add(
            "DeleteMessageBatch",
            1,
            Fault::EntriesFailed("InvalidParameterValue", EXPIRED),
        );
        let failed = q
            .delete_batch(std::slice::from_ref(&got[0].receipt))
            .await
            .expect("delete answers");
        assert_eq!(failed, [got[0].receipt.clone()]);
        assert_eq!(q.depth().await.expect("depth").in_flight, 1, "not deleted");
        plan.add(
            "DeleteMessage",
            1,
            Fault::Refuse(
                "ReceiptHandleIsInvalid",
                "The input receipt handle is not a valid receipt handle.",
            ),
        );
        let err = q.send_to_dead_letter(&got[0]).await.expect_err("stale");
        assert_eq!(err.kind, ErrorKind::Stale, "{err}");
        // Each refusal once: nothing to retry.
        let calls = q.calls();
        assert_eq!(calls.get(Service::Queue, "ChangeMessageVisibility"), 1);
        assert_eq!(calls.get(Service::Queue, "DeleteMessage"), 1);
    }

    /// A request refused for a skewed clock (the answer's `Date` an hour ahead) is
    /// retried, signed with the corrected time, and the next call keeps it; an
    /// `AccessDeniedException` from a service on our time stays a refusal.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_skewed_clock_is_corrected_and_retried() {
        let (h, plan) = faulty_aws().await;
        let hour = Duration::from_secs(3600);
        plan.add(
            "PutItem",
            1,
            Fault::Skewed("InvalidSignatureException", hour),
        );
        let r = record(EntityType::Show, "s1", RecordStatus::Synced, None);
        assert_eq!(
            h.backend.state.put(&r, Expect::Absent).await.expect("put"),
            Written::Done
        );
        assert_eq!(h.backend.calls().get(Service::State, "PutItem"), 2);
        let dates: Vec<String> = plan.seen("PutItem").into_iter().map(|(d, _)| d).collect();
        let at = |d: &str| {
            aws_smithy_types::DateTime::from_str(d, aws_smithy_types::date_time::Format::DateTime)
                .or_else(|_| {
                    // X-Amz-Date is the basic form: 20261128T010203Z.
                    let iso = format!(
                        "{}-{}-{}T{}:{}:{}Z",
                        &d[0..4],
                        &d[4..6],
                        &d[6..8],
                        &d[9..11],
                        &d[11..13],
                        &d[13..15]
                    );
                    aws_smithy_types::DateTime::from_str(
                        &iso,
                        aws_smithy_types::date_time::Format::DateTime,
                    )
                })
                .expect("a signing date")
                .secs()
        };
        let shift = at(&dates[1]) - at(&dates[0]);
        assert!(
            (3500..3700).contains(&shift),
            "signed {shift} s later, not an hour: {dates:?}"
        );

        plan.add("GetItem", 1, Fault::Json("AccessDeniedException"));
        let err = h.backend.state.get(&r.key).await.expect_err("denied");
        assert_eq!(err.kind, ErrorKind::Denied, "{err}");
    }

    /// S3 reports a request that timed out as a 400 (`RequestTimeout`): transient, as
    /// the SDKs classify it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timeout_reported_as_a_400_is_retried() {
        let (h, plan) = faulty_aws().await;
        plan.add("s3:PUT", 1, Fault::Xml(400, "RequestTimeout"));
        plan.add("s3:PUT", 1, Fault::Xml(503, "BandwidthLimitExceeded"));
        h.backend
            .objects
            .put("gold/counts.json", b"{}".to_vec(), "application/json")
            .await
            .expect("put object");
        assert_eq!(h.backend.calls().get(Service::Objects, "PutObject"), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_resource_points_at_infra_up() {
        // Real moto, no fault: a table nobody created.
        let mut profile = moto_profile();
        let clients = Clients::new(&profile, Some(moto_keys()))
            .await
            .expect("clients");
        profile.table = "never-created".into();
        let b = metasync_aws::backend(&clients, &profile, fast_retries());
        let err = b
            .state
            .get(&RecordKey::new(EntityType::Show, "x"))
            .await
            .expect_err("no table");
        assert_eq!(err.kind, ErrorKind::Missing);
        assert!(err.to_string().contains("infra up"), "{err}");
        assert_eq!(b.calls().get(Service::State, "GetItem"), 1, "not retried");
        let err = b
            .queue(EntityType::Show)
            .depth()
            .await
            .expect_err("no queue");
        assert_eq!(err.kind, ErrorKind::Missing, "{err}");
    }
}

/// The desktop's operations room on the AWS backend (moto): a sync of open files, the
/// dashboard against `status`, triage until synced, a run's records — the same `Desk`
/// calls the window makes on the embedded backend (the window test and the runtime's
/// `room_tests` cover those).
mod desk_on_aws {
    use super::*;
    use metasync_catalog_client::credentials::Credentials;
    use metasync_catalog_client::Secret;
    use metasync_runtime::infra::{infra, InfraAction};
    use metasync_runtime::operations::{Desk, FieldEdit, Places, SyncForm, TriageTarget};
    use metasync_runtime::settings::Profiles;
    use metasync_runtime::workbench::Workbench;
    use metasync_sandbox::{Access, Config, Sandbox};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sync_dashboard_and_triage_work_on_aws() {
        // The AWS chain's keys for moto (this binary's other tests pass keys explicitly).
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        let sandbox = Sandbox::start(
            Config {
                refuse_title: Some("DRAFT".into()),
                access: Access::Full,
                ..Config::default()
            },
            0,
        )
        .await
        .expect("sandbox");
        let p = moto_profile();
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("metasync.toml");
        std::fs::write(
            &config,
            format!(
                "[profiles.cloud]\nbackend = \"aws\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\
                 bucket = \"{}\"\ntable = \"{}\"\nqueue_prefix = \"{}\"\nmax_receive_count = 2\n\
                 [profiles.cloud.target]\ndialect = \"media_manager\"\naccess = \"pbs\"\nurl = \"{}/api/v1\"\n\
                 base_delay_seconds = 0.05\n",
                moto().url,
                p.bucket,
                p.table,
                p.queue_prefix,
                sandbox.url()
            ),
        )
        .expect("config");
        let profiles = Arc::new(Profiles::new(config));
        profiles.select(Some("cloud")).expect("cloud");
        infra(&profiles.chosen().expect("chosen"), InfraAction::Up)
            .await
            .expect("infra up");
        let creds = metasync_sandbox::Credentials::default();
        let desk = Desk::new(
            Arc::clone(&profiles),
            Places {
                scratch: dir.path().join("scratch"),
                state: dir.path().join("state"),
            },
        )
        .with_credentials(Credentials {
            key: Secret::new(creds.key),
            secret: Secret::new(creds.secret),
        });
        let files = [
            ("shows.csv", "show_key,slug,title,audience,language\nA1,owls-show,Owls,national,en\n"),
            ("seasons.csv", "season_key,show_key,ordinal\nA1-S1,A1,1\n"),
            (
                "episodes.csv",
                "episode_key,season_key,ordinal,slug,title,description_short,description_long,premiered_on\n\
                 A1-S1-E1,A1-S1,1,barn,Barn,Short.,Long.,2024-01-05\n\
                 A1-S1-E2,A1-S1,2,snow,Snow DRAFT,Short.,Long.,2024-01-12\n",
            ),
        ]
        .map(|(name, text)| {
            let f = dir.path().join(name);
            std::fs::write(&f, text).expect("write");
            f
        });
        let wb = Arc::new(Workbench::default());
        for r in wb.open_paths(&files) {
            r.expect("opened");
        }
        wb.wait();

        let done = desk
            .sync_open_files(Arc::clone(&wb), SyncForm::default(), Arc::new(|_| {}))
            .await
            .expect("sync");
        assert_eq!((done.rows, done.synced, done.failed), (4, 3, 1), "{done:?}");
        let dash = desk.dashboard().await.expect("dashboard");
        let env = desk.env().await.expect("env");
        let status = metasync_runtime::status(&env, 10).await.expect("status");
        for (row, q) in dash.queues.iter().zip(&status.queues) {
            assert_eq!(
                (row.visible, row.in_flight, row.dead),
                (q.depth.visible, q.depth.in_flight, q.depth.dead)
            );
        }
        assert_eq!(dash.failures, status.failures);
        assert!(!dash.depth.is_empty(), "the sync sampled the queues");

        // The status index is read eventually consistently: wait for the failure.
        let mut groups = Vec::new();
        for _ in 0..50 {
            groups = desk.failure_groups().await.expect("groups");
            if !groups.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(groups[0].records, vec!["episode#A1-S1-E2".to_string()]);
        let retried = desk
            .retry_failures(
                &TriageTarget::Record {
                    record: "episode#A1-S1-E2".into(),
                },
                &[FieldEdit {
                    field: "title".into(),
                    value: "Snow".into(),
                }],
            )
            .await
            .expect("retry");
        assert_eq!((retried.synced, retried.failed), (1, 0), "{retried:?}");
        let detail = desk.run_detail(&done.run_id).await.expect("run");
        assert_eq!(
            detail.by_outcome,
            [("changed since".to_string(), 1), ("synced".to_string(), 3)].into(),
            "{detail:?}"
        );
        // Every call the desktop made (sync, dashboard, triage, runs) is one the policy
        // `metasync deploy print-policy` prints allows, on that resource.
        use metasync_engine::ports::Service;
        use metasync_runtime::policy::{allows, desktop_policy, iam_action};
        let policy = desktop_policy(&profiles.chosen().expect("chosen"), None).expect("policy");
        let calls = env.backend.calls();
        assert!(calls.total() > 0);
        for c in calls.iter() {
            let action = iam_action(c.service, c.operation)
                .unwrap_or_else(|| panic!("{:?} {} has no IAM action", c.service, c.operation));
            let resource = match (c.service, action) {
                (Service::Objects, "s3:ListBucket") => p.bucket.clone(),
                (Service::Objects, _) => format!("{}/*", p.bucket),
                (Service::Queue, _) => ".fifo".to_string(),
                (Service::State, "dynamodb:Query") => format!("table/{}/index/by_status", p.table),
                (Service::State, _) => format!("table/{}", p.table),
            };
            assert!(
                allows(&policy, action, &resource),
                "{action} on {resource} is not in the policy"
            );
        }
        infra(&profiles.chosen().expect("chosen"), InfraAction::Down)
            .await
            .expect("infra down");
    }
}
