//! `invoicing`: the Lambda consumer that invoices completed repairs (seed 000), behind its SQS queue.

use std::sync::Arc;

use application::reactions::Invoicing;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bootstrap::lambda::run_consumer(Arc::new(Invoicing)).await
}
