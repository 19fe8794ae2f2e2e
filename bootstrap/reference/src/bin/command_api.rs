//! `command-api`: the reference service's Lambda function behind API Gateway or a Function URL.

// One invocation at a time: a runtime on this thread, no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    outbox_bootstrap::lambda::run_command_api(outbox_reference::service).await
}
