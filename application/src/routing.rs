//! Routing, declared once: which events each consumer subscribes to, and under
//! which `source` each aggregate type's events are published.
//!
//! A [`Subscription`] names an aggregate type and the event types a consumer
//! acts on. Its [`Subscription::event_pattern`] is the EventBridge event pattern
//! of the rule that feeds the consumer's queue on a classic bus, and its
//! [`Subscription::payload_pattern`] the filter of its subscriber on a Custom
//! Event Bus; the in-memory bus routes by the
//! very same pattern, the end-to-end suite puts it on moto's rules, and the
//! deployment template is checked against it. Nothing else spells out routes.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use outbox_domain::{Aggregate, DomainEvent};

use crate::envelope::EventEnvelope;

/// The events one consumer receives: these event types of one aggregate type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    /// The aggregate type, e.g. `Order`.
    pub aggregate_type: &'static str,
    /// The event types; never empty.
    pub event_types: &'static [&'static str],
    /// For a consumer that needs each aggregate's events in version order,
    /// every event type of the aggregate type: all of them are delivered, the
    /// ones it does not act on only advance its position, so a version it
    /// skips is never mistaken for a gap. On a Custom Event Bus its subscriber
    /// is FIFO, into a FIFO queue.
    pub ordered: Option<&'static [&'static str]>,
}

impl Subscription {
    /// A consumer of `event_types` of `A`, in whatever order they come.
    pub fn of<A: Aggregate>(event_types: &'static [&'static str]) -> Self {
        Self {
            aggregate_type: A::TYPE,
            event_types,
            ordered: None,
        }
    }

    /// A consumer acting on `event_types` of `A` that applies each
    /// aggregate's events in version order: it is delivered every event type
    /// of `A`.
    pub fn in_order<A: Aggregate>(event_types: &'static [&'static str]) -> Self {
        Self {
            aggregate_type: A::TYPE,
            event_types,
            ordered: Some(<A::Event as DomainEvent>::EVENT_TYPES),
        }
    }

    /// Whether the consumer acts on `event`.
    pub fn accepts(&self, event: &EventEnvelope) -> bool {
        event.aggregate_type == self.aggregate_type
            && self.event_types.contains(&event.event_type.as_str())
    }

    /// Whether `event` is routed to the consumer (see [`Self::delivered_types`]).
    pub fn delivers(&self, event: &EventEnvelope) -> bool {
        event.aggregate_type == self.aggregate_type
            && self.delivered_types().contains(&event.event_type.as_str())
    }

    /// Whether the consumer applies each aggregate's events in version order.
    pub fn is_ordered(&self) -> bool {
        self.ordered.is_some()
    }

    /// The event types routed to the consumer: all of its aggregate type's if
    /// it is ordered, else the ones it acts on.
    pub fn delivered_types(&self) -> &'static [&'static str] {
        self.ordered.unwrap_or(self.event_types)
    }

    /// The EventBridge event pattern of the rule feeding this consumer: the
    /// aggregate type's `source` and the delivered `detail-type`s.
    pub fn event_pattern(&self, sources: &EventSources) -> Value {
        json!({
            "source": [sources.source_of(self.aggregate_type)],
            "detail-type": self.delivered_types(),
        })
    }

    /// The event pattern of a Custom Event Bus subscriber feeding this
    /// consumer, matched against the event's payload (the envelope).
    pub fn payload_pattern(&self) -> Value {
        json!({
            "aggregateType": [self.aggregate_type],
            "eventType": self.delivered_types(),
        })
    }
}

/// The `source` each aggregate type's events are published under, from the
/// [`Service`](crate::Service) declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSources {
    by_aggregate: BTreeMap<String, String>,
}

impl EventSources {
    /// The source of an event whose aggregate type the declaration does not
    /// name; no rule of a declared consumer matches it.
    pub const UNDECLARED: &'static str = "outbox.undeclared";

    /// Each aggregate type's source, from `(aggregate type, source)` pairs.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            by_aggregate: pairs
                .into_iter()
                .map(|(aggregate_type, source)| (aggregate_type.to_owned(), source.to_owned()))
                .collect(),
        }
    }

    /// The source of events of `aggregate_type`.
    pub fn source_of(&self, aggregate_type: &str) -> &str {
        self.by_aggregate
            .get(aggregate_type)
            .map_or(Self::UNDECLARED, String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outbox_seeds_domain::order::{Order, OrderEvent};

    fn seed_sources() -> EventSources {
        EventSources::new([("Repair", "carworkshop.outbox"), ("Order", "orders.outbox")])
    }

    #[test]
    fn each_aggregate_type_publishes_under_its_declared_source() {
        let sources = seed_sources();
        assert_eq!(sources.source_of("Repair"), "carworkshop.outbox");
        assert_eq!(sources.source_of("Order"), "orders.outbox");
        assert_eq!(sources.source_of("Invoice"), EventSources::UNDECLARED);
    }

    #[test]
    fn a_subscription_is_an_event_pattern_of_source_and_detail_types() {
        let subscription = Subscription {
            aggregate_type: Order::TYPE,
            event_types: &[OrderEvent::ORDER_PLACED],
            ordered: None,
        };
        assert_eq!(
            subscription.event_pattern(&seed_sources()),
            json!({"source": ["orders.outbox"], "detail-type": ["OrderPlaced"]})
        );
        assert_eq!(
            subscription.payload_pattern(),
            json!({"aggregateType": ["Order"], "eventType": ["OrderPlaced"]})
        );
    }

    #[test]
    fn an_ordered_subscription_is_delivered_every_event_type_of_its_aggregate() {
        let subscription = Subscription {
            aggregate_type: Order::TYPE,
            event_types: &[OrderEvent::ORDER_PLACED],
            ordered: Some(&OrderEvent::TYPES),
        };
        assert_eq!(
            subscription.event_pattern(&seed_sources())["detail-type"],
            json!(OrderEvent::TYPES)
        );
        assert_eq!(
            subscription.payload_pattern()["eventType"],
            json!(OrderEvent::TYPES)
        );
    }
}
