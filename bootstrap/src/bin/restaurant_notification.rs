//! `restaurant-notification`: the Lambda consumer that tells the restaurant about order changes (seed 002), behind its SQS queue.

use std::sync::Arc;

use application::reactions::RestaurantNotification;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bootstrap::lambda::run_consumer(Arc::new(RestaurantNotification)).await
}
