//! The event publisher port: hand a batch of events to the bus, learn each entry's fate.

use async_trait::async_trait;

use crate::envelope::EventEnvelope;
use crate::BoxError;

/// What became of one entry of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    /// The bus accepted the entry.
    Published,
    /// The bus refused the entry.
    Failed {
        /// Whether publishing it again may succeed (throttling, internal errors).
        retryable: bool,
        /// The bus's reason, e.g. its error code and message.
        reason: String,
        /// How many times the adapter tried this entry.
        attempts: u32,
    },
}

/// Why a whole batch failed: no entry of it counts as published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The bus is throttling; retry later.
    #[error("the bus is throttling: {0}")]
    Throttled(#[source] BoxError),
    /// The bus could not be reached.
    #[error("the bus is unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

/// Publishes events to the bus.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes `events`, returning one outcome per entry in the same order. An
    /// entry is [`PublishOutcome::Published`] only if the bus accepted it.
    ///
    /// # Errors
    /// [`PublishError`] when the whole batch failed.
    async fn publish(&self, events: &[EventEnvelope]) -> Result<Vec<PublishOutcome>, PublishError>;
}
