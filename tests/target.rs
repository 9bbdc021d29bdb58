//! The target clients against the sandbox server over real HTTP (loopback, free port).

use metasync_catalog_client::{
    MediaManager, MediaManagerConfig, Rest, RestConfig, Secret, Templates,
};
use metasync_engine::gen::Rng;
use metasync_engine::ratelimit::{LimiterConfig, RateLimiter};
use metasync_engine::retry::RetryPolicy;
use metasync_engine::target::{
    call_with_retries, Attributes, CallError, Identity, Target, TargetId,
};
use metasync_engine::EntityType;
use metasync_sandbox::{Access, Config, Credentials, Sandbox};
use serde_json::{json, Value};
use std::time::Duration;

fn attrs(v: Value) -> Attributes {
    match v {
        Value::Object(m) => m,
        _ => Attributes::new(),
    }
}

fn mm(sandbox: &Sandbox, secret: &str, timeout: Duration) -> MediaManager {
    let cfg = MediaManagerConfig {
        base_url: format!("{}/api/v1", sandbox.url()),
        key: Credentials::default().key,
        secret: Secret::new(secret),
        timeout,
    };
    MediaManager::new(cfg, None).unwrap_or_else(|e| panic!("{e}"))
}

fn rest(sandbox: &Sandbox, client_secret: &str) -> Rest {
    let cfg = RestConfig {
        base_url: format!("{}/rest", sandbox.url()),
        token_url: format!("{}/oauth2/token", sandbox.url()),
        client_id: Credentials::default().client_id,
        client_secret: Secret::new(client_secret),
        templates: Templates::default(),
        timeout: Duration::from_secs(5),
    };
    Rest::new(cfg, None).unwrap_or_else(|e| panic!("{e}"))
}

/// The sandbox with a PBS key: these tests create shows (a station's key has its own
/// test).
fn pbs() -> Config {
    Config {
        access: Access::Full,
        ..Config::default()
    }
}

async fn start(cfg: Config) -> Sandbox {
    Sandbox::start(cfg, 0)
        .await
        .unwrap_or_else(|e| panic!("sandbox: {e}"))
}

fn ok<T>(r: Result<T, CallError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Build a show → season → episode → asset chain through `t` and update the episode.
async fn chain(t: &impl Target) -> TargetId {
    let show = ok(t
        .create(
            EntityType::Show,
            None,
            &attrs(json!({"slug": "nova", "title": "NOVA"})),
        )
        .await);
    assert_eq!(
        ok(
            t.find(EntityType::Show, None, &Identity::Slug("nova".to_string()))
                .await
        ),
        Some(show.clone())
    );
    assert_eq!(
        ok(t.find(
            EntityType::Show,
            None,
            &Identity::Slug("absent".to_string())
        )
        .await),
        None
    );
    let season = ok(t
        .create(
            EntityType::Season,
            Some((EntityType::Show, &show)),
            &attrs(json!({"title": "Season 1", "ordinal": 1})),
        )
        .await);
    let episode_attrs = json!({"ordinal": 1, "slug": "nova-s1e1", "title": "Owls", "description_short": "Owls.", "description_long": "Owls at night.", "premiered_on": "2024-01-05"});
    let episode = ok(t
        .create(
            EntityType::Episode,
            Some((EntityType::Season, &season)),
            &attrs(episode_attrs),
        )
        .await);
    ok(t.create(
        EntityType::Asset,
        Some((EntityType::Episode, &episode)),
        &attrs(json!({"title": "Owls", "object_type": "full_length"})),
    )
    .await);
    ok(t.update(
        EntityType::Episode,
        &episode,
        &attrs(json!({"title": "Owls at Night"})),
    )
    .await);
    episode
}

fn catalog_title(sandbox: &Sandbox, id: &TargetId) -> Option<String> {
    sandbox.catalog()["objects"]
        .as_array()?
        .iter()
        .find(|o| o["id"] == id.0.as_str())
        .and_then(|o| o["attributes"]["title"].as_str().map(String::from))
}

#[tokio::test(flavor = "multi_thread")]
async fn media_manager_creates_looks_up_and_updates() {
    let sandbox = start(pbs()).await;
    let t = mm(
        &sandbox,
        &Credentials::default().secret,
        Duration::from_secs(5),
    );
    let episode = chain(&t).await;
    assert_eq!(
        catalog_title(&sandbox, &episode).as_deref(),
        Some("Owls at Night")
    );
    let stats = sandbox.stats();
    assert_eq!(stats.objects.values().sum::<u64>(), 4);
    assert_eq!((stats.duplicates, stats.unauthorized), (0, 0));
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_with_oauth2_does_the_same_with_one_token() {
    let sandbox = start(pbs()).await;
    let t = rest(&sandbox, &Credentials::default().client_secret);
    let episode = chain(&t).await;
    assert_eq!(
        catalog_title(&sandbox, &episode).as_deref(),
        Some("Owls at Night")
    );
    assert_eq!(t.token_fetches(), 1, "the token is cached");
    assert_eq!(sandbox.stats().tokens_issued, 1);
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_refreshed_once() {
    let sandbox = start(pbs()).await;
    let t = rest(&sandbox, &Credentials::default().client_secret);
    ok(t.create(
        EntityType::Show,
        None,
        &attrs(json!({"slug": "a", "title": "A"})),
    )
    .await);
    sandbox.revoke_tokens();
    ok(t.create(
        EntityType::Show,
        None,
        &attrs(json!({"slug": "b", "title": "B"})),
    )
    .await);
    ok(
        t.find(EntityType::Show, None, &Identity::Slug("b".to_string()))
            .await,
    );
    assert_eq!(t.token_fetches(), 2);
    assert_eq!(
        sandbox.stats().unauthorized,
        1,
        "one 401, then the fresh token worked"
    );
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_give_one_clear_error_and_no_storm() {
    let sandbox = start(pbs()).await;
    let t = mm(&sandbox, "wrong-secret", Duration::from_secs(5));
    for _ in 0..20 {
        match t
            .find(EntityType::Show, None, &Identity::Slug("nova".to_string()))
            .await
        {
            Err(e @ CallError::Auth { .. }) => {
                assert!(!e.to_string().contains("wrong-secret"), "{e}")
            }
            other => panic!("expected an auth error, got {other:?}"),
        }
    }
    assert_eq!(sandbox.stats().requests, 1, "one request, then none");

    let r = rest(&sandbox, "wrong-client-secret");
    for _ in 0..20 {
        assert!(matches!(
            r.find(EntityType::Show, None, &Identity::Slug("nova".to_string()))
                .await,
            Err(CallError::Auth { .. })
        ));
    }
    assert_eq!(r.token_fetches(), 1);
    assert_eq!(sandbox.stats().requests, 2);
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_target_rules_are_permanent_errors_with_the_servers_message() {
    let sandbox = start(pbs()).await;
    let t = mm(
        &sandbox,
        &Credentials::default().secret,
        Duration::from_secs(5),
    );
    let long = "x".repeat(300);
    match t
        .create(
            EntityType::Show,
            None,
            &attrs(json!({"slug": "s", "title": long})),
        )
        .await
    {
        Err(CallError::Permanent {
            status: 400,
            message,
        }) => {
            assert!(
                message.contains("limit is 256") && message.starts_with("title: "),
                "{message}"
            )
        }
        other => panic!("expected a 400, got {other:?}"),
    }
    let missing = TargetId("season-404".into());
    let r = t
        .create(
            EntityType::Episode,
            Some((EntityType::Season, &missing)),
            &attrs(json!({"title": "T"})),
        )
        .await;
    assert_eq!(r, Err(CallError::NotFound));
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_quota_answers_429_with_retry_after() {
    let sandbox = start(Config {
        quota: Some(2.0),
        burst: 1,
        ..pbs()
    })
    .await;
    let t = mm(
        &sandbox,
        &Credentials::default().secret,
        Duration::from_secs(5),
    );
    ok(
        t.find(EntityType::Show, None, &Identity::Slug("a".to_string()))
            .await,
    );
    match t
        .find(EntityType::Show, None, &Identity::Slug("a".to_string()))
        .await
    {
        Err(CallError::Transient {
            throttled: true,
            retry_after: Some(ra),
            ..
        }) => assert_eq!(ra, Duration::from_secs(1)),
        other => panic!("expected a 429, got {other:?}"),
    }
    assert_eq!(sandbox.stats().throttled, 1);
    sandbox.stop().await;
}

/// Faults of every kind: each create ends created exactly once. A retried create looks
/// its slug up first, because a hung request may have been done by the server.
#[tokio::test(flavor = "multi_thread")]
async fn faults_are_retried_and_nothing_is_created_twice() {
    let cfg = Config {
        fail_rate: 0.15,
        reset_rate: 0.05,
        timeout_rate: 0.05,
        hang: Duration::from_millis(600),
        seed: 7,
        ..pbs()
    };
    let sandbox = start(cfg).await;
    let t = mm(
        &sandbox,
        &Credentials::default().secret,
        Duration::from_millis(250),
    );
    let policy = RetryPolicy {
        max_retries: 8,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    };
    let limiter = RateLimiter::new(LimiterConfig::with_quota(500.0, 10));
    let mut rng = Rng::new(1);
    let mut jitter = move || rng.unit();
    let mut attempts = 0;
    for i in 0..60 {
        let slug = format!("show-{i}");
        let a = attrs(json!({"slug": slug, "title": format!("Show {i}")}));
        let mut first = true;
        let called = call_with_retries(&policy, &limiter, &mut jitter, || {
            let retry = !std::mem::replace(&mut first, false);
            let (t, a, slug) = (&t, &a, slug.clone());
            async move {
                if retry {
                    if let Some(id) = t
                        .find(EntityType::Show, None, &Identity::Slug(slug.to_string()))
                        .await?
                    {
                        return Ok(id);
                    }
                }
                t.create(EntityType::Show, None, a).await
            }
        })
        .await;
        assert!(called.result.is_ok(), "{slug}: {:?}", called.result);
        attempts += called.attempts;
    }
    let stats = sandbox.stats();
    assert!(stats.faults > 5, "faults were injected: {}", stats.faults);
    assert_eq!(stats.objects.get("show"), Some(&60));
    assert_eq!(stats.duplicates, 0);
    assert!(attempts > 60);
    sandbox.stop().await;
}

// ---------------------------------------------------------------------------------
// Media Manager as its public record has it (README, "Media Manager as documented"):
// the sandbox answers as the real API does, and the client follows.

mod media_manager_record {
    use super::*;
    use metasync_catalog_client::media_manager::{ChangeQuery, VIDEO_PROFILE};

    async fn setup() -> (Sandbox, MediaManager) {
        let sandbox = start(pbs()).await;
        let t = mm(
            &sandbox,
            &Credentials::default().secret,
            Duration::from_secs(5),
        );
        (sandbox, t)
    }

    fn raw(sandbox: &Sandbox) -> (reqwest::Client, String) {
        (reqwest::Client::new(), format!("{}/api/v1", sandbox.url()))
    }

    fn basic(r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let c = Credentials::default();
        r.basic_auth(c.key, Some(c.secret))
    }

    async fn show(t: &MediaManager, slug: &str) -> TargetId {
        ok(t.create(
            EntityType::Show,
            None,
            &attrs(json!({"slug": slug, "title": slug})),
        )
        .await)
    }

    fn episode(ordinal: u32) -> Attributes {
        attrs(
            json!({"ordinal": ordinal, "title": format!("Episode {ordinal}"),
            "description_short": "Short.", "description_long": "Long."}),
        )
    }

    fn clip(title: &str) -> Attributes {
        attrs(json!({"object_type": "clip", "title": title,
            "description_short": "Short.", "description_long": "Long."}))
    }

    /// A create answers 204 with no body and the new object's edit URL in `location`;
    /// the client takes the id before `/edit/`, and children go under it.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_create_names_the_new_object_in_a_location_ending_in_edit() {
        let (sandbox, t) = setup().await;
        let (http, base) = raw(&sandbox);
        let answer = basic(http.post(format!("{base}/shows/")))
            .json(&json!({"data": {"type": "show", "attributes": {"slug": "raw", "title": "Raw"}}}))
            .send()
            .await
            .expect("post");
        assert_eq!(answer.status().as_u16(), 204);
        let location = answer.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(location.ends_with("/edit/"), "{location}");
        assert!(answer.text().await.expect("body").is_empty());

        let nova = show(&t, "nova").await;
        assert_ne!(nova.0, "edit");
        let season = ok(t
            .create(
                EntityType::Season,
                Some((EntityType::Show, &nova)),
                &attrs(json!({"ordinal": 1})),
            )
            .await);
        assert!(season.0.starts_with("season-"), "{}", season.0);
        let objects = sandbox.catalog()["objects"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(objects
            .iter()
            .any(|o| o["id"] == season.0.as_str() && o["parent"] == nova.0.as_str()));
        sandbox.stop().await;
    }

    /// After a create whose answer was lost, each type is found again among its
    /// parent's children: on the second page of 50, by what identifies it there, never
    /// by the first result.
    #[tokio::test(flavor = "multi_thread")]
    async fn each_type_is_found_again_across_two_pages_of_children() {
        let (sandbox, t) = setup().await;
        let nova = show(&t, "nova").await;
        let mut seasons = Vec::new();
        for n in 1..=60 {
            seasons.push(ok(t
                .create(
                    EntityType::Season,
                    Some((EntityType::Show, &nova)),
                    &attrs(json!({"ordinal": n})),
                )
                .await));
        }
        let s = Some((EntityType::Show, &nova));
        assert_eq!(
            ok(t.find(EntityType::Season, s, &Identity::Ordinal(57)).await),
            Some(seasons[56].clone())
        );
        assert_eq!(
            ok(t.find(EntityType::Season, s, &Identity::Ordinal(61)).await),
            None
        );

        let season = Some((EntityType::Season, &seasons[0]));
        let mut episodes = Vec::new();
        for n in 1..=55 {
            episodes.push(ok(t.create(EntityType::Episode, season, &episode(n)).await));
        }
        let mut segmented = episode(52);
        segmented.insert("segment".into(), json!("b"));
        let segment_b = ok(t.create(EntityType::Episode, season, &segmented).await);
        let find_ep = |ordinal: u32, segment: &str| Identity::Episode {
            ordinal,
            segment: segment.into(),
        };
        assert_eq!(
            ok(t.find(EntityType::Episode, season, &find_ep(52, "")).await),
            Some(episodes[51].clone())
        );
        assert_eq!(
            ok(t.find(EntityType::Episode, season, &find_ep(52, "b")).await),
            Some(segment_b)
        );

        let ep = Some((EntityType::Episode, &episodes[0]));
        let full = ok(t
            .create(
                EntityType::Asset,
                ep,
                &attrs(json!({"object_type": "full_length"})),
            )
            .await);
        let mut clips = Vec::new();
        for n in 1..=54 {
            clips.push(ok(t
                .create(EntityType::Asset, ep, &clip(&format!("Clip {n}")))
                .await));
        }
        let by_title = |title: &str| Identity::Asset {
            object_type: "clip".into(),
            title: title.into(),
        };
        assert_eq!(
            ok(t.find(EntityType::Asset, ep, &by_title("Clip 53")).await),
            Some(clips[52].clone())
        );
        assert_eq!(
            ok(t.find(EntityType::Asset, ep, &by_title("Clip 99")).await),
            None
        );
        assert_eq!(
            ok(t.find(EntityType::Asset, ep, &Identity::FullLength).await),
            Some(full)
        );
        // A full-length asset shows its episode's title.
        let objects = sandbox.catalog()["objects"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let shown = objects
            .iter()
            .find(|o| o["attributes"]["object_type"] == "full_length");
        assert_eq!(
            shown.map(|o| o["attributes"]["title"].clone()),
            Some(json!("Episode 1"))
        );
        sandbox.stop().await;
    }

    /// Availability windows go as `availabilities: {window: {start, end}}` in UTC with
    /// a `Z`, tags as a list; the flat columns the CSV keeps are refused by name.
    #[tokio::test(flavor = "multi_thread")]
    async fn windows_and_tags_go_in_media_managers_shapes() {
        let (sandbox, t) = setup().await;
        let nova = show(&t, "nova").await;
        let mut a = clip("Owls");
        a.insert("public_start".into(), json!("2026-01-01T05:00:00Z"));
        a.insert("public_end".into(), json!("2026-02-01T05:00:00Z"));
        a.insert("tags".into(), json!("owls, night"));
        let asset = ok(t
            .create(EntityType::Asset, Some((EntityType::Show, &nova)), &a)
            .await);
        let objects = sandbox.catalog()["objects"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let stored = objects
            .iter()
            .find(|o| o["id"] == asset.0.as_str())
            .map(|o| o["attributes"].clone());
        let stored = stored.expect("stored");
        assert_eq!(
            stored["availabilities"],
            json!({"public": {"start": "2026-01-01T05:00:00Z", "end": "2026-02-01T05:00:00Z"}})
        );
        assert_eq!(stored["tags"], json!(["owls", "night"]));
        assert!(stored.get("public_start").is_none());

        let (http, base) = raw(&sandbox);
        let flat = basic(http.post(format!("{base}/shows/{}/assets/", nova.0)))
            .json(&json!({"data": {"type": "asset", "attributes": {"object_type": "clip", "title": "T",
                "description_short": "s", "description_long": "l", "public_start": "2026-01-01T05:00:00Z"}}}))
            .send()
            .await
            .expect("post");
        assert_eq!(flat.status().as_u16(), 400);
        let body: Value = flat.json().await.expect("json");
        assert!(body["errors"]["public_start"].is_array(), "{body}");
        let offset = basic(http.patch(format!("{base}/assets/{}/edit/", asset.0)))
            .json(&json!({"data": {"type": "asset", "id": asset.0, "attributes":
                {"availabilities": {"public": {"start": "2026-01-01T00:00:00-05:00", "end": null}}}}}))
            .send()
            .await
            .expect("patch");
        assert_eq!(offset.status().as_u16(), 400, "not UTC with a Z");
        sandbox.stop().await;
    }

    /// Every refusal reaches staff as a sentence naming the field; a 500 that names a
    /// field (a duplicate ordinal and segment) is permanent, so it is sent once.
    #[tokio::test(flavor = "multi_thread")]
    async fn refusals_are_sentences_and_a_500_naming_a_field_is_not_retried() {
        let (sandbox, t) = setup().await;
        let nova = show(&t, "nova").await;
        let season = ok(t
            .create(
                EntityType::Season,
                Some((EntityType::Show, &nova)),
                &attrs(json!({"ordinal": 1})),
            )
            .await);
        let s = Some((EntityType::Season, &season));
        ok(t.create(EntityType::Episode, s, &episode(1)).await);
        let before = sandbox.stats().requests;
        let limiter = RateLimiter::new(LimiterConfig::with_quota(500.0, 10));
        let mut rng = Rng::new(1);
        let policy = RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        };
        let again = episode(1);
        let called = call_with_retries(&policy, &limiter, &mut move || rng.unit(), || {
            t.create(EntityType::Episode, s, &again)
        })
        .await;
        assert_eq!(called.attempts, 1, "permanent: not sent again");
        assert_eq!(sandbox.stats().requests - before, 1);
        match called.result {
            Err(CallError::Permanent {
                status: 500,
                message,
            }) => assert_eq!(
                message,
                "segment: Episode with this ordinal and segment already exists."
            ),
            other => panic!("expected the 500, got {other:?}"),
        }
        // `{"errors": {"field": […]}}` and `{"detail": …}`.
        match t
            .create(
                EntityType::Asset,
                Some((EntityType::Show, &nova)),
                &attrs(json!({"object_type": "clip", "title": "No descriptions"})),
            )
            .await
        {
            Err(CallError::Permanent {
                status: 400,
                message,
            }) => {
                assert_eq!(message, "description_short: This field is required.")
            }
            other => panic!("expected a 400, got {other:?}"),
        }
        match t
            .update(
                EntityType::Show,
                &nova,
                &attrs(json!({"genre": "Science & Nature"})),
            )
            .await
        {
            Err(CallError::Permanent {
                status: 400,
                message,
            }) => {
                assert!(
                    message.starts_with("genre: Must be one of: arts-and-music"),
                    "{message}"
                )
            }
            other => panic!("expected a 400, got {other:?}"),
        }
        assert_eq!(
            t.update(
                EntityType::Episode,
                &TargetId("episode-404".into()),
                &attrs(json!({"title": "x"}))
            )
            .await,
            Err(CallError::NotFound)
        );
        sandbox.stop().await;
    }

    /// A video source goes through the asset's edit endpoint as `video: {profile,
    /// source}`, and its ingest status is read back there.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_video_source_is_sent_through_the_edit_endpoint_and_its_ingest_read_back() {
        let (sandbox, t) = setup().await;
        let nova = show(&t, "nova").await;
        let season = ok(t
            .create(
                EntityType::Season,
                Some((EntityType::Show, &nova)),
                &attrs(json!({"ordinal": 1})),
            )
            .await);
        let ep = ok(t
            .create(
                EntityType::Episode,
                Some((EntityType::Season, &season)),
                &episode(1),
            )
            .await);
        let asset = ok(t
            .create(
                EntityType::Asset,
                Some((EntityType::Episode, &ep)),
                &attrs(json!({
                "object_type": "full_length", "title": "dropped",
                "video_source": "https://media.example.org/mezzanine/owls.mov",
                "caption_source": "https://media.example.org/captions/owls.dfxp"})),
            )
            .await);
        let writes = sandbox.writes();
        let edit = writes
            .iter()
            .find(|w| w.method == "PATCH" && w.path == format!("/api/v1/assets/{}/edit/", asset.0))
            .expect("a PATCH of the edit endpoint");
        assert_eq!(edit.fields, ["caption", "replace", "video"]);
        let created = writes
            .iter()
            .find(|w| w.method == "POST" && w.path.ends_with("/assets/"))
            .expect("POST");
        assert_eq!(
            created.fields,
            ["object_type"],
            "no title, no file: those go elsewhere"
        );

        let first = ok(t.ingest(&asset).await);
        assert_eq!(first.video.as_deref(), Some("in_progress"));
        assert_eq!(first.caption.as_deref(), Some("in_progress"));
        assert!(!first.published);
        let then = ok(t.ingest(&asset).await);
        assert_eq!(then.video.as_deref(), Some("done"));
        assert!(then.published);
        // A changed source rides on the asset's own PATCH.
        ok(t.update(
            EntityType::Asset,
            &asset,
            &attrs(json!({"video_source": "https://media.example.org/mezzanine/owls-v2.mov"})),
        )
        .await);
        let last = sandbox.writes().pop().expect("a write");
        assert_eq!(last.fields, ["replace", "video"]);
        assert!(VIDEO_PROFILE.contains("mezzanine"));
        sandbox.stop().await;
    }

    /// The changelog lists creates and updates since a moment, by type and action, 25
    /// a page unless asked for up to 50, and the client follows every page.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_changelog_is_read_by_type_action_and_time() {
        let (sandbox, t) = setup().await;
        let nova = show(&t, "nova").await;
        let season = ok(t
            .create(
                EntityType::Season,
                Some((EntityType::Show, &nova)),
                &attrs(json!({"ordinal": 1})),
            )
            .await);
        let s = Some((EntityType::Season, &season));
        let mut made = Vec::new();
        for n in 1..=60 {
            made.push(ok(t.create(EntityType::Episode, s, &episode(n)).await).0);
        }
        ok(t.update(
            EntityType::Episode,
            &TargetId(made[0].clone()),
            &attrs(json!({"title": "Renamed"})),
        )
        .await);

        let creates = ok(t
            .changelog(
                &ChangeQuery {
                    types: vec!["episode".into()],
                    actions: vec!["create".into()],
                    ..Default::default()
                },
                1000,
            )
            .await);
        assert_eq!(
            creates
                .iter()
                .map(|c| c.id.clone().unwrap_or_default())
                .collect::<Vec<_>>(),
            made
        );
        let updates = ok(t
            .changelog(
                &ChangeQuery {
                    actions: vec!["update".into()],
                    ..Default::default()
                },
                1000,
            )
            .await);
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].updated_fields, ["title"]);
        let since = updates[0].timestamp.clone();
        assert!(since.ends_with('Z') && since.contains('.'), "{since}");
        let later = ok(t
            .changelog(
                &ChangeQuery {
                    since: Some(since),
                    ..Default::default()
                },
                1000,
            )
            .await);
        assert_eq!(
            later.len(),
            1,
            "only the update is at or after its own time"
        );

        let (http, base) = raw(&sandbox);
        let page: Value = basic(http.get(format!("{base}/changelog/?type=episode")))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(
            page["data"].as_array().map(Vec::len),
            Some(25),
            "25 a page by default"
        );
        assert!(page["links"]["next"]
            .as_str()
            .is_some_and(|n| n.contains("page=2")));
        sandbox.stop().await;
    }
}

/// A station's key (the sandbox's default): a show is never created or changed, nor a
/// season changed; Media Manager answers 403 with its `detail`. Seasons, episodes and
/// assets under a show PBS made are created.
#[tokio::test(flavor = "multi_thread")]
async fn a_stations_key_cannot_write_shows_or_change_seasons() {
    let sandbox = start(Config::default()).await;
    let t = mm(
        &sandbox,
        &Credentials::default().secret,
        Duration::from_secs(5),
    );
    let refused = |r: Result<TargetId, CallError>| match r {
        Err(CallError::Permanent {
            status: 403,
            message,
        }) => {
            assert_eq!(
                message,
                "You do not have permission to perform this action."
            )
        }
        other => panic!("expected a 403, got {other:?}"),
    };
    refused(
        t.create(
            EntityType::Show,
            None,
            &attrs(json!({"slug": "nova", "title": "NOVA"})),
        )
        .await,
    );
    let mut a = serde_json::Map::new();
    a.insert("slug".into(), json!("nova"));
    a.insert("title".into(), json!("NOVA"));
    let nova = TargetId(
        sandbox
            .seed(EntityType::Show, None, a)
            .expect("seeded as PBS"),
    );
    assert_eq!(
        ok(
            t.find(EntityType::Show, None, &Identity::Slug("nova".into()))
                .await
        ),
        Some(nova.clone())
    );
    let season = ok(t
        .create(
            EntityType::Season,
            Some((EntityType::Show, &nova)),
            &attrs(json!({"ordinal": 1})),
        )
        .await);
    refused(
        t.update(EntityType::Show, &nova, &attrs(json!({"title": "Changed"})))
            .await
            .map(|()| nova.clone()),
    );
    refused(
        t.update(
            EntityType::Season,
            &season,
            &attrs(json!({"title": "Changed"})),
        )
        .await
        .map(|()| season.clone()),
    );
    ok(t.create(
        EntityType::Episode,
        Some((EntityType::Season, &season)),
        &attrs(json!({"ordinal": 1, "title": "Owls", "description_short": "s", "description_long": "l"})),
    )
    .await);
    sandbox.stop().await;
}
