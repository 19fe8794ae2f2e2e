//! `outbox-relay`: the reference service's Lambda function on the table's DynamoDB stream.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    outbox_bootstrap::lambda::run_outbox_relay(outbox_reference::service).await
}
