//! The inbox port: a consumer's effect and the mark "this event was handled",
//! written together, so an effect happens once however often the event arrives.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::EventId;
use crate::BoxError;

/// A consumer's effect, recorded as data (an invoice, a notification, a tracking entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Effect {
    /// What kind of record, e.g. `Invoice`.
    pub kind: String,
    /// The event that caused it.
    pub event_id: EventId,
    /// The record.
    pub data: Value,
}

/// Whether the effect was applied now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxOutcome {
    /// First delivery: the effect and the mark were written together.
    Applied,
    /// The event was handled before: nothing was written.
    AlreadyProcessed,
}

/// Why the inbox failed.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// Retry later; nothing or everything was written, never half.
    #[error("the inbox is unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

/// Remembers which events each consumer handled, and applies effects atomically with that.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Whether `consumer` handled `event_id` already.
    ///
    /// # Errors
    /// [`InboxError::Unavailable`].
    async fn processed(&self, consumer: &str, event_id: EventId) -> Result<bool, InboxError>;

    /// Marks `event_id` handled by `consumer` and writes `effect` in the same
    /// atomic step, unless it was marked already.
    ///
    /// # Errors
    /// [`InboxError::Unavailable`].
    async fn apply_once(
        &self,
        consumer: &str,
        event_id: EventId,
        effect: Option<Effect>,
    ) -> Result<InboxOutcome, InboxError>;
}
