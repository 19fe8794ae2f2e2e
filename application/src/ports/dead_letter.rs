//! The dead-letter queue port: where records that cannot be handled go, instead of
//! blocking their shard.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::change::SequenceNumber;
use crate::envelope::EventEnvelope;
use crate::BoxError;

/// What a dead letter holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every value is the event variant; boxing it would only add an allocation"
)]
pub enum DeadLetterPayload {
    /// A decoded event the bus refused for good.
    Event {
        /// The event.
        envelope: EventEnvelope,
    },
    /// A record that could not be decoded.
    Raw {
        /// The record as received.
        raw: String,
    },
}

/// Where a dead letter came from, so it can be found and sent back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum LetterSource {
    /// A stream record the relay could not publish, by its position in its shard.
    #[serde(rename_all = "camelCase")]
    StreamRecord {
        /// The record's sequence number.
        sequence: SequenceNumber,
    },
    /// A queue message a consumer could not consume, by its message id.
    #[serde(rename_all = "camelCase")]
    QueueMessage {
        /// The consumer it was delivered to.
        consumer: String,
        /// The queue's id of the message (an SQS message id).
        message_id: String,
    },
}

impl std::fmt::Display for LetterSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LetterSource::StreamRecord { sequence } => write!(f, "stream record {sequence}"),
            LetterSource::QueueMessage {
                consumer,
                message_id,
            } => write!(f, "message {message_id} of {consumer}"),
        }
    }
}

/// A record that could not be handled, with why and how often it was tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Where it came from.
    pub source: LetterSource,
    /// Why it was dead-lettered.
    pub reason: String,
    /// How many attempts were made.
    pub attempts: u32,
    /// The record.
    pub payload: DeadLetterPayload,
}

/// Why a dead letter could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("the dead-letter queue is unavailable: {0}")]
pub struct DeadLetterError(#[source] pub BoxError);

/// Keeps dead letters for inspection and redrive.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait DeadLetterQueue: Send + Sync {
    /// Stores `letter` durably.
    ///
    /// # Errors
    /// [`DeadLetterError`] when it could not be stored; the caller must not
    /// count the record as handled.
    async fn send(&self, letter: DeadLetter) -> Result<(), DeadLetterError>;
}
