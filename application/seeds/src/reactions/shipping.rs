//! Shipping: starts a shipment when an order is placed.

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

/// A shipment for a placed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shipment {
    /// The order shipped.
    pub order_id: AggregateId,
    /// The recipient.
    pub customer: String,
    /// How many units in all.
    pub units: u64,
}

/// The shipping consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shipping;

impl Shipping {
    /// The effect kind it records.
    pub const EFFECT: &'static str = "Shipment";
}

#[async_trait]
impl Reaction for Shipping {
    fn name(&self) -> &'static str {
        "shipping"
    }

    fn description(&self) -> &'static str {
        "Ships each placed order once."
    }

    fn subscription(&self) -> Subscription {
        Subscription::of::<Order>(&[OrderEvent::ORDER_PLACED])
    }

    async fn react(&self, event: &EventEnvelope) -> Result<Reacted, ReactionError> {
        if event.aggregate_type != Order::TYPE || event.event_type != OrderEvent::ORDER_PLACED {
            return Ok(Reacted::Ignored);
        }
        let OrderEvent::OrderPlaced {
            customer, items, ..
        } = event.decode::<Order>()?
        else {
            return Ok(Reacted::Ignored);
        };
        let shipment = Shipment {
            order_id: event.aggregate_id,
            customer: customer.to_string(),
            units: items
                .iter()
                .map(|line| u64::from(line.quantity.get()))
                .sum(),
        };
        Ok(Reacted::Record(Effect::of(Self::EFFECT, event, &shipment)?))
    }
}
