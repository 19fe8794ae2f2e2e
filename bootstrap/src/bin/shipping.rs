//! `shipping`: the Lambda consumer that ships placed orders (seed 001), behind its SQS queue.

use std::sync::Arc;

use application::reactions::Shipping;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bootstrap::lambda::run_consumer(Arc::new(Shipping)).await
}
