//! The ticket timeline: what happened to each ticket, one entry per event, in
//! the order it happened.
//!
//! It is an *ordered* consumer: a timeline that read "resolved" before
//! "assigned" would tell a support lead the wrong story, and neither a
//! classic bus nor an SQS standard queue keeps order. Its subscription is
//! therefore delivered every ticket event type, and the sequenced inbox
//! applies each ticket's events in version order, exactly once.

use serde::{Deserialize, Serialize};

use outbox_application::ports::Effect;
use outbox_application::{
    async_trait, AggregateId, EventEnvelope, Reacted, Reaction, ReactionError, Subscription,
};
use outbox_domain::{Aggregate, Version};

use crate::ticket::{Ticket, TicketEvent};

/// One line of a ticket's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// The ticket.
    pub ticket_id: AggregateId,
    /// The ticket's version at this entry.
    pub version: Version,
    /// The event type behind it, e.g. `TicketAssigned`.
    pub event_type: String,
    /// What happened, for people, e.g. `assigned to grace`.
    pub summary: String,
}

/// The ticket timeline consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TicketTimeline;

impl TicketTimeline {
    /// The consumer's name. Never rename it: it keys the inbox.
    pub const NAME: &'static str = "ticket-timeline";
    /// The effect kind it records.
    pub const EFFECT: &'static str = "TimelineEntry";
}

#[async_trait]
impl Reaction for TicketTimeline {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn description(&self) -> &'static str {
        "Keeps each ticket's timeline, every event once and in order."
    }

    fn subscription(&self) -> Subscription {
        Subscription::in_order::<Ticket>(&TicketEvent::TYPES)
    }

    async fn react(&self, event: &EventEnvelope) -> Result<Reacted, ReactionError> {
        if event.aggregate_type != Ticket::TYPE {
            return Ok(Reacted::Ignored);
        }
        let summary = match event.decode::<Ticket>()? {
            TicketEvent::TicketOpened { subject, requester } => {
                format!("opened by {requester}: {subject}")
            }
            TicketEvent::TicketAssigned { agent } => format!("assigned to {agent}"),
            TicketEvent::TicketResolved {
                agent, resolution, ..
            } => format!("resolved by {agent}: {resolution}"),
            TicketEvent::TicketReopened { reason } => format!("reopened: {reason}"),
        };
        let entry = TimelineEntry {
            ticket_id: event.aggregate_id,
            version: event.aggregate_version,
            event_type: event.event_type.clone(),
            summary,
        };
        Ok(Reacted::Record(Effect::of(Self::EFFECT, event, &entry)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactions::tests::{one_of_each, wrap};

    #[tokio::test]
    async fn every_ticket_event_is_one_entry_at_its_version() {
        for (version, event) in (1..).zip(one_of_each()) {
            let envelope = wrap(version, &event);
            let effect = TicketTimeline
                .react(&envelope)
                .await
                .unwrap()
                .into_record()
                .unwrap();
            assert_eq!(effect.kind, TicketTimeline::EFFECT);
            assert_eq!(effect.event_id, envelope.event_id);
            let entry: TimelineEntry = serde_json::from_value(effect.data).unwrap();
            assert_eq!(entry.version, Version::new(version));
            assert_eq!(entry.event_type, envelope.event_type);
        }
    }

    #[tokio::test]
    async fn the_summary_tells_what_happened() {
        let events = one_of_each();
        let mut summaries = Vec::new();
        for (version, event) in (1..).zip(&events) {
            let effect = TicketTimeline
                .react(&wrap(version, event))
                .await
                .unwrap()
                .into_record()
                .unwrap();
            summaries.push(
                serde_json::from_value::<TimelineEntry>(effect.data)
                    .unwrap()
                    .summary,
            );
        }
        let summary = |version: usize, _: &TicketEvent| summaries[version - 1].clone();
        assert_eq!(
            summary(1, &events[0]),
            "opened by ada@example.com: printer on fire"
        );
        assert_eq!(summary(2, &events[1]), "assigned to grace");
        assert_eq!(
            summary(3, &events[2]),
            "resolved by grace: replaced the toner"
        );
        assert_eq!(summary(4, &events[3]), "reopened: still smoking");
    }

    #[test]
    fn the_timeline_is_ordered_and_delivered_every_ticket_event() {
        let subscription = TicketTimeline.subscription();
        assert!(subscription.is_ordered());
        assert_eq!(subscription.delivered_types(), TicketEvent::TYPES);
    }

    #[tokio::test]
    async fn an_event_breaking_a_domain_rule_is_undecodable() {
        let mut envelope = wrap(2, &one_of_each()[1]);
        envelope.data = serde_json::json!({"agent": " "});
        assert!(matches!(
            TicketTimeline.react(&envelope).await,
            Err(ReactionError::Undecodable(_))
        ));
    }
}
