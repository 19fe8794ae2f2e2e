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

/// The order a bus promises to keep between the events it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusOrder {
    /// None: events may reach subscribers in any order (a classic EventBridge
    /// bus, an SQS standard queue). The relay packs calls fully and keeps
    /// several in flight whatever the aggregates.
    Unordered,
    /// Per aggregate, the order of acceptance (a Custom Event Bus with the
    /// aggregate as event group). The relay sends an aggregate's event only
    /// after the call that carried its previous event came back with it
    /// accepted: at most one event per aggregate in a call, and no two calls in
    /// flight share an aggregate.
    PerAggregate,
}

/// How much one publish call may carry and which order the bus keeps; the
/// relay packs its batches by them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// The most entries in one call.
    pub max_entries: usize,
    /// The summed [`EventPublisher::entry_size`] of one call must stay below this;
    /// an entry that alone reaches it can never be published.
    pub max_batch_bytes: usize,
    /// The order the bus keeps.
    pub order: BusOrder,
}

/// Why a whole batch failed: no entry of it counts as published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The bus refuses this publisher for good: it does not exist, or access is
    /// denied. No event can be published until the configuration is fixed, so
    /// the relay stops instead of dead-lettering everything.
    #[error("the bus refuses the publisher: {0}")]
    Refused(#[source] BoxError),
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
    /// The limits of one [`EventPublisher::publish`] call.
    fn limits(&self) -> BatchLimits;

    /// The size of `event`'s entry as the bus counts it against [`BatchLimits`].
    fn entry_size(&self, event: &EventEnvelope) -> usize;

    /// Publishes `events` (within [`EventPublisher::limits`]) in one call, returning
    /// one outcome per entry in the same order. An entry is
    /// [`PublishOutcome::Published`] only if the bus accepted it.
    ///
    /// # Errors
    /// [`PublishError`] when the whole batch failed.
    async fn publish(&self, events: &[EventEnvelope]) -> Result<Vec<PublishOutcome>, PublishError>;
}
