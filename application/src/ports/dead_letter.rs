//! The dead-letter queue port: where records that cannot be handled go, instead of
//! blocking their shard.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use crate::change::{RecordIdentity, SequenceNumber};
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
    /// A stream record without a sequence number, by its stream event id: it
    /// cannot be named for a retry, so it is dead-lettered, never retried.
    #[serde(rename_all = "camelCase")]
    UnpositionedStreamRecord {
        /// The stream record's event id.
        event_id: String,
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
            LetterSource::UnpositionedStreamRecord { event_id } => {
                write!(f, "stream record {event_id} (no sequence number)")
            }
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
    /// What identifies the record, kept whatever a queue cuts of the payload.
    #[serde(default)]
    pub identity: RecordIdentity,
    /// The SHA-256 of the full payload (the raw record, or the envelope's JSON),
    /// in hex, so a cut copy can still be matched with its record.
    pub payload_sha256: String,
    /// The record.
    pub payload: DeadLetterPayload,
}

impl DeadLetter {
    /// A letter for `payload` from `source`; an event's id and type complete
    /// `identity`, and the payload's hash is taken here, before anything is cut.
    pub fn new(
        source: LetterSource,
        reason: impl Into<String>,
        attempts: u32,
        payload: DeadLetterPayload,
        mut identity: RecordIdentity,
    ) -> Self {
        let full = match &payload {
            DeadLetterPayload::Event { envelope } => {
                identity
                    .event_id
                    .get_or_insert_with(|| envelope.event_id.to_string());
                identity
                    .event_type
                    .get_or_insert_with(|| RecordIdentity::bounded(&envelope.event_type));
                serde_json::to_string(envelope).unwrap_or_default()
            }
            DeadLetterPayload::Raw { raw } => raw.clone(),
        };
        Self {
            source,
            reason: reason.into(),
            attempts,
            identity,
            payload_sha256: sha256_hex(full.as_bytes()),
            payload,
        }
    }
}

/// The SHA-256 of `bytes`, in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
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

/// A message of the dead-letter queue that is not a dead letter (cut by hand,
/// written by something else): shown and kept, never dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedLetter {
    /// The message as stored.
    pub body: String,
    /// Why it is not a dead letter.
    pub reason: String,
}

/// A dead letter as the queue holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLetter {
    /// Removes it from the queue (an SQS receipt handle, an item key).
    pub handle: String,
    /// When the queue received it, if the queue says.
    pub stored_at: Option<time::OffsetDateTime>,
    /// The letter, or why the message is none.
    pub content: Result<DeadLetter, MalformedLetter>,
}

/// One read of the dead-letter queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LetterPage {
    /// The letters read.
    pub letters: Vec<StoredLetter>,
    /// Where the next read starts; `None` when the queue has no more to show.
    pub next: Option<String>,
}

/// How full the dead-letter queue is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LetterDepth {
    /// Letters in the queue (approximate on SQS).
    pub letters: u64,
    /// When the oldest letter seen arrived.
    pub oldest: Option<time::OffsetDateTime>,
}

/// A dead-letter queue that can be read back, for an operator's redrive.
#[async_trait]
pub trait DeadLetterStore: DeadLetterQueue {
    /// Up to `max` letters after the position `after` (from the start when
    /// `None`). A queue without positions (SQS) ignores `after` and hides the
    /// letters it returns from other readers for a while.
    ///
    /// # Errors
    /// [`DeadLetterError`] when the queue cannot be read.
    async fn read(&self, after: Option<&str>, max: usize) -> Result<LetterPage, DeadLetterError>;

    /// Removes the letter `handle` names, once it was handled again.
    ///
    /// # Errors
    /// [`DeadLetterError`] when the queue cannot be written.
    async fn remove(&self, handle: &str) -> Result<(), DeadLetterError>;

    /// How many letters wait and since when.
    ///
    /// # Errors
    /// [`DeadLetterError`] when the queue cannot be read.
    async fn depth(&self) -> Result<LetterDepth, DeadLetterError>;
}
