//! Customer notification: tells the customer their vehicle is ready.

use serde::{Deserialize, Serialize};

use outbox_domain::Aggregate;
use outbox_seeds_domain::repair::{Repair, RepairEvent};

use outbox_application::async_trait;
use outbox_application::consume::Reaction;
use outbox_application::consume::ReactionError;
use outbox_application::envelope::EventEnvelope;
use outbox_application::external::Reacted;
use outbox_application::ids::AggregateId;
use outbox_application::ports::Effect;
use outbox_application::routing::Subscription;

/// A message to a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// The repair it is about.
    pub repair_id: AggregateId,
    /// The recipient.
    pub customer: String,
    /// The text sent.
    pub message: String,
}

/// The customer notification consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct CustomerNotification;

impl CustomerNotification {
    /// The effect kind it records.
    pub const EFFECT: &'static str = "Notification";
}

#[async_trait]
impl Reaction for CustomerNotification {
    fn name(&self) -> &'static str {
        "customer-notification"
    }

    fn description(&self) -> &'static str {
        "Tells each customer once that their car is ready."
    }

    fn subscription(&self) -> Subscription {
        Subscription::of::<Repair>(&[RepairEvent::REPAIR_COMPLETED])
    }

    async fn react(&self, event: &EventEnvelope) -> Result<Reacted, ReactionError> {
        if event.aggregate_type != Repair::TYPE || event.event_type != RepairEvent::REPAIR_COMPLETED
        {
            return Ok(Reacted::Ignored);
        }
        let RepairEvent::RepairCompleted {
            vehicle,
            customer,
            total_cents,
            ..
        } = event.decode::<Repair>()?
        else {
            return Ok(Reacted::Ignored);
        };
        let cents = total_cents.cents();
        let notification = Notification {
            repair_id: event.aggregate_id,
            customer: customer.to_string(),
            message: format!(
                "Your vehicle {vehicle} is ready; the total is {}.{:02}.",
                cents / 100,
                cents % 100
            ),
        };
        Ok(Reacted::Record(Effect::of(
            Self::EFFECT,
            event,
            &notification,
        )?))
    }
}
