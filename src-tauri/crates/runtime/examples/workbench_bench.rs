//! `make bench-workbench`: the workbench's goals on a 1,000,000-row generated episode
//! file with 100,000 US dates in it — validation against the CLI's, the first rows,
//! windows of rows at the start, middle and end, an edit's re-check, a bulk fix over
//! the 100,000 dates, and saving the corrected file. Exits 1 on a missed goal.
//!
//! Usage: workbench_bench PATH_TO_METASYNC_CLI

use metasync_runtime::workbench::{FixArg, SaveFormatArg, ScopeArg, ViewArg, Workbench};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROWS: usize = 1_000_000;

fn main() {
    let cli = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/release/metasync".into());
    let dir = PathBuf::from("target/bench-workbench");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
    let file = dir.join("episodes-1m-us-dates.csv");
    if !file.exists() {
        make_file(&cli, &dir, &file);
    }
    let mut missed = Vec::new();
    let mut goal = |name: &str, took: Duration, limit: Duration| {
        let ok = took <= limit;
        println!(
            "{:<52} {:>9.1} ms  (goal ≤ {} ms){}",
            name,
            ms(took),
            limit.as_millis(),
            if ok { "" } else { "  MISSED" }
        );
        if !ok {
            missed.push(name.to_string());
        }
    };

    // The CLI's validate on the same file: best of 3.
    let cli_time = (0..3)
        .map(|_| {
            let t = Instant::now();
            let _ = Command::new(&cli).arg("validate").arg(&file).output();
            t.elapsed()
        })
        .min()
        .unwrap_or_default();
    println!(
        "{:<52} {:>9.1} ms",
        "metasync validate (best of 3)",
        ms(cli_time)
    );

    let mut validated = Vec::new();
    let mut first_rows = Vec::new();
    let mut wb = Arc::new(Workbench::default());
    for _ in 0..3 {
        wb = Arc::new(Workbench::default());
        let t = Instant::now();
        let opened = wb.open_paths(std::slice::from_ref(&file));
        let id = opened[0].as_ref().map(|f| f.id).unwrap_or_else(|e| fail(e));
        while wb
            .rows(id, &ViewArg::All, 0, 40)
            .map_or(true, |b| b.len() <= 8)
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        first_rows.push(t.elapsed());
        wb.wait();
        validated.push(t.elapsed());
    }
    validated.sort();
    first_rows.sort();
    goal(
        "first rows readable after the open",
        first_rows[1],
        Duration::from_secs(1),
    );
    let limit = cli_time.mul_f64(1.5);
    goal(
        "whole file validated (median of 3; ≤ 1.5 × CLI)",
        validated[1],
        limit,
    );

    let id = wb.files()[0].id;
    let invalid = wb.files()[0].invalid;
    println!("{:<52} {:>9}", "rows with errors", invalid);
    for start in [0u64, 500_000, ROWS as u64 - 40] {
        let mut times: Vec<Duration> = (0..21)
            .map(|_| {
                let t = Instant::now();
                let b = wb.rows(id, &ViewArg::All, start, 40).unwrap_or_default();
                assert!(b.len() > 1000);
                t.elapsed()
            })
            .collect();
        times.sort();
        goal(
            &format!("a window of 40 rows at row {start} (median)"),
            times[10],
            Duration::from_millis(16),
        );
    }

    // An edit, re-checked at once, then its rows read back.
    let t = Instant::now();
    wb.edit(id, 500_001, 3, "Bad Slug".into())
        .unwrap_or_else(|e| fail(&e.to_string()));
    let _ = wb.rows(id, &ViewArg::All, 499_990, 40);
    let after = wb.files()[0].invalid;
    goal(
        "an edit re-checked and its rows read back",
        t.elapsed(),
        Duration::from_millis(50),
    );
    assert_eq!(after, invalid + 1, "the edit's error shows at once");
    wb.wait();

    // The 100,000 US dates, fixed in one step and validated again.
    let scope = ScopeArg {
        column: Some(7),
        code: Some("bad_date".into()),
    };
    let t = Instant::now();
    let n = wb
        .apply_fix(id, &FixArg::UsDate, &scope)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let shown = wb.files()[0].invalid;
    goal(
        "bulk fix over 100,000 cells, re-checked at once",
        t.elapsed(),
        Duration::from_secs(2),
    );
    println!("{:<52} {:>9}", "  cells changed", n);
    println!("{:<52} {:>9}", "  rows with errors shown at once", shown);
    wb.wait();
    println!(
        "{:<52} {:>9.1} ms",
        "  the full pass done (from the fix)",
        ms(t.elapsed())
    );
    println!(
        "{:<52} {:>9}",
        "  rows with errors after the full pass",
        wb.files()[0].invalid
    );
    assert_eq!(
        shown,
        wb.files()[0].invalid,
        "the quick check agrees with the full pass"
    );

    let out = dir.join("corrected.csv");
    let t = Instant::now();
    let saved = wb
        .save(id, &out, SaveFormatArg::Original)
        .unwrap_or_else(|e| fail(&e.to_string()));
    goal(
        "save the corrected 1M-row file",
        t.elapsed(),
        Duration::from_secs(3),
    );
    println!("{:<52} {:>9} bytes", "  written", saved.bytes);
    let _ = std::fs::remove_file(&out);
    println!(
        "{:<52} {:>9.1} MiB",
        "peak memory of this process (VmHWM)",
        peak_mib()
    );
    if !missed.is_empty() {
        eprintln!("missed: {}", missed.join("; "));
        std::process::exit(1);
    }
}

/// The generator's episodes with every tenth premiere written M/D/YYYY, as Excel does.
fn make_file(cli: &str, dir: &Path, file: &Path) {
    let clean = dir.join("episodes-1m.csv");
    let status = Command::new(cli)
        .args([
            "gen",
            "--type",
            "episode",
            "--rows",
            &ROWS.to_string(),
            "--seed",
            "5",
            "--out",
        ])
        .arg(&clean)
        .status()
        .unwrap_or_else(|e| fail(&format!("{cli}: {e}")));
    if !status.success() {
        fail("metasync gen failed");
    }
    let mut rdr = csv::Reader::from_path(&clean).unwrap_or_else(|e| fail(&e.to_string()));
    let mut w = csv::Writer::from_path(file).unwrap_or_else(|e| fail(&e.to_string()));
    let head = rdr.headers().cloned().unwrap_or_default();
    let prem = head.iter().position(|h| h == "premiered_on").unwrap_or(7);
    w.write_record(&head)
        .unwrap_or_else(|e| fail(&e.to_string()));
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.unwrap_or_else(|e| fail(&e.to_string()));
        let mut cells: Vec<String> = rec.iter().map(str::to_owned).collect();
        if i % 10 == 0 {
            let p: Vec<&str> = cells[prem].split('-').collect();
            if let [y, m, d] = p[..] {
                cells[prem] = format!(
                    "{}/{}/{y}",
                    m.trim_start_matches('0'),
                    d.trim_start_matches('0')
                );
            }
        }
        w.write_record(&cells)
            .unwrap_or_else(|e| fail(&e.to_string()));
    }
    w.flush().unwrap_or_else(|e| fail(&e.to_string()));
    let _ = std::fs::remove_file(&clean);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn fail(msg: &str) -> ! {
    eprintln!("workbench_bench: {msg}");
    std::process::exit(2)
}
