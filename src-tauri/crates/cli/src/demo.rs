//! `metasync demo`: the whole pipeline on the embedded backend against an in-process
//! sandbox — generate a catalog with some broken rows, plan, sync with progress, fix
//! and retry the failure the target refuses, sync again (nothing to send), and show
//! where bronze, silver and gold landed.

use crate::output::{fail, plural, thousands};
use crate::pipeline::{print_summary, who, Bar};
use metasync_catalog_client::credentials::Credentials;
use metasync_catalog_client::Secret;
use metasync_engine::config::{self, BackendProfile};
use metasync_engine::gen::{GenOptions, Generator};
use metasync_engine::pipeline::sync::Progress;
use metasync_engine::EntityType;
use metasync_runtime::{Chosen, Env};
use metasync_sandbox::{Config, Sandbox};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Folder for the generated files and the embedded backend (emptied first).
    #[arg(long, default_value = "target/demo")]
    dir: PathBuf,
    /// Shows in the generated catalog.
    #[arg(long, default_value_t = 4)]
    shows: u64,
}

/// The title the sandbox refuses, put on one episode.
const REFUSED: &str = "DRAFT";

pub fn run(args: Args) -> u8 {
    match crate::backend::runtime() {
        Ok(rt) => match rt.block_on(demo(&args)) {
            Ok(()) => 0,
            Err(e) => fail(e),
        },
        Err(e) => fail(e),
    }
}

fn step(title: &str) {
    println!("\n== {title} ==");
}

fn generate(dir: &Path, shows: u64) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    let mut writers: [Option<BufWriter<File>>; 4] = Default::default();
    for t in EntityType::ALL {
        let path = dir.join(format!("{t}s.csv"));
        let f = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        writers[t.index()] = Some(BufWriter::new(f));
        paths.push(path);
    }
    let opts = GenOptions {
        seed: 7,
        invalid_ratio: 0.03,
    };
    Generator::new(opts, writers)
        .and_then(|g| g.catalog(shows))
        .map_err(|e| format!("cannot write the catalog: {e}"))?;
    Ok(paths)
}

/// Put the file's valid shows into the sandbox as PBS would have (stations cannot
/// create shows in Media Manager). Returns how many.
fn seed_shows(sandbox: &Sandbox, shows: &Path) -> Result<u64, String> {
    let mut r = csv::Reader::from_path(shows).map_err(|e| format!("{}: {e}", shows.display()))?;
    let header = r.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(slug), Some(title)) = (col("slug"), col("title")) else {
        return Err("the generated shows have no slug or title column".into());
    };
    let mut n = 0;
    for row in r.records().filter_map(Result::ok) {
        let mut a = serde_json::Map::new();
        a.insert(
            "slug".into(),
            row.get(slug).unwrap_or_default().trim().into(),
        );
        a.insert(
            "title".into(),
            row.get(title).unwrap_or_default().trim().into(),
        );
        // A broken row (a bad slug, no title) is not a show PBS would have made.
        if sandbox.seed(EntityType::Show, None, a).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// Put [`REFUSED`] into the title of the first episode the plan would send, so the
/// target refuses a record our validation passes.
async fn mark_refused(env: &Env, files: &[PathBuf]) -> Result<(String, String), String> {
    let episodes = &files[EntityType::Episode.index()];
    let original = std::fs::read_to_string(episodes).map_err(|e| e.to_string())?;
    let lines: Vec<&str> = original.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let (Some(title), Some(key)) = (
        header.iter().position(|h| *h == "title"),
        header.iter().position(|h| *h == "episode_key"),
    ) else {
        return Err("the generated episodes have no title column".into());
    };
    for i in 1..lines.len().min(40) {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(lines[i].as_bytes());
        let Some(Ok(rec)) = r.records().next() else {
            continue;
        };
        if rec.len() != header.len() {
            continue;
        }
        let mut cells: Vec<String> = rec.iter().map(String::from).collect();
        cells[title] = format!("{} {REFUSED}", cells[title]);
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&cells).map_err(|e| e.to_string())?;
        let row = String::from_utf8_lossy(&w.into_inner().map_err(|e| e.to_string())?)
            .trim_end()
            .to_string();
        let mut next: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        next[i] = row;
        std::fs::write(episodes, next.join("\n") + "\n").map_err(|e| e.to_string())?;
        let view = metasync_runtime::plan(
            env,
            &metasync_runtime::PlanRequest {
                files: files.to_vec(),
                max_records: usize::MAX,
                entity_type: None,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let sent = view.records.iter().any(|r| {
            r.entity == EntityType::Episode
                && r.key == cells[key]
                && r.action == metasync_engine::pipeline::plan::Action::New
        });
        if sent {
            return Ok((cells[key].clone(), original));
        }
    }
    std::fs::write(episodes, original).map_err(|e| e.to_string())?;
    Err("no episode of the generated catalog could carry the refused title".into())
}

async fn demo(args: &Args) -> Result<(), String> {
    let data = args.dir.join("data");
    let _ = std::fs::remove_dir_all(&args.dir);
    step("Generate a catalog (deterministic; a few rows broken the way spreadsheets break them)");
    let files = generate(&args.dir.join("catalog"), args.shows)?;
    for f in &files {
        println!("  {}", f.display());
    }

    let sandbox = Sandbox::start(
        Config {
            quota: Some(100.0),
            burst: 5,
            latency: Duration::from_millis(20),
            fail_rate: 0.01,
            refuse_title: Some(REFUSED.into()),
            ..Config::default()
        },
        0,
    )
    .await
    .map_err(|e| format!("cannot start the sandbox: {e}"))?;
    println!(
        "\nA sandbox catalog API (Media Manager dialect, quota 100/s, 1% injected 503s) listens on {}",
        sandbox.url()
    );
    let seeded = seed_shows(&sandbox, &files[EntityType::Show.index()])?;
    println!(
        "  It already holds the catalog's {}, as PBS created them: a station's key looks shows up and never writes them.",
        plural(seeded, "show", "shows")
    );
    let toml = format!(
        "[profiles.demo]\ndata_dir = {data:?}\n[profiles.demo.target]\ndialect = \"media_manager\"\nurl = \"{}/api/v1\"\nquota = 100\nburst = 5\nbase_delay_seconds = 0.2\n",
        sandbox.url(),
        data = data.display().to_string()
    );
    let profile = config::parse_profile(Path::new("demo.toml"), &toml, "demo", |_| None)
        .map_err(|e| e.to_string())?;
    let chosen = Chosen {
        label: format!("the embedded backend in {}", data.display()),
        name: Some("demo".into()),
        production: false,
        backend: BackendProfile::Local {
            data_dir: Some(data.clone()),
            max_receive_count: 5,
        },
        target: profile.target,
    };
    let mut env: Env = metasync_runtime::open(chosen)
        .await
        .map_err(|e| e.to_string())?;
    let creds = metasync_sandbox::Credentials::default();
    env.credentials = Some(Credentials {
        key: Secret::new(creds.key.clone()),
        secret: Secret::new(creds.secret.clone()),
    });
    let _log = metasync_runtime::logging::init(env.data_dir.as_deref(), 0);
    let (refused, original) = mark_refused(&env, &files).await?;
    println!(
        "  (episode {refused} has {REFUSED:?} in its title: valid here, refused by the target)"
    );

    step("Plan: what would change (nothing is sent)");
    let view = metasync_runtime::plan(
        &env,
        &metasync_runtime::PlanRequest {
            files: files.clone(),
            max_records: 0,
            entity_type: None,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let c = &view.counts;
    println!(
        "  {}: {} new, {} changed, {} unchanged, {} blocked, {} rejected (broken rows stay out, with their findings)",
        plural(c.rows, "row", "rows"),
        thousands(c.new),
        thousands(c.changed),
        thousands(c.unchanged),
        thousands(c.blocked),
        thousands(c.rejected)
    );
    if c.resolve > 0 {
        println!(
            "  and {} to look up in Media Manager (never written with a station's key)",
            plural(c.resolve, "show", "shows")
        );
    }

    step("Sync: land in bronze/silver, enqueue, workers call the target under its quota");
    let req = metasync_runtime::SyncRequest {
        files: files.clone(),
        batch_size: 10,
        limit: None,
        rank_by: None,
        wait: true,
        concurrency: metasync_engine::pipeline::consume::DEFAULT_CONCURRENCY,
        who: who(),
        parents_elsewhere: None,
    };
    let bar = Bar::new();
    let progress = |p: Progress| bar.progress(p);
    let report = metasync_runtime::sync(&env, &req, &progress)
        .await
        .map_err(|e| e.to_string())?;
    print_summary(&report);

    step("Triage: the target refused one record");
    let groups = metasync_runtime::failures_list(&env)
        .await
        .map_err(|e| e.to_string())?;
    let refused_key = format!("episode#{refused}");
    if !groups.iter().any(|g| g.records.contains(&refused_key)) {
        return Err(format!(
            "expected the sandbox to refuse {refused_key}; it did not"
        ));
    }
    let first = refused_key;
    for g in &groups {
        println!("  {} × {}: {}", g.count, g.code, g.sample);
    }
    let detail = metasync_runtime::failures_show(&env, &first)
        .await
        .map_err(|e| e.to_string())?;
    let title = detail.fields.get("title").cloned().unwrap_or_default();
    let fixed = title.replace(REFUSED, "").trim().to_string();
    println!("  {first}: title {title:?} → fixed to {fixed:?}, revalidated and retried");
    let sel = metasync_runtime::selection(Some(&first), None, false).map_err(|e| e.to_string())?;
    let (_, work) =
        metasync_runtime::failures_retry(&env, &sel, &[("title".to_string(), fixed)], &who(), true)
            .await
            .map_err(|e| e.to_string())?;
    // Its assets failed because their parent had; now it is there, send them too.
    if groups.iter().any(|g| g.code == "parent_failed") {
        let sel = metasync_runtime::selection(None, Some("parent_failed"), false)
            .map_err(|e| e.to_string())?;
        let (r, _) = metasync_runtime::failures_retry(&env, &sel, &[], &who(), true)
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "  its {} retried as a group",
            plural(r.records.len() as u64, "child", "children")
        );
    }
    let after = metasync_runtime::failures_show(&env, &first).await;
    let status = match &after {
        Ok(d) => format!("{:?}", d.status).to_lowercase(),
        Err(_) => "synced".into(),
    };
    let left = metasync_runtime::failures_list(&env)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "  {first} is now {status} (the retry created {}); failures left in triage: {}",
        work.as_ref().map_or(0, |w| w.created),
        left.iter().map(|g| g.count).sum::<u64>()
    );

    step("Sync the same files again (the export corrected at its source too): nothing to send");
    std::fs::write(&files[EntityType::Episode.index()], &original).map_err(|e| e.to_string())?;
    let again = metasync_runtime::sync(&env, &req, &|_| {})
        .await
        .map_err(|e| e.to_string())?;
    let writes = again.summary.created + again.summary.updated;
    println!(
        "  {} unchanged, {} target writes, {} target requests",
        thousands(again.summary.unchanged),
        writes,
        again
            .summary
            .api_calls
            .get("target.requests")
            .copied()
            .unwrap_or(0)
    );

    step("Where the files are");
    let objects = data.join("objects");
    for prefix in ["bronze/", "silver/", "rejected/", "gold/"] {
        let list = env
            .backend
            .objects
            .list(prefix)
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "  {prefix:<10} {} under {}",
            plural(list.len() as u64, "file", "files"),
            objects.join(prefix).display()
        );
    }
    println!("  logs       {}", data.join("logs").display());
    let stats = sandbox.stats();
    println!(
        "\nThe sandbox holds {} objects, {} duplicates. The same steps one by one: `metasync --help`.",
        stats.objects.values().sum::<u64>(),
        stats.duplicates
    );
    sandbox.stop().await;
    Ok(())
}
