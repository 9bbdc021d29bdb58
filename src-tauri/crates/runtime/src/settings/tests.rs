//! Profiles written from the form: comments and other profiles kept, the CLI's own
//! validation before anything is written, the profile switcher.

use super::*;
use metasync_engine::config::BackendProfile;

const FILE: &str = "\
# Our profiles (kept by hand too)

[profiles.staging]
backend = \"aws\"   # the team's account
region = \"us-east-1\"
bucket = \"metasync-staging\"   # the team's bucket
table = \"metasync-staging\"
queue_prefix = \"metasync-staging\"

[profiles.staging.target]
# Media Manager, with a station's key
dialect = \"media_manager\"
url = \"https://media.example.org/api/v1\"
quota = 100 # requests per second
burst = 10

[profiles.prod]
production = true # careful
[profiles.prod.target]
timeout_seconds = 10.0
dialect = \"rest\"
url = \"https://catalog.example.org\"
token_url = \"https://catalog.example.org/oauth2/token\"
";

fn dir_with(text: Option<&str>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("metasync.toml");
    if let Some(t) = text {
        std::fs::write(&path, t).expect("write");
    }
    (dir, path)
}

fn media_manager(url: &str) -> TargetForm {
    TargetForm {
        dialect: DialectChoice::MediaManager,
        access: String::new(),
        url: url.into(),
        token_url: String::new(),
        quota: String::new(),
        burst: String::new(),
        concurrency: String::new(),
        timeout_seconds: String::new(),
        max_retries: String::new(),
        base_delay_seconds: String::new(),
    }
}

#[test]
fn a_new_profile_makes_the_file_the_cli_reads() {
    let (_d, path) = dir_with(None);
    let form = ProfileForm {
        name: "desk".into(),
        backend: BackendChoice::Local,
        target: Some(TargetForm {
            quota: "50".into(),
            timeout_seconds: "2.5".into(),
            ..media_manager("https://mm.example.org/api/v1/")
        }),
        ..ProfileForm::default()
    };
    let view = save_profile(&path, &form, true).expect("saved");
    assert!(view.exists);
    assert_eq!(view.profiles.len(), 1);
    assert_eq!(view.profiles[0].problem, None);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.starts_with("# Metasync profiles."), "{text}");
    assert!(text.contains("[profiles.desk.target]"), "{text}");
    assert!(!text.contains("[profiles]\n"), "{text}");
    let p = config::load_profile(&path, "desk", env_var).expect("the CLI accepts it");
    let t = p.target.expect("target");
    assert_eq!(t.url, "https://mm.example.org/api/v1");
    assert_eq!(t.timeout, std::time::Duration::from_millis(2500));
    // Read back, it is the form that was saved.
    assert_eq!(profile_form(&path, "desk").expect("form"), form);
}

#[test]
fn an_edit_keeps_comments_layout_and_the_other_profiles() {
    let (_d, path) = dir_with(Some(FILE));
    let mut form = profile_form(&path, "staging").expect("form");
    assert_eq!(form.bucket, "metasync-staging");
    assert_eq!(form.target.as_ref().map(|t| t.quota.as_str()), Some("100"));
    if let Some(t) = form.target.as_mut() {
        t.quota = "80".into();
    }
    form.production = true;
    save_profile(&path, &form, false).expect("saved");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(
        text.starts_with("# Our profiles (kept by hand too)"),
        "{text}"
    );
    assert!(text.contains("quota = 80 # requests per second"), "{text}");
    assert!(
        text.contains("bucket = \"metasync-staging\"   # the team's bucket"),
        "{text}"
    );
    let prod = &FILE[FILE.find("[profiles.prod]").expect("prod")..];
    assert!(
        text.ends_with(prod),
        "the other profile is untouched:\n{text}"
    );
    assert!(config::load_profile(&path, "staging", env_var).is_ok_and(|p| p.production));
}

#[test]
fn what_the_cli_refuses_is_refused_with_its_words_and_nothing_is_written() {
    let (_d, path) = dir_with(Some(FILE));
    let mut form = profile_form(&path, "staging").expect("form");
    form.bucket = "Team_Bucket".into();
    let e = save_profile(&path, &form, false).expect_err("refused");
    assert_eq!(e.field.as_deref(), Some("bucket"));
    // The CLI's message for the same file.
    let edited = FILE.replace("\"metasync-staging\"   #", "\"Team_Bucket\"   #");
    let cli = config::parse_profile(&path, &edited, "staging", env_var).expect_err("cli");
    assert_eq!(e.message, cli.to_string());
    assert_eq!(std::fs::read_to_string(&path).expect("read"), FILE);

    let mut form = profile_form(&path, "staging").expect("form");
    if let Some(t) = form.target.as_mut() {
        t.quota = "fast".into();
    }
    let e = save_profile(&path, &form, false).expect_err("not a number");
    assert_eq!(e.field.as_deref(), Some("target.quota"));
    assert!(e
        .message
        .contains("profile staging: target.quota: must be a number"));
    let mut form = profile_form(&path, "staging").expect("form");
    if let Some(t) = form.target.as_mut() {
        t.quota = "-3".into();
    }
    let e = save_profile(&path, &form, false).expect_err("negative");
    assert_eq!(e.field.as_deref(), Some("target.quota"));
    assert!(e.message.contains("positive number"), "{}", e.message);
    assert_eq!(std::fs::read_to_string(&path).expect("read"), FILE);
}

#[test]
fn names_are_checked_and_never_doubled() {
    let (_d, path) = dir_with(Some(FILE));
    let form = ProfileForm {
        name: "prod".into(),
        ..ProfileForm::default()
    };
    let e = save_profile(&path, &form, true).expect_err("exists");
    assert_eq!(e.field.as_deref(), Some("name"));
    for bad in ["", "two words", "../x"] {
        let form = ProfileForm {
            name: bad.into(),
            ..ProfileForm::default()
        };
        let e = save_profile(&path, &form, true).expect_err(bad);
        assert_eq!(e.field.as_deref(), Some("name"), "{bad:?}");
    }
    let gone = ProfileForm {
        name: "removed".into(),
        ..ProfileForm::default()
    };
    assert!(save_profile(&path, &gone, false).is_err());
    assert_eq!(std::fs::read_to_string(&path).expect("read"), FILE);
}

#[test]
fn switching_a_profile_to_the_local_backend_drops_the_aws_keys() {
    let (_d, path) = dir_with(Some(FILE));
    let mut form = profile_form(&path, "staging").expect("form");
    form.backend = BackendChoice::Local;
    form.target = None;
    save_profile(&path, &form, false).expect("saved");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(!text.contains("metasync-staging"), "{text}");
    assert!(!text.contains("[profiles.staging.target]"), "{text}");
    let p = config::load_profile(&path, "staging", env_var).expect("valid");
    assert!(matches!(p.backend, BackendProfile::Local { .. }));
}

#[test]
fn a_broken_file_is_reported_and_never_overwritten() {
    let broken = "[profiles.a\nbucket = 1\n";
    let (_d, path) = dir_with(Some(broken));
    let view = settings(&path);
    assert!(view.problem.is_some());
    let form = ProfileForm {
        name: "b".into(),
        ..ProfileForm::default()
    };
    let e = save_profile(&path, &form, true).expect_err("broken file");
    assert!(e.message.contains("fix the file by hand"), "{}", e.message);
    assert_eq!(std::fs::read_to_string(&path).expect("read"), broken);
    // A profile the CLI refuses is listed with the CLI's reason.
    let (_d, path) = dir_with(Some("[profiles.x]\nmax_receive_count = 0\n"));
    let view = settings(&path);
    assert!(view.profiles[0]
        .problem
        .as_deref()
        .is_some_and(|p| p.contains("max_receive_count")));
}

#[test]
fn the_switcher_marks_production_and_falls_back_when_a_profile_goes() {
    let (_d, path) = dir_with(Some(FILE));
    let profiles = Profiles::new(path.clone());
    assert_eq!(profiles.active().name, None);
    let prod = profiles.select(Some("prod")).expect("prod");
    assert!(prod.production);
    assert_eq!(prod.label, "profile prod [PRODUCTION]");
    assert!(profiles.select(Some("nope")).is_err());
    assert_eq!(profiles.active().name.as_deref(), Some("prod"));
    std::fs::write(&path, "[profiles.staging]\n").expect("write");
    let now = profiles.active();
    assert_eq!(now.name, None);
    assert!(!now.production);
}

#[tokio::test]
async fn a_local_profile_tests_its_folder_and_says_it_has_no_target() {
    let (d, path) = dir_with(None);
    let data = d.path().join("data");
    let form = ProfileForm {
        name: "desk".into(),
        data_dir: data.display().to_string(),
        ..ProfileForm::default()
    };
    save_profile(&path, &form, true).expect("saved");
    let report = test_connection(&path, "desk").await.expect("report");
    assert!(report.target.is_none());
    assert_eq!(report.backend.len(), 2);
    assert!(report.backend.iter().all(|l| l.ok), "{:?}", report.backend);
    assert!(report.backend[0].detail.contains("made on first use"));
    assert!(!data.exists(), "a test changes nothing");
    let e = test_connection(&path, "other").await.expect_err("unknown");
    assert!(e.message.contains("it has: desk"), "{}", e.message);
}

#[test]
fn saving_an_unchanged_form_changes_not_a_byte() {
    let (_d, path) = dir_with(Some(FILE));
    for name in ["staging", "prod"] {
        let form = profile_form(&path, name).expect("form");
        save_profile(&path, &form, false).expect("saved");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            FILE,
            "{name}"
        );
    }
}

#[test]
fn inline_tables_are_edited_and_what_the_form_does_not_show_is_kept() {
    let text = "[profiles]\nlocal = { data_dir = \"/srv/metasync\" }\n\n[profiles.r]\ntarget = { dialect = \"rest\", url = \"https://x.example.org\", token_url = \"https://x.example.org/token\", templates = { lookup = \"/find?s={slug}\" } }\n";
    let (_d, path) = dir_with(Some(text));
    let mut form = profile_form(&path, "r").expect("form");
    if let Some(t) = form.target.as_mut() {
        t.quota = "20".into();
    }
    save_profile(&path, &form, false).expect("saved");
    let p = config::load_profile(&path, "r", env_var).expect("valid");
    let t = p.target.expect("target");
    assert_eq!(t.templates.lookup, "/find?s={slug}");
    assert_eq!(t.limiter.quota, Some(20.0));
    let mut form = profile_form(&path, "local").expect("form");
    assert_eq!(form.data_dir, "/srv/metasync");
    form.max_receive_count = "7".into();
    save_profile(&path, &form, false).expect("saved");
    let p = config::load_profile(&path, "local", env_var).expect("valid");
    assert!(matches!(
        p.backend,
        BackendProfile::Local {
            max_receive_count: 7,
            ..
        }
    ));
}

#[test]
fn numbers_are_refused_at_their_field_rather_than_guessed() {
    let (_d, path) = dir_with(Some(FILE));
    let cases = [
        ("target.timeout_seconds", "1,5"),
        ("target.burst", "-2"),
        ("target.concurrency", "2.5"),
        ("target.url", " "),
    ];
    for (field, typed) in cases {
        let mut form = profile_form(&path, "staging").expect("form");
        if let Some(t) = form.target.as_mut() {
            match field {
                "target.timeout_seconds" => t.timeout_seconds = typed.into(),
                "target.burst" => t.burst = typed.into(),
                "target.concurrency" => t.concurrency = typed.into(),
                _ => t.url = typed.into(),
            }
        }
        let e = save_profile(&path, &form, false).expect_err(typed);
        assert_eq!(e.field.as_deref(), Some(field), "{typed:?}: {}", e.message);
    }
    assert_eq!(std::fs::read_to_string(&path).expect("read"), FILE);
}
