//! The event envelope: what every consumer sees of an event.
//!
//! The envelope is built when the event is appended to the outbox, so its
//! `occurredAt`, `correlationId`, `causationId` and `traceparent` describe the
//! command that caused it, not the moment it was relayed.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use outbox_domain::{Aggregate, DomainEvent, Version};

use crate::ids::{AggregateId, AggregateRef, EventId};
use crate::trace::Traceparent;

/// One domain event with its metadata, as stored in the outbox and published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    /// Derived from aggregate type, id and version; the dedupe key everywhere.
    pub event_id: EventId,
    /// The persisted event type name, e.g. `RepairCompleted`.
    pub event_type: String,
    /// The schema version of `data`.
    pub schema_version: u32,
    /// The persisted aggregate type name, e.g. `Repair`.
    pub aggregate_type: String,
    /// The aggregate instance.
    pub aggregate_id: AggregateId,
    /// The version this event brings its aggregate to.
    pub aggregate_version: Version,
    /// When the command was decided (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// Ties together everything one business request caused.
    pub correlation_id: String,
    /// The request or event that caused this event.
    pub causation_id: String,
    /// The W3C trace context of the command.
    pub traceparent: Traceparent,
    /// The event's payload.
    pub data: Value,
}

/// Why a value of the program's own (an event, a state, a command, an effect)
/// could not be encoded as JSON. It is a defect, not bad input: retrying never helps.
#[derive(Debug, thiserror::Error)]
#[error("{what} could not be encoded: {source}")]
pub struct EncodeError {
    /// What was being encoded, e.g. an event type or `state`.
    pub what: &'static str,
    /// The serializer's error.
    #[source]
    pub source: serde_json::Error,
}

impl EncodeError {
    /// A closure turning a serializer error about `what` into an [`EncodeError`].
    pub fn of(what: &'static str) -> impl FnOnce(serde_json::Error) -> Self {
        move |source| Self { what, source }
    }
}

/// Why an envelope's event could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The envelope belongs to another aggregate type.
    #[error("expected an event of aggregate type {expected}, got {actual}")]
    WrongAggregate {
        /// The aggregate type asked for.
        expected: &'static str,
        /// The one in the envelope.
        actual: String,
    },
    /// The envelope names a schema version this program does not know for its type.
    #[error("event {event_type} has schema version {found}, this program reads version {known}")]
    UnknownSchema {
        /// The event type.
        event_type: String,
        /// The version the envelope names.
        found: u32,
        /// The version this program reads.
        known: u32,
    },
    /// An event's aggregate version is 0; events number their aggregate from 1.
    #[error("event {event_id} has aggregate version 0; events start at version 1")]
    VersionZero {
        /// The event.
        event_id: EventId,
    },
    /// The payload does not match the event type's schema.
    #[error("event {event_type} v{schema_version} could not be decoded: {source}")]
    Decode {
        /// The event type.
        event_type: String,
        /// The schema version.
        schema_version: u32,
        /// The deserializer's error.
        #[source]
        source: serde_json::Error,
    },
}

/// The command-level metadata every event of one decision shares.
#[derive(Debug, Clone, PartialEq)]
pub struct EventContext {
    /// When the command was decided.
    pub occurred_at: OffsetDateTime,
    /// The business request's correlation id.
    pub correlation_id: String,
    /// The id of the request that caused the events.
    pub causation_id: String,
    /// The trace the command ran in.
    pub traceparent: Traceparent,
}

/// Counts the bytes written to it.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl EventEnvelope {
    /// The length in bytes of this envelope's JSON, as `serde_json::to_string`
    /// writes it, counted without building the text (a bus sizes its entries
    /// by it); `usize::MAX` if it does not encode.
    pub fn json_len(&self) -> usize {
        let mut count = ByteCount(0);
        serde_json::to_writer(&mut count, self).map_or(usize::MAX, |()| count.0)
    }

    /// Wraps `event`, which brings aggregate `aggregate_id` to `version`.
    ///
    /// # Errors
    /// [`EncodeError`] when the event does not serialize.
    pub fn wrap<A: Aggregate>(
        aggregate_id: AggregateId,
        version: Version,
        event: &A::Event,
        context: &EventContext,
    ) -> Result<Self, EncodeError> {
        let aggregate = AggregateRef::new(A::TYPE, aggregate_id);
        let event_type = event.event_type();
        let mut tagged = serde_json::to_value(event).map_err(EncodeError::of(event_type))?;
        let data = tagged
            .get_mut("data")
            .map(Value::take)
            .unwrap_or(Value::Object(Default::default()));
        Ok(Self {
            event_id: EventId::derive(&aggregate, version),
            event_type: event_type.to_owned(),
            schema_version: event.schema_version(),
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id,
            aggregate_version: version,
            occurred_at: context.occurred_at,
            correlation_id: context.correlation_id.clone(),
            causation_id: context.causation_id.clone(),
            traceparent: context.traceparent.clone(),
            data,
        })
    }

    /// The aggregate instance this event belongs to.
    pub fn aggregate(&self) -> AggregateRef {
        AggregateRef::new(&self.aggregate_type, self.aggregate_id)
    }

    /// Decodes the domain event of aggregate `A` carried by this envelope: its
    /// data through the domain's validated types, its schema version the one
    /// this program reads, its aggregate version at least 1.
    ///
    /// # Errors
    /// [`EnvelopeError::WrongAggregate`], [`EnvelopeError::VersionZero`],
    /// [`EnvelopeError::Decode`] or [`EnvelopeError::UnknownSchema`].
    pub fn decode<A: Aggregate>(&self) -> Result<A::Event, EnvelopeError> {
        if self.aggregate_type != A::TYPE {
            return Err(EnvelopeError::WrongAggregate {
                expected: A::TYPE,
                actual: self.aggregate_type.clone(),
            });
        }
        if self.aggregate_version == Version::INITIAL {
            return Err(EnvelopeError::VersionZero {
                event_id: self.event_id,
            });
        }
        let tagged = serde_json::json!({ "eventType": self.event_type, "data": self.data });
        let event: A::Event =
            serde_json::from_value(tagged).map_err(|source| EnvelopeError::Decode {
                event_type: self.event_type.clone(),
                schema_version: self.schema_version,
                source,
            })?;
        if event.schema_version() != self.schema_version {
            return Err(EnvelopeError::UnknownSchema {
                event_type: self.event_type.clone(),
                found: self.schema_version,
                known: event.schema_version(),
            });
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outbox_domain::{EmailAddress, Money, Text};
    use outbox_seeds_domain::repair::{Repair, RepairEvent};
    use uuid::Uuid;

    fn context() -> EventContext {
        EventContext {
            occurred_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            correlation_id: "corr-1".into(),
            causation_id: "req-1".into(),
            traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
        }
    }

    #[test]
    fn an_envelope_round_trips_its_event_and_wire_names() {
        let id = AggregateId::from_uuid(Uuid::from_u128(9));
        let event = RepairEvent::RepairCompleted {
            vehicle: Text::parse("v", "B-XY 123").unwrap(),
            customer: Text::parse("c", "Ada").unwrap(),
            customer_email: EmailAddress::parse("e", "ada@example.com").unwrap(),
            total_cents: Money::from_cents(6_249).unwrap(),
        };
        let envelope =
            EventEnvelope::wrap::<Repair>(id, Version::new(4), &event, &context()).unwrap();
        assert_eq!(envelope.decode::<Repair>().unwrap(), event);
        let wire = serde_json::to_value(&envelope).unwrap();
        for field in [
            "eventId",
            "eventType",
            "schemaVersion",
            "aggregateType",
            "aggregateId",
            "aggregateVersion",
            "occurredAt",
            "correlationId",
            "causationId",
            "traceparent",
            "data",
        ] {
            assert!(wire.get(field).is_some(), "missing {field}");
        }
        assert_eq!(wire["occurredAt"], "2023-11-14T22:13:20Z");
        assert_eq!(wire["data"]["totalCents"], 6_249);
        assert_eq!(wire["data"]["customerEmail"], "ada@example.com");
        assert_eq!(wire["schemaVersion"], 2);
        assert_eq!(
            envelope.event_id,
            EventId::derive(&AggregateRef::new("Repair", id), Version::new(4))
        );
    }

    #[test]
    fn a_payload_that_does_not_match_its_schema_is_a_typed_error() {
        let id = AggregateId::from_uuid(Uuid::from_u128(9));
        let mut envelope = EventEnvelope::wrap::<Repair>(
            id,
            Version::new(2),
            &RepairEvent::WorkStarted {},
            &context(),
        )
        .unwrap();
        envelope.event_type = "RepairCompleted".into();
        assert!(matches!(
            envelope.decode::<Repair>(),
            Err(EnvelopeError::Decode { .. })
        ));
        envelope.aggregate_type = "Order".into();
        assert!(matches!(
            envelope.decode::<Repair>(),
            Err(EnvelopeError::WrongAggregate { .. })
        ));
    }

    #[test]
    fn a_version_1_repair_completed_without_the_email_is_refused_not_read() {
        let event = RepairEvent::RepairCompleted {
            vehicle: Text::parse("v", "B-XY 123").unwrap(),
            customer: Text::parse("c", "Ada").unwrap(),
            customer_email: EmailAddress::parse("e", "ada@example.com").unwrap(),
            total_cents: Money::from_cents(6_249).unwrap(),
        };
        let id = AggregateId::from_uuid(Uuid::from_u128(9));
        let current =
            EventEnvelope::wrap::<Repair>(id, Version::new(4), &event, &context()).unwrap();
        let mut old = current.clone();
        old.schema_version = 1;
        assert!(matches!(
            old.decode::<Repair>(),
            Err(EnvelopeError::UnknownSchema {
                found: 1,
                known: 2,
                ..
            })
        ));
        if let Some(data) = old.data.as_object_mut() {
            data.remove("customerEmail");
        }
        assert!(old.decode::<Repair>().is_err());
    }

    #[test]
    fn an_unknown_schema_version_or_version_zero_is_refused_not_read_as_version_one() {
        let id = AggregateId::from_uuid(Uuid::from_u128(9));
        let good = EventEnvelope::wrap::<Repair>(
            id,
            Version::new(2),
            &RepairEvent::WorkStarted {},
            &context(),
        )
        .unwrap();
        assert!(good.decode::<Repair>().is_ok());
        let mut future = good.clone();
        future.schema_version = 99;
        assert!(matches!(
            future.decode::<Repair>(),
            Err(EnvelopeError::UnknownSchema {
                found: 99,
                known: 1,
                ..
            })
        ));
        let mut zero = good;
        zero.aggregate_version = Version::INITIAL;
        assert!(matches!(
            zero.decode::<Repair>(),
            Err(EnvelopeError::VersionZero { .. })
        ));
    }

    #[test]
    fn the_json_length_is_the_length_of_the_json_text() {
        let id = AggregateId::from_uuid(Uuid::from_u128(9));
        let event = RepairEvent::WorkStarted {};
        let envelope =
            EventEnvelope::wrap::<Repair>(id, Version::new(3), &event, &context()).unwrap();
        assert_eq!(
            envelope.json_len(),
            serde_json::to_string(&envelope).unwrap().len()
        );
    }
}
