//! The in-memory change feed, read like a Lambda event source mapping reads a
//! DynamoDB stream shard: in order, in batches, at least once. Its position is a
//! [`ShardTracker`], the same arithmetic the DynamoDB stream relay uses: when the
//! relay reports a failure, the next batch starts at the first failed record, so
//! the records after it in the batch come again.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use serde_json::Value;

use outbox_application::ports::{ChangeFeed, FeedError, FeedReport};
use outbox_application::{
    ChangeContent, ChangeRecord, EventEnvelope, RecordIdentity, Relay, SequenceNumber, ShardTracker,
};

use crate::store::MemoryStore;

/// The width of a sequence number, zero-padded so they also sort as text.
const SEQUENCE_DIGITS: usize = 20;

/// Where readers stand in a change log. Readers given the same position share
/// it, as relay processes share their checkpoints in DynamoDB: a new reader
/// resumes where the last one checkpointed.
#[derive(Debug, Clone)]
pub struct StreamPosition(Arc<Mutex<ShardTracker>>);

impl Default for StreamPosition {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(ShardTracker::new(None, u32::MAX))))
    }
}

impl StreamPosition {
    fn lock(&self) -> MutexGuard<'_, ShardTracker> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A reader of a [`MemoryStore`]'s change log that relays what it reads.
#[derive(Clone)]
pub struct MemoryStream {
    store: MemoryStore,
    relay: Relay,
    position: StreamPosition,
    batch_size: usize,
}

impl MemoryStream {
    /// Reads `store`'s change log from `position`, `batch_size` records at a
    /// time, into `relay`.
    pub fn new(
        store: MemoryStore,
        position: StreamPosition,
        relay: Relay,
        batch_size: usize,
    ) -> Self {
        Self {
            store,
            relay,
            position,
            batch_size: batch_size.max(1),
        }
    }

    /// Whether every record has been handled.
    pub fn is_drained(&self) -> bool {
        self.next_index() >= self.store.change_count()
    }

    /// The index of the first record not handled.
    fn next_index(&self) -> usize {
        self.position
            .lock()
            .checkpoint()
            .and_then(|sequence| sequence.as_str().parse::<usize>().ok())
            .unwrap_or(0)
    }
}

#[async_trait]
impl ChangeFeed for MemoryStream {
    async fn poll(&mut self) -> Result<FeedReport, FeedError> {
        let batch: Vec<ChangeRecord> = self
            .store
            .changes(self.next_index(), self.batch_size)
            .into_iter()
            .map(|(index, image)| decode(index, image))
            .collect();
        let relayed = self.relay.relay(&batch).await?;
        let read: Vec<SequenceNumber> = batch.iter().map(|r| r.sequence.clone()).collect();
        self.position
            .lock()
            .after_read(&read, relayed.retry_from.as_ref(), false);
        Ok(FeedReport {
            records: batch.len(),
            published: relayed.published,
            dead_lettered: relayed.dead_lettered,
            retries: usize::from(relayed.retry_from.is_some()),
            failures: 0,
            republished: 0,
        })
    }
}

/// Turns a raw image into a change record: an outbox event, or poison. The
/// record at `index` has sequence number `index + 1`.
fn decode(index: usize, image: Value) -> ChangeRecord {
    let sequence = SequenceNumber::new(format!("{:0width$}", index + 1, width = SEQUENCE_DIGITS));
    let content = match serde_json::from_value::<EventEnvelope>(image.clone()) {
        Ok(envelope) => ChangeContent::Outbox(envelope),
        Err(error) => {
            let text = |name: &str| {
                image
                    .get(name)
                    .and_then(Value::as_str)
                    .map(RecordIdentity::bounded)
            };
            ChangeContent::Poison {
                reason: format!("not an outbox event: {error}"),
                identity: RecordIdentity {
                    event_id: text("eventId"),
                    event_type: text("eventType"),
                    ..RecordIdentity::default()
                },
                raw: image.to_string(),
            }
        }
    };
    ChangeRecord { sequence, content }
}
