//! Invoicing: bills the customer when a repair is completed. The invoice is
//! rendered as a JSON document into the document store under a key derived
//! from the event (a repeat overwrites the same object), and recorded as a
//! data effect with the completed mark, once.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use outbox_domain::Aggregate;
use outbox_seeds_domain::repair::{Repair, RepairEvent};

use outbox_application::async_trait;
use outbox_application::consume::{Reaction, ReactionError};
use outbox_application::envelope::EventEnvelope;
use outbox_application::external::{
    CallError, CallKey, Called, ExternalCall, OutsidePort, Reacted,
};
use outbox_application::ids::AggregateId;
use outbox_application::ports::{Document, DocumentStore, Effect};
use outbox_application::routing::Subscription;

/// An invoice for a completed repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    /// The repair billed.
    pub repair_id: AggregateId,
    /// Who pays.
    pub customer: String,
    /// Where the invoice is sent.
    pub customer_email: String,
    /// The vehicle repaired.
    pub vehicle: String,
    /// How much, in cents.
    pub amount_cents: u64,
    /// The invoice document's key in the document store.
    pub document: String,
}

/// The invoicing consumer, writing documents through its store.
#[derive(Clone)]
pub struct Invoicing {
    documents: Arc<dyn DocumentStore>,
}

impl Invoicing {
    /// The consumer's stable name.
    pub const NAME: &'static str = "invoicing";
    /// The effect kind it records.
    pub const EFFECT: &'static str = "Invoice";
    /// What its call is.
    pub const CALL: &'static str = "InvoiceDocument";

    /// Invoicing that writes its documents into `documents`.
    pub fn new(documents: Arc<dyn DocumentStore>) -> Self {
        Self { documents }
    }
}

/// Rendering and storing one invoice.
struct WriteInvoice {
    documents: Arc<dyn DocumentStore>,
    event: EventEnvelope,
    invoice: Invoice,
}

#[async_trait]
impl ExternalCall for WriteInvoice {
    fn kind(&self) -> &'static str {
        Invoicing::CALL
    }

    async fn call(&self, key: &CallKey) -> Result<Called, CallError> {
        let invoice = Invoice {
            document: key.document_key(DOCUMENT.extension),
            ..self.invoice.clone()
        };
        let body = serde_json::to_vec_pretty(&invoice).map_err(|error| {
            CallError::Permanent(format!("the invoice does not encode: {error}"))
        })?;
        let stored = self
            .documents
            .put(key, &Document { body, ..DOCUMENT })
            .await?;
        let record = Effect::of(Invoicing::EFFECT, &self.event, &invoice)
            .map_err(|error| CallError::Permanent(error.to_string()))?;
        Ok(Called {
            receipt: serde_json::json!({ "key": stored.key, "tag": stored.tag }),
            record: Some(record),
        })
    }
}

/// The invoice document's format.
const DOCUMENT: Document = Document {
    extension: "json",
    content_type: "application/json",
    body: Vec::new(),
};

#[async_trait]
impl Reaction for Invoicing {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn description(&self) -> &'static str {
        "Writes an invoice document for each completed repair and records it once."
    }

    fn subscription(&self) -> Subscription {
        Subscription::of::<Repair>(&[RepairEvent::REPAIR_COMPLETED])
    }

    fn calls(&self) -> &'static [OutsidePort] {
        &[OutsidePort::Documents]
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
        } = event.decode::<Repair>()?
        else {
            return Ok(Reacted::Ignored);
        };
        let invoice = Invoice {
            repair_id: event.aggregate_id,
            customer: customer.to_string(),
            customer_email: customer_email.to_string(),
            vehicle: vehicle.to_string(),
            amount_cents: total_cents.cents(),
            document: String::new(),
        };
        Ok(Reacted::Call(Box::new(WriteInvoice {
            documents: Arc::clone(&self.documents),
            event: event.clone(),
            invoice,
        })))
    }
}
