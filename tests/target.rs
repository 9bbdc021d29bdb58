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
use metasync_sandbox::{Config, Credentials, Sandbox};
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
    let episode_attrs = json!({"slug": "nova-s1e1", "title": "Owls", "description_short": "Owls.", "description_long": "Owls at night.", "premiered_on": "2024-01-05"});
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
    let sandbox = start(Config::default()).await;
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
    let sandbox = start(Config::default()).await;
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
    let sandbox = start(Config::default()).await;
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
    let sandbox = start(Config::default()).await;
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
    let sandbox = start(Config::default()).await;
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
        ..Config::default()
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
        ..Config::default()
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
