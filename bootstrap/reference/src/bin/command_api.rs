//! `command-api`: the reference service's Lambda function behind API Gateway or a Function URL.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    outbox_bootstrap::lambda::run_command_api(outbox_reference::service).await
}
