//! Consuming an event exactly once: inbox check → reaction → effect and mark in
//! one atomic step; whatever cannot be consumed goes to the dead-letter queue.
//!
//! Delivery is at least once (the bus and the queue may both repeat an event); the
//! inbox turns that into exactly-once effects. A reaction is pure: it turns an
//! event into the effect to record, and the inbox writes that effect together with
//! the (consumer, event id) mark. The policy for a delivery that can never be
//! consumed (unreadable, or an event whose data breaks a domain rule) lives here
//! once, for every runtime: dead-letter it with its reason, then acknowledge it.
//! Only a failure of the inbox or of the dead-letter queue leaves it for redelivery.

use std::sync::Arc;

use tracing::{debug, info, warn};

use crate::change::RecordIdentity;
use crate::envelope::{EncodeError, EnvelopeError, EventEnvelope};
use crate::ports::{
    DeadLetter, DeadLetterError, DeadLetterPayload, DeadLetterQueue, Effect, Inbox, InboxError,
    InboxOutcome, LetterSource,
};
use crate::routing::Subscription;

/// Why a reaction could not turn an event into an effect. Both are permanent.
#[derive(Debug, thiserror::Error)]
pub enum ReactionError {
    /// The event's payload does not decode (or breaks a domain rule).
    #[error(transparent)]
    Undecodable(#[from] EnvelopeError),
    /// The effect does not encode: a defect of the reaction.
    #[error(transparent)]
    Encoding(#[from] EncodeError),
}

/// A consumer's decision on an event: the effect to record, or nothing.
pub trait Reaction: Send + Sync {
    /// The consumer's stable name; the inbox key's first half. Never rename one.
    fn name(&self) -> &'static str;

    /// The events routed to this consumer.
    fn subscription(&self) -> Subscription;

    /// The effect `event` calls for, or `None` if this consumer ignores it.
    ///
    /// # Errors
    /// [`ReactionError`] when the event's payload does not decode or the effect
    /// does not encode.
    fn react(&self, event: &EventEnvelope) -> Result<Option<Effect>, ReactionError>;
}

/// What a delivery carries.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every value is the event variant; boxing it would only add an allocation"
)]
pub enum DeliveryContent {
    /// An outbox event.
    Event(EventEnvelope),
    /// A message that is not an outbox event.
    Unreadable {
        /// Why it could not be read.
        reason: String,
        /// The message as received.
        raw: String,
    },
}

/// One delivery of a message to a consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The queue's id of the message.
    pub message_id: String,
    /// How many times the message was received, this time included.
    pub receive_count: u32,
    /// What it carries.
    pub content: DeliveryContent,
}

/// What consuming one delivery did; the delivery is acknowledged in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumed {
    /// The effect was recorded now.
    Applied,
    /// The event is of no interest to this consumer; it is marked handled.
    Ignored,
    /// A repeated delivery: the effect was recorded before, nothing was written.
    Duplicate,
    /// The delivery can never be consumed; it was dead-lettered with its reason.
    DeadLettered,
}

/// Why a delivery must be delivered again; nothing was acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The inbox failed.
    #[error(transparent)]
    Inbox(#[from] InboxError),
    /// The delivery could not be consumed and the dead-letter queue refused it.
    #[error(transparent)]
    DeadLetters(#[from] DeadLetterError),
}

/// The consume use case for one consumer.
#[derive(Clone)]
pub struct ConsumeService {
    inbox: Arc<dyn Inbox>,
    reaction: Arc<dyn Reaction>,
    dead_letters: Arc<dyn DeadLetterQueue>,
}

impl ConsumeService {
    /// Wires a reaction to an inbox and a dead-letter queue.
    pub fn new(
        inbox: Arc<dyn Inbox>,
        reaction: Arc<dyn Reaction>,
        dead_letters: Arc<dyn DeadLetterQueue>,
    ) -> Self {
        Self {
            inbox,
            reaction,
            dead_letters,
        }
    }

    /// The consumer's name.
    pub fn name(&self) -> &'static str {
        self.reaction.name()
    }

    /// The events routed to this consumer.
    pub fn subscription(&self) -> Subscription {
        self.reaction.subscription()
    }

    /// Consumes one delivery: applies its effect once, or dead-letters it.
    ///
    /// # Errors
    /// [`ConsumeError`] when the delivery must come again.
    pub async fn consume(&self, delivery: Delivery) -> Result<Consumed, ConsumeError> {
        let event = match delivery.content {
            DeliveryContent::Event(event) => event,
            DeliveryContent::Unreadable { reason, raw } => {
                let payload = DeadLetterPayload::Raw { raw };
                return self
                    .dead_letter(
                        &delivery.message_id,
                        delivery.receive_count,
                        reason,
                        payload,
                    )
                    .await;
            }
        };
        let consumer = self.reaction.name();
        if self.inbox.processed(consumer, event.event_id).await? {
            debug!(consumer, event_id = %event.event_id, "duplicate delivery");
            return Ok(Consumed::Duplicate);
        }
        let effect = match self.reaction.react(&event) {
            Ok(effect) => effect,
            Err(error) => {
                let reason = format!("{consumer}: {error}");
                let payload = DeadLetterPayload::Event { envelope: event };
                return self
                    .dead_letter(
                        &delivery.message_id,
                        delivery.receive_count,
                        reason,
                        payload,
                    )
                    .await;
            }
        };
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

    async fn dead_letter(
        &self,
        message_id: &str,
        attempts: u32,
        reason: String,
        payload: DeadLetterPayload,
    ) -> Result<Consumed, ConsumeError> {
        warn!(consumer = self.name(), message_id, %reason, "dead-lettering a delivery");
        let letter = DeadLetter::new(
            LetterSource::QueueMessage {
                consumer: self.name().to_owned(),
                message_id: message_id.to_owned(),
            },
            reason,
            attempts,
            payload,
            RecordIdentity::default(),
        );
        self.dead_letters.send(letter).await?;
        Ok(Consumed::DeadLettered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::EventContext;
    use crate::ids::AggregateId;
    use crate::ports::dead_letter::MockDeadLetterQueue;
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

    fn delivery(event: EventEnvelope) -> Delivery {
        Delivery {
            message_id: "m-1".into(),
            receive_count: 2,
            content: DeliveryContent::Event(event),
        }
    }

    fn service(inbox: MockInbox, dead_letters: MockDeadLetterQueue) -> ConsumeService {
        ConsumeService::new(Arc::new(inbox), Arc::new(Invoicing), Arc::new(dead_letters))
    }

    fn no_letters() -> MockDeadLetterQueue {
        let mut dead_letters = MockDeadLetterQueue::new();
        dead_letters.expect_send().never();
        dead_letters
    }

    #[tokio::test]
    async fn a_repeated_delivery_is_recognised_before_reacting() {
        let mut inbox = MockInbox::new();
        inbox.expect_processed().returning(|_, _| Ok(true));
        inbox.expect_apply_once().never();
        assert_eq!(
            service(inbox, no_letters())
                .consume(delivery(completed()))
                .await
                .unwrap(),
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
        assert_eq!(
            service(inbox, no_letters())
                .consume(delivery(event))
                .await
                .unwrap(),
            Consumed::Applied
        );
    }

    #[tokio::test]
    async fn an_undecodable_event_is_dead_lettered_and_writes_nothing() {
        let mut event = completed();
        event.data = serde_json::json!({"totalCents": -5});
        let event_id = event.event_id;
        let mut inbox = MockInbox::new();
        inbox.expect_processed().returning(|_, _| Ok(false));
        inbox.expect_apply_once().never();
        let mut dead_letters = MockDeadLetterQueue::new();
        dead_letters
            .expect_send()
            .withf(move |letter| {
                letter.attempts == 2
                    && letter.reason.starts_with("invoicing: ")
                    && letter.source
                        == LetterSource::QueueMessage {
                            consumer: "invoicing".into(),
                            message_id: "m-1".into(),
                        }
                    && matches!(&letter.payload, DeadLetterPayload::Event { envelope } if envelope.event_id == event_id)
            })
            .times(1)
            .returning(|_| Ok(()));
        assert_eq!(
            service(inbox, dead_letters)
                .consume(delivery(event))
                .await
                .unwrap(),
            Consumed::DeadLettered
        );
    }

    #[tokio::test]
    async fn an_event_whose_data_breaks_a_domain_rule_is_dead_lettered_not_applied() {
        let mut event = completed();
        event.data["customer"] = serde_json::json!("   ");
        let mut inbox = MockInbox::new();
        inbox.expect_processed().returning(|_, _| Ok(false));
        inbox.expect_apply_once().never();
        let mut dead_letters = MockDeadLetterQueue::new();
        dead_letters
            .expect_send()
            .withf(|letter| letter.reason.contains("must not be empty"))
            .times(1)
            .returning(|_| Ok(()));
        assert_eq!(
            service(inbox, dead_letters)
                .consume(delivery(event))
                .await
                .unwrap(),
            Consumed::DeadLettered
        );
    }

    #[tokio::test]
    async fn an_unreadable_message_is_dead_lettered_raw_or_redelivered_when_the_queue_refuses() {
        let unreadable = || Delivery {
            message_id: "m-2".into(),
            receive_count: 1,
            content: DeliveryContent::Unreadable {
                reason: "not JSON".into(),
                raw: "{".into(),
            },
        };
        let mut inbox = MockInbox::new();
        inbox.expect_processed().never();
        let mut dead_letters = MockDeadLetterQueue::new();
        dead_letters
            .expect_send()
            .withf(|letter| {
                letter.reason == "not JSON"
                    && letter.payload == DeadLetterPayload::Raw { raw: "{".into() }
            })
            .times(1)
            .returning(|_| Ok(()));
        dead_letters
            .expect_send()
            .returning(|_| Err(DeadLetterError("down".into())));
        let service = service(inbox, dead_letters);
        assert_eq!(
            service.consume(unreadable()).await.unwrap(),
            Consumed::DeadLettered
        );
        assert!(matches!(
            service.consume(unreadable()).await,
            Err(ConsumeError::DeadLetters(_))
        ));
    }

    #[tokio::test]
    async fn an_inbox_outage_is_retryable() {
        let mut inbox = MockInbox::new();
        inbox.expect_processed().returning(|_, _| Ok(false));
        inbox
            .expect_apply_once()
            .returning(|_, _, _| Err(InboxError::Unavailable("down".into())));
        assert!(matches!(
            service(inbox, no_letters())
                .consume(delivery(completed()))
                .await,
            Err(ConsumeError::Inbox(_))
        ));
    }
}
