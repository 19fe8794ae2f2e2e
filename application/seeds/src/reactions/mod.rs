//! The consumers of the seed stories.
//!
//! - Car workshop (seed `000`): [`Invoicing`] (an invoice document written to
//!   the document store, and recorded) and [`CustomerNotification`] (an email)
//!   on `RepairCompleted`: external effects, at least once and never two at a time.
//! - Order service (seed `001`): [`Shipping`] on `OrderPlaced`.
//! - Food ordering (seed `002`): [`RestaurantNotification`] on new and cancelled
//!   orders, [`OrderTracking`] on every order event.
//!
//! The order consumers record data effects, exactly once: order tracking and
//! the restaurant's notices are ordered (a cancellation must never overtake its
//! order), and an ordered consumer moves its position and writes its effect in
//! one conditioned write, which a call cannot join; the restaurant's tablet and
//! the warehouse read their notices and shipments from those records.
//!
//! Each declares its [`Subscription`](outbox_application::routing::Subscription); a test checks
//! that a reaction has an effect for exactly the events it subscribes to.

mod customer_notification;
mod invoicing;
mod order_tracking;
mod restaurant_notification;
mod shipping;

pub use customer_notification::CustomerNotification;
pub use invoicing::{Invoice, Invoicing};
pub use order_tracking::{OrderTracking, TrackingEntry};
pub use restaurant_notification::{RestaurantNotice, RestaurantNotification};
pub use shipping::{Shipment, Shipping};

#[cfg(test)]
mod tests {
    use outbox_application::envelope::{EventContext, EventEnvelope};
    use outbox_application::ids::AggregateId;
    use outbox_application::trace::Traceparent;
    use outbox_domain::{Aggregate, DomainEvent, Money, Text, Version};
    use outbox_seeds_domain::order::{Order, OrderEvent, OrderLine, OrderStatus, Quantity};
    use outbox_seeds_domain::repair::{Repair, RepairEvent};
    use std::collections::BTreeSet;
    use uuid::Uuid;

    fn text(raw: &str) -> Text {
        Text::parse("t", raw).unwrap()
    }

    fn wrap<A: Aggregate>(event: &A::Event) -> EventEnvelope {
        let context = EventContext {
            occurred_at: time::OffsetDateTime::UNIX_EPOCH,
            correlation_id: "c".into(),
            causation_id: "r".into(),
            traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
        };
        let id = AggregateId::from_uuid(Uuid::from_u128(3));
        EventEnvelope::wrap::<A>(id, Version::new(1), event, &context).unwrap()
    }

    /// One event of every type of both aggregates.
    fn one_of_each() -> Vec<EventEnvelope> {
        let money = Money::from_cents(100).unwrap();
        let repairs = [
            RepairEvent::RepairOpened {
                vehicle: text("car"),
                customer: text("Ada"),
                customer_email: outbox_domain::EmailAddress::parse("t", "ada@example.com").unwrap(),
                description: text("brakes"),
            },
            RepairEvent::WorkStarted {},
            RepairEvent::LineItemAdded {
                description: text("pads"),
                price_cents: money,
            },
            RepairEvent::RepairCompleted {
                vehicle: text("car"),
                customer: text("Ada"),
                customer_email: outbox_domain::EmailAddress::parse("t", "ada@example.com").unwrap(),
                total_cents: money,
            },
            RepairEvent::RepairCancelled { reason: text("no") },
        ];
        let orders = [
            OrderEvent::OrderPlaced {
                customer: text("Ada"),
                items: vec![OrderLine {
                    sku: text("A"),
                    quantity: Quantity::new(1).unwrap(),
                    unit_price_cents: money,
                }],
                total_cents: money,
            },
            OrderEvent::OrderStatusChanged {
                from: OrderStatus::Accepted,
                to: OrderStatus::Preparing,
            },
            OrderEvent::OrderCancelled {
                from: OrderStatus::Preparing,
            },
        ];
        let types: BTreeSet<&str> = repairs
            .iter()
            .map(DomainEvent::event_type)
            .chain(orders.iter().map(DomainEvent::event_type))
            .collect();
        assert_eq!(
            types.len(),
            RepairEvent::TYPES.len() + OrderEvent::TYPES.len()
        );
        repairs
            .iter()
            .map(wrap::<Repair>)
            .chain(orders.iter().map(wrap::<Order>))
            .collect()
    }

    #[tokio::test]
    async fn every_reaction_acts_on_exactly_the_events_it_subscribes_to() {
        for reaction in crate::service(&outbox_memory::MemoryOutside::new().ports()).consumers() {
            let subscription = reaction.subscription();
            assert!(!subscription.event_types.is_empty());
            for event in one_of_each() {
                let acts = reaction.react(&event).await.unwrap().acts();
                assert_eq!(
                    subscription.accepts(&event),
                    acts,
                    "{} on {}",
                    reaction.name(),
                    event.event_type
                );
            }
        }
    }
}
