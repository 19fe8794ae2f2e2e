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

use outbox_domain::order::Order;
use outbox_domain::repair::Repair;
use outbox_domain::Aggregate;

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

/// The `source` each aggregate type's events are published under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSources {
    by_aggregate: BTreeMap<String, String>,
    fallback: String,
}

impl EventSources {
    /// The car workshop's source (seed `000`), for repairs.
    pub const REPAIRS: &'static str = "carworkshop.outbox";
    /// The order service's source (seeds `001`, `002`), for orders.
    pub const ORDERS: &'static str = "orders.outbox";
    /// The source of any other aggregate type.
    pub const FALLBACK: &'static str = "outbox";

    /// Every event under `source`, e.g. from the `EVENT_SOURCE` setting.
    pub fn single(source: impl Into<String>) -> Self {
        Self {
            by_aggregate: BTreeMap::new(),
            fallback: source.into(),
        }
    }

    /// The source of events of `aggregate_type`.
    pub fn source_of(&self, aggregate_type: &str) -> &str {
        self.by_aggregate
            .get(aggregate_type)
            .unwrap_or(&self.fallback)
    }
}

impl Default for EventSources {
    /// Repairs under [`EventSources::REPAIRS`], orders under [`EventSources::ORDERS`].
    fn default() -> Self {
        Self {
            by_aggregate: BTreeMap::from([
                (Repair::TYPE.to_owned(), Self::REPAIRS.to_owned()),
                (Order::TYPE.to_owned(), Self::ORDERS.to_owned()),
            ]),
            fallback: Self::FALLBACK.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outbox_domain::order::OrderEvent;

    #[test]
    fn each_seed_system_publishes_under_its_own_source_unless_one_is_configured() {
        let sources = EventSources::default();
        assert_eq!(sources.source_of("Repair"), "carworkshop.outbox");
        assert_eq!(sources.source_of("Order"), "orders.outbox");
        assert_eq!(sources.source_of("Invoice"), "outbox");
        assert_eq!(
            EventSources::single("fleetfix.outbox").source_of("Repair"),
            "fleetfix.outbox"
        );
    }

    #[test]
    fn a_subscription_is_an_event_pattern_of_source_and_detail_types() {
        let subscription = Subscription {
            aggregate_type: Order::TYPE,
            event_types: &[OrderEvent::ORDER_PLACED],
            ordered: None,
        };
        assert_eq!(
            subscription.event_pattern(&EventSources::default()),
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
            subscription.event_pattern(&EventSources::default())["detail-type"],
            json!(OrderEvent::TYPES)
        );
        assert_eq!(
            subscription.payload_pattern()["eventType"],
            json!(OrderEvent::TYPES)
        );
    }
}
