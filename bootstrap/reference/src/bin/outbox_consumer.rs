//! `outbox-consumer`: every consumer of the reference service in one Lambda
//! binary; `CONSUMER_NAME` picks the one a function runs.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    outbox_bootstrap::lambda::run_consumer(outbox_reference::service).await
}
