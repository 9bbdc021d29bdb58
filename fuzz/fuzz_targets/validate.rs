//! Ingest + validation of arbitrary bytes: never a panic, and the counts add up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metasync_engine::ingest::CsvSource;
use metasync_engine::validate::{validate_sources, FileOutcome, Options};
use metasync_engine::EntityType;
use std::io::Cursor;
use std::path::{Path, PathBuf};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the type (or detection); the rest is one or two files.
    let Some((&pick, rest)) = data.split_first() else { return };
    let entity_type = EntityType::ALL.get(usize::from(pick % 5)).copied();
    let opts = Options { max_findings: 50, entity_type, mapping: None };
    let (a, b) = match rest.iter().position(|&x| x == 0xFF) {
        Some(i) if pick & 0x80 != 0 => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    let mut sources = Vec::new();
    for (i, bytes) in std::iter::once(a).chain(b).enumerate() {
        let path = PathBuf::from(format!("input{i}.csv"));
        let src = CsvSource::from_reader(Path::new(&path), Box::new(Cursor::new(bytes.to_vec())));
        sources.push((path, src));
    }
    let Ok(report) = validate_sources(sources, &opts, |_| Ok(None)) else { return };
    for (_, outcome) in &report.files {
        if let FileOutcome::Checked(r) = outcome {
            assert_eq!(r.valid + r.invalid, r.rows, "every row is valid or invalid");
            assert!(r.findings.len() <= 50, "findings are capped");
        }
    }
});
