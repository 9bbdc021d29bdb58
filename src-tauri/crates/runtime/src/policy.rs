//! The IAM policy a desktop user of an aws profile needs (`metasync deploy
//! print-policy`): the calls the desktop and the CLI make on that profile's bucket,
//! queues, table and key, on those resources only. Creating or deleting them is the
//! stack's job (deploy/template.yaml), not the desktop's. With `consumers = "lambda"`
//! the desktop only enqueues and reads, so it may not receive or delete messages.

use crate::env::{Chosen, RuntimeError};
use metasync_engine::config::{BackendProfile, Consumers};
use metasync_engine::ports::Service;
use metasync_engine::EntityType;
use serde_json::{json, Value};

/// The IAM action a port call needs (the adapters name calls after the AWS operation
/// they are; batch operations are authorized by their single-item action).
pub fn iam_action(service: Service, operation: &str) -> Option<&'static str> {
    Some(match (service, operation) {
        (Service::Objects, "GetObject" | "HeadObject") => "s3:GetObject",
        (Service::Objects, "PutObject") => "s3:PutObject",
        (Service::Objects, "ListObjectsV2") => "s3:ListBucket",
        (Service::Queue, "SendMessage" | "SendMessageBatch") => "sqs:SendMessage",
        (Service::Queue, "ReceiveMessage") => "sqs:ReceiveMessage",
        (Service::Queue, "DeleteMessage" | "DeleteMessageBatch") => "sqs:DeleteMessage",
        (Service::Queue, "ChangeMessageVisibility" | "ChangeMessageVisibilityBatch") => {
            "sqs:ChangeMessageVisibility"
        }
        (Service::Queue, "GetQueueAttributes") => "sqs:GetQueueAttributes",
        (Service::Queue, "GetQueueUrl") => "sqs:GetQueueUrl",
        (Service::State, "GetItem") => "dynamodb:GetItem",
        (Service::State, "PutItem") => "dynamodb:PutItem",
        (Service::State, "BatchGetItem") => "dynamodb:BatchGetItem",
        (Service::State, "BatchWriteItem") => "dynamodb:BatchWriteItem",
        (Service::State, "Query") => "dynamodb:Query",
        _ => return None,
    })
}

/// The policy document for the chosen aws profile. `account` pins the account id in
/// the ARNs (else `*`: any account's resources of these names).
pub fn desktop_policy(chosen: &Chosen, account: Option<&str>) -> Result<Value, RuntimeError> {
    let BackendProfile::Aws(p) = &chosen.backend else {
        return Err(RuntimeError::Unusable(format!(
            "{} keeps its data on this computer: it needs no AWS policy",
            chosen.label
        )));
    };
    let region = p
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .ok_or_else(|| {
            RuntimeError::Unusable(format!(
                "{}: no region to name the queues and table by: set region in the profile or AWS_REGION",
                chosen.label
            ))
        })?;
    let account = match account {
        None => "*".to_string(),
        Some(a) if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => a.to_string(),
        Some(a) => {
            return Err(RuntimeError::Unusable(format!(
                "--account {a:?}: an AWS account id is 12 digits"
            )))
        }
    };
    let here = p.consumers == Consumers::Here;
    let queue_arn = |e: EntityType, dead: bool| {
        format!("arn:aws:sqs:{region}:{account}:{}", p.queue_name(e, dead))
    };
    let mut main = vec![
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
    ];
    let mut dead = vec!["sqs:GetQueueAttributes", "sqs:GetQueueUrl"];
    if here {
        // Workers receive, extend and delete; they send an unreadable message to its
        // dead-letter queue, and the drain files dead letters and deletes them.
        main.extend([
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
        ]);
        dead.extend(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage"]);
    }
    main.sort_unstable();
    dead.sort_unstable();
    let table = format!("arn:aws:dynamodb:{region}:{account}:table/{}", p.table);
    let mut statements = vec![
        json!({
            "Sid": "CatalogFiles",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": format!("arn:aws:s3:::{}/*", p.bucket),
        }),
        json!({
            "Sid": "ListCatalogFiles",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": format!("arn:aws:s3:::{}", p.bucket),
        }),
        json!({
            "Sid": "Queues",
            "Effect": "Allow",
            "Action": main,
            "Resource": EntityType::ALL.map(|e| queue_arn(e, false)),
        }),
        json!({
            "Sid": "DeadLetterQueues",
            "Effect": "Allow",
            "Action": dead,
            "Resource": EntityType::ALL.map(|e| queue_arn(e, true)),
        }),
        json!({
            "Sid": "SyncState",
            "Effect": "Allow",
            "Action": [
                "dynamodb:BatchGetItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
            ],
            "Resource": table,
        }),
        json!({
            "Sid": "SyncStateByStatus",
            "Effect": "Allow",
            "Action": "dynamodb:Query",
            "Resource": format!("{table}/index/{}", metasync_aws::STATUS_INDEX),
        }),
    ];
    if let Some(key) = &p.kms_key_id {
        let resource = if key.starts_with("arn:") {
            key.clone()
        } else if key.starts_with("alias/") {
            format!("arn:aws:kms:{region}:{account}:{key}")
        } else {
            format!("arn:aws:kms:{region}:{account}:key/{key}")
        };
        statements.push(json!({
            "Sid": "CatalogFilesKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": resource,
        }));
    }
    Ok(json!({ "Version": "2012-10-17", "Statement": statements }))
}

/// Whether `policy` allows `action` on a resource whose ARN ends with `resource_suffix`
/// (for tests and for checking what a run called against what was printed).
pub fn allows(policy: &Value, action: &str, resource_suffix: &str) -> bool {
    let list = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    };
    policy["Statement"].as_array().is_some_and(|st| {
        st.iter().any(|s| {
            list(&s["Action"]).iter().any(|a| a == action)
                && list(&s["Resource"])
                    .iter()
                    .any(|r| r.ends_with(resource_suffix))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use metasync_engine::config::AwsProfile;

    fn chosen(consumers: Consumers, kms: Option<&str>) -> Chosen {
        Chosen {
            label: "profile staging".into(),
            name: Some("staging".into()),
            production: false,
            backend: BackendProfile::Aws(AwsProfile {
                region: Some("us-east-1".into()),
                endpoint_url: None,
                aws_profile: None,
                bucket: "cat-123456789012-us-east-1".into(),
                table: "cat".into(),
                queue_prefix: "cat".into(),
                kms_key_id: kms.map(String::from),
                max_receive_count: 10,
                consumers,
            }),
            target: None,
        }
    }

    #[test]
    fn a_desktop_with_lambda_consumers_may_enqueue_and_read_but_not_consume() {
        let p =
            desktop_policy(&chosen(Consumers::Lambda, None), Some("123456789012")).expect("policy");
        assert!(allows(
            &p,
            "sqs:SendMessage",
            ":123456789012:cat-episode.fifo"
        ));
        assert!(allows(
            &p,
            "sqs:GetQueueAttributes",
            ":cat-episode-dlq.fifo"
        ));
        assert!(!allows(&p, "sqs:ReceiveMessage", ":cat-episode.fifo"));
        assert!(!allows(&p, "sqs:DeleteMessage", ":cat-episode-dlq.fifo"));
        assert!(allows(&p, "dynamodb:Query", "table/cat/index/by_status"));
        assert!(!allows(&p, "dynamodb:Query", "table/other"));
        assert!(!allows(&p, "kms:Decrypt", ""), "no key, no key statement");
        // Nothing for every resource, nothing that creates or deletes resources.
        let text = p.to_string();
        assert!(!text.contains("\"Resource\":\"*\""), "{text}");
        for verb in ["Create", "Delete\"", "DeleteTable", "DeleteBucket", "iam:"] {
            assert!(!text.contains(verb), "{verb} in {text}");
        }
    }

    #[test]
    fn a_desktop_that_works_the_queues_may_consume_and_drain() {
        let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let p = desktop_policy(&chosen(Consumers::Here, Some(key)), None).expect("policy");
        assert!(allows(&p, "sqs:ReceiveMessage", ":*:cat-show.fifo"));
        assert!(allows(&p, "sqs:ChangeMessageVisibility", ":cat-show.fifo"));
        assert!(allows(&p, "sqs:DeleteMessage", ":cat-show-dlq.fifo"));
        assert!(allows(&p, "kms:GenerateDataKey", key));
        assert!(desktop_policy(&chosen(Consumers::Here, None), Some("12")).is_err());
    }
}
