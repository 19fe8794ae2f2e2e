//! The inbox port: a consumer's effect and the mark "this event was handled",
//! written together, so an effect happens once however often the event arrives;
//! and, for an external effect, the claim that keeps two deliveries from
//! calling at once (see [`external`](crate::external)).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::envelope::{EncodeError, EventEnvelope};
use crate::ids::{AggregateRef, EventId};
use crate::ports::sequence::{ParkedAggregate, Sequence, SequenceOutcome, SequenceWrite};
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

impl Effect {
    /// `data` recorded as an effect of `kind` caused by `event`.
    ///
    /// # Errors
    /// [`EncodeError`] when `data` does not serialize.
    pub fn of(
        kind: &str,
        event: &EventEnvelope,
        data: &impl Serialize,
    ) -> Result<Self, EncodeError> {
        let data = serde_json::to_value(data).map_err(EncodeError::of("effect"))?;
        Ok(Self {
            kind: kind.to_owned(),
            event_id: event.event_id,
            data,
        })
    }
}

/// Whether the effect was applied now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxOutcome {
    /// First delivery: the effect and the mark were written together.
    Applied,
    /// The event was handled before: nothing was written.
    AlreadyProcessed,
}

/// A delivery's claim on an event, taken before an external call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Who holds it: unique per delivery attempt.
    pub token: String,
    /// When it was taken.
    pub at: OffsetDateTime,
    /// When it expires: after this, another delivery may take it over.
    pub until: OffsetDateTime,
}

/// What claiming an event found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The claim is the caller's; `took_over` if an expired claim was replaced.
    Claimed {
        /// Whether a previous holder's claim had expired and was replaced.
        took_over: bool,
    },
    /// The event's effect was completed before: nothing was written.
    Completed,
    /// Another delivery holds a live claim until then: hand the delivery back.
    Held {
        /// When that claim expires.
        until: OffsetDateTime,
    },
}

/// The completed mark of an external effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// What was called, e.g. `Email`.
    pub kind: String,
    /// The SHA-256 (hex) of the call's receipt.
    pub digest: String,
    /// A data effect written with the mark.
    pub record: Option<Effect>,
}

/// Whether the completed mark was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompleteOutcome {
    /// The mark (and the record) were written.
    Completed,
    /// The claim was no longer the caller's (it expired and was taken over, or
    /// another holder completed it): nothing was written.
    Lost,
}

/// Why the inbox failed.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// Retry later; nothing or everything was written, never half.
    #[error("the inbox is unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

/// Remembers which events each consumer handled, and applies effects atomically with that.
///
/// An unordered consumer's mark is one item per (consumer, event id). An
/// ordered consumer's mark is its [`Sequence`] per (consumer, aggregate): every
/// version up to `applied` is handled.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Whether `consumer` handled `event_id` already (an in-progress claim is
    /// not handled).
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

    /// Claims `event_id` for `consumer`'s external call: writes an in-progress
    /// mark if there is no mark, or if the in-progress mark there expired
    /// before `claim.at`; otherwise reports what is there.
    ///
    /// # Errors
    /// [`InboxError::Unavailable`].
    async fn claim(
        &self,
        consumer: &str,
        event_id: EventId,
        claim: &Claim,
    ) -> Result<ClaimOutcome, InboxError>;

    /// Replaces the in-progress mark held by `token` with the completed mark
    /// and writes `completion.record` in the same atomic step.
    ///
    /// # Errors
    /// [`InboxError::Unavailable`]; nothing or everything was written.
    async fn complete(
        &self,
        consumer: &str,
        event_id: EventId,
        token: &str,
        completion: Completion,
    ) -> Result<CompleteOutcome, InboxError>;

    /// Deletes the in-progress mark held by `token`, if it is still there, so
    /// the next delivery may call at once.
    ///
    /// # Errors
    /// [`InboxError::Unavailable`].
    async fn release(
        &self,
        consumer: &str,
        event_id: EventId,
        token: &str,
    ) -> Result<(), InboxError>;

    /// Counts one redelivery of `consumer`'s that was recognised and ignored.
    ///
    /// # Errors
    /// [`InboxError::Unavailable`]; the caller may ignore it (only the count suffers).
    async fn count_duplicate(&self, consumer: &str) -> Result<(), InboxError>;

    /// Where `consumer` stands on `aggregate`; the default sequence if nowhere yet.
    ///
    /// # Errors
    /// [`InboxError::Unavailable`].
    async fn sequence(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
    ) -> Result<Sequence, InboxError>;

    /// Writes `write` atomically if the sequence is still at `revision`.
    ///
    /// # Errors
    /// [`InboxError::Unavailable`]; nothing or everything was written.
    async fn write_sequence(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
        revision: u64,
        write: SequenceWrite,
    ) -> Result<SequenceOutcome, InboxError>;

    /// The event of `version` in the parked list of (`consumer`, `aggregate`).
    ///
    /// # Errors
    /// [`InboxError::Unavailable`].
    async fn held(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
        version: outbox_domain::Version,
    ) -> Result<Option<EventEnvelope>, InboxError>;

    /// Every parked aggregate of every consumer.
    ///
    /// # Errors
    /// [`InboxError::Unavailable`].
    async fn parked(&self) -> Result<Vec<ParkedAggregate>, InboxError>;

    /// How many aggregates `consumer` holds parked now: a level an alarm can
    /// stay raised on. Counted from [`Inbox::parked`] unless an adapter
    /// answers it more cheaply (an index of the parked only).
    ///
    /// # Errors
    /// [`InboxError::Unavailable`].
    async fn parked_count(&self, consumer: &str) -> Result<u64, InboxError> {
        let parked = self.parked().await?;
        Ok(parked.iter().filter(|p| p.consumer == consumer).count() as u64)
    }
}
