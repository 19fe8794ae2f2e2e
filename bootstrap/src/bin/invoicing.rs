//! `invoicing`: the Lambda consumer that invoices completed repairs (seed 000), behind its SQS queue.

use std::sync::Arc;

use outbox_application::reactions::Invoicing;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    outbox_bootstrap::lambda::run_consumer(Arc::new(Invoicing)).await
}
