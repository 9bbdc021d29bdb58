//! The object store port over S3: server-side encryption on every put; bronze files
//! written with `If-None-Match: *` so they are never replaced.

use crate::error::store_error;
use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use metasync_engine::config::AwsProfile;
use metasync_engine::gen::Rng;
use metasync_engine::ports::{
    check_key, check_prefix, jitter_seed, retry_transient, CallCounter, Calls, ErrorKind, Object,
    ObjectMeta, ObjectStore, Service, StoreError,
};
use metasync_engine::retry::RetryPolicy;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

pub struct S3Objects {
    client: aws_sdk_s3::Client,
    bucket: String,
    kms_key_id: Option<String>,
    retry: RetryPolicy,
    jitter: Mutex<Rng>,
    calls: CallCounter,
}

impl S3Objects {
    pub fn new(client: aws_sdk_s3::Client, profile: &AwsProfile, retry: RetryPolicy) -> Self {
        Self {
            client,
            bucket: profile.bucket.clone(),
            kms_key_id: profile.kms_key_id.clone(),
            retry,
            jitter: Mutex::new(Rng::new(jitter_seed())),
            calls: CallCounter::default(),
        }
    }

    fn where_(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// One PutObject; `Ok(false)` when `absent_only` and the key exists.
    async fn put_once(
        &self,
        key: &str,
        body: &[u8],
        content_type: &str,
        absent_only: bool,
    ) -> Result<bool, StoreError> {
        self.calls.add(Service::Objects, "PutObject");
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body.to_vec()));
        req = match &self.kms_key_id {
            Some(kms) => req
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms),
            None => req.server_side_encryption(ServerSideEncryption::Aes256),
        };
        if absent_only {
            req = req.if_none_match("*");
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e))
                if absent_only
                    && (e.raw().status().as_u16() == 412
                        || e.err().code() == Some("PreconditionFailed")) =>
            {
                Ok(false)
            }
            Err(err) => {
                let mut e = store_error(Service::Objects, "PutObject", &self.where_(key), err);
                // 409 ConditionalRequestConflict: a concurrent conditional put; retry.
                if e.message.contains("ConditionalRequestConflict") {
                    e.kind = ErrorKind::Unavailable;
                }
                Err(e)
            }
        }
    }
}

#[async_trait]
impl ObjectStore for S3Objects {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), StoreError> {
        check_key("PutObject", key)?;
        retry_transient(&self.retry, &self.jitter, || {
            self.put_once(key, &body, content_type, false)
        })
        .await
        .map(drop)
    }

    async fn put_if_absent(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        check_key("PutObject", key)?;
        let attempts = AtomicU32::new(0);
        let created = retry_transient(&self.retry, &self.jitter, || {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.put_once(key, &body, content_type, true)
        })
        .await?;
        // After a lost answer, the retry meets our own object: created, if it is ours.
        if !created && attempts.load(Ordering::Relaxed) > 1 {
            return Ok(self.get(key).await?.is_some_and(|o| o.body == body));
        }
        Ok(created)
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        check_key("GetObject", key)?;
        retry_transient(&self.retry, &self.jitter, || async {
            self.calls.add(Service::Objects, "GetObject");
            let out = match self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
            {
                Ok(out) => out,
                Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => return Ok(None),
                Err(err) => {
                    return Err(store_error(
                        Service::Objects,
                        "GetObject",
                        &self.where_(key),
                        err,
                    ))
                }
            };
            let content_type = out
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_string();
            let encryption = out.server_side_encryption().map(|s| s.as_str().to_string());
            let body = out.body.collect().await.map_err(|e| {
                StoreError::new(
                    ErrorKind::Unavailable,
                    Service::Objects,
                    "GetObject",
                    format!("{}: the body broke off: {e}", self.where_(key)),
                )
            })?;
            Ok(Some(Object {
                body: body.into_bytes().to_vec(),
                content_type,
                encryption,
            }))
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        check_prefix(prefix)?;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = retry_transient(&self.retry, &self.jitter, || async {
                self.calls.add(Service::Objects, "ListObjectsV2");
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .set_continuation_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| {
                        store_error(Service::Objects, "ListObjectsV2", &self.where_(prefix), e)
                    })
            })
            .await?;
            out.extend(page.contents().iter().filter_map(|o| {
                Some(ObjectMeta {
                    key: o.key()?.to_string(),
                    size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                })
            }));
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn calls(&self) -> Calls {
        self.calls.snapshot()
    }
}
