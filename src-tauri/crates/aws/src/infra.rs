//! `metasync infra up` / `down`: the resources a profile names, created idempotently
//! (what exists is left as it is) and removed on request.

use crate::error::store_error;
use crate::{Clients, STATUS_INDEX};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, SseSpecification,
};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, ObjectIdentifier,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use aws_sdk_sqs::types::QueueAttributeName;
use metasync_engine::config::AwsProfile;
use metasync_engine::ports::{Service, StoreError};
use metasync_engine::EntityType;
use std::time::Duration;

/// What `up` or `down` did to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Exists,
    Deleted,
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// `bucket`, `queue`, `dead-letter queue` or `table`.
    pub kind: &'static str,
    pub name: String,
    pub action: Action,
}

fn change(kind: &'static str, name: &str, action: Action) -> Change {
    Change {
        kind,
        name: name.to_string(),
        action,
    }
}

fn build<T>(
    r: Result<T, aws_smithy_types::error::operation::BuildError>,
    op: &'static str,
    service: Service,
) -> Result<T, StoreError> {
    r.map_err(|e| crate::error::build_error(service, op, &e))
}

/// Create what is missing: the bucket (encrypted by default, public access blocked),
/// per entity type a FIFO dead-letter queue and a FIFO queue that redrives into it,
/// and the table with its status index.
pub async fn up(clients: &Clients, profile: &AwsProfile) -> Result<Vec<Change>, StoreError> {
    let mut changes = vec![bucket_up(clients, profile).await?];
    for entity in EntityType::ALL {
        let dead = profile.queue_name(entity, true);
        let (dlq_url, action) = queue_up(clients, &dead, None).await?;
        changes.push(change("dead-letter queue", &dead, action));
        let arn = queue_arn(clients, &dlq_url, &dead).await?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": arn,
            "maxReceiveCount": profile.max_receive_count.to_string(),
        })
        .to_string();
        let main = profile.queue_name(entity, false);
        let (_, action) = queue_up(clients, &main, Some(redrive)).await?;
        changes.push(change("queue", &main, action));
    }
    changes.push(table_up(clients, profile).await?);
    Ok(changes)
}

async fn bucket_up(clients: &Clients, profile: &AwsProfile) -> Result<Change, StoreError> {
    let s3 = &clients.s3;
    let bucket = &profile.bucket;
    let svc = Service::Objects;
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => return Ok(change("bucket", bucket, Action::Exists)),
        Err(SdkError::ServiceError(e)) if e.err().is_not_found() => {}
        Err(e) => return Err(store_error(svc, "HeadBucket", bucket, e)),
    }
    let mut create = s3.create_bucket().bucket(bucket);
    let region = s3.config().region().map(|r| r.as_ref().to_string());
    if let Some(region) = region.filter(|r| r != "us-east-1") {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match create.send().await {
        Ok(_) => {}
        Err(SdkError::ServiceError(e)) if e.err().is_bucket_already_owned_by_you() => {
            return Ok(change("bucket", bucket, Action::Exists))
        }
        Err(e) => return Err(store_error(svc, "CreateBucket", bucket, e)),
    }
    let algorithm = if profile.kms_key_id.is_some() {
        ServerSideEncryption::AwsKms
    } else {
        ServerSideEncryption::Aes256
    };
    let default = build(
        ServerSideEncryptionByDefault::builder()
            .sse_algorithm(algorithm)
            .set_kms_master_key_id(profile.kms_key_id.clone())
            .build(),
        "PutBucketEncryption",
        svc,
    )?;
    let rules = build(
        ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(default)
                    .build(),
            )
            .build(),
        "PutBucketEncryption",
        svc,
    )?;
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(rules)
        .send()
        .await
        .map_err(|e| store_error(svc, "PutBucketEncryption", bucket, e))?;
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .ignore_public_acls(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(|e| store_error(svc, "PutPublicAccessBlock", bucket, e))?;
    Ok(change("bucket", bucket, Action::Created))
}

async fn queue_url(clients: &Clients, name: &str) -> Result<Option<String>, StoreError> {
    match clients.sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url().map(str::to_string)),
        Err(SdkError::ServiceError(e)) if e.err().is_queue_does_not_exist() => Ok(None),
        Err(e) => Err(store_error(Service::Queue, "GetQueueUrl", name, e)),
    }
}

async fn queue_up(
    clients: &Clients,
    name: &str,
    redrive: Option<String>,
) -> Result<(String, Action), StoreError> {
    if let Some(url) = queue_url(clients, name).await? {
        return Ok((url, Action::Exists));
    }
    let mut create = clients
        .sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        // Dedup ids come from the records' keys and hashes, never from the body.
        .attributes(QueueAttributeName::ContentBasedDeduplication, "false")
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        // Fourteen days, the longest SQS keeps a message: time for staff to triage.
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .attributes(QueueAttributeName::SqsManagedSseEnabled, "true");
    if let Some(policy) = redrive {
        create = create.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    let out = create
        .send()
        .await
        .map_err(|e| store_error(Service::Queue, "CreateQueue", name, e))?;
    let url = out.queue_url().map(str::to_string).ok_or_else(|| {
        StoreError::invalid(Service::Queue, "CreateQueue", format!("{name}: no URL"))
    })?;
    Ok((url, Action::Created))
}

async fn queue_arn(clients: &Clients, url: &str, name: &str) -> Result<String, StoreError> {
    let out = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| store_error(Service::Queue, "GetQueueAttributes", name, e))?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| {
            StoreError::invalid(
                Service::Queue,
                "GetQueueAttributes",
                format!("{name}: no ARN"),
            )
        })
}

async fn table_exists(clients: &Clients, table: &str) -> Result<Option<bool>, StoreError> {
    match clients
        .dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
    {
        Ok(out) => Ok(Some(
            out.table()
                .and_then(|t| t.table_status())
                .is_some_and(|s| s.as_str() == "ACTIVE"),
        )),
        Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => Ok(None),
        Err(e) => Err(store_error(Service::State, "DescribeTable", table, e)),
    }
}

async fn table_up(clients: &Clients, profile: &AwsProfile) -> Result<Change, StoreError> {
    let table = &profile.table;
    let svc = Service::State;
    if table_exists(clients, table).await?.is_some() {
        return Ok(change("table", table, Action::Exists));
    }
    let attr = |name: &str| {
        build(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build(),
            "CreateTable",
            svc,
        )
    };
    let key = |name: &str, kind: KeyType| {
        build(
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build(),
            "CreateTable",
            svc,
        )
    };
    let index = build(
        GlobalSecondaryIndex::builder()
            .index_name(STATUS_INDEX)
            .key_schema(key("gsi1pk", KeyType::Hash)?)
            .key_schema(key("gsi1sk", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build(),
        "CreateTable",
        svc,
    )?;
    clients
        .dynamodb
        .create_table()
        .table_name(table)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("gsi1pk")?)
        .attribute_definitions(attr("gsi1sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .global_secondary_indexes(index)
        .billing_mode(BillingMode::PayPerRequest)
        .sse_specification(SseSpecification::builder().enabled(true).build())
        .send()
        .await
        .map_err(|e| store_error(svc, "CreateTable", table, e))?;
    // A new table takes a few seconds to become usable on AWS.
    for _ in 0..120 {
        if table_exists(clients, table).await? == Some(true) {
            return Ok(change("table", table, Action::Created));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(StoreError::new(
        metasync_engine::ports::ErrorKind::Unavailable,
        svc,
        "DescribeTable",
        format!("{table}: created but not active after a minute; run `infra up` again"),
    ))
}

/// What of `up`'s resources exists, changing nothing: `Exists` or `Absent` for the
/// bucket, each queue and the table (the settings screen's connection test). A table
/// still being created counts as existing.
pub async fn check(clients: &Clients, profile: &AwsProfile) -> Result<Vec<Change>, StoreError> {
    let seen = |found: bool| {
        if found {
            Action::Exists
        } else {
            Action::Absent
        }
    };
    let bucket = &profile.bucket;
    let found = match clients.s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => true,
        Err(SdkError::ServiceError(e)) if e.err().is_not_found() => false,
        Err(e) => return Err(store_error(Service::Objects, "HeadBucket", bucket, e)),
    };
    let mut changes = vec![change("bucket", bucket, seen(found))];
    for entity in EntityType::ALL {
        for (kind, dead) in [("dead-letter queue", true), ("queue", false)] {
            let name = profile.queue_name(entity, dead);
            let found = queue_url(clients, &name).await?.is_some();
            changes.push(change(kind, &name, seen(found)));
        }
    }
    let found = table_exists(clients, &profile.table).await?.is_some();
    changes.push(change("table", &profile.table, seen(found)));
    Ok(changes)
}

/// Remove what `up` created, objects in the bucket included.
pub async fn down(clients: &Clients, profile: &AwsProfile) -> Result<Vec<Change>, StoreError> {
    let mut changes = Vec::new();
    for entity in EntityType::ALL {
        for (kind, dead) in [("queue", false), ("dead-letter queue", true)] {
            let name = profile.queue_name(entity, dead);
            let action = match queue_url(clients, &name).await? {
                None => Action::Absent,
                Some(url) => {
                    clients
                        .sqs
                        .delete_queue()
                        .queue_url(url)
                        .send()
                        .await
                        .map_err(|e| store_error(Service::Queue, "DeleteQueue", &name, e))?;
                    Action::Deleted
                }
            };
            changes.push(change(kind, &name, action));
        }
    }
    let table = &profile.table;
    let action = if table_exists(clients, table).await?.is_some() {
        clients
            .dynamodb
            .delete_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| store_error(Service::State, "DeleteTable", table, e))?;
        Action::Deleted
    } else {
        Action::Absent
    };
    changes.push(change("table", table, action));
    changes.push(bucket_down(clients, &profile.bucket).await?);
    Ok(changes)
}

async fn bucket_down(clients: &Clients, bucket: &str) -> Result<Change, StoreError> {
    let s3 = &clients.s3;
    let svc = Service::Objects;
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(SdkError::ServiceError(e)) if e.err().is_not_found() => {
            return Ok(change("bucket", bucket, Action::Absent))
        }
        Err(e) => return Err(store_error(svc, "HeadBucket", bucket, e)),
    }
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| store_error(svc, "ListObjectsV2", bucket, e))?;
        let ids = page
            .contents()
            .iter()
            .filter_map(|o| ObjectIdentifier::builder().key(o.key()?).build().ok())
            .collect::<Vec<_>>();
        if ids.is_empty() {
            break;
        }
        let delete = build(
            aws_sdk_s3::types::Delete::builder()
                .set_objects(Some(ids))
                .build(),
            "DeleteObjects",
            svc,
        )?;
        s3.delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| store_error(svc, "DeleteObjects", bucket, e))?;
    }
    s3.delete_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| store_error(svc, "DeleteBucket", bucket, e))?;
    Ok(change("bucket", bucket, Action::Deleted))
}
