//! The sync pipeline end to end through the `metasync` binary, against the sandbox over
//! HTTP, on the embedded backend and on AWS (moto): conservation of rows under faults,
//! no duplicates, idempotence, PATCHes of changed records only, the triage round trip,
//! a worker killed with SIGKILL 20 times, and no secret in the logs.

use metasync_engine::target::Identity;
use metasync_sandbox::{Access, Config, Sandbox};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub(crate) fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(crate) fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(o)
        )
    })
}

fn command(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_metasync"));
    c.args(args).envs(vars.iter().copied());
    c
}

/// Where the pipeline keeps its queues and state.
#[derive(Clone, Copy)]
pub(crate) enum Store {
    Local,
    /// moto, started by this test binary.
    Aws,
}

pub(crate) struct World {
    pub(crate) _rt: tokio::runtime::Runtime,
    pub(crate) sandbox: Sandbox,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) files: Vec<PathBuf>,
    /// The moto resources of an aws world.
    pub(crate) aws: Option<metasync_engine::config::AwsProfile>,
}

const VARS: [(&str, &str); 6] = [
    ("METASYNC_TARGET_KEY", "sandbox-key"),
    ("METASYNC_TARGET_SECRET", "sandbox-secret"),
    ("BASE_DELAY_SECONDS", "0.05"),
    // No Secret Service here: credentials come from the environment.
    ("DBUS_SESSION_BUS_ADDRESS", "disabled:"),
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
];

/// The sandbox with a PBS key: the pipeline tests create shows as PBS would (a
/// station's key is tested on its own).
pub(crate) fn pbs() -> Config {
    Config {
        access: Access::Full,
        ..Config::default()
    }
}

/// The sandbox failing 5 %, resetting 1 % and hanging 0.5 % of calls (for 1.5 s, past
/// the profile's 1 s timeout): the conservation tests' target.
pub(crate) fn faulty() -> Config {
    Config {
        fail_rate: 0.05,
        reset_rate: 0.01,
        timeout_rate: 0.005,
        hang: Duration::from_millis(1500),
        ..pbs()
    }
}

impl World {
    pub(crate) fn new(store: Store, cfg: Config, shows: u32, invalid_ratio: f64) -> Self {
        Self::new_with(store, cfg, shows, invalid_ratio, 5)
    }

    /// With the queues' receive count before the dead-letter queue.
    pub(crate) fn new_with(
        store: Store,
        cfg: Config,
        shows: u32,
        invalid_ratio: f64,
        max_receives: u32,
    ) -> Self {
        let sandbox_access = cfg.access;
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let sandbox = rt.block_on(Sandbox::start(cfg, 0)).expect("sandbox");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut aws = None;
        let backend = match store {
            Store::Local => format!(
                "data_dir = {:?}\n",
                dir.path().join("data").display().to_string()
            ),
            Store::Aws => {
                let mut p = super::moto_profile();
                p.max_receive_count = max_receives;
                let text = format!(
                    "backend = \"aws\"\nregion = \"us-east-1\"\nendpoint_url = {:?}\nbucket = {:?}\ntable = {:?}\nqueue_prefix = {:?}\nmax_receive_count = {max_receives}\n",
                    p.endpoint_url.clone().unwrap_or_default(),
                    p.bucket,
                    p.table,
                    p.queue_prefix,
                );
                aws = Some(p);
                text
            }
        };
        let access = match sandbox_access {
            Access::Station => "station",
            Access::Full => "pbs",
        };
        let toml = format!(
            "[profiles.t]\n{backend}[profiles.t.target]\ndialect = \"media_manager\"\naccess = \"{access}\"\nurl = \"{}/api/v1\"\ntimeout_seconds = 1\n",
            sandbox.url()
        );
        std::fs::write(dir.path().join("metasync.toml"), toml).expect("toml");
        let catalog = dir.path().join("catalog");
        let c = catalog.display().to_string();
        let (shows, ratio) = (shows.to_string(), invalid_ratio.to_string());
        let o = command(
            &[
                "gen",
                "--catalog",
                "--shows",
                &shows,
                "--seed",
                "11",
                "--invalid-ratio",
                &ratio,
                "--out",
                &c,
            ],
            &[],
        )
        .output()
        .expect("gen");
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let files = ["shows", "seasons", "episodes", "assets"]
            .iter()
            .map(|n| catalog.join(format!("{n}.csv")))
            .collect();
        let w = Self {
            _rt: rt,
            sandbox,
            dir,
            files,
            aws,
        };
        if matches!(store, Store::Aws) {
            let o = w.run(&["infra", "up"]);
            assert_eq!(code(&o), 0, "infra up on moto: {}", stderr(&o));
        }
        w
    }

    fn command(&self, args: &[&str]) -> Command {
        let config = self.dir.path().join("metasync.toml").display().to_string();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--profile", "t", "--config", &config]);
        let mut c = command(&all, &VARS);
        // Logs of an aws profile go to the data folder.
        c.env("METASYNC_DATA_DIR", self.dir.path().join("data"));
        c
    }

    /// Start a command without waiting (to kill it).
    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn metasync")
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run metasync")
    }

    fn sync(&self) -> Value {
        self.sync_with(&[])
    }

    fn sync_with(&self, extra: &[&str]) -> Value {
        let files: Vec<String> = self.files.iter().map(|p| p.display().to_string()).collect();
        let mut args = vec!["sync", "--format", "json"];
        args.extend(extra);
        args.extend(files.iter().map(String::as_str));
        let o = self.run(&args);
        assert!(code(&o) <= 1, "sync failed: {}", stderr(&o));
        json(&o)
    }

    pub(crate) fn catalog(&self) -> Vec<Value> {
        self.sandbox.catalog()["objects"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

pub(crate) fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

/// Every row in exactly one outcome.
fn assert_conserved(s: &Value) {
    let total = [
        "synced",
        "unchanged",
        "rejected",
        "failed",
        "discarded",
        "not_sent",
        "queued",
    ]
    .iter()
    .map(|k| n(s, k))
    .sum::<u64>();
    assert_eq!(total, n(s, "rows"), "rows not conserved: {s}");
}

/// Slug → title of the valid shows in the file, as the target should hold them.
fn show_titles(path: &Path) -> BTreeMap<String, String> {
    let mut r = csv::Reader::from_path(path).expect("shows.csv");
    let h = r.headers().expect("header").clone();
    let (slug, title) = (
        h.iter().position(|c| c == "slug").expect("slug"),
        h.iter().position(|c| c == "title").expect("title"),
    );
    r.records()
        .filter_map(Result::ok)
        .map(|rec| (rec[slug].trim().to_string(), rec[title].trim().to_string()))
        .collect()
}

/// Every valid input record the run synced is in the target exactly once, under the
/// right parent, with every attribute as the pipeline sends it; records in `failed`
/// are absent, and the target holds nothing else. The expected attributes come from
/// planning the same files against an empty state (all valid records are `new`).
pub(crate) fn assert_catalog_is_the_input(w: &World, failed: &BTreeSet<String>) {
    use metasync_engine::pipeline::plan::{plan, Action, PlanOptions};
    use metasync_engine::pipeline::record::CanonicalRecord;
    let empty = tempfile::tempdir().expect("tempdir");
    let backend = metasync_local::open(empty.path(), Default::default()).expect("open");
    let mut expected: Vec<CanonicalRecord> = Vec::new();
    let opts = PlanOptions {
        validate: Default::default(),
        keep_rejected: false,
        parents_elsewhere: None,
        access: Default::default(),
    };
    w._rt
        .block_on(plan(&w.files, &opts, backend.state.as_ref(), |p| {
            if p.action == Action::New {
                expected.push(p.record.clone());
            }
        }))
        .expect("plan");
    assert!(!expected.is_empty());
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    // (type, parent id, identity) → object, as the sandbox counts duplicates.
    let objects = w.catalog();
    let mut by_identity: BTreeMap<(String, String, String), &Value> = BTreeMap::new();
    for o in &objects {
        let a = &o["attributes"];
        let identity = match o["type"].as_str().unwrap_or_default() {
            "show" => text(&o["slug"]),
            "season" => text(&a["ordinal"]),
            "episode" => format!(
                "{}\u{1f}{}",
                text(&a["ordinal"]),
                a["segment"].as_str().unwrap_or_default()
            ),
            _ if a["object_type"] == "full_length" => "full_length".into(),
            _ => format!("{}\u{1f}{}", text(&a["object_type"]), text(&a["title"])),
        };
        let key = (text(&o["type"]), text(&o["parent"]), identity);
        assert!(
            by_identity.insert(key.clone(), o).is_none(),
            "two objects share {key:?}"
        );
    }
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut matched = 0;
    for rec in &expected {
        let id = rec.record_key().id();
        let parent = match rec.parent() {
            None => "null".to_string(),
            Some(p) => match ids.get(&p.id()) {
                Some(pid) => pid.clone(),
                None => {
                    assert!(
                        failed.contains(&id),
                        "{id}: its parent {} is not in the target, so it must have failed",
                        p.id()
                    );
                    continue;
                }
            },
        };
        let identity = match rec.identity() {
            Identity::Slug(s) => s,
            Identity::Ordinal(n) => n.to_string(),
            Identity::Episode { ordinal, segment } => format!("{ordinal}\u{1f}{segment}"),
            Identity::Asset { object_type, title } => format!("{object_type}\u{1f}{title}"),
            Identity::FullLength => "full_length".into(),
        };
        let key = (rec.entity.as_str().to_string(), parent, identity);
        match by_identity.get(&key) {
            None => assert!(
                failed.contains(&id),
                "{id} is neither in the target nor failed"
            ),
            Some(o) => {
                // In Media Manager's shapes, as the client sends them (the sandbox
                // refuses any other).
                let sent = metasync_catalog_client::media_manager::mm_attributes(
                    rec.entity,
                    &rec.attributes(),
                );
                for (field, value) in sent {
                    assert_eq!(
                        o["attributes"][&field], value,
                        "{id}: {field} in the target differs from the file"
                    );
                }
                ids.insert(id, text(&o["id"]));
                matched += 1;
            }
        }
    }
    assert_eq!(
        matched,
        objects.len(),
        "the target holds objects that no input record accounts for"
    );
}

/// The records in triage, as `type#key`.
pub(crate) fn failed_records(w: &World) -> BTreeSet<String> {
    let f = json(&w.run(&["failures", "list", "--format", "json"]));
    f.as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["records"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r.as_str().map(String::from))
        .collect()
}

fn sync_conserves_every_row_under_faults_without_duplicates(store: Store) {
    conserves_every_row_under_faults(store, 6);
}

/// The same on a catalog of about 20,000 records (embedded backend: moto would take
/// minutes for what it adds nothing to).
#[test]
fn a_20000_record_catalog_is_conserved_under_faults() {
    conserves_every_row_under_faults(Store::Local, 330);
}

fn conserves_every_row_under_faults(store: Store, shows: u32) {
    let _alone = matches!(store, Store::Aws).then(super::moto_heavy);
    let w = World::new(store, faulty(), shows, 0.03);
    let s = w.sync();
    assert_conserved(&s);
    assert!(n(&s, "synced") > 25 * u64::from(shows), "{s}");
    assert!(n(&s, "rejected") > 0, "the broken rows are rejected: {s}");
    let stats = w.sandbox.stats();
    assert_eq!(stats.duplicates, 0, "{stats:?}");
    assert!(stats.faults > 0, "faults were injected: {stats:?}");
    let objects = w.catalog();
    assert_eq!(
        objects.len() as u64,
        n(&s, "synced"),
        "the target holds exactly the synced records"
    );
    // Field by field for shows, straight from the file.
    let expected = show_titles(&w.files[0]);
    for o in objects.iter().filter(|o| o["type"] == "show") {
        let slug = o["slug"].as_str().expect("slug");
        assert_eq!(
            o["attributes"]["title"].as_str(),
            expected.get(slug).map(String::as_str),
            "{slug}"
        );
    }
    // Failures (retries exhausted) are in triage, each one accounted for, and the
    // target holds every other valid record as the files say, field by field.
    let failed = failed_records(&w);
    assert_eq!(failed.len() as u64, n(&s, "failed"));
    assert_catalog_is_the_input(&w, &failed);
    let st = w.run(&["status", "--format", "json"]);
    let st = json(&st);
    for q in st["queues"].as_array().expect("queues") {
        assert_eq!(q["visible"], 0, "{q}");
        assert_eq!(q["in_flight"], 0, "{q}");
    }
    assert!(st["runs"].as_array().is_some_and(|r| !r.is_empty()));
}

fn a_second_sync_writes_nothing_and_an_edit_patches_only_changed_records(store: Store) {
    let w = World::new(store, pbs(), 3, 0.0);
    let first = w.sync();
    assert_conserved(&first);
    assert_eq!(n(&first, "rejected"), 0, "{first}");
    assert_eq!(n(&first, "synced"), n(&first, "rows"));

    let before = w.sandbox.stats();
    let second = w.sync();
    assert_conserved(&second);
    assert_eq!(n(&second, "unchanged"), n(&second, "rows"), "{second}");
    assert_eq!(
        w.sandbox.stats().requests,
        before.requests,
        "no target call at all"
    );

    // Change three fields in two episodes.
    let path = &w.files[2];
    let mut r = csv::Reader::from_path(path).expect("episodes");
    let header = r.headers().expect("header").clone();
    let mut rows: Vec<csv::StringRecord> = r.records().map(|x| x.expect("row")).collect();
    let col = |name: &str| header.iter().position(|c| c == name).expect("column");
    let edit = |row: &mut csv::StringRecord, c: usize, v: &str| {
        let mut cells: Vec<String> = row.iter().map(String::from).collect();
        cells[c] = v.to_string();
        *row = csv::StringRecord::from(cells);
    };
    edit(&mut rows[0], col("title"), "A new title");
    edit(
        &mut rows[0],
        col("description_short"),
        "A new short description.",
    );
    edit(&mut rows[5], col("title"), "Another title");
    let mut out = csv::Writer::from_path(path).expect("write");
    out.write_record(&header).expect("header");
    for row in &rows {
        out.write_record(row).expect("row");
    }
    out.flush().expect("flush");
    drop(out);

    let before = w.sandbox.stats();
    let writes_before = w.sandbox.writes().len();
    let third = w.sync();
    assert_conserved(&third);
    assert_eq!(n(&third, "updated"), 2, "{third}");
    assert_eq!(n(&third, "created"), 0, "{third}");
    let after = w.sandbox.stats();
    assert_eq!(
        after.requests - before.requests,
        3,
        "the connection check and two PATCHes"
    );
    let writes = w.sandbox.writes();
    assert_eq!(writes.len() - writes_before, 2, "exactly two writes");
    // The two records sit in different lanes, so their PATCHes come in either order.
    let mut patches: Vec<(String, Vec<String>)> = writes[writes.len() - 2..]
        .iter()
        .map(|x| (x.method.clone(), x.fields.clone()))
        .collect();
    patches.sort();
    let fields = |f: &[&str]| {
        (
            "PATCH".to_string(),
            f.iter().map(|s| s.to_string()).collect(),
        )
    };
    assert_eq!(
        patches,
        vec![fields(&["description_short", "title"]), fields(&["title"])],
        "each PATCH carries only the changed fields"
    );
    assert_eq!(after.duplicates, 0);
    let titles: Vec<String> = w
        .catalog()
        .iter()
        .filter(|o| o["type"] == "episode")
        .filter_map(|o| o["attributes"]["title"].as_str().map(String::from))
        .collect();
    assert!(titles.contains(&"A new title".to_string()));
    assert!(titles.contains(&"Another title".to_string()));
}

fn a_refused_record_is_fixed_in_triage_and_ends_synced(store: Store) {
    let w = World::new(
        store,
        Config {
            refuse_title: Some("DRAFT".into()),
            ..pbs()
        },
        2,
        0.0,
    );
    // Mark two episodes' titles so the target refuses them.
    let path = &w.files[2];
    let text = std::fs::read_to_string(path).expect("episodes");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let key_of = |line: &str| line.split(',').next().unwrap_or_default().to_string();
    let (a, b) = (key_of(&lines[1]), key_of(&lines[2]));
    for l in lines.iter_mut().skip(1).take(2) {
        let mut cells: Vec<String> = l.split(',').map(String::from).collect();
        cells[4] = format!("{} DRAFT", cells[4]);
        *l = cells.join(",");
    }
    std::fs::write(path, lines.join("\n") + "\n").expect("write");

    let s = w.sync();
    assert_conserved(&s);
    assert!(n(&s, "failed") >= 2, "{s}");
    let show = w.run(&[
        "failures",
        "show",
        &format!("episode#{a}"),
        "--format",
        "json",
    ]);
    assert_eq!(code(&show), 0, "{}", stderr(&show));
    let detail = json(&show);
    assert_eq!(detail["code"], "http_400");
    assert!(
        detail["message"]
            .as_str()
            .is_some_and(|m| m.contains("title")),
        "the target's answer names the field: {detail}"
    );
    // An edit that breaks a rule is refused with the finding; nothing is sent.
    let bad = w.run(&[
        "failures",
        "retry",
        &format!("episode#{a}"),
        "--set",
        "title=",
    ]);
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
    assert!(stderr(&bad).contains("required"), "{}", stderr(&bad));

    let fixed = w.run(&[
        "failures",
        "retry",
        &format!("episode#{a}"),
        "--set",
        "title=Fixed title",
    ]);
    assert_eq!(code(&fixed), 0, "{}", stderr(&fixed));
    let discard = w.run(&[
        "failures",
        "discard",
        &format!("episode#{b}"),
        "--reason",
        "not for air",
    ]);
    assert_eq!(code(&discard), 0, "{}", stderr(&discard));
    // Its assets failed with their parent; retried as a group they now sync.
    let group = w.run(&["failures", "retry", "--code", "parent_failed"]);
    assert!(code(&group) <= 1, "{}", stderr(&group));

    let titles: Vec<String> = w
        .catalog()
        .iter()
        .filter_map(|o| o["attributes"]["title"].as_str().map(String::from))
        .collect();
    assert!(titles.contains(&"Fixed title".to_string()));
    assert_eq!(w.sandbox.stats().duplicates, 0);
    let st = json(&w.run(&["status", "--format", "json"]));
    let runs = st["runs"].as_array().expect("runs");
    let notes: Vec<&str> = runs.iter().filter_map(|r| r["note"].as_str()).collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("retry with title=Fixed title")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.starts_with("discard: not for air")),
        "{notes:?}"
    );
    assert!(runs
        .iter()
        .all(|r| r["who"].as_str().is_some_and(|w| !w.is_empty())));
    // The fixed record is no failure any more; the discarded one is counted as such.
    let f = json(&w.run(&["failures", "list", "--format", "json"]));
    let listed: Vec<String> = f
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["records"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r.as_str().map(String::from))
        .collect();
    assert!(!listed.contains(&format!("episode#{a}")), "{listed:?}");
    assert!(!listed.contains(&format!("episode#{b}")), "{listed:?}");
}

#[test]
fn the_logs_never_hold_the_credentials() {
    let w = World::new(Store::Local, pbs(), 1, 0.0);
    let s = w.sync();
    assert_conserved(&s);
    let logs = w.dir.path().join("data/logs");
    let mut text = String::new();
    for e in std::fs::read_dir(&logs).expect("a log folder") {
        text.push_str(&std::fs::read_to_string(e.expect("entry").path()).unwrap_or_default());
    }
    assert!(
        text.contains("METASYNC_TARGET_KEY"),
        "the source is logged: {text}"
    );
    assert!(!text.contains("sandbox-secret"), "the secret never is");
}

/// Each scenario on the embedded backend and on AWS (moto).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod on_local {
            $(#[test] fn $name() { super::$name(super::Store::Local) })*
        }
        mod on_aws {
            $(#[test] fn $name() { super::$name(super::Store::Aws) })*
        }
    };
}

on_both!(
    sync_conserves_every_row_under_faults_without_duplicates,
    a_second_sync_writes_nothing_and_an_edit_patches_only_changed_records,
    a_refused_record_is_fixed_in_triage_and_ends_synced,
);

/// `sync --no-wait`, then a worker killed with SIGKILL at random moments, 20 times,
/// restarted each time, then one left to finish: every record synced or in triage,
/// none created twice, and the target holds what the files say.
#[test]
fn killing_the_worker_at_random_never_loses_or_doubles_a_record() {
    let w = World::new(
        Store::Local,
        Config {
            quota: Some(60.0),
            burst: 2,
            latency: Duration::from_millis(15),
            fail_rate: 0.02,
            ..pbs()
        },
        6,
        0.03,
    );
    let s = w.sync_with(&["--no-wait"]);
    assert_conserved(&s);
    let queued = n(&s, "queued");
    assert!(queued > 150, "{s}");
    let mut rng = metasync_engine::gen::Rng::new(20261123);
    let worker = ["worker", "--until-empty", "--visibility-seconds", "2"];
    let mut killed_while_running = 0;
    for _ in 0..20 {
        let mut child = w.spawn(&worker);
        std::thread::sleep(Duration::from_millis(rng.range(100, 700)));
        if child.try_wait().expect("wait").is_none() {
            killed_while_running += 1;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }
    assert!(
        killed_while_running >= 10,
        "most kills hit a running worker: {killed_while_running}"
    );
    let o = w.run(&worker);
    assert!(code(&o) <= 1, "{}", stderr(&o));
    let f = json(&w.run(&["failures", "list", "--format", "json"]));
    let failed: u64 = f
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["count"].as_u64().unwrap_or(0))
        .sum();
    let stats = w.sandbox.stats();
    assert_eq!(stats.duplicates, 0, "{stats:?}");
    let objects = w.catalog();
    assert_eq!(
        objects.len() as u64 + failed,
        queued,
        "every queued record is in the target or in triage, once"
    );
    assert_catalog_is_the_input(&w, &failed_records(&w));
    let st = json(&w.run(&["status", "--format", "json"]));
    for q in st["queues"].as_array().expect("queues") {
        assert_eq!(
            (q["visible"].as_u64(), q["in_flight"].as_u64()),
            (Some(0), Some(0)),
            "{q}"
        );
    }
}

/// `--limit N --rank-by COLUMN` sends the top N records (parents first, highest value
/// first) and counts the rest as not sent; a later full sync sends the rest.
#[test]
fn a_trial_run_sends_only_the_top_records() {
    let w = World::new(Store::Local, pbs(), 4, 0.0);
    let first = w.sync_with(&["--limit", "2", "--rank-by", "premiered_on"]);
    assert_conserved(&first);
    assert_eq!(n(&first, "created"), 2, "{first}");
    assert_eq!(n(&first, "not_sent"), n(&first, "rows") - 2, "{first}");
    // The two shows that premiered last, nothing else.
    let mut r = csv::Reader::from_path(&w.files[0]).expect("shows.csv");
    let h = r.headers().expect("header").clone();
    let col = |name: &str| h.iter().position(|c| c == name).expect("column");
    let mut shows: Vec<(String, String)> = r
        .records()
        .map(|x| x.expect("row"))
        .map(|x| {
            (
                x[col("premiered_on")].to_string(),
                x[col("slug")].to_string(),
            )
        })
        .collect();
    shows.sort();
    let mut latest: Vec<String> = shows.iter().rev().take(2).map(|x| x.1.clone()).collect();
    latest.sort();
    let mut sent: Vec<String> = w
        .catalog()
        .iter()
        .map(|o| format!("{}:{}", o["type"], o["slug"].as_str().unwrap_or_default()))
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        latest
            .iter()
            .map(|s| format!("\"show\":{s}"))
            .collect::<Vec<_>>()
    );
    let files: Vec<String> = w.files.iter().map(|p| p.display().to_string()).collect();
    let mut args = vec!["sync", "--limit", "2", "--rank-by", "no_such_column"];
    args.extend(files.iter().map(String::as_str));
    let bad = w.run(&args);
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
    assert!(stderr(&bad).contains("no_such_column"), "{}", stderr(&bad));
    let rest = w.sync();
    assert_conserved(&rest);
    assert_eq!(n(&rest, "unchanged"), 2, "{rest}");
    assert_eq!(n(&rest, "synced"), n(&rest, "rows") - 2, "{rest}");
    assert_eq!(w.sandbox.stats().duplicates, 0);
}

/// A target that cannot be reached, or that refuses the credentials, stops the sync
/// with exit 2 before anything is landed or sent.
#[test]
fn an_unreachable_target_or_refused_credentials_stop_the_run_before_anything_is_written() {
    let w = World::new(Store::Local, pbs(), 1, 0.0);
    // Nothing listens on a port that was just free.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = w.dir.path().join("unreachable.toml");
    let data = w.dir.path().join("data-u");
    std::fs::write(
        &config,
        format!(
            "[profiles.u]\ndata_dir = {:?}\n[profiles.u.target]\ndialect = \"media_manager\"\nurl = \"http://127.0.0.1:{port}/api/v1\"\ntimeout_seconds = 1\n",
            data.display().to_string()
        ),
    )
    .expect("toml");
    let files: Vec<String> = w.files.iter().map(|p| p.display().to_string()).collect();
    let mut args = vec!["sync", "--profile", "u", "--config"];
    let config = config.display().to_string();
    args.push(&config);
    args.extend(files.iter().map(String::as_str));
    let o = command(&args, &VARS).output().expect("sync");
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot be reached") && stderr(&o).contains("nothing was landed"),
        "{}",
        stderr(&o)
    );
    let objects = data.join("objects");
    assert!(
        !objects.join("bronze").exists(),
        "nothing landed in {}",
        objects.display()
    );

    // The sandbox, with a wrong secret.
    let mut vars = VARS;
    vars[1] = ("METASYNC_TARGET_SECRET", "not-the-secret");
    let o = w
        .command(&args[..1])
        .args(&files)
        .envs(vars.iter().copied())
        .output()
        .expect("sync");
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("refused the credentials"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("not-the-secret"), "never the secret");
    assert_eq!(w.sandbox.stats().objects.values().sum::<u64>(), 0);
    assert!(!w.dir.path().join("data/objects/bronze").exists());
}

/// Set column `column` of the first row whose first cell is `key` in a CSV file.
fn edit_cell(path: &Path, key: &str, column: &str, value: &str) {
    let mut r = csv::Reader::from_path(path).expect("read");
    let header = r.headers().expect("header").clone();
    let c = header.iter().position(|h| h == column).expect("column");
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&header).expect("header");
    for row in r.records() {
        let row = row.expect("row");
        let mut cells: Vec<String> = row.iter().map(String::from).collect();
        if cells[0] == key {
            cells[c] = value.to_string();
        }
        out.write_record(&cells).expect("row");
    }
    std::fs::write(path, out.into_inner().expect("bytes")).expect("write");
}

/// A station's key (the default for a Media Manager profile, and the sandbox's): shows
/// are looked up and never written. The show PBS created resolves and its seasons,
/// episodes and assets are created under it; a show Media Manager does not have fails
/// as not writable, its children with it; a changed show or season is reported by the
/// plan and never sent.
#[test]
fn a_station_resolves_shows_and_never_writes_them() {
    let w = World::new(Store::Local, Config::default(), 2, 0.0);
    // PBS created the first show of the file; the second is not in Media Manager.
    let mut r = csv::Reader::from_path(&w.files[0]).expect("shows");
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.expect("row")).collect();
    let (first_key, first_slug, second_key) = (&rows[0][0], &rows[0][1], &rows[1][0]);
    let mut a = serde_json::Map::new();
    a.insert("slug".into(), first_slug.into());
    a.insert("title".into(), "As PBS titled it".into());
    let pbs_id = w
        .sandbox
        .seed(metasync_engine::EntityType::Show, None, a)
        .expect("seed");

    let s = w.sync();
    assert_conserved(&s);
    let writes = w.sandbox.writes();
    assert!(
        !writes.iter().any(|x| x.path == "/api/v1/shows/"
            || x.path.starts_with("/api/v1/shows/") && x.method == "PATCH"),
        "a station never writes a show: {writes:?}"
    );
    let failed = failed_records(&w);
    assert!(failed.contains(&format!("show#{second_key}")), "{failed:?}");
    assert!(!failed.contains(&format!("show#{first_key}")), "{failed:?}");
    let groups = json(&w.run(&["failures", "list", "--format", "json"]));
    let codes: Vec<&str> = groups
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"not_writable") && codes.contains(&"parent_failed"),
        "{codes:?}"
    );
    // The first show's children went under the show PBS created, as it is there.
    let catalog = w.catalog();
    let under_pbs = catalog
        .iter()
        .filter(|o| o["type"] == "season" && o["parent"] == pbs_id.as_str())
        .count();
    assert!(under_pbs > 0, "seasons under the PBS show");
    let shown = catalog
        .iter()
        .find(|o| o["id"] == pbs_id.as_str())
        .expect("the show");
    assert_eq!(
        shown["attributes"]["title"], "As PBS titled it",
        "never overwritten"
    );

    // A changed show and a changed season: reported at plan time, never sent.
    edit_cell(&w.files[0], first_key, "title", "A title only PBS may set");
    let season_key = format!("{first_key}-S01");
    edit_cell(
        &w.files[1],
        &season_key,
        "title",
        "A season title a station may not change",
    );
    let files: Vec<String> = w.files.iter().map(|p| p.display().to_string()).collect();
    let mut args = vec!["plan", "--format", "json"];
    args.extend(files.iter().map(String::as_str));
    let plan = json(&w.run(&args));
    assert_eq!(plan["not_writable"], 2, "{plan}");
    let before = w.sandbox.writes().len();
    let again = w.sync();
    assert_conserved(&again);
    assert_eq!(n(&again, "rejected"), 2, "{again}");
    assert_eq!(w.sandbox.writes().len(), before, "nothing written");
}

/// A station's season create whose answer is lost (the sandbox does the work and
/// answers too late) is found again on the retry and taken as it is: a station may not
/// change a season, so no PATCH follows (Media Manager would answer 403).
#[test]
fn a_stations_season_found_again_after_a_lost_answer_is_not_patched() {
    let w = World::new(
        Store::Local,
        Config {
            hang_first_post_to: Some("/seasons/".into()),
            hang: Duration::from_millis(1500),
            ..Config::default()
        },
        1,
        0.0,
    );
    let mut r = csv::Reader::from_path(&w.files[0]).expect("shows");
    let row = r.records().next().expect("a show").expect("row");
    let mut a = serde_json::Map::new();
    a.insert("slug".into(), row[1].into());
    a.insert("title".into(), row[2].into());
    w.sandbox
        .seed(metasync_engine::EntityType::Show, None, a)
        .expect("seed");
    let s = w.sync();
    assert_conserved(&s);
    let writes = w.sandbox.writes();
    let season_creates = writes
        .iter()
        .filter(|x| x.method == "POST" && x.path.ends_with("/seasons/"))
        .count();
    assert!(season_creates > 0);
    assert!(
        !writes
            .iter()
            .any(|x| x.method == "PATCH" && x.path.starts_with("/api/v1/seasons/")),
        "a station never changes a season: {writes:?}"
    );
    let groups = json(&w.run(&["failures", "list", "--format", "json"]));
    assert!(
        !groups.to_string().contains("http_403"),
        "no season refused: {groups}"
    );
    assert_eq!(
        w.sandbox.stats().faults,
        1,
        "the first season's answer was lost"
    );
    assert_eq!(
        w.sandbox.stats().duplicates,
        0,
        "found again, not created twice"
    );
    let failed = failed_records(&w);
    assert!(failed.is_empty(), "{failed:?}");
}

/// An asset's create goes through, and sending its video (the edit endpoint) is
/// throttled: the retry finds the asset and sends its files, never creating it twice
/// (a 429 alone says "not done", but the create before it was).
#[test]
fn a_failed_file_send_after_a_create_does_not_create_the_asset_twice() {
    let w = World::new(
        Store::Local,
        Config {
            fail_first_patch_to: Some("/edit/".into()),
            ..pbs()
        },
        1,
        0.0,
    );
    let s = w.sync();
    assert_conserved(&s);
    assert_eq!(n(&s, "failed"), 0, "{s}");
    let stats = w.sandbox.stats();
    assert_eq!(stats.throttled, 1, "{stats:?}");
    assert_eq!(stats.duplicates, 0, "{stats:?}");
    let edits = w
        .sandbox
        .writes()
        .into_iter()
        .filter(|x| x.method == "PATCH" && x.path.ends_with("/edit/"))
        .filter(|x| x.fields.contains(&"video".to_string()))
        .count();
    let mut r = csv::Reader::from_path(&w.files[3]).expect("assets");
    let h = r.headers().expect("header").clone();
    let v = h.iter().position(|c| c == "video_source").expect("column");
    let with_video = r
        .records()
        .filter(|x| x.as_ref().is_ok_and(|x| !x[v].is_empty()))
        .count();
    assert_eq!(edits, with_video, "every video sent once it went through");
}

/// A profile whose consumers run in AWS Lambda (`consumers = "lambda"`): `sync` only
/// enqueues, whatever it is asked, and `status` reads the queues it filled.
#[test]
fn a_profile_with_lambda_consumers_only_enqueues() {
    let w = World::new(Store::Aws, pbs(), 2, 0.0);
    let config = w.dir.path().join("metasync.toml");
    let text = std::fs::read_to_string(&config).expect("toml");
    let text = text.replacen(
        "[profiles.t.target]",
        "consumers = \"lambda\"\n[profiles.t.target]",
        1,
    );
    std::fs::write(&config, text).expect("toml");
    let s = w.sync();
    assert_eq!(n(&s, "synced"), 0, "no worker ran here: {s}");
    assert!(n(&s, "queued") > 0, "{s}");
    assert_eq!(
        n(&s, "queued"),
        n(&s, "rows"),
        "everything waits in the queues: {s}"
    );
    assert_eq!(w.sandbox.stats().requests, 0, "no call to the target");
    let st = json(&w.run(&["status", "--format", "json"]));
    let waiting: u64 = st["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| q["visible"].as_u64().unwrap_or(0))
        .sum();
    assert!(waiting > 0, "{st}");
}
