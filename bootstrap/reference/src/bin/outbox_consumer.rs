//! `outbox-consumer`: every consumer of the reference service in one Lambda
//! binary; `CONSUMER_NAME` picks the one a function runs.

// One invocation at a time: a runtime on this thread, no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    outbox_bootstrap::lambda::run_consumer(outbox_reference::service).await
}
