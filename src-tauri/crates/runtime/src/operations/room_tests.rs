//! The operations room end to end on the embedded backend against the sandbox over
//! HTTP: a sync of open files with its updates, the dashboard against `status`, triage
//! (check as you type, edit and retry until synced), cancel, the production check, and
//! the resume of a sync the app did not see end.

use super::*;
use crate::ops::{self, SyncRequest};
use metasync_catalog_client::credentials::Credentials;
use metasync_catalog_client::Secret;
use metasync_engine::pipeline::sync::Cancel;
use metasync_engine::ports::RecordKey;
use metasync_engine::EntityType;
use metasync_sandbox::{Access, Config, Sandbox};
use std::path::Path;
use std::sync::{Arc, Mutex};

const SHOWS: &str = "show_key,slug,title,audience,language\n\
    SH1,nova,NOVA,national,en\n\
    SH2,frontline,Frontline,national,en\n";
const SEASONS: &str = "season_key,show_key,ordinal\nSH1-S1,SH1,1\nSH2-S1,SH2,1\n";
const EPISODES: &str =
    "episode_key,season_key,ordinal,slug,title,description_short,description_long,premiered_on\n\
    SH1-S1-E1,SH1-S1,1,owls,Owls,Short.,Long.,2024-01-05\n\
    SH1-S1-E2,SH1-S1,2,bats,Bats DRAFT,Short.,Long.,2024-01-12\n\
    SH2-S1-E1,SH2-S1,1,votes,Votes,Short.,Long.,2024-01-19\n";

struct Room {
    _dir: tempfile::TempDir,
    _sandbox: Sandbox,
    desk: Arc<Desk>,
    wb: Arc<crate::workbench::Workbench>,
    files: Vec<std::path::PathBuf>,
}

async fn room(production: bool) -> Room {
    room_with(production, std::time::Duration::ZERO).await
}

/// With `latency`, each of the sandbox's answers takes that long (a sync to cancel).
async fn room_with(production: bool, latency: std::time::Duration) -> Room {
    let sandbox = Sandbox::start(
        Config {
            refuse_title: Some("DRAFT".into()),
            access: Access::Full,
            latency,
            ..Config::default()
        },
        0,
    )
    .await
    .expect("sandbox");
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path();
    let mut files = Vec::new();
    for (name, text) in [
        ("shows", SHOWS),
        ("seasons", SEASONS),
        ("episodes", EPISODES),
    ] {
        let f = p.join(format!("{name}.csv"));
        std::fs::write(&f, text).expect("write");
        files.push(f);
    }
    let config = p.join("metasync.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.desk]\nproduction = {production}\ndata_dir = {:?}\n[profiles.desk.target]\n\
             dialect = \"media_manager\"\naccess = \"pbs\"\nurl = \"{}/api/v1\"\nbase_delay_seconds = 0.05\n",
            p.join("data").display().to_string(),
            sandbox.url()
        ),
    )
    .expect("config");
    let profiles = Arc::new(crate::settings::Profiles::new(config));
    profiles.select(Some("desk")).expect("desk");
    let creds = metasync_sandbox::Credentials::default();
    let desk = Desk::new(
        profiles,
        Places {
            scratch: p.join("scratch"),
            state: p.join("state"),
        },
    )
    .with_credentials(Credentials {
        key: Secret::new(creds.key),
        secret: Secret::new(creds.secret),
    });
    let wb = Arc::new(crate::workbench::Workbench::default());
    for r in wb.open_paths(&files) {
        r.expect("opened");
    }
    wb.wait();
    Room {
        _dir: dir,
        _sandbox: sandbox,
        desk: Arc::new(desk),
        wb,
        files,
    }
}

fn conserved(d: &SyncDone) {
    assert_eq!(
        d.rows,
        d.synced + d.unchanged + d.rejected + d.failed + d.discarded + d.not_sent + d.queued,
        "every row in one place: {d:?}"
    );
}

type Updates = Arc<Mutex<Vec<SyncUpdate>>>;

fn collect() -> (Updates, Arc<dyn Fn(SyncUpdate) + Send + Sync>) {
    let seen: Updates = Arc::default();
    let s = Arc::clone(&seen);
    (seen, Arc::new(move |u| s.lock().expect("lock").push(u)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_from_the_window_then_triage_fixes_the_refused_record() {
    let r = room(false).await;
    let (seen, on) = collect();
    let done = r
        .desk
        .sync_open_files(Arc::clone(&r.wb), SyncForm::default(), on)
        .await
        .expect("sync");
    conserved(&done);
    assert_eq!((done.rows, done.synced, done.failed), (7, 6, 1), "{done:?}");
    assert!(!r.desk.sync_running(), "the slot is free again");
    let updates = seen.lock().expect("lock").clone();
    let last = updates.last().expect("updates");
    assert_eq!(last.stage, "done");
    let ep = &last.types[EntityType::Episode.index()];
    assert_eq!((ep.enqueued, ep.synced, ep.failed), (3, 2, 1));
    assert!(
        interrupted(&r.desk.places.state).is_none(),
        "ended: nothing to resume"
    );

    // The dashboard's queues and failures are `status`'s.
    let dash = r.desk.dashboard().await.expect("dashboard");
    let env = r.desk.env().await.expect("env");
    let status = ops::status(&env, RUNS_SHOWN).await.expect("status");
    assert_eq!(dash.queues.len(), status.queues.len());
    for (row, q) in dash.queues.iter().zip(&status.queues) {
        assert_eq!(
            (row.visible, row.in_flight, row.dead),
            (q.depth.visible, q.depth.in_flight, q.depth.dead)
        );
    }
    assert_eq!(dash.failures, status.failures);
    assert_eq!(dash.failures.get("http_400"), Some(&1));
    assert!(!dash.depth.is_empty(), "the sync sampled the queues");
    assert_eq!(dash.minutes.iter().map(|m| m.synced).sum::<u64>(), 6);
    let ep = &dash.per_type[EntityType::Episode.index()];
    assert_eq!((ep.entity.as_str(), ep.synced_last_hour), ("episode", 2));
    assert!(ep.latency_p50_ms.is_some());
    assert_eq!(
        dash.per_type[EntityType::Asset.index()].latency_p50_ms,
        None
    );
    assert_eq!(dash.runs[0].id, done.run_id);
    assert!(done.alert().is_some_and(|a| a.contains("1 failed")));
    assert_eq!(dash.alert, None, "the first look sets the baseline");
    assert_eq!(r.desk.dead_letters_seen("profile desk", 0), None);
    assert!(r
        .desk
        .dead_letters_seen("profile desk", 2)
        .is_some_and(|a| a.contains("from 0 to 2")));

    // The run opened: every record it sent, where it stands; the same as CSV.
    let detail = r.desk.run_detail(&done.run_id).await.expect("run");
    assert_eq!(
        detail.by_outcome,
        [("failed".to_string(), 1), ("synced".to_string(), 6)].into(),
        "{detail:?}"
    );
    let csv_file = r.desk.places.state.join("run.csv");
    assert_eq!(
        r.desk
            .export_run(&done.run_id, &csv_file)
            .await
            .expect("export"),
        7
    );
    let csv_text = std::fs::read_to_string(&csv_file).expect("csv");
    assert!(csv_text.starts_with("record,outcome,code,message,target_id"));
    assert!(
        csv_text.contains("episode#SH1-S1-E2,failed,http_400,"),
        "{csv_text}"
    );

    // Triage: the group, the record in full, edits checked as typed, the fix.
    let groups = r.desk.failure_groups().await.expect("groups");
    let record = "episode#SH1-S1-E2";
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].records, vec![record.to_string()]);
    assert!(groups[0].sample.contains("DRAFT"), "{:?}", groups[0].sample);
    let f = r.desk.failure(record).await.expect("failure");
    let title = f.fields.iter().find(|v| v.name == "title").expect("title");
    assert_eq!(title.value, "Bats DRAFT");
    assert!(f.fields.iter().any(|v| v.name == "episode_key" && v.key));
    let edit = |field: &str, value: &str| FieldEdit {
        field: field.into(),
        value: value.into(),
    };
    let bad = r
        .desk
        .check_failure_edits(record, &[edit("slug", "Not A Slug")])
        .await
        .expect("check");
    assert_eq!(bad[0].field.as_deref(), Some("slug"), "{bad:?}");
    let fine = r
        .desk
        .check_failure_edits(record, &[edit("title", "Bats")])
        .await
        .expect("check");
    assert!(fine.is_empty(), "{fine:?}");
    let target = TriageTarget::Record {
        record: record.into(),
    };
    let retried = r
        .desk
        .retry_failures(&target, &[edit("title", "Bats")])
        .await
        .expect("retry");
    assert_eq!((retried.synced, retried.failed), (1, 0), "{retried:?}");
    assert!(r.desk.failure_groups().await.expect("groups").is_empty());
    let state = env
        .backend
        .state
        .get(&RecordKey::new(EntityType::Episode, "SH1-S1-E2"))
        .await
        .expect("get")
        .expect("record");
    assert_eq!(state.status.as_str(), "synced");
    let runs = r.desk.dashboard().await.expect("dashboard").runs;
    assert_eq!(runs[0].kind, "triage");
    assert_eq!(runs[0].note.as_deref(), Some("retry with title=Bats"));
    assert_eq!(runs[0].who, crate::env::who());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_sync_sends_nothing_more_and_says_what_it_left() {
    let r = room(false).await;
    let env = r.desk.env().await.expect("env");
    // Pressed before the first send batch: nothing is enqueued, everything is unsent.
    let cancel = Cancel::default();
    cancel.cancel();
    let req = SyncRequest {
        files: r.files.clone(),
        batch_size: 10,
        limit: None,
        rank_by: None,
        wait: true,
        concurrency: 4,
        who: "test".into(),
        parents_elsewhere: None,
    };
    let report = ops::sync_with(&env, &req, Default::default(), cancel, &|_| {})
        .await
        .expect("sync");
    let s = &report.summary;
    assert!(s.cancelled);
    assert_eq!(
        (s.rows, s.not_sent, s.synced, s.queued),
        (7, 7, 0, 0),
        "{s:?}"
    );
    let run = env
        .backend
        .state
        .get_run(&s.run_id)
        .await
        .expect("run")
        .expect("recorded");
    assert_eq!(run.counts.get("cancelled"), Some(&1));
    assert!(sync::depths(&env)
        .await
        .expect("depth")
        .iter()
        .all(|d| d.visible + d.in_flight == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_cancelled_while_the_workers_run_leaves_the_rest_queued_then_sends_it() {
    // Each answer takes 300 ms: the shows are still being sent when Cancel is pressed
    // (the first update of the working stage), and the seasons' and episodes' queues
    // are never received from.
    let r = room_with(false, std::time::Duration::from_millis(300)).await;
    let desk = Arc::clone(&r.desk);
    let on: Arc<dyn Fn(SyncUpdate) + Send + Sync> = Arc::new(move |u| {
        if u.stage == "working" {
            desk.cancel_sync();
        }
    });
    let done = r
        .desk
        .sync_open_files(Arc::clone(&r.wb), SyncForm::default(), on)
        .await
        .expect("sync");
    assert!(done.cancelled);
    conserved(&done);
    assert!(done.queued > 0, "{done:?}");
    let env = r.desk.env().await.expect("env");
    let waiting: u64 = sync::depths(&env)
        .await
        .expect("depth")
        .iter()
        .map(|d| d.visible)
        .sum();
    assert!(waiting > 0, "the rest waits in the queues");
    let detail = r.desk.run_detail(&done.run_id).await.expect("run");
    assert_eq!(
        detail
            .by_outcome
            .get("not sent or queued")
            .copied()
            .unwrap_or(0),
        done.queued,
        "{detail:?}"
    );

    // Send what is queued: everything ends, and the cancelled run says so.
    let sent = r
        .desk
        .send_queued(Arc::new(|_| {}))
        .await
        .expect("send queued");
    assert_eq!(sent.queued, 0, "{sent:?}");
    let run = env
        .backend
        .state
        .get_run(&done.run_id)
        .await
        .expect("run")
        .expect("recorded");
    assert_eq!(
        (
            run.counts.get("synced"),
            run.counts.get("failed"),
            run.counts.get("queued")
        ),
        (Some(&6), Some(&1), Some(&0)),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_asks_for_its_name_and_an_interrupted_sync_resumes() {
    let r = room(true).await;
    let (_, on) = collect();
    let refused = r
        .desk
        .sync_open_files(Arc::clone(&r.wb), SyncForm::default(), Arc::clone(&on))
        .await
        .expect_err("production needs its name");
    assert!(
        refused.to_string().contains("type its name, desk"),
        "{refused}"
    );
    assert!(interrupted(&r.desk.places.state).is_none());

    // An app that enqueued and died: its marker, and messages waiting.
    let env = r.desk.env().await.expect("env");
    let req = SyncRequest {
        files: r.files.clone(),
        batch_size: 10,
        limit: None,
        rank_by: None,
        wait: false,
        concurrency: 4,
        who: crate::env::who(),
        parents_elsewhere: None,
    };
    let started_at_ms = metasync_engine::ports::Clock::now_ms(&metasync_engine::ports::SystemClock);
    let m = Interrupted {
        profile: Some("desk".into()),
        config: r.desk.profiles.path().to_path_buf(),
        started_at_ms,
    };
    write(&r.desk.places.state, &m);
    let left = ops::sync(&env, &req, &|_| {}).await.expect("enqueue only");
    assert_eq!(left.summary.queued, 7);
    assert_eq!(interrupted(&r.desk.places.state), Some(m));
    // Killed before the end: the run stays as the engine wrote it after enqueueing.
    let mut run = env
        .backend
        .state
        .get_run(&left.summary.run_id)
        .await
        .expect("run")
        .expect("recorded");
    run.finished_at_ms = None;
    run.counts.retain(|k, _| {
        ["rows", "unchanged", "rejected", "not_sent", "enqueued"].contains(&k.as_str())
    });
    env.backend.state.put_run(&run).await.expect("put");
    // No new sync before the old one is resumed.
    let form = SyncForm {
        confirm: Some("desk".into()),
        ..SyncForm::default()
    };
    let waits = r
        .desk
        .sync_open_files(Arc::clone(&r.wb), form, Arc::clone(&on))
        .await
        .expect_err("resume first");
    assert!(waits.to_string().contains("did not finish"), "{waits}");

    let resumed = r
        .desk
        .resume(on)
        .await
        .expect("resume")
        .expect("there was one");
    assert_eq!((resumed.synced, resumed.failed), (6, 1), "{resumed:?}");
    assert_eq!(resumed.run_id, left.summary.run_id);
    assert!(interrupted(&r.desk.places.state).is_none());
    let run = env
        .backend
        .state
        .get_run(&left.summary.run_id)
        .await
        .expect("run")
        .expect("recorded");
    assert!(run.finished_at_ms.is_some());
    assert_eq!(
        (
            run.counts.get("synced"),
            run.counts.get("failed"),
            run.counts.get("queued"),
            run.counts.get("resumed")
        ),
        (Some(&6), Some(&1), Some(&0), Some(&1)),
        "{run:?}"
    );
    assert!(r
        .desk
        .resume(Arc::new(|_| {}))
        .await
        .expect("none")
        .is_none());
}

fn write(state: &Path, m: &Interrupted) {
    std::fs::create_dir_all(state).expect("dir");
    std::fs::write(
        state.join("sync-running.json"),
        serde_json::to_vec(m).expect("json"),
    )
    .expect("marker");
}
