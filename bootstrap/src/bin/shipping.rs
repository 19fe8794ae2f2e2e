//! `shipping`: the Lambda consumer that ships placed orders (seed 001), behind its SQS queue.

use std::sync::Arc;

use outbox_application::reactions::Shipping;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    outbox_bootstrap::lambda::run_consumer(Arc::new(Shipping)).await
}
