//! `outbox-relay`: the reference service's Lambda function on the table's DynamoDB stream.

// One invocation at a time: a runtime on this thread, no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    outbox_bootstrap::lambda::run_outbox_relay(outbox_reference::service).await
}
