//! `metasync plan | sync | worker | status | failures`: argument parsing and printing
//! over `metasync-runtime`, where the work happens.

use crate::output::{fail, plural, thousands, Format};
use crate::{EXIT_FINDINGS, EXIT_UNUSABLE};
use metasync_engine::pipeline::consume::DEFAULT_CONCURRENCY;
use metasync_engine::pipeline::sync::{Progress, SyncReport};
use metasync_runtime::{Env, RuntimeError};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

#[derive(clap::Args, Clone)]
pub struct Common {
    /// Profile of metasync.toml; without one, the embedded default.
    #[arg(long)]
    profile: Option<String>,
    /// metasync.toml to read (default: $METASYNC_CONFIG, then ./metasync.toml, then
    /// metasync/metasync.toml in the user's config folder).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Human log lines on stderr (-v info, -vv debug); JSON logs always go to the
    /// data folder's logs/.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(clap::Args)]
pub struct PlanArgs {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    common: Common,
    /// Records listed at most (counts stay exact).
    #[arg(long, default_value_t = 1000)]
    max_records: usize,
}

#[derive(clap::Args)]
pub struct SyncArgs {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    common: Common,
    /// Records per queue message.
    #[arg(long, default_value_t = 10)]
    batch_size: usize,
    /// Send only the top N records (a trial run).
    #[arg(long)]
    limit: Option<usize>,
    /// With --limit: rank by this column, highest first.
    #[arg(long, requires = "limit")]
    rank_by: Option<String>,
    /// Only enqueue; `metasync worker` does the rest.
    #[arg(long)]
    no_wait: bool,
    /// Do not ask before syncing to a production profile.
    #[arg(long)]
    yes: bool,
    /// Messages worked on at once per queue (ten per receive).
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    concurrency: usize,
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    common: Common,
    /// Messages worked on at once per queue (ten per receive).
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// Stop when every queue is empty.
    #[arg(long)]
    until_empty: bool,
    /// Seconds a received message stays hidden (extended while it is worked on).
    #[arg(long, default_value_t = 60)]
    visibility_seconds: u64,
}

#[derive(clap::Args)]
pub struct IngestArgs {
    #[command(flatten)]
    common: Common,
    /// Keys of synced assets (the asset_key column).
    #[arg(required = true, value_name = "ASSET_KEY")]
    assets: Vec<String>,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    common: Common,
    /// Print again every N seconds until interrupted.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2")]
    watch: Option<u64>,
    /// Runs listed.
    #[arg(long, default_value_t = 10)]
    runs: usize,
}

#[derive(clap::Args)]
pub struct FailuresArgs {
    #[command(subcommand)]
    action: FailuresAction,
}

#[derive(clap::Subcommand)]
enum FailuresAction {
    /// Failures grouped by error code, with counts.
    List(Common),
    /// One failure: the record, the error, the attempts, the target's answer.
    Show {
        /// type#key, e.g. episode#ep-0001
        record: String,
        #[command(flatten)]
        common: Common,
    },
    /// Send failures again (edited with --set, revalidated first).
    Retry {
        /// type#key of one failure.
        record: Option<String>,
        /// Every failure with this error code.
        #[arg(long)]
        code: Option<String>,
        #[arg(long)]
        all: bool,
        /// field=value, applied before sending (repeatable).
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        set: Vec<String>,
        /// Only re-enqueue; `metasync worker` does the rest.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Give up on failures, with a reason.
    Discard {
        record: Option<String>,
        #[arg(long)]
        code: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
}

/// Who is acting, for the run history.
pub use metasync_runtime::who;

fn code_of(e: &RuntimeError) -> u8 {
    match e {
        RuntimeError::Unusable(_) => EXIT_UNUSABLE,
        RuntimeError::Failed(_) => EXIT_FINDINGS,
    }
}

fn report(e: RuntimeError) -> u8 {
    eprintln!("error: {e}");
    code_of(&e)
}

/// Open the profile and run `f` on it inside a runtime, with logging set up.
fn with_env(common: &Common, f: impl AsyncFnOnce(&Env) -> u8) -> u8 {
    let chosen = match metasync_runtime::choose(common.profile.as_deref(), common.config.as_deref())
    {
        Ok(c) => c,
        Err(e) => return report(e),
    };
    let rt = match crate::backend::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    rt.block_on(async {
        let env = match metasync_runtime::open(chosen).await {
            Ok(env) => env,
            Err(e) => return report(e),
        };
        let _log = metasync_runtime::logging::init(env.data_dir.as_deref(), common.verbose);
        f(&env).await
    })
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub fn plan(args: PlanArgs) -> u8 {
    let req = metasync_runtime::PlanRequest {
        files: args.files.clone(),
        max_records: args.max_records,
        entity_type: None,
    };
    let format = args.common.format;
    with_env(&args.common, async |env| {
        let view = match metasync_runtime::plan(env, &req).await {
            Ok(v) => v,
            Err(e) => return report(e),
        };
        match format {
            Format::Json => print_json(&view),
            Format::Text => {
                let c = &view.counts;
                println!(
                    "Plan on {} ({}):",
                    env.chosen.label,
                    plural(c.rows, "row", "rows")
                );
                println!(
                    "  {} new, {} changed, {} unchanged, {} blocked, {} rejected",
                    thousands(c.new),
                    thousands(c.changed),
                    thousands(c.unchanged),
                    thousands(c.blocked),
                    thousands(c.rejected)
                );
                if c.resolve > 0 {
                    println!(
                        "  {} to look up in Media Manager, never written (a station cannot create shows)",
                        plural(c.resolve, "show", "shows")
                    );
                }
                if c.not_writable > 0 {
                    println!(
                        "  {} changed but not writable with station access (not sent; ask PBS):",
                        thousands(c.not_writable)
                    );
                }
                for r in view.records.iter().take(50) {
                    use metasync_engine::pipeline::plan::Action;
                    match r.action {
                        Action::Changed => {
                            println!("  changed  {} {}", r.entity, r.key);
                            for d in &r.diff {
                                println!(
                                    "      {}: {:?} → {:?}",
                                    d.field,
                                    d.old.as_deref().unwrap_or(""),
                                    d.new.as_deref().unwrap_or("")
                                );
                            }
                        }
                        Action::Blocked => println!(
                            "  blocked  {} {} (waits for {})",
                            r.entity,
                            r.key,
                            r.blocked_by.as_deref().unwrap_or("?")
                        ),
                        Action::NotWritable => {
                            let fields: Vec<&str> =
                                r.diff.iter().map(|d| d.field.as_str()).collect();
                            println!(
                                "  not writable  {} {} ({} changed; stations cannot change {}s)",
                                r.entity,
                                r.key,
                                fields.join(", "),
                                r.entity
                            );
                        }
                        _ => {}
                    }
                }
                println!("Nothing was sent. Run `metasync sync` with the same files to send it.");
            }
        }
        if view.counts.rejected + view.counts.blocked + view.counts.not_writable > 0 {
            EXIT_FINDINGS
        } else {
            0
        }
    })
}

/// Ask for the profile's name back before changing a production catalog.
fn confirm_production(env: &Env, yes: bool) -> Result<(), String> {
    if !env.chosen.production || yes {
        return Ok(());
    }
    crate::output::confirm_typed(
        &format!(
            "sync changes the PRODUCTION catalog of {}",
            env.chosen.label
        ),
        env.profile_name(),
        "nothing was sent",
    )
}

/// A one-line progress bar on a terminal's stderr; nothing elsewhere.
pub struct Bar {
    on: bool,
    started: Instant,
    last: Mutex<Instant>,
}

impl Bar {
    pub fn new() -> Self {
        Self {
            on: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: Mutex::new(Instant::now()),
        }
    }

    pub fn progress(&self, p: Progress) {
        if !self.on {
            return;
        }
        match p {
            Progress::Planned(c, _) => eprintln!(
                "planned: {} new, {} changed, {} unchanged, {} blocked, {} rejected",
                c.new, c.changed, c.unchanged, c.blocked, c.rejected
            ),
            Progress::Enqueued { entity, records } => {
                eprintln!("queued {} {entity} records", thousands(records));
            }
            Progress::Landed(_) => {}
            Progress::Working {
                resolved,
                total,
                throttled,
                ..
            } => {
                let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed().as_millis() < 200 && resolved < total {
                    return;
                }
                *last = Instant::now();
                let secs = self.started.elapsed().as_secs_f64().max(0.001);
                let rate = resolved as f64 / secs;
                let eta = if rate > 0.0 {
                    (total.saturating_sub(resolved)) as f64 / rate
                } else {
                    0.0
                };
                let width = 30;
                let filled = (resolved * width / total.max(1)) as usize;
                eprint!(
                    "\r[{}{}] {}/{} rows synced  {:.0}/s  ETA {:.0}s  429s: {}   ",
                    "#".repeat(filled),
                    " ".repeat(width as usize - filled),
                    thousands(resolved),
                    thousands(total),
                    rate,
                    eta,
                    throttled
                );
                if resolved >= total {
                    eprintln!();
                }
                let _ = std::io::stderr().flush();
            }
        }
    }
}

pub fn print_summary(report: &SyncReport) {
    let s = &report.summary;
    println!(
        "Run {}: {} in {:.1} s",
        s.run_id,
        plural(s.rows, "row", "rows"),
        s.elapsed_ms as f64 / 1000.0
    );
    println!(
        "  synced {} (created {}, updated {}), unchanged {}, rejected {}, failed {}, discarded {}",
        thousands(s.synced),
        thousands(s.created),
        thousands(s.updated),
        thousands(s.unchanged),
        thousands(s.rejected),
        thousands(s.failed),
        thousands(s.discarded)
    );
    if s.not_sent > 0 {
        println!("  left out by --limit: {}", thousands(s.not_sent));
    }
    if s.queued > 0 {
        println!(
            "  still queued: {} (run `metasync worker --until-empty`)",
            thousands(s.queued)
        );
    }
    println!(
        "  target requests {} (429s: {})",
        thousands(s.api_calls.get("target.requests").copied().unwrap_or(0)),
        s.api_calls.get("target.throttled").copied().unwrap_or(0)
    );
    if s.failed > 0 {
        println!("  see the failures: metasync failures list");
    }
}

pub fn sync(args: SyncArgs) -> u8 {
    let req = metasync_runtime::SyncRequest {
        files: args.files.clone(),
        batch_size: args.batch_size,
        limit: args.limit,
        rank_by: args.rank_by.clone(),
        wait: !args.no_wait,
        concurrency: args.concurrency,
        who: who(),
        parents_elsewhere: None,
    };
    let (format, yes) = (args.common.format, args.yes);
    with_env(&args.common, async |env| {
        if let Err(e) = confirm_production(env, yes) {
            return fail(e);
        }
        let bar = Bar::new();
        let progress = |p: Progress| bar.progress(p);
        let report = match metasync_runtime::sync(env, &req, &progress).await {
            Ok(r) => r,
            Err(e) => return report(e),
        };
        match format {
            Format::Json => print_json(&report.summary),
            Format::Text => print_summary(&report),
        }
        if report.summary.failed + report.summary.rejected > 0 {
            EXIT_FINDINGS
        } else {
            0
        }
    })
}

pub fn worker(args: WorkerArgs) -> u8 {
    let req = metasync_runtime::WorkRequest {
        concurrency: args.concurrency,
        until_empty: args.until_empty,
        who: who(),
        visibility_seconds: args.visibility_seconds,
    };
    let format = args.common.format;
    with_env(&args.common, async |env| {
        let r = match metasync_runtime::work(env, &req, &|_| {}).await {
            Ok(r) => r,
            Err(e) => return report(e),
        };
        match format {
            Format::Json => print_json(&r),
            Format::Text => println!(
                "worker done: created {}, updated {}, synced earlier {}, failed {}; {} target requests ({} × 429)",
                r.created, r.updated, r.synced_earlier, r.failed, r.target_requests, r.throttled
            ),
        }
        if r.failed > 0 {
            EXIT_FINDINGS
        } else {
            0
        }
    })
}

pub fn ingest(args: IngestArgs) -> u8 {
    let format = args.common.format;
    with_env(&args.common, async |env| {
        let views = match metasync_runtime::ingest(env, &args.assets).await {
            Ok(v) => v,
            Err(e) => return report(e),
        };
        match format {
            Format::Json => print_json(&views),
            Format::Text => {
                for v in &views {
                    let i = &v.ingest;
                    let file =
                        |status: &Option<String>, error: &Option<String>| match (status, error) {
                            (None, _) => "none sent".to_string(),
                            (Some(s), Some(e)) => format!("{s} ({e})"),
                            (Some(s), None) => s.clone(),
                        };
                    println!(
                        "asset {} ({}): video {}, captions {}, {}",
                        v.asset_key,
                        v.target_id,
                        file(&i.video, &i.video_error),
                        file(&i.caption, &i.caption_error),
                        if i.published {
                            "published"
                        } else {
                            "not published"
                        }
                    );
                }
            }
        }
        0
    })
}

pub fn status(args: StatusArgs) -> u8 {
    let (format, watch, runs) = (args.common.format, args.watch, args.runs);
    with_env(&args.common, async |env| loop {
        let s = match metasync_runtime::status(env, runs).await {
            Ok(s) => s,
            Err(e) => return report(e),
        };
        match format {
            Format::Json => print_json(&s),
            Format::Text => {
                println!("Status of {}:", env.chosen.label);
                println!(
                    "  {:<8} {:>9} {:>10} {:>12}",
                    "queue", "visible", "in flight", "dead letter"
                );
                for q in &s.queues {
                    println!(
                        "  {:<8} {:>9} {:>10} {:>12}",
                        q.entity.as_str(),
                        q.depth.visible,
                        q.depth.in_flight,
                        q.depth.dead
                    );
                }
                if s.failures.is_empty() {
                    println!("  no failures in triage");
                } else {
                    println!("  failures in triage:");
                    for (code, n) in &s.failures {
                        println!("    {code:<20} {n}");
                    }
                }
                println!("  last runs:");
                for r in &s.runs {
                    let counts: Vec<String> = r
                        .counts
                        .iter()
                        .filter(|(k, v)| **v > 0 && !k.starts_with("latency"))
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect();
                    println!(
                        "    {} {:?} by {}: {}{}",
                        r.id,
                        r.kind,
                        r.who,
                        counts.join(", "),
                        r.note
                            .as_deref()
                            .map(|n| format!(" ({n})"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        match watch {
            Some(secs) => tokio::time::sleep(std::time::Duration::from_secs(secs.max(1))).await,
            None => return 0,
        }
    })
}

fn parse_sets(sets: &[String]) -> Result<Vec<(String, String)>, String> {
    sets.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(f, v)| (f.trim().to_string(), v.to_string()))
                .ok_or_else(|| format!("--set {s:?}: write it as field=value"))
        })
        .collect()
}

pub fn failures(args: FailuresArgs) -> u8 {
    match args.action {
        FailuresAction::List(common) => {
            let format = common.format;
            with_env(&common, async |env| {
                let groups = match metasync_runtime::failures_list(env).await {
                    Ok(g) => g,
                    Err(e) => return report(e),
                };
                match format {
                    Format::Json => print_json(&groups),
                    Format::Text if groups.is_empty() => println!("No failures in triage."),
                    Format::Text => {
                        for g in &groups {
                            println!("{} × {}: {}", g.count, g.code, g.sample);
                            for r in &g.records {
                                println!("    {r}");
                            }
                        }
                    }
                }
                0
            })
        }
        FailuresAction::Show { record, common } => {
            let format = common.format;
            with_env(&common, async |env| {
                let d = match metasync_runtime::failures_show(env, &record).await {
                    Ok(d) => d,
                    Err(e) => return report(e),
                };
                match format {
                    Format::Json => print_json(&d),
                    Format::Text => {
                        println!("{} {} — {:?}", d.entity, d.key, d.status);
                        println!(
                            "  error {} after {} attempt(s): {}",
                            d.code, d.attempts, d.message
                        );
                        if let Some(id) = &d.target_id {
                            println!("  target id {id}");
                        }
                        for (k, v) in &d.fields {
                            println!("  {k}: {v}");
                        }
                    }
                }
                0
            })
        }
        FailuresAction::Retry {
            record,
            code,
            all,
            set,
            no_wait,
            common,
        } => {
            let edits = match parse_sets(&set) {
                Ok(e) => e,
                Err(e) => return fail(e),
            };
            let sel = match metasync_runtime::selection(record.as_deref(), code.as_deref(), all) {
                Ok(s) => s,
                Err(e) => return report(e),
            };
            let format = common.format;
            with_env(&common, async |env| match metasync_runtime::failures_retry(
                env,
                &sel,
                &edits,
                &who(),
                !no_wait,
            )
            .await
            {
                Ok((r, work)) => {
                    match format {
                        Format::Json => print_json(&serde_json::json!({"retry": r, "work": work})),
                        Format::Text => {
                            println!(
                                "re-sent {} (recorded as {})",
                                plural(r.records.len() as u64, "record", "records"),
                                r.run_id
                            );
                            if let Some(w) = &work {
                                println!(
                                    "  now: created {}, updated {}, failed {}",
                                    w.created, w.updated, w.failed
                                );
                            }
                        }
                    }
                    if work.is_some_and(|w| w.failed > 0) {
                        EXIT_FINDINGS
                    } else {
                        0
                    }
                }
                Err(e) => report(e),
            })
        }
        FailuresAction::Discard {
            record,
            code,
            all,
            reason,
            common,
        } => {
            let sel = match metasync_runtime::selection(record.as_deref(), code.as_deref(), all) {
                Ok(s) => s,
                Err(e) => return report(e),
            };
            let format = common.format;
            with_env(
                &common,
                async |env| match metasync_runtime::failures_discard(env, &sel, &reason, &who())
                    .await
                {
                    Ok(r) => {
                        match format {
                            Format::Json => print_json(&r),
                            Format::Text => println!(
                                "discarded {} (recorded as {})",
                                plural(r.records.len() as u64, "record", "records"),
                                r.run_id
                            ),
                        }
                        0
                    }
                    Err(e) => report(e),
                },
            )
        }
    }
}
