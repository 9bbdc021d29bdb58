//! Metasync's storage ports over AWS: objects in S3, one SQS FIFO queue (with its FIFO
//! dead-letter queue) per entity type, and sync state in one DynamoDB table.
//!
//! Clients come from aws-config's standard chain (environment, profiles, SSO), with an
//! optional endpoint for emulators. The SDK's own retries are off: every retry goes
//! through the engine's policy ([`metasync_engine::ports::retry_transient`]), so one
//! place decides and the call counters see every attempt.

mod dynamo;
mod error;
pub mod infra;
mod s3;
#[cfg(feature = "secrets")]
pub mod secrets;
mod sqs;

pub use dynamo::DynamoState;
pub use s3::S3Objects;
pub use sqs::SqsQueue;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use metasync_engine::config::AwsProfile;
use metasync_engine::ports::Backend;
use metasync_engine::retry::RetryPolicy;
use metasync_engine::EntityType;
use std::sync::Arc;
use std::time::Duration;

/// The index of the state table that answers "records by status and error code" and
/// "runs, newest first".
pub const STATUS_INDEX: &str = "by_status";

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "no AWS region: set `region` in the profile, AWS_REGION, or a region in ~/.aws/config"
    )]
    NoRegion,
}

/// The SDK clients of one profile.
#[derive(Clone, Debug)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The loaded configuration, for clients built later (Secrets Manager).
    pub config: aws_config::SdkConfig,
}

/// An access key pair given explicitly (from the keychain, or an emulator's dummy
/// keys), instead of the standard chain's.
pub struct StaticKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKeys")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl Clients {
    /// Build the clients from the standard chain (or `keys`). Makes no call.
    pub async fn new(profile: &AwsProfile, keys: Option<StaticKeys>) -> Result<Self, ConnectError> {
        Self::with_http_client(profile, keys, None).await
    }

    /// As [`new`](Self::new), sending through `http` (a proxy, or the tests' faults).
    pub async fn with_http_client(
        profile: &AwsProfile,
        keys: Option<StaticKeys>,
        http: Option<SharedHttpClient>,
    ) -> Result<Self, ConnectError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    // Long polls wait up to 20 s before answering.
                    .operation_attempt_timeout(Duration::from_secs(40))
                    .build(),
            );
        if let Some(region) = &profile.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(name) = &profile.aws_profile {
            loader = loader.profile_name(name);
        }
        if let Some(url) = &profile.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(http) = http {
            loader = loader.http_client(http);
        }
        if let Some(k) = keys {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                k.access_key_id,
                k.secret_access_key,
                None,
                None,
                "metasync",
            ));
        }
        let conf = loader.load().await;
        if conf.region().is_none() {
            return Err(ConnectError::NoRegion);
        }
        let s3 = aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(profile.endpoint_url.is_some())
            .build();
        Ok(Self {
            s3: aws_sdk_s3::Client::from_conf(s3),
            sqs: aws_sdk_sqs::Client::new(&conf),
            dynamodb: aws_sdk_dynamodb::Client::new(&conf),
            config: conf,
        })
    }
}

/// The engine's backend over a profile's AWS resources (which `infra::up` creates).
pub fn backend(clients: &Clients, profile: &AwsProfile, retry: RetryPolicy) -> Backend {
    let queue = |e: EntityType| -> Arc<dyn metasync_engine::ports::Queue> {
        Arc::new(SqsQueue::new(clients.sqs.clone(), profile, e, retry))
    };
    Backend {
        objects: Arc::new(S3Objects::new(clients.s3.clone(), profile, retry)),
        queues: EntityType::ALL.map(queue),
        state: Arc::new(DynamoState::new(
            clients.dynamodb.clone(),
            &profile.table,
            retry,
        )),
    }
}
