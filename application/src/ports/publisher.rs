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

impl BatchLimits {
    /// `PutEvents` on a classic EventBridge bus (`aws-sdk-eventbridge`): at most
    /// 10 entries, their sizes summed less than 1 MB, no order kept. The
    /// publisher and the in-memory bus that stands for it both report these.
    ///
    /// - 10 entries: "Array Members: Minimum number of 1 item. Maximum number of
    ///   10 items." (Amazon EventBridge API Reference, `PutEvents`, `Entries`,
    ///   <https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html>).
    /// - 1 MB: "You can batch multiple event entries into one request for
    ///   efficiency. However, the total entry size must be less than 1MB." (the
    ///   same page, as `aws-sdk-eventbridge` 1.127 carries it), raised from 256 KB
    ///   on 29 January 2026: "AWS has raised the maximum payload size from 256 KB
    ///   to 1 MB for asynchronous AWS Lambda function invocations, Amazon Simple
    ///   Queue Service (Amazon SQS), and Amazon EventBridge." (AWS Compute Blog,
    ///   "More room to build: serverless services now support payloads up to 1 MB",
    ///   <https://aws.amazon.com/blogs/compute/more-room-to-build-serverless-services-now-support-payloads-up-to-1-mb>).
    ///   Neither says whether that MB is 10^6 or 2^20 bytes, so the smaller is
    ///   kept; no outbox event comes near it, DynamoDB's item limit being 400 KB.
    /// - The limit is on the sum, so one entry may take all of it; an entry is
    ///   counted as AWS counts it (the adapter's `entry_size` cites the rule).
    pub const CLASSIC_EVENT_BUS: Self = Self {
        max_entries: 10,
        max_batch_bytes: 1_000_000,
        order: BusOrder::Unordered,
    };

    /// `PutEvents` on an EventBridge Custom Event Bus (`aws-sdk-eventbridgev2`,
    /// `AWS::EventsV2::*`): at most 100 entries, their sizes summed less than
    /// 256 KiB, order kept per aggregate (the event group). The publisher and
    /// the in-memory bus that stands for it both report these.
    ///
    /// - 100 entries: "Array Members: Minimum number of 1 item. Maximum number of
    ///   100 items." (Amazon EventBridge Custom Event Bus API Reference,
    ///   `PutEvents`, `Entries`,
    ///   <https://docs.aws.amazon.com/eventbridgev2/latest/APIReference/API_PutEvents.html>).
    /// - Size: not documented. That reference and `aws-sdk-eventbridgev2` 1.7
    ///   state no size per entry or per request, nor how an entry is counted;
    ///   none was found in the Custom Event Bus quotas
    ///   (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html>),
    ///   and the 1 MB announcement names Amazon EventBridge, not this bus. So the
    ///   limit this publisher has always run within is kept: the classic bus's
    ///   before 29 January 2026, 256 KiB, an entry counted by the classic rule
    ///   plus its group and deduplication ids. An event larger than that is
    ///   dead-lettered on this bus, to be redriven once a limit is documented.
    pub const CUSTOM_EVENT_BUS: Self = Self {
        max_entries: 100,
        max_batch_bytes: 256 * 1024,
        order: BusOrder::PerAggregate,
    };
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
