//! `metasync sandbox`.

use crate::output::fail;
use metasync_sandbox::{Config, Sandbox};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// Requests per second before it answers 429 (unlimited when not given).
    #[arg(long, value_name = "R")]
    quota: Option<f64>,
    /// Requests let through at once after a quiet spell.
    #[arg(long, value_name = "B", default_value_t = 10)]
    burst: u32,
    #[arg(long, value_name = "L", default_value_t = 0)]
    latency_ms: u64,
    /// Share of requests answered 503.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    fail_rate: f64,
    /// Share of requests whose connection breaks off.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    reset_rate: f64,
    /// Share of requests done but answered only after 30 s.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    timeout_rate: f64,
    /// Makes the faults repeatable.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Send X-RateLimit-Remaining and X-RateLimit-Reset headers.
    #[arg(long)]
    rate_headers: bool,
    /// Refuse (400) titles containing this text: a record for triage to fix.
    #[arg(long, value_name = "TEXT")]
    refuse_title: Option<String>,
    /// What its Media Manager key may write: a station's cannot create or change shows,
    /// nor change seasons (403), as in Media Manager.
    #[arg(long, value_parser = ["station", "pbs"], default_value = "station")]
    access: String,
}

pub fn run(args: Args) -> u8 {
    let rates = [args.fail_rate, args.reset_rate, args.timeout_rate];
    if rates.iter().any(|r| !(0.0..=1.0).contains(r)) || rates.iter().sum::<f64>() > 1.0 {
        return fail("--fail-rate, --reset-rate and --timeout-rate are shares between 0 and 1, adding up to 1 at most");
    }
    if args.quota.is_some_and(|q| !(q > 0.0 && q.is_finite())) {
        return fail("--quota must be a positive number of requests per second");
    }
    let cfg = Config {
        quota: args.quota,
        burst: args.burst.max(1),
        latency: Duration::from_millis(args.latency_ms),
        fail_rate: args.fail_rate,
        reset_rate: args.reset_rate,
        timeout_rate: args.timeout_rate,
        seed: args.seed,
        rate_headers: args.rate_headers,
        refuse_title: args.refuse_title.clone(),
        access: if args.access == "pbs" {
            metasync_sandbox::Access::Full
        } else {
            metasync_sandbox::Access::Station
        },
        ..Config::default()
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start: {e}")),
    };
    runtime.block_on(async move {
        let sandbox = match Sandbox::start(cfg.clone(), args.port).await {
            Ok(s) => s,
            Err(e) => return fail(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)),
        };
        let url = sandbox.url();
        let quota = cfg.quota.map_or("unlimited".into(), |q| {
            format!("{q}/s, burst {}", cfg.burst)
        });
        println!("Sandbox catalog on {url}  (quota {quota})");
        println!(
            "  Media Manager v1   {url}/api/v1/   HTTP Basic, key {}",
            cfg.credentials.key
        );
        println!(
            "  REST + OAuth2      {url}/rest/     tokens from {url}/oauth2/token, client {}",
            cfg.credentials.client_id
        );
        println!("  stats              {url}/_sandbox/stats   catalog {url}/_sandbox/catalog");
        println!("The development secrets are in the README. Ctrl-C stops it.");
        let _ = tokio::signal::ctrl_c().await;
        let stats = sandbox.stats();
        sandbox.stop().await;
        println!(
            "stopped: {} requests, {} accepted, {} throttled, {} faults, {} duplicates",
            stats.requests, stats.accepted, stats.throttled, stats.faults, stats.duplicates
        );
        0
    })
}
