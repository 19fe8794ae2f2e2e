//! The change-feed port: a reader of the outbox's change log (a DynamoDB stream,
//! or the in-memory store's log) that hands records to the relay in order and
//! moves its checkpoints by the relay's report.

use async_trait::async_trait;

use crate::relay::BusRefused;
use crate::BoxError;

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedReport {
    /// Records read, outbox or not.
    pub records: usize,
    /// Events the bus accepted, repeats included.
    pub published: usize,
    /// Records sent to the dead-letter queue.
    pub dead_lettered: usize,
    /// Shards where the relay reported a failed record; they are read again from it.
    pub retries: usize,
    /// Shards whose read failed (the stream, the checkpoint); each is read
    /// again from its checkpoint on the next poll, the others went on.
    pub failures: usize,
    /// Events republished from the outbox over a gap the stream had trimmed.
    pub republished: usize,
}

/// Why a poll failed; polling again resumes from the checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The bus refuses the relay; nothing more can be published until it is fixed.
    #[error(transparent)]
    BusRefused(#[from] BusRefused),
    /// Reading the feed or saving a checkpoint failed.
    #[error("reading the change feed failed: {0}")]
    Read(#[source] BoxError),
}

/// Reads the change log and relays it, checkpointing what was handled.
#[async_trait]
pub trait ChangeFeed: Send {
    /// Reads what is ready in each shard once, relays it, and moves each shard's
    /// checkpoint past what was handled (to just before the first failed record).
    ///
    /// # Errors
    /// [`FeedError`]; nothing past the last saved checkpoint counts as handled.
    async fn poll(&mut self) -> Result<FeedReport, FeedError>;

    /// Stops reading for good and gives up whatever the reader holds (a
    /// shard lease), so that the next reader starts at once.
    async fn stop(&mut self) {}
}
