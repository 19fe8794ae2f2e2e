//! Consuming an event exactly once: inbox check → reaction → effect and mark in
//! one atomic step.
//!
//! Delivery is at least once (the bus and the queue may both repeat an event); the
//! inbox turns that into exactly-once effects. A reaction is pure: it turns an
//! event into the effect to record, and the inbox writes that effect together with
//! the (consumer, event id) mark.

use std::sync::Arc;

use tracing::{debug, info};

use crate::envelope::{EnvelopeError, EventEnvelope};
use crate::ports::{Effect, Inbox, InboxError, InboxOutcome};

/// A consumer's decision on an event: the effect to record, or nothing.
pub trait Reaction: Send + Sync {
    /// The consumer's stable name; the inbox key's first half. Never rename one.
    fn name(&self) -> &'static str;

    /// The effect `event` calls for, or `None` if this consumer ignores it.
    ///
    /// # Errors
    /// [`EnvelopeError`] when the event's payload does not decode.
    fn react(&self, event: &EventEnvelope) -> Result<Option<Effect>, EnvelopeError>;
}

/// What consuming one delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumed {
    /// The effect was recorded now.
    Applied,
    /// The event is of no interest to this consumer; it is marked handled.
    Ignored,
    /// A repeated delivery: the effect was recorded before, nothing was written.
    Duplicate,
}

/// Why a delivery could not be consumed.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The event cannot be understood; retrying will not help (dead-letter it).
    #[error("undecodable event: {0}")]
    Undecodable(#[from] EnvelopeError),
    /// The inbox failed; retry the delivery.
    #[error(transparent)]
    Inbox(#[from] InboxError),
}

/// The consume use case for one consumer.
#[derive(Clone)]
pub struct ConsumeService {
    inbox: Arc<dyn Inbox>,
    reaction: Arc<dyn Reaction>,
}

impl ConsumeService {
    /// Wires a reaction to an inbox.
    pub fn new(inbox: Arc<dyn Inbox>, reaction: Arc<dyn Reaction>) -> Self {
        Self { inbox, reaction }
    }

    /// The consumer's name.
    pub fn name(&self) -> &'static str {
        self.reaction.name()
    }

    /// Consumes one delivery of `event`.
    ///
    /// # Errors
    /// [`ConsumeError::Undecodable`] (permanent) or [`ConsumeError::Inbox`] (retry).
    pub async fn consume(&self, event: &EventEnvelope) -> Result<Consumed, ConsumeError> {
        let consumer = self.reaction.name();
        if self.inbox.processed(consumer, event.event_id).await? {
            debug!(consumer, event_id = %event.event_id, "duplicate delivery");
            return Ok(Consumed::Duplicate);
        }
        let effect = self.reaction.react(event)?;
        let ignored = effect.is_none();
        match self
            .inbox
            .apply_once(consumer, event.event_id, effect)
            .await?
        {
            InboxOutcome::AlreadyProcessed => Ok(Consumed::Duplicate),
            InboxOutcome::Applied if ignored => Ok(Consumed::Ignored),
            InboxOutcome::Applied => {
                info!(consumer, event_id = %event.event_id, event_type = event.event_type, "effect applied");
                Ok(Consumed::Applied)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::EventContext;
    use crate::ids::AggregateId;
    use crate::ports::inbox::MockInbox;
    use crate::reactions::Invoicing;
    use crate::trace::Traceparent;
    use domain::repair::{Repair, RepairEvent};
    use domain::{Money, Text, Version};
    use time::OffsetDateTime;
    use uuid::Uuid;

    fn completed() -> EventEnvelope {
        let context = EventContext {
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            correlation_id: "c".into(),
            causation_id: "r".into(),
            traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
        };
        let event = RepairEvent::RepairCompleted {
            vehicle: Text::parse("v", "car").unwrap(),
            customer: Text::parse("c", "Ada").unwrap(),
            total_cents: Money::from_cents(700).unwrap(),
        };
        EventEnvelope::wrap::<Repair>(
            AggregateId::from_uuid(Uuid::from_u128(3)),
            Version::new(3),
            &event,
            &context,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_repeated_delivery_is_recognised_before_reacting() {
        let mut inbox = MockInbox::new();
        inbox.expect_processed().returning(|_, _| Ok(true));
        inbox.expect_apply_once().never();
        let service = ConsumeService::new(Arc::new(inbox), Arc::new(Invoicing));
        assert_eq!(
            service.consume(&completed()).await.unwrap(),
            Consumed::Duplicate
        );
    }

    #[tokio::test]
    async fn the_effect_is_written_with_the_mark() {
        let event = completed();
        let event_id = event.event_id;
        let mut inbox = MockInbox::new();
        inbox.expect_processed().returning(|_, _| Ok(false));
        inbox
            .expect_apply_once()
            .withf(move |consumer, id, effect| {
                consumer == "invoicing"
                    && *id == event_id
                    && effect
                        .as_ref()
                        .is_some_and(|e| e.data["amountCents"] == 700)
            })
            .times(1)
            .returning(|_, _, _| Ok(InboxOutcome::Applied));
        let service = ConsumeService::new(Arc::new(inbox), Arc::new(Invoicing));
        assert_eq!(service.consume(&event).await.unwrap(), Consumed::Applied);
    }

    #[tokio::test]
    async fn an_undecodable_event_is_a_permanent_error_and_writes_nothing() {
        let mut event = completed();
        event.data = serde_json::json!({"totalCents": -5});
        let mut inbox = MockInbox::new();
        inbox.expect_processed().returning(|_, _| Ok(false));
        inbox.expect_apply_once().never();
        let service = ConsumeService::new(Arc::new(inbox), Arc::new(Invoicing));
        assert!(matches!(
            service.consume(&event).await,
            Err(ConsumeError::Undecodable(_))
        ));
    }

    #[tokio::test]
    async fn an_inbox_outage_is_retryable() {
        let mut inbox = MockInbox::new();
        inbox.expect_processed().returning(|_, _| Ok(false));
        inbox
            .expect_apply_once()
            .returning(|_, _, _| Err(InboxError::Unavailable("down".into())));
        let service = ConsumeService::new(Arc::new(inbox), Arc::new(Invoicing));
        assert!(matches!(
            service.consume(&completed()).await,
            Err(ConsumeError::Inbox(_))
        ));
    }
}
