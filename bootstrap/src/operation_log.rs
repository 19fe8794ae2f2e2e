//! The DynamoDB operations a client puts on the wire, in order, for counting
//! what a unit of work costs (tests and benchmarks).

use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};

/// A log of operation names (`GetItem`, `TransactWriteItems`, …). Clones share it.
#[derive(Debug, Clone, Default)]
pub struct OperationLog(Arc<Mutex<Vec<String>>>);

impl OperationLog {
    /// A client like `client` whose every request is logged here.
    pub fn attach(&self, client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            client
                .config()
                .to_builder()
                .interceptor(self.clone())
                .build(),
        )
    }

    /// How many `operation` requests were logged.
    pub fn count(&self, operation: &str) -> usize {
        self.lock()
            .iter()
            .filter(|logged| *logged == operation)
            .count()
    }

    /// Takes the operations logged so far, leaving the log empty.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Intercept for OperationLog {
    fn name(&self) -> &'static str {
        "OperationLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        if let Some(target) = context.request().headers().get("x-amz-target") {
            let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
            self.lock().push(operation);
        }
        Ok(())
    }
}
