//! Restaurant notification: tells the kitchen about new and cancelled orders.

use serde::{Deserialize, Serialize};

use outbox_domain::Aggregate;
use outbox_seeds_domain::order::{Order, OrderEvent};

use outbox_application::async_trait;
use outbox_application::consume::Reaction;
use outbox_application::consume::ReactionError;
use outbox_application::envelope::EventEnvelope;
use outbox_application::external::Reacted;
use outbox_application::ids::AggregateId;
use outbox_application::ports::Effect;
use outbox_application::routing::Subscription;

/// A message to the restaurant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestaurantNotice {
    /// The order it is about.
    pub order_id: AggregateId,
    /// What the kitchen must do.
    pub message: String,
}

/// The restaurant notification consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestaurantNotification;

impl RestaurantNotification {
    /// The effect kind it records.
    pub const EFFECT: &'static str = "RestaurantNotice";
}

#[async_trait]
impl Reaction for RestaurantNotification {
    fn name(&self) -> &'static str {
        "restaurant-notification"
    }

    fn description(&self) -> &'static str {
        "Tells the kitchen about new and cancelled orders, each once."
    }

    fn subscription(&self) -> Subscription {
        Subscription::in_order::<Order>(&[OrderEvent::ORDER_PLACED, OrderEvent::ORDER_CANCELLED])
    }

    async fn react(&self, event: &EventEnvelope) -> Result<Reacted, ReactionError> {
        if event.aggregate_type != Order::TYPE {
            return Ok(Reacted::Ignored);
        }
        let message = match event.decode::<Order>()? {
            OrderEvent::OrderPlaced { items, .. } => {
                let lines: Vec<String> = items
                    .iter()
                    .map(|line| format!("{} × {}", line.quantity.get(), line.sku))
                    .collect();
                format!("New order: {}", lines.join(", "))
            }
            OrderEvent::OrderCancelled { .. } => "Order cancelled: stop preparing it".to_owned(),
            OrderEvent::OrderStatusChanged { .. } => return Ok(Reacted::Ignored),
        };
        let notice = RestaurantNotice {
            order_id: event.aggregate_id,
            message,
        };
        Ok(Reacted::Record(Effect::of(Self::EFFECT, event, &notice)?))
    }
}
