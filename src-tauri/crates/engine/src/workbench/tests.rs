//! The workbench over real files: index, windows, edits, bulk fixes, save.

use super::*;
use std::io::Write as _;

struct Bench {
    dir: tempfile::TempDir,
    docs: Vec<Document>,
}

fn panic_on<E: std::fmt::Display>(e: E) -> ! {
    panic!("{e}")
}

impl Bench {
    fn open(files: &[(&str, &[u8])]) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic_on(e));
        let docs = files
            .iter()
            .map(|(name, body)| {
                let p = dir.path().join(name);
                let mut f = std::fs::File::create(&p).unwrap_or_else(|e| panic_on(e));
                f.write_all(body).unwrap_or_else(|e| panic_on(e));
                Document::new(Source::open(&p).unwrap_or_else(|e| panic_on(e)))
            })
            .collect();
        let mut b = Self { dir, docs };
        b.check();
        b
    }

    fn check(&mut self) {
        let input = CheckInput {
            files: self
                .docs
                .iter()
                .map(|d| (Arc::clone(d.source()), Arc::clone(d.edits())))
                .collect(),
        };
        let progress = Arc::new(Progress::new(self.docs.len()));
        let out =
            check(&input, &validate::Options::default(), &progress).unwrap_or_else(|e| panic_on(e));
        for ((d, c), (_, edits)) in self.docs.iter_mut().zip(out).zip(input.files) {
            d.set_checked(c, edits);
        }
    }

    fn doc(&mut self) -> &mut Document {
        &mut self.docs[0]
    }

    fn cells(&mut self, row: u32) -> Vec<String> {
        let w = self
            .doc()
            .window(View::All, u64::from(row), 1)
            .unwrap_or_else(|e| panic_on(e));
        w[0].cells.clone()
    }
}

const SHOWS: &str = "\u{feff}show_key,slug,title,audience,station,language\r\n\
SH1,nova,\"NOVA, the series\",national,,en\r\n\
SH2,Bad Slug,Frontline,national,,en\r\n\
,,,,,\r\n\
SH3,three,\"Say \"\"hi\"\"\",national,,en\r\n\
,,,,,\r\n";

#[test]
fn rows_are_indexed_and_broken_cells_flagged() {
    let mut b = Bench::open(&[("shows.csv", SHOWS.as_bytes())]);
    let c = b.doc().checked().clone();
    assert_eq!((c.rows, c.valid, c.invalid, c.blank_rows), (3, 2, 1, 2));
    assert_eq!(b.doc().source().rows_indexed(), 3);
    assert_eq!(b.cells(0)[2], "NOVA, the series");
    assert_eq!(
        b.cells(2),
        ["SH3", "three", "Say \"hi\"", "national", "", "en"]
    );
    let w = b
        .doc()
        .window(View::All, 1, 1)
        .unwrap_or_else(|e| panic_on(e));
    assert_eq!(w[0].status & status::INVALID, status::INVALID);
    assert_eq!(
        w[0].flags[1] & status::INVALID,
        status::INVALID,
        "{:?}",
        w[0].flags
    );
    assert_eq!(w[0].flags[0], 0);
    assert_eq!(b.doc().findings(1)[0].code, Code::BadFormat);
    // The invalid view holds only the broken row; next error wraps around.
    let inv = b
        .doc()
        .window(View::Invalid, 0, 10)
        .unwrap_or_else(|e| panic_on(e));
    assert_eq!(inv.iter().map(|r| r.row).collect::<Vec<_>>(), [1]);
    assert_eq!(b.doc().next_invalid(Some(1), true), Some(1));
    assert_eq!(b.doc().next_invalid(None, true), Some(1));
    assert_eq!(b.doc().view_len(View::Code(Code::BadFormat)), 1);
}

#[test]
fn a_first_pass_cut_short_is_redone_from_the_start() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic_on(e));
    let p = dir.path().join("shows.csv");
    std::fs::write(&p, SHOWS).unwrap_or_else(|e| panic_on(e));
    let src = Arc::new(Source::open(&p).unwrap_or_else(|e| panic_on(e)));
    // What a cancelled pass leaves: offsets published, the index not complete.
    src.index
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .offsets
        .extend([70, 110]);
    let input = CheckInput {
        files: vec![(Arc::clone(&src), Arc::new(Edits::new()))],
    };
    let progress = Arc::new(Progress::new(1));
    let out =
        check(&input, &validate::Options::default(), &progress).unwrap_or_else(|e| panic_on(e));
    assert_eq!(out[0].rows, 3);
    assert_eq!(src.rows_indexed(), 3, "no row indexed twice");
    let mut doc = Document::new_shared(src);
    doc.set_checked(
        out.into_iter().next().unwrap_or_default(),
        Arc::new(Edits::new()),
    );
    let w = doc.window(View::All, 0, 3).unwrap_or_else(|e| panic_on(e));
    assert_eq!(
        w.iter().map(|r| r.cells[0].as_str()).collect::<Vec<_>>(),
        ["SH1", "SH2", "SH3"]
    );
}

#[test]
fn an_edit_revalidates_and_saves_byte_for_byte() {
    let mut b = Bench::open(&[("shows.csv", SHOWS.as_bytes())]);
    assert_eq!(
        b.doc()
            .edit(vec![(1, 1, "frontline".into())])
            .unwrap_or_else(|e| panic_on(e)),
        1
    );
    assert_eq!(b.cells(1)[1], "frontline");
    b.check();
    assert_eq!(b.doc().checked().invalid, 0);
    let to = b.dir.path().join("fixed.csv");
    b.doc()
        .save(&to, SaveFormat::Original)
        .unwrap_or_else(|e| panic_on(e));
    let saved = std::fs::read(&to).unwrap_or_else(|e| panic_on(e));
    assert_eq!(saved, SHOWS.replace("Bad Slug", "frontline").into_bytes());
    // Undo brings the finding back.
    assert_eq!(b.doc().undo(), 1);
    b.check();
    assert_eq!(b.doc().checked().invalid, 1);
    // The original is never written.
    let orig = b.doc().source().path.clone();
    assert!(b.doc().save(&orig, SaveFormat::Original).is_err());
    assert_eq!(std::fs::read(&orig).unwrap_or_default(), SHOWS.as_bytes());
}

#[test]
fn an_edited_cell_is_quoted_only_when_it_must_be() {
    let mut b = Bench::open(&[("shows.csv", SHOWS.as_bytes())]);
    b.doc()
        .edit(vec![(0, 2, "NOVA; \"new\", again".into())])
        .unwrap_or_else(|e| panic_on(e));
    let to = b.dir.path().join("q.csv");
    b.doc()
        .save(&to, SaveFormat::Utf8)
        .unwrap_or_else(|e| panic_on(e));
    let saved = std::fs::read_to_string(&to).unwrap_or_default();
    assert!(
        saved.contains("SH1,nova,\"NOVA; \"\"new\"\", again\",national,,en\r\n"),
        "{saved}"
    );
    assert!(!saved.starts_with('\u{feff}'));
}

#[test]
fn export_errors_writes_the_broken_rows_with_edits_applied() {
    let mut b = Bench::open(&[("shows.csv", SHOWS.as_bytes())]);
    b.doc()
        .edit(vec![(0, 1, "Also Bad".into())])
        .unwrap_or_else(|e| panic_on(e));
    let to = b.dir.path().join("errors.csv");
    let input = CheckInput {
        files: vec![(Arc::clone(b.doc().source()), Arc::clone(b.doc().edits()))],
    };
    let n = export_errors(&input, 0, &validate::Options::default(), &to)
        .unwrap_or_else(|e| panic_on(e));
    assert_eq!(n, 2);
    let text = std::fs::read_to_string(&to).unwrap_or_default();
    assert!(text.contains("SH1,Also Bad,"), "{text}");
    assert!(text.contains("[bad_format]"), "{text}");
}

/// The quick re-check's verdict must be the full pass's.
fn quick_then_full(b: &mut Bench) -> (Checked, Checked) {
    let n = b
        .doc()
        .quick_check(&validate::Options::default())
        .unwrap_or_else(|e| panic_on(e));
    assert!(n > 0, "the quick check ran");
    let quick = b.doc().checked().clone();
    b.check();
    (quick, b.doc().checked().clone())
}

fn same_verdict(b: &mut Bench, quick: &Checked, full: &Checked) {
    assert_eq!(
        (
            quick.rows,
            quick.valid,
            quick.invalid,
            quick.warnings,
            &quick.counts
        ),
        (
            full.rows,
            full.valid,
            full.invalid,
            full.warnings,
            &full.counts
        )
    );
    for r in 0..u32::try_from(full.rows).unwrap_or(0) {
        let d = b.doc();
        let q: Vec<Code> = quick
            .findings
            .get(&r)
            .map_or(Vec::new(), |f| f.iter().map(|f| f.code).collect());
        let f: Vec<Code> = d.findings(r).iter().map(|f| f.code).collect();
        assert_eq!(q, f, "row {r}");
    }
}

#[test]
fn a_quick_check_sees_duplicates_made_and_unmade_as_the_full_pass_does() {
    let body = "\u{feff}show_key,slug,title,audience,station,language\r\nSH1,a,A,national,,en\r\nSH1,b,B,national,,en\r\n,,,,,\r\nSH3,Bad,C,national,,en\r\nSH4,d,D,national,,en\r\n";
    let mut b = Bench::open(&[("s.csv", body.as_bytes())]);
    assert_eq!(b.doc().checked().invalid, 2);
    // Unmake the duplicate and fix the slug: both rows come clean at once.
    b.doc()
        .edit(vec![(1, 0, "SH2".into()), (2, 1, "c".into())])
        .unwrap_or_else(|e| panic_on(e));
    let (quick, full) = quick_then_full(&mut b);
    assert_eq!(quick.invalid, 0);
    same_verdict(&mut b, &quick, &full);
    // Make a new duplicate: the later row is the one flagged, with the row it repeats.
    b.doc()
        .edit(vec![(3, 0, "SH2".into())])
        .unwrap_or_else(|e| panic_on(e));
    let (quick, full) = quick_then_full(&mut b);
    assert_eq!(quick.invalid, 1);
    let msg = &quick.findings[&3][0].message;
    assert!(msg.contains("first at row 2"), "{msg}");
    same_verdict(&mut b, &quick, &full);
}

#[test]
fn a_quick_check_follows_slugs_and_ordinals_written_differently() {
    // Two pasted rows share key and slug: only the key is reported (a repeated key is
    // one finding). Renaming the key brings the slug out, on the quick check too.
    let body = "show_key,slug,title,audience,station,language\nSH1,a,A,national,,en\nSH1,a,A,national,,en\n";
    let mut b = Bench::open(&[("s.csv", body.as_bytes())]);
    b.doc()
        .edit(vec![(1, 0, "SH2".into())])
        .unwrap_or_else(|e| panic_on(e));
    let (quick, full) = quick_then_full(&mut b);
    assert_eq!(
        quick.counts.get(&Code::DuplicateKey),
        Some(&1),
        "the slug now"
    );
    same_verdict(&mut b, &quick, &full);
    // "01" and "1" are one ordinal.
    let body = "episode_key,season_key,ordinal,slug,title,description_short,description_long,premiered_on,language\n\
E1,S1,1,e1,T1,s,l,2024-01-01,en\n\
E2,S1,2,e2,T2,s,l,2024-01-01,en\n";
    let mut b = Bench::open(&[("e.csv", body.as_bytes())]);
    b.doc()
        .edit(vec![(1, 2, "01".into())])
        .unwrap_or_else(|e| panic_on(e));
    let (quick, full) = quick_then_full(&mut b);
    assert!(quick.counts.contains_key(&Code::DuplicateOrdinal));
    same_verdict(&mut b, &quick, &full);
}

#[test]
fn edits_wait_for_the_first_pass() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic_on(e));
    let p = dir.path().join("shows.csv");
    std::fs::write(&p, SHOWS).unwrap_or_else(|e| panic_on(e));
    let mut doc = Document::new(Source::open(&p).unwrap_or_else(|e| panic_on(e)));
    assert!(matches!(
        doc.edit(vec![(0, 0, "X".into())]),
        Err(WorkbenchError::NotIndexed)
    ));
}

#[test]
fn export_errors_never_writes_over_an_open_file() {
    let b = Bench::open(&[("shows.csv", SHOWS.as_bytes())]);
    let src = Arc::clone(b.docs[0].source());
    let input = CheckInput {
        files: vec![(Arc::clone(&src), Arc::new(Edits::new()))],
    };
    let r = export_errors(&input, 0, &validate::Options::default(), &src.path);
    assert!(matches!(r, Err(WorkbenchError::CannotEncode(_))), "{r:?}");
    assert_eq!(
        std::fs::read(&src.path).unwrap_or_default(),
        SHOWS.as_bytes()
    );
}

#[test]
fn a_cancelled_first_pass_writes_nothing_once_another_took_over() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic_on(e));
    let p = dir.path().join("shows.csv");
    std::fs::write(&p, SHOWS).unwrap_or_else(|e| panic_on(e));
    let src = Arc::new(Source::open(&p).unwrap_or_else(|e| panic_on(e)));
    // A stale pass (owner 0 is nobody now) tries to finish the index.
    let pass = PASSES.fetch_add(1, Ordering::Relaxed);
    src.index
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .owner = pass + 1_000_000;
    finish_index(&src, pass);
    assert!(!src.indexed(), "only the owner completes the index");
}

#[test]
fn a_quick_check_follows_ordinals_under_a_parent() {
    let body = "episode_key,season_key,ordinal,slug,title,description_short,description_long,premiered_on,language\n\
E1,S1,1,e1,T1,s,l,2024-01-01,en\n\
E2,S1,2,e2,T2,s,l,2024-01-01,en\n\
E3,S2,1,e3,T3,s,l,2024-01-01,en\n";
    let mut b = Bench::open(&[("e.csv", body.as_bytes())]);
    let before = b.doc().checked().invalid;
    b.doc()
        .edit(vec![(1, 2, "1".into())])
        .unwrap_or_else(|e| panic_on(e));
    let (quick, full) = quick_then_full(&mut b);
    assert_eq!(quick.invalid, before + 1);
    assert!(quick.counts.contains_key(&Code::DuplicateOrdinal));
    same_verdict(&mut b, &quick, &full);
    // Undo: the duplicate goes.
    b.doc().undo();
    let (quick, full) = quick_then_full(&mut b);
    assert_eq!(quick.invalid, before);
    same_verdict(&mut b, &quick, &full);
}

#[test]
fn duplicate_keys_clear_when_one_is_renamed() {
    let body = "show_key,slug,title,audience,station,language\nSH1,a,A,national,,en\nSH1,b,B,national,,en\n";
    let mut b = Bench::open(&[("s.csv", body.as_bytes())]);
    assert_eq!(b.doc().checked().counts.get(&Code::DuplicateKey), Some(&1));
    b.doc()
        .edit(vec![(1, 0, "SH2".into())])
        .unwrap_or_else(|e| panic_on(e));
    b.check();
    assert_eq!(b.doc().checked().invalid, 0);
}

#[test]
fn a_row_emptied_by_edits_stops_being_data_and_later_rows_keep_their_findings() {
    let body = "show_key,slug,title,audience,station,language\nSH1,a,A,national,,en\nSH2,b,B,national,,en\nSH3,Bad,C,national,,en\n";
    let mut b = Bench::open(&[("s.csv", body.as_bytes())]);
    let blank: Vec<(u32, u16, String)> = (0..6).map(|c| (1, c, String::new())).collect();
    b.doc().edit(blank).unwrap_or_else(|e| panic_on(e));
    b.check();
    let d = b.doc();
    assert_eq!(d.row_status(1) & status::BLANK, status::BLANK);
    assert_eq!(
        d.findings(2)[0].code,
        Code::BadFormat,
        "the broken row is still row 3"
    );
    assert_eq!((d.checked().rows, d.checked().blank_rows), (2, 1));
}

#[test]
fn bulk_fixes_preview_then_apply_as_one_undo_step() {
    let body = "show_key,slug,title,audience,station,language\n\
SH1, nova ,NOVA,national,,en\n\
SH2,,Frontline Now,national,,en\n\
SH3, x ,C,national,,en\n";
    let mut b = Bench::open(&[("s.csv", body.as_bytes())]);
    let p = b
        .doc()
        .preview_fix(&Fix::Trim, &Scope::Column(1))
        .unwrap_or_else(|e| panic_on(e));
    assert_eq!(p.cells, 2);
    assert_eq!(p.samples[0], (0, 1, " nova ".into(), "nova".into()));
    assert_eq!(
        b.doc()
            .apply_fix(&Fix::Trim, &Scope::Column(1))
            .unwrap_or_else(|e| panic_on(e)),
        2
    );
    // Slugs from titles, only where a finding points (the missing slug of row 2).
    let scope = Scope::Code {
        code: Code::Required,
        column: Some(1),
    };
    let n = b
        .doc()
        .apply_fix(&Fix::SlugFromTitle, &scope)
        .unwrap_or_else(|e| panic_on(e));
    assert_eq!(n, 1);
    assert_eq!(b.cells(1)[1], "frontline-now");
    b.check();
    assert_eq!(b.doc().checked().invalid, 0);
    assert_eq!(b.doc().undo(), 1);
    assert_eq!(b.cells(1)[1], "");
    assert_eq!(b.cells(0)[1], "nova", "the trim is a step of its own");
    // Fill down takes the nearest value above.
    let n = b
        .doc()
        .apply_fix(&Fix::FillDown, &Scope::Column(1))
        .unwrap_or_else(|e| panic_on(e));
    assert_eq!((n, b.cells(1)[1].as_str()), (1, "nova"));
    let err = b.doc().preview_fix(&Fix::Trim, &Scope::Column(9));
    assert!(matches!(err, Err(WorkbenchError::NoSuchColumn { .. })));
}

#[test]
fn a_windows_1252_file_saves_back_in_its_encoding() {
    // "Prédateurs" in Windows-1252, semicolons as Excel writes in French locales.
    let mut body = b"show_key;slug;title;audience;station;language\r\nSH1;pred;Pr\xe9dateurs;national;;fr\r\nSH2;Bad;B;national;;en\r\n".to_vec();
    let mut b = Bench::open(&[("w.csv", &body)]);
    assert_eq!(b.doc().source().encoding, Encoding::Windows1252);
    assert_eq!(b.cells(0)[2], "Prédateurs");
    b.doc()
        .edit(vec![(1, 1, "b".into())])
        .unwrap_or_else(|e| panic_on(e));
    let to = b.dir.path().join("w2.csv");
    b.doc()
        .save(&to, SaveFormat::Original)
        .unwrap_or_else(|e| panic_on(e));
    let at = body.windows(3).position(|w| w == b"Bad").unwrap_or(0);
    body.splice(at..at + 3, *b"b");
    assert_eq!(std::fs::read(&to).unwrap_or_default(), body);
    // UTF-8 rewrites the delimiter too.
    b.doc()
        .save(&to, SaveFormat::Utf8)
        .unwrap_or_else(|e| panic_on(e));
    let utf8 = std::fs::read_to_string(&to).unwrap_or_default();
    assert!(
        utf8.contains("SH1,pred,Prédateurs,national,,fr\r\n"),
        "{utf8}"
    );
    // A character Windows-1252 has no place for is refused, with a way out.
    b.doc()
        .edit(vec![(0, 2, "Pr\u{0119}dateurs".into())])
        .unwrap_or_else(|e| panic_on(e));
    match b.doc().save(&to, SaveFormat::Original) {
        Err(WorkbenchError::CannotEncode(m)) => assert!(m.contains("save as UTF-8"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_utf16_file_saves_back_in_utf16() {
    let text =
        "show_key\tslug\ttitle\taudience\tstation\tlanguage\r\nSH1\tBad\tT\tnational\t\ten\r\n";
    let mut body = vec![0xFF, 0xFE];
    body.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let mut b = Bench::open(&[("u.csv", &body)]);
    assert_eq!(b.doc().checked().invalid, 1);
    b.doc()
        .edit(vec![(0, 1, "bad".into())])
        .unwrap_or_else(|e| panic_on(e));
    let to = b.dir.path().join("u2.csv");
    b.doc()
        .save(&to, SaveFormat::Original)
        .unwrap_or_else(|e| panic_on(e));
    let mut want = vec![0xFF, 0xFE];
    want.extend(
        text.replace("Bad", "bad")
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    assert_eq!(std::fs::read(&to).unwrap_or_default(), want);
}

#[test]
fn edits_outside_the_file_are_refused() {
    let mut b = Bench::open(&[("shows.csv", SHOWS.as_bytes())]);
    assert!(matches!(
        b.doc().edit(vec![(3, 0, "x".into())]),
        Err(WorkbenchError::NoSuchRow { row: 4, rows: 3 })
    ));
    assert!(matches!(
        b.doc().edit(vec![(0, 6, "x".into())]),
        Err(WorkbenchError::NoSuchColumn { .. })
    ));
    assert_eq!(
        b.doc().edit(vec![(0, 0, "SH1".into())]).unwrap_or(9),
        0,
        "an unchanged value is no edit"
    );
}
