//! The embedded backend's throughput: messages through a FIFO queue (send batches of
//! 10, receive 10, delete 10) and state writes (batches of 25), on a real folder.
//! `make bench-local`; `BENCH_MESSAGES` and `BENCH_RECORDS` change the sizes.

use metasync_engine::gen::Rng;
use metasync_engine::ports::{put_all, Lane, Outgoing, Record, RecordKey, RecordStatus};
use metasync_engine::retry::RetryPolicy;
use metasync_engine::EntityType;
use std::time::{Duration, Instant};

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let messages = size("BENCH_MESSAGES", 20_000);
    let records = size("BENCH_RECORDS", 50_000);
    let dir = tempfile::tempdir()?;
    let b = metasync_local::open(dir.path(), Default::default())?;
    let q = b.queue(EntityType::Episode);
    // A message holds a batch of records in the pipeline; 2 KiB stands for ten.
    let body = "x".repeat(2048);

    let t = Instant::now();
    for i in 0..messages / 10 {
        let batch: Vec<Outgoing> = (0..10)
            .map(|j| Outgoing {
                group_id: format!("show-{}", (i * 10 + j) % 50),
                dedup_id: format!("d{i}-{j}"),
                body: body.clone(),
            })
            .collect();
        q.send_batch(&batch).await?;
    }
    let send = t.elapsed();

    let t = Instant::now();
    let mut received = 0;
    loop {
        let got = q
            .receive(Lane::Main, 10, Duration::from_secs(60), Duration::ZERO)
            .await?;
        if got.is_empty() {
            break;
        }
        received += got.len();
        let receipts: Vec<_> = got.into_iter().map(|m| m.receipt).collect();
        q.delete_batch(&receipts).await?;
    }
    let drain = t.elapsed();
    assert_eq!(received, messages / 10 * 10, "every message once");

    let batch: Vec<Record> = (0..records)
        .map(|i| {
            let mut r = Record::new(
                RecordKey::new(EntityType::Episode, format!("ep-{i}")),
                format!("{i:064x}"),
                RecordStatus::Synced,
            );
            r.payload = Some(format!("{{\"title\":\"Episode {i}\",\"ordinal\":{i}}}"));
            r
        })
        .collect();
    let t = Instant::now();
    put_all(
        b.state.as_ref(),
        &batch,
        &RetryPolicy::default(),
        &mut Rng::new(1),
    )
    .await?;
    let state = t.elapsed();

    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "queue: {} messages of 2 KiB sent in {:.2} s = {:.0} msg/s; received and deleted in {:.2} s = {:.0} msg/s",
        received,
        send.as_secs_f64(),
        rate(received, send),
        drain.as_secs_f64(),
        rate(received, drain)
    );
    println!(
        "state: {} records written in batches of 25 in {:.2} s = {:.0} records/s",
        records,
        state.as_secs_f64(),
        rate(records, state)
    );
    println!("calls: {}", serde_json::to_string(&b.calls())?);
    Ok(())
}
