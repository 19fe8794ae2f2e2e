//! Customer notification: emails the customer that their vehicle is ready.
//! A mail service takes no idempotency key, so this is the one effect of the
//! stories that may happen twice: if the consumer dies between the send and
//! its completed mark, the next delivery sends again (with the same key in
//! the message's `X-Outbox-Call-Key` header).

use std::sync::Arc;

use outbox_domain::Aggregate;
use outbox_seeds_domain::repair::{Repair, RepairEvent};

use outbox_application::async_trait;
use outbox_application::consume::{Reaction, ReactionError};
use outbox_application::envelope::EventEnvelope;
use outbox_application::external::{
    CallError, CallKey, Called, ExternalCall, OutsidePort, Reacted,
};
use outbox_application::ports::{Email, Mailer};
use outbox_application::routing::Subscription;

/// The customer notification consumer, sending through its mailer.
#[derive(Clone)]
pub struct CustomerNotification {
    mailer: Arc<dyn Mailer>,
}

impl CustomerNotification {
    /// The consumer's stable name.
    pub const NAME: &'static str = "customer-notification";
    /// What its call is.
    pub const CALL: &'static str = "Email";

    /// Notification that sends through `mailer`.
    pub fn new(mailer: Arc<dyn Mailer>) -> Self {
        Self { mailer }
    }
}

/// Sending one email.
struct SendEmail {
    mailer: Arc<dyn Mailer>,
    email: Email,
}

#[async_trait]
impl ExternalCall for SendEmail {
    fn kind(&self) -> &'static str {
        CustomerNotification::CALL
    }

    async fn call(&self, key: &CallKey) -> Result<Called, CallError> {
        let sent = self.mailer.send(key, &self.email).await?;
        Ok(Called {
            receipt: serde_json::json!({ "messageId": sent.message_id }),
            record: None,
        })
    }
}

#[async_trait]
impl Reaction for CustomerNotification {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn description(&self) -> &'static str {
        "Emails each customer that their car is ready."
    }

    fn subscription(&self) -> Subscription {
        Subscription::of::<Repair>(&[RepairEvent::REPAIR_COMPLETED])
    }

    fn calls(&self) -> &'static [OutsidePort] {
        &[OutsidePort::Mail]
    }

    async fn react(&self, event: &EventEnvelope) -> Result<Reacted, ReactionError> {
        if event.aggregate_type != Repair::TYPE || event.event_type != RepairEvent::REPAIR_COMPLETED
        {
            return Ok(Reacted::Ignored);
        }
        let RepairEvent::RepairCompleted {
            vehicle,
            customer,
            customer_email,
            total_cents,
            ..
        } = event.decode::<Repair>()?
        else {
            return Ok(Reacted::Ignored);
        };
        let cents = total_cents.cents();
        let email = Email {
            to: customer_email,
            subject: format!("Your vehicle {vehicle} is ready"),
            text: format!(
                "Dear {customer},\n\nyour vehicle {vehicle} is ready; the total is {}.{:02}.\n",
                cents / 100,
                cents % 100
            ),
        };
        Ok(Reacted::Call(Box::new(SendEmail {
            mailer: Arc::clone(&self.mailer),
            email,
        })))
    }
}
