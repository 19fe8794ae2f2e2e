//! Order tracking: keeps the customer-facing status history of every order.

use serde::{Deserialize, Serialize};

use outbox_domain::Aggregate;
use outbox_domain::Version;
use outbox_seeds_domain::order::{Order, OrderEvent, OrderStatus};

use outbox_application::async_trait;
use outbox_application::consume::Reaction;
use outbox_application::consume::ReactionError;
use outbox_application::envelope::EventEnvelope;
use outbox_application::external::Reacted;
use outbox_application::ids::AggregateId;
use outbox_application::ports::Effect;
use outbox_application::routing::Subscription;

/// One line of an order's tracking history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackingEntry {
    /// The order tracked.
    pub order_id: AggregateId,
    /// The order's version at this entry, to sort entries that arrive out of order.
    pub version: Version,
    /// The status the order reached.
    pub status: OrderStatus,
}

/// The order tracking consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderTracking;

impl OrderTracking {
    /// The effect kind it records.
    pub const EFFECT: &'static str = "TrackingEntry";
}

#[async_trait]
impl Reaction for OrderTracking {
    fn name(&self) -> &'static str {
        "order-tracking"
    }

    fn description(&self) -> &'static str {
        "Keeps each order's status history, each event once."
    }

    fn subscription(&self) -> Subscription {
        Subscription::in_order::<Order>(&OrderEvent::TYPES)
    }

    async fn react(&self, event: &EventEnvelope) -> Result<Reacted, ReactionError> {
        if event.aggregate_type != Order::TYPE {
            return Ok(Reacted::Ignored);
        }
        let status = match event.decode::<Order>()? {
            OrderEvent::OrderPlaced { .. } => OrderStatus::Accepted,
            OrderEvent::OrderStatusChanged { to, .. } => to,
            OrderEvent::OrderCancelled { .. } => OrderStatus::Cancelled,
        };
        let entry = TrackingEntry {
            order_id: event.aggregate_id,
            version: event.aggregate_version,
            status,
        };
        Ok(Reacted::Record(Effect::of(Self::EFFECT, event, &entry)?))
    }
}
