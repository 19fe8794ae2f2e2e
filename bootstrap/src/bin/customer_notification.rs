//! `customer-notification`: the Lambda consumer that tells customers their repair is done (seed 000), behind its SQS queue.

use std::sync::Arc;

use outbox_application::reactions::CustomerNotification;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    outbox_bootstrap::lambda::run_consumer(Arc::new(CustomerNotification)).await
}
