//! `restaurant-notification`: the Lambda consumer that tells the restaurant about order changes (seed 002), behind its SQS queue.

use std::sync::Arc;

use outbox_application::reactions::RestaurantNotification;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    outbox_bootstrap::lambda::run_consumer(Arc::new(RestaurantNotification)).await
}
