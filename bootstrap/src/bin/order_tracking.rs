//! `order-tracking`: the Lambda consumer that records each order status change (seed 002), behind its SQS queue.

use std::sync::Arc;

use outbox_application::reactions::OrderTracking;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    outbox_bootstrap::lambda::run_consumer(Arc::new(OrderTracking)).await
}
