//! `metasync-lambda`: the one binary every Metasync function runs (`bootstrap` on
//! `provided.al2023`); `METASYNC_HANDLER` says which handler.

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, LambdaEvent};
use metasync_lambda::{on_s3, on_schedule, on_sqs, Deployed, Deployment, Error, Handler};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    metasync_runtime::logging::init_stdout_json();
    let deployment = Deployment::from_vars(|k| std::env::var(k).ok())?;
    let aws = deployment
        .aws()
        .cloned()
        .ok_or("the deployed profile has no AWS resources")?;
    // The function's role, through the standard chain.
    let clients = metasync_aws::Clients::new(&aws, None).await?;
    let d = Arc::new(Deployed::open(deployment, &clients).await?);
    match d.deployment.handler {
        Handler::Ingest => {
            run(service_fn(|e: LambdaEvent<S3Event>| {
                let d = d.clone();
                async move { on_s3(&d, e.payload).await }
            }))
            .await
        }
        Handler::Consume(entity) => {
            run(service_fn(|e: LambdaEvent<SqsEvent>| {
                let d = d.clone();
                async move { Ok::<_, Error>(on_sqs(&d, entity, e.payload).await) }
            }))
            .await
        }
        Handler::Drain | Handler::Refresh => {
            run(service_fn(|_: LambdaEvent<serde_json::Value>| {
                let d = d.clone();
                async move { on_schedule(&d).await }
            }))
            .await
        }
    }
}
