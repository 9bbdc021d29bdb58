//! `metasync validate`.

use crate::output::{fail, plural, thousands, Format};
use crate::{EXIT_FINDINGS, EXIT_UNUSABLE};
use metasync_engine::annotate::AnnotatedCsv;
use metasync_engine::mapping::Mapping;
use metasync_engine::validate::{
    validate_paths, FileHeader, FileOutcome, FileReport, Options, RowSink, RunReport,
};
use metasync_engine::{EntityType, Finding, Severity};
use serde_json::json;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// CSV files to check (one entity type each; parents are checked first).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The entity type of the files, when the header does not say.
    #[arg(long = "type", value_name = "T")]
    entity_type: Option<EntityType>,
    /// A TOML mapping from your export's headers to Metasync's columns.
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write the invalid rows, with an `errors` column, to this CSV (a directory when
    /// several files are given: one `NAME.errors.csv` each).
    #[arg(long, value_name = "PATH")]
    errors_out: Option<PathBuf>,
    /// Findings listed per file (counts stay exact).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    max_findings: usize,
}

/// Text output lists this many findings per file; JSON and --errors-out have them all.
const TEXT_FINDINGS: usize = 12;

fn errors_path(out: &Path, input: &Path, several: bool) -> PathBuf {
    if !several {
        return out.to_owned();
    }
    let stem = input
        .file_stem()
        .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned());
    out.join(format!("{stem}.errors.csv"))
}

pub fn run(args: Args) -> u8 {
    let mapping = match args.mapping.as_deref().map(Mapping::load).transpose() {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let several = args.files.len() > 1;
    if let (Some(dir), true) = (&args.errors_out, several) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return fail(format!(
                "cannot create the directory {} for --errors-out: {e}",
                dir.display()
            ));
        }
    }
    let opts = Options {
        max_findings: args.max_findings,
        entity_type: args.entity_type,
        mapping,
        ..Options::default()
    };
    let errors_out = args.errors_out.clone();
    let sink_for = |h: &FileHeader<'_>| -> std::io::Result<Option<Box<dyn RowSink>>> {
        let Some(out) = &errors_out else {
            return Ok(None);
        };
        let path = errors_path(out, h.path, several);
        let file = File::create(&path).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
        })?;
        Ok(Some(Box::new(AnnotatedCsv::new(
            BufWriter::new(file),
            h.header,
        )?)))
    };
    let report = match validate_paths(&args.files, &opts, sink_for) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    match args.format {
        Format::Json => println!("{}", to_json(&report)),
        Format::Text => print_text(&report),
    }
    for (_, outcome) in &report.files {
        if let FileOutcome::Unusable(e) = outcome {
            eprintln!("error: {e}");
        }
    }
    if report.unusable() > 0 {
        EXIT_UNUSABLE
    } else if report.invalid() > 0 {
        EXIT_FINDINGS
    } else {
        0
    }
}

fn to_json(report: &RunReport) -> serde_json::Value {
    let files: Vec<serde_json::Value> = report
        .files
        .iter()
        .map(|(path, outcome)| match outcome {
            FileOutcome::Checked(r) => serde_json::to_value(r)
                .unwrap_or_else(|e| json!({ "path": path, "error": e.to_string() })),
            FileOutcome::Unusable(e) => json!({ "path": path, "error": e.to_string() }),
        })
        .collect();
    json!({
        "rows": report.rows(),
        "valid": report.valid(),
        "invalid": report.invalid(),
        "warnings": report.warnings(),
        "elapsed_ms": report.elapsed_ms,
        "files": files,
    })
}

fn print_finding(f: &Finding) {
    let sev = match f.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let place = match (f.row, f.line) {
        (Some(r), Some(l)) => format!("row {r} (line {l})"),
        (None, None) => "file".to_string(),
        _ => "header".to_string(),
    };
    let column = f
        .column
        .as_deref()
        .map(|c| format!(", {c}"))
        .unwrap_or_default();
    println!("  {sev:<7} {place}{column}: {} [{}]", f.message, f.code);
    if let Some(v) = &f.value {
        println!("          value: \"{v}\"");
    }
    println!("          hint: {}", f.hint);
}

fn print_file(r: &FileReport) {
    let blank = if r.blank_rows > 0 {
        format!(
            " ({} skipped)",
            plural(r.blank_rows, "blank row", "blank rows")
        )
    } else {
        String::new()
    };
    println!(
        "{} — {} file, {}, {}-delimited, {}{blank}",
        r.path,
        r.entity_type,
        r.encoding.as_str(),
        r.delimiter.as_str(),
        plural(r.rows, "row", "rows"),
    );
    println!(
        "  {} valid, {} invalid, {}",
        thousands(r.valid),
        thousands(r.invalid),
        plural(r.warnings, "warning", "warnings")
    );
    if !r.counts.is_empty() {
        let counts: Vec<String> = r
            .counts
            .iter()
            .map(|(c, n)| format!("{c} ×{}", thousands(*n)))
            .collect();
        println!("  findings: {}", counts.join(", "));
    }
    for f in r.findings.iter().take(TEXT_FINDINGS) {
        print_finding(f);
    }
    let total: u64 = r.counts.values().sum();
    let shown = r.findings.len().min(TEXT_FINDINGS) as u64;
    if total > shown {
        println!(
            "  … and {} more (see --format json or --errors-out FILE for all of them)",
            thousands(total - shown)
        );
    }
    println!();
}

fn print_text(report: &RunReport) {
    for (path, outcome) in &report.files {
        match outcome {
            FileOutcome::Checked(r) => print_file(r),
            FileOutcome::Unusable(_) => {
                println!("{} — not checked (see the error below)\n", path.display())
            }
        }
    }
    let secs = report.elapsed_ms as f64 / 1000.0;
    // A rate over a few milliseconds says nothing; show it for runs that take a while.
    let rate = match report.elapsed_ms {
        ms if ms >= 200 => format!(" ({} rows/s)", thousands(report.rows() * 1000 / ms)),
        _ => String::new(),
    };
    println!(
        "{}: {}, {} valid, {} invalid, {} in {secs:.2} s{rate}",
        plural(report.files.len() as u64, "file", "files"),
        plural(report.rows(), "row", "rows"),
        thousands(report.valid()),
        thousands(report.invalid()),
        plural(report.warnings(), "warning", "warnings"),
    );
    if report.invalid() == 0 && report.unusable() == 0 {
        println!("All rows are valid.");
    }
}
