//! The in-memory change feed, read like a Lambda event source mapping reads a
//! DynamoDB stream shard: in order, in batches, at least once. When the relay
//! reports a failure, the next batch starts at the first failed record, so the
//! records after it in the batch come again.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use application::{ChangeContent, ChangeRecord, EventEnvelope, Relay, RelayReport, SequenceNumber};

use crate::fault::FaultPlan;
use crate::store::MemoryStore;

/// A fault to inject into the next delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFault {
    /// The relay runs, then its invocation dies before reporting: nothing is
    /// checkpointed and the whole batch comes again.
    CrashAfterRelay,
}

/// A reader of a [`MemoryStore`]'s change log with a checkpoint.
#[derive(Debug, Clone)]
pub struct MemoryStream {
    store: MemoryStore,
    checkpoint: Arc<Mutex<usize>>,
    batch_size: usize,
    faults: FaultPlan<StreamFault>,
}

/// The width of a sequence number, zero-padded so they also sort as text.
const SEQUENCE_DIGITS: usize = 20;

impl MemoryStream {
    /// Reads `store`'s change log from the start, `batch_size` records at a time.
    pub fn new(store: MemoryStore, batch_size: usize) -> Self {
        Self {
            store,
            checkpoint: Arc::default(),
            batch_size: batch_size.max(1),
            faults: FaultPlan::default(),
        }
    }

    /// The faults its next deliveries suffer.
    pub fn faults(&self) -> &FaultPlan<StreamFault> {
        &self.faults
    }

    /// Whether every record has been handled.
    pub fn is_drained(&self) -> bool {
        *self.lock() >= self.store.change_count()
    }

    /// The next batch, from the checkpoint on.
    pub fn next_batch(&self) -> Vec<ChangeRecord> {
        let from = *self.lock();
        self.store
            .changes(from, self.batch_size)
            .into_iter()
            .map(|(index, image)| decode(index, image))
            .collect()
    }

    /// Delivers the next batch to `relay` and moves the checkpoint by its report:
    /// to the first failed record, or past the batch. `None` when drained.
    pub async fn deliver(&self, relay: &Relay) -> Option<RelayReport> {
        let batch = self.next_batch();
        let first = batch.first()?.sequence.clone();
        let report = relay.relay(&batch).await;
        if self.faults.take() == Some(StreamFault::CrashAfterRelay) {
            return Some(RelayReport {
                retry_from: Some(first),
                ..report
            });
        }
        let handled = match &report.retry_from {
            Some(failed) => batch.iter().take_while(|r| &r.sequence != failed).count(),
            None => batch.len(),
        };
        *self.lock() += handled;
        Some(report)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.checkpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Turns a raw image into a change record: an outbox event, or poison.
fn decode(index: usize, image: Value) -> ChangeRecord {
    let sequence = SequenceNumber::new(format!("{:0width$}", index + 1, width = SEQUENCE_DIGITS));
    let content = match serde_json::from_value::<EventEnvelope>(image.clone()) {
        Ok(envelope) => ChangeContent::Outbox(envelope),
        Err(error) => ChangeContent::Poison {
            reason: format!("not an outbox event: {error}"),
            raw: image.to_string(),
        },
    };
    ChangeRecord { sequence, content }
}
