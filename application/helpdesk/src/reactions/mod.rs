//! The helpdesk's consumers, pure reactions whose effects are data.
//!
//! - [`TicketTimeline`] (`ticket-timeline`), ordered: one timeline entry per
//!   ticket event, applied in each ticket's version order.
//! - [`SatisfactionSurvey`] (`satisfaction-survey`), unordered: one survey
//!   request to the requester per `TicketResolved`.
//!
//! Each declares its [`Subscription`](outbox_application::Subscription); a
//! test checks that a reaction has an effect for exactly the events it
//! subscribes to.

mod survey;
mod timeline;

pub use survey::{SatisfactionSurvey, SurveyRequest};
pub use timeline::{TicketTimeline, TimelineEntry};

#[cfg(test)]
pub(crate) mod tests {
    use outbox_application::envelope::EventContext;
    use outbox_application::trace::Traceparent;
    use outbox_application::{AggregateId, EventEnvelope};
    use outbox_domain::{Aggregate, DomainEvent, Text, Version};
    use uuid::Uuid;

    use crate::ticket::{Ticket, TicketEvent};

    pub(crate) fn text(raw: &str) -> Text {
        Text::parse("test", raw).unwrap()
    }

    /// `event` as the store would have written it at `version`.
    pub(crate) fn wrap(version: u64, event: &TicketEvent) -> EventEnvelope {
        let context = EventContext {
            occurred_at: time::OffsetDateTime::UNIX_EPOCH,
            correlation_id: "correlation".into(),
            causation_id: "request".into(),
            traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
        };
        let id = AggregateId::from_uuid(Uuid::from_u128(3));
        EventEnvelope::wrap::<Ticket>(id, Version::new(version), event, &context).unwrap()
    }

    /// One event of every ticket event type, in a possible history's order.
    pub(crate) fn one_of_each() -> Vec<TicketEvent> {
        let events = vec![
            TicketEvent::TicketOpened {
                subject: text("printer on fire"),
                requester: text("ada@example.com"),
            },
            TicketEvent::TicketAssigned {
                agent: text("grace"),
            },
            TicketEvent::TicketResolved {
                requester: text("ada@example.com"),
                agent: text("grace"),
                resolution: text("replaced the toner"),
            },
            TicketEvent::TicketReopened {
                reason: text("still smoking"),
            },
        ];
        let types: Vec<_> = events.iter().map(DomainEvent::event_type).collect();
        assert_eq!(types, TicketEvent::EVENT_TYPES);
        events
    }

    #[tokio::test]
    async fn every_reaction_acts_on_exactly_the_events_it_subscribes_to() {
        for reaction in crate::service().consumers() {
            let subscription = reaction.subscription();
            assert_eq!(subscription.aggregate_type, Ticket::TYPE);
            for (version, event) in (1..).zip(one_of_each()) {
                let envelope = wrap(version, &event);
                let acts = reaction.react(&envelope).await.unwrap().acts();
                assert_eq!(
                    subscription.accepts(&envelope),
                    acts,
                    "{} on {}",
                    reaction.name(),
                    envelope.event_type
                );
            }
        }
    }
}
