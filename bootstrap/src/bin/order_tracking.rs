//! `order-tracking`: the Lambda consumer that records each order status change (seed 002), behind its SQS queue.

use std::sync::Arc;

use application::reactions::OrderTracking;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bootstrap::lambda::run_consumer(Arc::new(OrderTracking)).await
}
