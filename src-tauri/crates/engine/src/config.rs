//! `metasync.toml`: named profiles, parsed and validated once into typed values, so a
//! wrong or incomplete profile fails before any call with a message naming the field.
//!
//! ```toml
//! [profiles.staging]
//! production = false
//! backend = "aws"                  # or "local" (the default: SQLite + a directory)
//! region = "us-east-1"             # else from the AWS chain (env, ~/.aws/config)
//! bucket = "metasync-staging"
//! table = "metasync-staging"
//! queue_prefix = "metasync-staging"
//!
//! [profiles.staging.target]
//! dialect = "media_manager"        # or "rest"
//! access = "station"               # media_manager: "station" (the default) or "pbs"
//! url = "https://media.example.org/api/v1"
//! quota = 100                      # requests per second; leave out when unknown
//! burst = 10
//! ```

use crate::ratelimit::LimiterConfig;
use crate::retry::{EnvError, RetryPolicy};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: there is no profile {profile:?}; it has: {known}")]
    NoProfile {
        path: PathBuf,
        profile: String,
        known: String,
    },
    #[error("{path}: profile {profile}: {field}: {message}")]
    Field {
        path: PathBuf,
        profile: String,
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Env(#[from] EnvError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    MediaManager,
    Rest,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    profiles: BTreeMap<String, RawProfile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    production: bool,
    backend: Option<BackendKind>,
    data_dir: Option<PathBuf>,
    region: Option<String>,
    endpoint_url: Option<String>,
    aws_profile: Option<String>,
    bucket: Option<String>,
    table: Option<String>,
    queue_prefix: Option<String>,
    kms_key_id: Option<String>,
    max_receive_count: Option<u32>,
    consumers: Option<Consumers>,
    target: Option<RawTarget>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum BackendKind {
    Local,
    Aws,
}

/// Who works an aws profile's queues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Consumers {
    /// This process (the desktop, `metasync sync`, `metasync work`).
    #[default]
    Here,
    /// The deployed Lambda consumers (deploy/template.yaml): a sync only enqueues.
    Lambda,
}

/// Where a profile keeps objects, queues and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendProfile {
    /// The embedded backend; `data_dir` unset means the platform's data directory.
    Local {
        data_dir: Option<PathBuf>,
        max_receive_count: u32,
    },
    Aws(AwsProfile),
}

/// A profile's AWS resources, validated (names AWS would refuse fail here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsProfile {
    /// Unset: the region of the AWS chain (AWS_REGION, the profile's region).
    pub region: Option<String>,
    /// An emulator's URL (moto, LocalStack); S3 then uses path-style addresses.
    pub endpoint_url: Option<String>,
    /// A named profile of ~/.aws/config (SSO included); unset: the default chain.
    pub aws_profile: Option<String>,
    pub bucket: String,
    pub table: String,
    /// Queues are `{prefix}-{type}.fifo` and `{prefix}-{type}-dlq.fifo`.
    pub queue_prefix: String,
    /// Encrypt objects with this KMS key (aws:kms); unset: S3-managed keys (AES256).
    pub kms_key_id: Option<String>,
    /// Receives before a message moves to its dead-letter queue.
    pub max_receive_count: u32,
    /// Who works the queues.
    pub consumers: Consumers,
}

impl AwsProfile {
    pub fn queue_name(&self, entity: crate::EntityType, dead: bool) -> String {
        let dlq = if dead { "-dlq" } else { "" };
        format!("{}-{}{dlq}.fifo", self.queue_prefix, entity.as_str())
    }
}

/// The longest queue name suffix, `-episode-dlq.fifo`; SQS names are at most 80.
const LONGEST_QUEUE_SUFFIX: usize = "-episode-dlq.fifo".len();

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    dialect: Dialect,
    access: Option<RawAccess>,
    url: String,
    token_url: Option<String>,
    quota: Option<f64>,
    burst: Option<u32>,
    concurrency: Option<usize>,
    timeout_seconds: Option<f64>,
    max_retries: Option<u32>,
    base_delay_seconds: Option<f64>,
    templates: Option<RawTemplates>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawAccess {
    Station,
    Pbs,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    lookup: Option<String>,
    create: Option<String>,
    update: Option<String>,
}

/// URL templates of the REST dialect (`{type}`, `{id}`, `{slug}` are filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplates {
    pub lookup: String,
    pub create: String,
    pub update: String,
}

impl Default for UrlTemplates {
    fn default() -> Self {
        Self {
            lookup: "/{type}s?slug={slug}".into(),
            create: "/{type}s".into(),
            update: "/{type}s/{id}".into(),
        }
    }
}

/// A profile's target, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetProfile {
    pub dialect: Dialect,
    /// What the credentials may write (a Media Manager key is a station's unless the
    /// profile says `access = "pbs"`).
    pub access: crate::target::Access,
    pub url: String,
    pub token_url: Option<String>,
    pub limiter: LimiterConfig,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    pub templates: UrlTemplates,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    /// Visibly marked; actions that change the catalog ask for confirmation.
    pub production: bool,
    pub backend: BackendProfile,
    pub target: Option<TargetProfile>,
}

/// Load and validate one profile. `env` reads environment variables (retry defaults).
pub fn load_profile(
    path: &Path,
    name: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Profile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_profile(path, &text, name, env)
}

pub fn parse_profile(
    path: &Path,
    text: &str,
    name: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Profile, ConfigError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string().trim().replace('\n', " "),
    })?;
    let Some(p) = raw.profiles.get(name) else {
        let known: Vec<&str> = raw.profiles.keys().map(String::as_str).collect();
        return Err(ConfigError::NoProfile {
            path: path.to_owned(),
            profile: name.to_string(),
            known: if known.is_empty() {
                "no profiles".into()
            } else {
                known.join(", ")
            },
        });
    };
    let field = |field: &'static str, message: &str| ConfigError::Field {
        path: path.to_owned(),
        profile: name.to_string(),
        field,
        message: message.to_string(),
    };
    let http_url = |f: &'static str, v: &str| -> Result<String, ConfigError> {
        let v = v.trim().trim_end_matches('/');
        if (v.starts_with("http://") || v.starts_with("https://")) && v.len() > "https://".len() {
            Ok(v.to_string())
        } else {
            Err(field(f, "must be an http:// or https:// URL"))
        }
    };
    let target = match &p.target {
        None => None,
        Some(t) => {
            let url = http_url("target.url", &t.url)?;
            let token_url = match (t.dialect, &t.token_url) {
                (Dialect::Rest, None) => {
                    return Err(field(
                        "target.token_url",
                        "the rest dialect needs the OAuth2 token endpoint",
                    ))
                }
                (_, Some(u)) => Some(http_url("target.token_url", u)?),
                (Dialect::MediaManager, None) => None,
            };
            if t.quota.is_some_and(|q| !(q.is_finite() && q > 0.0)) {
                return Err(field(
                    "target.quota",
                    "must be a positive number of requests per second",
                ));
            }
            if t.burst == Some(0) {
                return Err(field("target.burst", "must be at least 1"));
            }
            let timeout = t.timeout_seconds.unwrap_or(30.0);
            if !(timeout.is_finite() && (0.1..=600.0).contains(&timeout)) {
                return Err(field(
                    "target.timeout_seconds",
                    "must be between 0.1 and 600",
                ));
            }
            let mut retry = RetryPolicy::from_vars(&env)?;
            if let Some(n) = t.max_retries {
                retry.max_retries = n;
            }
            if let Some(s) = t.base_delay_seconds {
                if !(s.is_finite() && (0.0..=3600.0).contains(&s)) {
                    return Err(field(
                        "target.base_delay_seconds",
                        "must be between 0 and 3600",
                    ));
                }
                retry.base_delay = Duration::from_secs_f64(s);
            }
            let burst = t.burst.unwrap_or(1);
            let concurrency = t.concurrency.unwrap_or(8);
            if !(1..=256).contains(&concurrency) {
                return Err(field(
                    "target.concurrency",
                    "must be between 1 and 256 calls in flight",
                ));
            }
            let limiter = LimiterConfig {
                burst,
                max_in_flight: concurrency,
                ..t.quota.map_or_else(LimiterConfig::default, |q| {
                    LimiterConfig::with_quota(q, burst)
                })
            };
            let mut templates = UrlTemplates::default();
            if let Some(raw) = &t.templates {
                if t.dialect == Dialect::MediaManager {
                    return Err(field(
                        "target.templates",
                        "only the rest dialect uses URL templates",
                    ));
                }
                let set =
                    |slot: &mut String, v: &Option<String>, f: &'static str, needs: &[&str]| {
                        if let Some(v) = v {
                            if let Some(missing) = needs.iter().find(|n| !v.contains(**n)) {
                                return Err(field(f, &format!("must contain {missing}")));
                            }
                            *slot = v.clone();
                        }
                        Ok(())
                    };
                set(
                    &mut templates.lookup,
                    &raw.lookup,
                    "target.templates.lookup",
                    &["{slug}"],
                )?;
                set(
                    &mut templates.create,
                    &raw.create,
                    "target.templates.create",
                    &[],
                )?;
                set(
                    &mut templates.update,
                    &raw.update,
                    "target.templates.update",
                    &["{id}"],
                )?;
            }
            let access = match (t.dialect, t.access) {
                (Dialect::MediaManager, None | Some(RawAccess::Station)) => {
                    crate::target::Access::Station
                }
                (Dialect::MediaManager, Some(RawAccess::Pbs)) => crate::target::Access::Full,
                (Dialect::Rest, None) => crate::target::Access::Full,
                (Dialect::Rest, Some(_)) => {
                    return Err(field(
                        "target.access",
                        "only the media_manager dialect has station and PBS access",
                    ))
                }
            };
            Some(TargetProfile {
                dialect: t.dialect,
                access,
                url,
                token_url,
                limiter,
                retry,
                timeout: Duration::from_secs_f64(timeout),
                templates,
            })
        }
    };
    Ok(Profile {
        name: name.to_string(),
        production: p.production,
        backend: backend(p, &field)?,
        target,
    })
}

fn backend(
    p: &RawProfile,
    field: &dyn Fn(&'static str, &str) -> ConfigError,
) -> Result<BackendProfile, ConfigError> {
    let max_receive_count = p.max_receive_count.unwrap_or(5);
    if !(1..=1000).contains(&max_receive_count) {
        return Err(field("max_receive_count", "must be between 1 and 1000"));
    }
    if p.backend.unwrap_or(BackendKind::Local) == BackendKind::Local {
        let aws_only = [
            ("region", p.region.is_some()),
            ("endpoint_url", p.endpoint_url.is_some()),
            ("aws_profile", p.aws_profile.is_some()),
            ("bucket", p.bucket.is_some()),
            ("table", p.table.is_some()),
            ("queue_prefix", p.queue_prefix.is_some()),
            ("kms_key_id", p.kms_key_id.is_some()),
            ("consumers", p.consumers.is_some()),
        ];
        if let Some((name, _)) = aws_only.iter().find(|(_, set)| *set) {
            return Err(field(
                name,
                "only the aws backend uses this; add backend = \"aws\" or remove it",
            ));
        }
        return Ok(BackendProfile::Local {
            data_dir: p.data_dir.clone(),
            max_receive_count,
        });
    }
    if p.data_dir.is_some() {
        return Err(field(
            "data_dir",
            "only the local backend uses a data directory",
        ));
    }
    let required = |name: &'static str, v: &Option<String>| -> Result<String, ConfigError> {
        match v.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(field(name, "the aws backend needs it")),
        }
    };
    let bucket = required("bucket", &p.bucket)?;
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && bucket.as_bytes()[0].is_ascii_alphanumeric()
        && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric();
    if !bucket_ok {
        return Err(field(
            "bucket",
            "an S3 bucket name is 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit",
        ));
    }
    let table = required("table", &p.table)?;
    if !((3..=255).contains(&table.len())
        && table
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')))
    {
        return Err(field(
            "table",
            "a DynamoDB table name is 3 to 255 letters, digits, '_', '-' and '.'",
        ));
    }
    let queue_prefix = required("queue_prefix", &p.queue_prefix)?;
    if !(queue_prefix.len() <= 80 - LONGEST_QUEUE_SUFFIX
        && queue_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')))
    {
        return Err(field(
            "queue_prefix",
            &format!(
                "at most {} letters, digits, '_' and '-' (queue names are {{prefix}}-{{type}}-dlq.fifo, at most 80)",
                80 - LONGEST_QUEUE_SUFFIX
            ),
        ));
    }
    let region = match p.region.as_deref().map(str::trim) {
        None => None,
        Some(r)
            if !r.is_empty()
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            Some(r.to_string())
        }
        Some(_) => return Err(field("region", "an AWS region looks like us-east-1")),
    };
    let endpoint_url = match p.endpoint_url.as_deref().map(str::trim) {
        None => None,
        Some(u) if (u.starts_with("http://") || u.starts_with("https://")) && u.len() > 8 => {
            Some(u.trim_end_matches('/').to_string())
        }
        Some(_) => return Err(field("endpoint_url", "must be an http:// or https:// URL")),
    };
    Ok(BackendProfile::Aws(AwsProfile {
        region,
        endpoint_url,
        aws_profile: p.aws_profile.clone(),
        bucket,
        table,
        queue_prefix,
        kms_key_id: p.kms_key_id.clone(),
        max_receive_count,
        consumers: p.consumers.unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, name: &str) -> Result<Profile, ConfigError> {
        parse_profile(Path::new("metasync.toml"), text, name, |_| None)
    }

    fn error(text: &str) -> String {
        parse(text, "p")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    const MM: &str = "[profiles.p.target]\ndialect = \"media_manager\"\nurl = \"http://127.0.0.1:8787/api/v1/\"\n";

    #[test]
    fn a_minimal_media_manager_profile_gets_defaults() {
        let p = parse(MM, "p").unwrap_or_else(|e| panic!("{e}"));
        let t = p.target.unwrap_or_else(|| panic!("target"));
        assert_eq!(t.url, "http://127.0.0.1:8787/api/v1");
        assert_eq!(t.limiter.quota, None);
        assert_eq!(t.retry, RetryPolicy::default());
        assert_eq!(t.timeout, Duration::from_secs(30));
        assert_eq!(t.limiter.max_in_flight, 8);
        assert_eq!(
            t.access,
            crate::target::Access::Station,
            "a station's unless it says"
        );
        let pbs = parse(&MM.replace("url =", "access = \"pbs\"\nurl ="), "p")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            pbs.target.map(|t| t.access),
            Some(crate::target::Access::Full)
        );
        assert!(!p.production);
    }

    #[test]
    fn profile_values_override_the_environment() {
        let text = format!("{MM}quota = 50\nburst = 5\nmax_retries = 6\n");
        let env = |k: &str| (k == "BASE_DELAY_SECONDS").then(|| "0.5".to_string());
        let t = parse_profile(Path::new("m.toml"), &text, "p", env)
            .ok()
            .and_then(|p| p.target)
            .unwrap_or_else(|| panic!("target"));
        assert_eq!((t.limiter.quota, t.limiter.burst), (Some(50.0), 5));
        assert_eq!(
            (t.retry.max_retries, t.retry.base_delay),
            (6, Duration::from_millis(500))
        );
    }

    #[test]
    fn errors_name_the_profile_and_the_field() {
        assert!(error(&MM.replace("http://", "ftp://"))
            .contains("profile p: target.url: must be an http"));
        assert!(error(&format!("{MM}quota = 0\n")).contains("target.quota"));
        assert!(error(&format!("{MM}burst = 0\n")).contains("target.burst"));
        assert!(error(&format!("{MM}concurrency = 0\n")).contains("target.concurrency"));
        assert!(error(&MM.replace("media_manager", "rest")).contains("target.token_url"));
        assert!(
            error(&format!("{MM}urll = \"x\"\n")).contains("urll"),
            "{}",
            error(&format!("{MM}urll = \"x\"\n"))
        );
        assert!(error(&MM.replace("media_manager", "soap")).contains("soap"));
        assert!(error(&format!(
            "{MM}[profiles.p.target.templates]\nlookup = \"/x\"\n"
        ))
        .contains("only the rest dialect"));
        let missing = parse(MM, "production")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            missing.contains("no profile \"production\"") && missing.contains("it has: p"),
            "{missing}"
        );
    }

    #[test]
    fn the_backend_is_local_unless_a_profile_says_aws() {
        let p = parse("[profiles.p]\n", "p").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.backend,
            BackendProfile::Local {
                data_dir: None,
                max_receive_count: 5
            }
        );
        let aws = "[profiles.p]\nbackend = \"aws\"\nregion = \"us-east-1\"\nendpoint_url = \"http://127.0.0.1:5000/\"\nbucket = \"cat-bronze\"\ntable = \"cat_state\"\nqueue_prefix = \"cat\"\nmax_receive_count = 3\n";
        let BackendProfile::Aws(a) = parse(aws, "p").unwrap_or_else(|e| panic!("{e}")).backend
        else {
            panic!("not aws")
        };
        assert_eq!(a.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(
            a.queue_name(crate::EntityType::Episode, true),
            "cat-episode-dlq.fifo"
        );
        assert_eq!(a.max_receive_count, 3);
        assert_eq!(a.consumers, Consumers::Here);
        let lambda = format!("{aws}consumers = \"lambda\"\n");
        let BackendProfile::Aws(a) = parse(&lambda, "p")
            .unwrap_or_else(|e| panic!("{e}"))
            .backend
        else {
            panic!("not aws")
        };
        assert_eq!(a.consumers, Consumers::Lambda);
        assert!(
            error("[profiles.p]\nconsumers = \"lambda\"\n").contains("consumers"),
            "a local profile has no Lambda consumers"
        );
        assert!(error(&format!("{aws}consumers = \"elsewhere\"\n")).contains("consumers"));
    }

    #[test]
    fn an_incomplete_or_wrong_backend_names_the_field() {
        let base = "[profiles.p]\nbackend = \"aws\"\n";
        let full = "bucket = \"b-1\"\ntable = \"tbl\"\nqueue_prefix = \"q\"\n";
        for (text, needle) in [
            (
                format!("{base}table = \"tbl\"\nqueue_prefix = \"q\"\n"),
                "profile p: bucket: the aws backend needs it",
            ),
            (
                format!("{base}bucket = \"b-1\"\nqueue_prefix = \"q\"\n"),
                "profile p: table: the aws backend needs it",
            ),
            (
                format!("{base}bucket = \"b-1\"\ntable = \"tbl\"\n"),
                "profile p: queue_prefix: the aws backend needs it",
            ),
            (
                format!("{base}{}", full.replace("b-1", "My_Bucket")),
                "profile p: bucket: an S3 bucket name",
            ),
            (
                format!("{base}{full}region = \"US East\"\n"),
                "profile p: region:",
            ),
            (
                format!("{base}{full}endpoint_url = \"localhost:5000\"\n"),
                "profile p: endpoint_url:",
            ),
            (
                format!("{base}{full}data_dir = \"/tmp/x\"\n"),
                "profile p: data_dir:",
            ),
            (
                format!(
                    "{base}{}",
                    full.replace("\"q\"", &format!("\"{}\"", "q".repeat(70)))
                ),
                "profile p: queue_prefix: at most 63",
            ),
            (
                "[profiles.p]\nbucket = \"b-1\"\n".to_string(),
                "profile p: bucket: only the aws backend",
            ),
            (
                "[profiles.p]\nmax_receive_count = 0\n".to_string(),
                "profile p: max_receive_count:",
            ),
            (
                "[profiles.p]\nbackend = \"s3\"\n".to_string(),
                "unknown variant `s3`",
            ),
        ] {
            let got = error(&text);
            assert!(got.contains(needle), "{text:?}: {got}");
        }
    }

    #[test]
    fn rest_templates_must_keep_their_placeholders() {
        let rest = "[profiles.p.target]\ndialect = \"rest\"\nurl = \"https://api.example.org\"\ntoken_url = \"https://id.example.org/token\"\n";
        let ok = parse(
            &format!("{rest}[profiles.p.target.templates]\nlookup = \"/v2/{{type}}?q={{slug}}\"\n"),
            "p",
        );
        let t = ok
            .ok()
            .and_then(|p| p.target)
            .unwrap_or_else(|| panic!("target"));
        assert_eq!(t.templates.lookup, "/v2/{type}?q={slug}");
        assert_eq!(t.templates.update, "/{type}s/{id}");
        let bad = format!("{rest}[profiles.p.target.templates]\nupdate = \"/v2/{{type}}\"\n");
        assert!(error(&bad).contains("target.templates.update: must contain {id}"));
    }
}
