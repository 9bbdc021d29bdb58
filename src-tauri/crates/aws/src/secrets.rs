//! The target's credentials from AWS Secrets Manager: one secret whose string is JSON
//! `{"key": "…", "secret": "…"}` (the Media Manager API key and secret, or an OAuth2
//! client id and secret). The values are handed over, never logged or shown in errors.

use aws_sdk_secretsmanager::error::SdkError;

/// A key and its secret as the secret holds them. No `Debug`: nothing prints them.
pub struct KeyPair {
    pub key: String,
    pub secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("Secrets Manager GetSecretValue {id}: {message}")]
    Call { id: String, message: String },
    #[error("the secret {id} is not JSON with \"key\" and \"secret\" strings: store it as {{\"key\":\"…\",\"secret\":\"…\"}}")]
    Shape { id: String },
}

#[derive(serde::Deserialize)]
struct Shape {
    key: String,
    secret: String,
}

/// Read the secret `id` (a name or an ARN).
pub async fn key_pair(config: &aws_config::SdkConfig, id: &str) -> Result<KeyPair, SecretError> {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| SecretError::Call {
            id: id.to_string(),
            message: match &e {
                SdkError::ServiceError(s) => s.err().to_string(),
                other => other.to_string(),
            },
        })?;
    let shape = || SecretError::Shape { id: id.to_string() };
    let text = out.secret_string().ok_or_else(shape)?;
    let pair: Shape = serde_json::from_str(text).map_err(|_| shape())?;
    if pair.key.is_empty() || pair.secret.is_empty() {
        return Err(shape());
    }
    Ok(KeyPair {
        key: pair.key,
        secret: pair.secret,
    })
}
