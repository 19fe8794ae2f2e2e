//! Invoicing: bills the customer when a repair is completed.

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

/// An invoice for a completed repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    /// The repair billed.
    pub repair_id: AggregateId,
    /// Who pays.
    pub customer: String,
    /// How much, in cents.
    pub amount_cents: u64,
}

/// The invoicing consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Invoicing;

impl Invoicing {
    /// The effect kind it records.
    pub const EFFECT: &'static str = "Invoice";
}

#[async_trait]
impl Reaction for Invoicing {
    fn name(&self) -> &'static str {
        "invoicing"
    }

    fn description(&self) -> &'static str {
        "Invoices each completed repair once."
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
            customer,
            total_cents,
            ..
        } = event.decode::<Repair>()?
        else {
            return Ok(Reacted::Ignored);
        };
        let invoice = Invoice {
            repair_id: event.aggregate_id,
            customer: customer.to_string(),
            amount_cents: total_cents.cents(),
        };
        Ok(Reacted::Record(Effect::of(Self::EFFECT, event, &invoice)?))
    }
}
