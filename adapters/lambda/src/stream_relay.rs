//! The relay on Lambda: a DynamoDB stream batch in, `batchItemFailures` out.
//!
//! Records are relayed in stream order. When one cannot be published, the
//! response names its sequence number: Lambda retries the batch from there, so
//! everything before it is not sent again and per-aggregate order holds. Poison
//! records — an outbox insert without a sequence number among them — are
//! dead-lettered and count as handled (seed `003`). A
//! bus that refuses the relay fails the invocation: Lambda retries the batch
//! (and, with the mapping's bisect and retry limits, sends it to the on-failure
//! destination) rather than the relay dead-lettering every record.

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use tracing::{info, warn};

use outbox_application::ports::DeadLetterError;
use outbox_application::{BusRefused, Relay};

use crate::{telemetry, StreamBatch};

/// Why a batch could not be relayed at all; Lambda retries the whole batch.
#[derive(Debug, thiserror::Error)]
pub enum StreamBatchError {
    /// An outbox record without a position could not be dead-lettered (it
    /// cannot be named for a retry, so the whole batch comes again).
    #[error(transparent)]
    DeadLetters(#[from] DeadLetterError),
    /// The bus refuses the relay: a configuration error to fix.
    #[error(transparent)]
    BusRefused(#[from] BusRefused),
}

/// Relays the outbox inserts of `batch` (a [`StreamBatch`], or a typed
/// `aws_lambda_events` stream event by reference); the response names the
/// first record to retry, if any.
///
/// # Errors
/// [`StreamBatchError`] when a record without a position could not be
/// dead-lettered, or the bus refuses the relay.
pub async fn relay_stream_batch(
    relay: &Relay,
    batch: impl Into<StreamBatch>,
) -> Result<DynamoDbEventResponse, StreamBatchError> {
    let batch = batch.into();
    // Poison like any other, but with no position to name: dead-lettered first.
    for missing in batch.unpositioned {
        relay.dead_letter_record(missing.into_letter()).await?;
    }
    let records = batch.changes;
    let report = relay.relay(&records).await?;
    telemetry::relay_run(&records, &report);
    info!(
        records = batch.records,
        outbox = records.len(),
        published = report.published,
        dead_lettered = report.dead_lettered,
        retry_from = report.retry_from.as_ref().map(|s| s.as_str()),
        "stream batch relayed"
    );
    let mut response = DynamoDbEventResponse::default();
    if let Some(sequence) = report.retry_from {
        warn!(%sequence, "asking Lambda to retry from a record");
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence.as_str().to_owned());
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}
