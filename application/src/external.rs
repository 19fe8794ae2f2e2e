//! External effects: a consumer's call to another system (a document store, a
//! mail service, a payment API), as opposed to a data effect the inbox writes
//! in its own transaction.
//!
//! A data effect ([`Reacted::Record`]) is exactly once: the effect and the mark
//! "handled" are one atomic write. A call to another system cannot join that
//! write, so an external effect ([`Reacted::Call`]) is **at least once, never
//! two at a time**: the inbox claims the event before the call (an in-progress
//! mark with an expiry, written under a condition), the call carries a
//! [`CallKey`] derived from the consumer and the event id, and success writes
//! the completed mark (with a digest of the receipt and an optional data
//! effect) only while the claim is still the caller's. A holder that dies
//! between the call and the mark leaves the claim to expire; the next delivery
//! takes it over and calls again with the same key. Exactly once across a call
//! therefore needs the other side's help: an API that deduplicates by the key
//! (or a write that overwrites the same object) turns the repeat into a no-op;
//! one that takes no key (plain email) may act twice in that one window.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::ids::EventId;
use crate::ports::{Document, DocumentStore, Effect, Email, Mailer, SentEmail, StoredDocument};

/// The idempotency key of one consumer's external effect for one event:
/// `{consumer}/{event id}`. Every attempt for that event carries the same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallKey {
    consumer: String,
    event_id: EventId,
}

impl CallKey {
    /// The key of `consumer`'s call for `event_id`.
    pub fn new(consumer: &str, event_id: EventId) -> Self {
        Self {
            consumer: consumer.to_owned(),
            event_id,
        }
    }

    /// The consumer calling.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The event it calls for.
    pub fn event_id(&self) -> EventId {
        self.event_id
    }

    /// Where a document written for this call is stored:
    /// `{consumer}/{event id}.{extension}`, so a repeat overwrites it and a
    /// consumer's documents share one prefix (its grant).
    pub fn document_key(&self, extension: &str) -> String {
        format!("{}/{}.{extension}", self.consumer, self.event_id)
    }
}

impl fmt::Display for CallKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.consumer, self.event_id)
    }
}

/// Why a call to another system failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Worth trying again (throttled, unavailable, timed out): the claim is
    /// released and the delivery comes again.
    #[error("retryable: {0}")]
    Retryable(String),
    /// Will fail the same way every time (refused address, missing bucket, no
    /// permission): the event is dead-lettered with this reason.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// What a successful call returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Called {
    /// The other side's answer (a message id, an object's tag); its digest is
    /// written with the completed mark.
    pub receipt: Value,
    /// A data effect to record with the completed mark, exactly once.
    pub record: Option<Effect>,
}

/// A call a reaction asks for; the consume use case claims the event first.
#[async_trait]
pub trait ExternalCall: Send + Sync {
    /// What is called, e.g. `InvoiceDocument` or `Email`.
    fn kind(&self) -> &'static str;

    /// Makes the call, carrying `key` as its idempotency key wherever the
    /// other side accepts one.
    ///
    /// # Errors
    /// [`CallError`]: retryable or permanent.
    async fn call(&self, key: &CallKey) -> Result<Called, CallError>;
}

/// A reaction's answer to an event.
pub enum Reacted {
    /// The event calls for nothing; it is marked handled.
    Ignored,
    /// A data effect, written with the mark: exactly once.
    Record(Effect),
    /// A call to another system: at least once, never two at a time.
    Call(Box<dyn ExternalCall>),
}

impl Reacted {
    /// Whether the event calls for anything.
    pub fn acts(&self) -> bool {
        !matches!(self, Self::Ignored)
    }

    /// The data effect, if this is one.
    pub fn into_record(self) -> Option<Effect> {
        match self {
            Self::Record(effect) => Some(effect),
            Self::Ignored | Self::Call(_) => None,
        }
    }
}

impl fmt::Debug for Reacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ignored => f.write_str("Ignored"),
            Self::Record(effect) => f.debug_tuple("Record").field(effect).finish(),
            Self::Call(call) => f.debug_tuple("Call").field(&call.kind()).finish(),
        }
    }
}

/// An outside system a consumer calls, as its deployment must grant it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OutsidePort {
    /// A [`DocumentStore`]: writes under the consumer's own prefix.
    Documents,
    /// A [`Mailer`]: sends from the service's one sender identity.
    Mail,
}

/// The outside systems the toolkit has adapters for, as one runtime builds
/// them (S3 and SES in Lambda, files locally, memory in tests); a service's
/// declaration hands each consumer the ones it calls.
#[derive(Clone)]
pub struct OutsidePorts {
    /// Where documents are written.
    pub documents: Arc<dyn DocumentStore>,
    /// How email is sent.
    pub mailer: Arc<dyn Mailer>,
}

impl OutsidePorts {
    /// Ports that refuse every call for good ([`NotDeployed`]): for reading a
    /// declaration's shape (its routes, sources, consumers, template), and for
    /// the programs that never react (the command API, the relay).
    pub fn not_deployed() -> Self {
        Self {
            documents: Arc::new(NotDeployed(OutsidePort::Documents)),
            mailer: Arc::new(NotDeployed(OutsidePort::Mail)),
        }
    }
}

/// A port this runtime was not given: every call is refused, permanently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotDeployed(pub OutsidePort);

impl NotDeployed {
    fn refusal(self) -> CallError {
        CallError::Permanent(format!(
            "this runtime was not deployed with the {:?} port",
            self.0
        ))
    }
}

#[async_trait]
impl DocumentStore for NotDeployed {
    async fn put(&self, _: &CallKey, _: &Document) -> Result<StoredDocument, CallError> {
        Err(self.refusal())
    }
}

#[async_trait]
impl Mailer for NotDeployed {
    async fn send(&self, _: &CallKey, _: &Email) -> Result<SentEmail, CallError> {
        Err(self.refusal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AggregateId, AggregateRef};
    use outbox_domain::Version;
    use uuid::Uuid;

    #[test]
    fn a_call_key_names_the_consumer_and_the_event_and_places_its_documents() {
        let aggregate = AggregateRef {
            aggregate_type: "Door".into(),
            aggregate_id: AggregateId::from_uuid(Uuid::from_u128(7)),
        };
        let event_id = EventId::derive(&aggregate, Version::new(1));
        let key = CallKey::new("invoicing", event_id);
        assert_eq!(key.to_string(), format!("invoicing/{event_id}"));
        assert_eq!(
            key.document_key("json"),
            format!("invoicing/{event_id}.json")
        );
        assert_eq!(key.event_id(), event_id);
    }
}
