//! End-to-end tests of the `metasync` binary: real files in, exit codes, stdout and
//! stderr out.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/fixtures")
        .join(name)
}

fn metasync(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metasync"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run metasync: {e}"))
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// `metasync gen --type episode` into a file in `dir`.
fn gen_episodes(dir: &Path, rows: u32, seed: u32, invalid_ratio: f64) -> PathBuf {
    let path = dir.join("ep.csv");
    let (rows, seed, ratio) = (
        rows.to_string(),
        seed.to_string(),
        invalid_ratio.to_string(),
    );
    let p = path.display().to_string();
    let args = [
        "gen",
        "--type",
        "episode",
        "--rows",
        &rows,
        "--seed",
        &seed,
        "--invalid-ratio",
        &ratio,
        "--out",
        &p,
    ];
    let o = metasync(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    path
}

fn validate_json(files: &[&Path], extra: &[&str]) -> (i32, Value) {
    let mut args: Vec<String> = vec!["validate".into(), "--format".into(), "json".into()];
    args.extend(files.iter().map(|p| p.display().to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = metasync(&refs);
    (code(&o), json(&o))
}

/// Every encoding and dialect a spreadsheet produces reads the same three rows: two
/// valid, and a third whose bad slug proves the accents were decoded.
#[test]
fn every_input_quirk_reads_the_same_rows() {
    let cases = [
        ("utf8.csv", "UTF-8", "comma"),
        ("utf8-bom.csv", "UTF-8 (BOM)", "comma"),
        ("utf16le-bom.csv", "UTF-16LE", "tab"),
        ("utf16be-bom.csv", "UTF-16BE", "comma"),
        ("windows1252.csv", "Windows-1252", "semicolon"),
        ("semicolon.csv", "UTF-8", "semicolon"),
        ("tab.tsv", "UTF-8", "tab"),
        ("crlf.csv", "UTF-8", "comma"),
    ];
    for (name, encoding, delimiter) in cases {
        let (exit, j) = validate_json(&[&fixture(name)], &[]);
        assert_eq!(exit, 1, "{name}: one invalid row");
        let f = &j["files"][0];
        assert_eq!(f["encoding"], encoding, "{name}");
        assert_eq!(f["delimiter"], delimiter, "{name}");
        assert_eq!(f["type"], "episode", "{name}");
        assert_eq!(
            (
                f["rows"].as_u64(),
                f["valid"].as_u64(),
                f["invalid"].as_u64()
            ),
            (Some(3), Some(2), Some(1)),
            "{name}"
        );
        let errors: Vec<&Value> = f["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| x["severity"] == "error")
            .collect();
        assert_eq!(errors.len(), 1, "{name}: {errors:?}");
        let e = errors[0];
        assert_eq!(
            (e["code"].as_str(), e["row"].as_u64(), e["line"].as_u64()),
            (Some("bad_format"), Some(3), Some(5)),
            "{name}"
        );
        assert_eq!(e["column"], "slug");
        assert_eq!(e["value"], "Café-Owls", "{name}: decoded value");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(
            e["hint"].as_str().is_some_and(|h| h.contains("cafe-owls")),
            "{name}: {}",
            e["hint"]
        );
    }
}

#[test]
fn json_report_has_the_documented_shape() {
    let (_, j) = validate_json(&[&fixture("utf8.csv")], &[]);
    for key in [
        "rows",
        "valid",
        "invalid",
        "warnings",
        "elapsed_ms",
        "files",
    ] {
        assert!(j.get(key).is_some(), "missing {key}");
    }
    let f = &j["files"][0];
    for key in [
        "path",
        "type",
        "encoding",
        "delimiter",
        "rows",
        "valid",
        "invalid",
        "findings",
        "findings_truncated",
    ] {
        assert!(f.get(key).is_some(), "missing files[].{key}");
    }
    for key in [
        "code", "severity", "row", "line", "column", "value", "message", "hint",
    ] {
        assert!(f["findings"][0].get(key).is_some(), "missing finding.{key}");
    }
    // Without the season file, references get one file-level warning.
    assert_eq!(j["warnings"], 1);
}

#[test]
fn unusable_input_exits_2_with_one_clear_message() {
    let missing = fixture("does-not-exist.csv");
    let cases: [(&Path, &str); 4] = [
        (&missing, "cannot open"),
        (&fixture("empty.csv"), "empty"),
        (&fixture("photo.csv"), "PNG image"),
        (&fixture("no-header.csv"), "no recognizable header"),
    ];
    for (path, says) in cases {
        let o = metasync(&["validate", &path.display().to_string()]);
        assert_eq!(code(&o), 2, "{}", path.display());
        let err = stderr(&o);
        assert!(err.contains(says), "{}: {err}", path.display());
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn one_unusable_file_does_not_hide_the_others() {
    let (exit, j) = validate_json(&[&fixture("photo.csv"), &fixture("utf8.csv")], &[]);
    assert_eq!(exit, 2);
    assert!(j["files"][0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("PNG")));
    assert_eq!(j["files"][1]["rows"], 3);
}

#[test]
fn bad_arguments_and_configuration_exit_2() {
    assert_eq!(code(&metasync(&["validate"])), 2);
    let o = metasync(&[
        "validate",
        "--type",
        "movie",
        &fixture("utf8.csv").display().to_string(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("unknown entity type"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mapping = dir.path().join("m.toml");
    std::fs::write(&mapping, "[columns]\n\"Ep\" = \"episode_number\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let o = metasync(&[
        "validate",
        "--mapping",
        &mapping.display().to_string(),
        &fixture("utf8.csv").display().to_string(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("episode_number"), "{}", stderr(&o));
}

#[test]
fn clean_files_exit_0_and_text_output_is_readable() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().display().to_string();
    let o = metasync(&[
        "gen",
        "--catalog",
        "--shows",
        "5",
        "--seed",
        "3",
        "--out",
        &out,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let files: Vec<String> = ["assets", "episodes", "seasons", "shows"]
        .iter()
        .map(|t| dir.path().join(format!("{t}.csv")).display().to_string())
        .collect();
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let o = metasync(&args);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("4 files:"), "{text}");
    assert!(text.contains("All rows are valid."), "{text}");
    assert!(
        text.contains("episode file, UTF-8, comma-delimited"),
        "{text}"
    );
}

#[test]
fn bare_delimiter_rows_from_a_spreadsheet_are_noted_not_counted() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("shows.csv");
    // Excel writes formatted-but-empty rows below the data as bare delimiters.
    let body = "show_key;slug;title;audience;station;language\r\nSH1;nova;NOVA;national;;en\r\n;;;;;\r\n;;;;;\r\n";
    std::fs::write(&path, body).unwrap_or_else(|e| panic!("{e}"));
    let p = path.display().to_string();
    let o = metasync(&["validate", &p]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("semicolon-delimited, 1 row (2 blank rows skipped)"),
        "{text}"
    );
    assert!(
        text.contains("warning file: 2 rows have no value in any cell"),
        "{text}"
    );
    let (rc, v) = validate_json(&[&path], &[]);
    assert_eq!(rc, 0);
    assert_eq!(v["files"][0]["rows"], 1, "{v}");
    assert_eq!(v["files"][0]["blank_rows"], 2, "{v}");
    assert_eq!(v["files"][0]["invalid"], 0, "{v}");
}

#[test]
fn text_output_lists_findings_with_position_and_hint() {
    let o = metasync(&[
        "validate",
        &fixture("windows1252.csv").display().to_string(),
    ]);
    assert_eq!(code(&o), 1);
    let text = stdout(&o);
    assert!(text.contains("error   row 3 (line 5), slug:"), "{text}");
    assert!(text.contains("value: \"Café-Owls\""), "{text}");
    assert!(text.contains("hint: For example: cafe-owls"), "{text}");
    assert!(text.contains("1 invalid"), "{text}");
}

#[test]
fn gen_is_deterministic_and_the_invalid_ratio_shows() {
    let a = metasync(&["gen", "--type", "episode", "--rows", "300", "--seed", "9"]);
    let b = metasync(&["gen", "--type", "episode", "--rows", "300", "--seed", "9"]);
    let c = metasync(&["gen", "--type", "episode", "--rows", "300", "--seed", "10"]);
    assert_eq!(code(&a), 0);
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout);
    assert_eq!(a.stdout.iter().filter(|&&b| b == b'\n').count(), 301);

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = gen_episodes(dir.path(), 2000, 1, 0.1);
    let (exit, j) = validate_json(&[&path], &[]);
    assert_eq!(exit, 1);
    let invalid = j["invalid"].as_u64().unwrap_or(0);
    assert!(
        (100..=300).contains(&invalid),
        "about 10% of 2000 rows, got {invalid}"
    );
}

#[test]
fn max_findings_truncates_the_list_not_the_counts() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = gen_episodes(dir.path(), 3000, 2, 0.2);
    let (_, j) = validate_json(&[&path], &["--max-findings", "5"]);
    let f = &j["files"][0];
    assert_eq!(f["findings"].as_array().map(Vec::len), Some(5));
    assert_eq!(f["findings_truncated"], true);
    assert!(f["invalid"].as_u64().unwrap_or(0) > 100);
}

#[test]
fn errors_out_writes_annotated_escaped_rows() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let input = dir.path().join("shows.csv");
    std::fs::write(
        &input,
        "show_key,slug,title\nSH1,ok,Fine\nSH2,Bad Slug,=HYPERLINK(\"http://x\")\nSH3,,@SUM(A1)\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("rejects.csv");
    let o = metasync(&[
        "validate",
        &input.display().to_string(),
        "--errors-out",
        &out.display().to_string(),
    ]);
    assert_eq!(code(&o), 1);
    let bytes = std::fs::read(&out).unwrap_or_else(|e| panic!("{e}"));
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM for Excel");
    let text = String::from_utf8_lossy(&bytes[3..]).into_owned();
    let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header: Vec<String> = r
        .headers()
        .map(|h| h.iter().map(String::from).collect())
        .unwrap_or_default();
    assert_eq!(header, ["show_key", "slug", "title", "errors"]);
    let rows: Vec<Vec<String>> = r
        .records()
        .flatten()
        .map(|r| r.iter().map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 2, "only the invalid rows");
    assert_eq!(rows[0][0], "SH2");
    assert_eq!(rows[0][2], "'=HYPERLINK(\"http://x\")");
    assert!(
        rows[0][3].contains("slug:") && rows[0][3].contains("[bad_format]"),
        "{}",
        rows[0][3]
    );
    assert_eq!(rows[1][2], "'@SUM(A1)");
    assert!(rows[1][3].contains("[required]"));
}

#[test]
fn errors_out_with_several_files_is_a_directory() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("rejects");
    let o = metasync(&[
        "validate",
        &fixture("utf8.csv").display().to_string(),
        &fixture("tab.tsv").display().to_string(),
        "--errors-out",
        &out.display().to_string(),
    ]);
    assert_eq!(code(&o), 1);
    let records = |name: &str| -> Vec<Vec<String>> {
        let text =
            std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut r = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        r.records()
            .flatten()
            .map(|r| r.iter().map(String::from).collect())
            .collect()
    };
    // The first file: its one bad slug.
    let first = records("utf8.errors.csv");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0][7], "Café-Owls");
    // The second file repeats the first one's keys: every row is a duplicate.
    let second = records("tab.errors.csv");
    assert_eq!(second.len(), 3);
    assert!(
        second
            .iter()
            .all(|r| r[8].contains("[duplicate_key]") && r[8].contains("utf8.csv, row")),
        "{second:?}"
    );
}

#[test]
fn a_mapping_file_maps_foreign_headers() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let input = dir.path().join("export.csv");
    std::fs::write(&input, "Program ID;Web Name;Program Title\nP1;nova;NOVA\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let (exit, _) = validate_json(&[&input], &[]);
    assert_eq!(exit, 2, "unrecognizable without a mapping");
    let mapping = dir.path().join("m.toml");
    std::fs::write(
        &mapping,
        "type = \"show\"\n[columns]\n\"Program ID\" = \"show_key\"\n\"Web Name\" = \"slug\"\n\"Program Title\" = \"title\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (exit, j) = validate_json(&[&input], &["--mapping", &mapping.display().to_string()]);
    assert_eq!(exit, 0, "{j}");
    assert_eq!(j["files"][0]["type"], "show");
    assert_eq!(j["valid"], 1);
}

#[test]
fn type_override_reads_a_file_whose_header_is_ambiguous() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let input = dir.path().join("s.csv");
    // Only season_key and show_key: detected as a season file…
    std::fs::write(&input, "season_key,show_key,ordinal\nS1,SH1,1\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, j) = validate_json(&[&input], &[]);
    assert_eq!(j["files"][0]["type"], "season");
    // …and read as shows when told, which then lack slug and title.
    let (exit, j) = validate_json(&[&input], &["--type", "show"]);
    assert_eq!(exit, 1);
    assert_eq!(j["files"][0]["type"], "show");
}
