//! Stream records → the relay's change records, from a Lambda DynamoDB stream
//! event (`aws_lambda_events`) or from the DynamoDB Streams API.
//!
//! Only an `INSERT` of an `OUTBOX` item is an event to relay. Other items, `MODIFY`
//! and `REMOVE` (TTL expiry) are skipped. An outbox item that does not decode
//! becomes a poison record carrying the reason, the raw image and what identifies
//! it (keys, event id and type where readable), so the relay dead-letters it
//! instead of blocking the shard. An outbox insert without a sequence number
//! cannot be named for a retry: it is [`MissingSequenceNumber`], whose letter the
//! caller sends before relaying the rest of the batch.

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodbstreams::types::{OperationType, Record};
use serde_dynamo::{AttributeValue, Item};

use outbox_application::ports::{DeadLetter, DeadLetterPayload, LetterSource};
use outbox_application::{ChangeContent, ChangeRecord, RecordIdentity, SequenceNumber};

use crate::items::outbox_envelope;
use crate::layout::{ENTITY_OUTBOX, ENTITY_TYPE, PK, SK};

/// What a stream record is to the relay.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every decoded record is a change; boxing it would only add an allocation"
)]
pub enum Decoded {
    /// Not an outbox insert: nothing to relay.
    Skipped,
    /// An outbox insert (or a poison one) at its position.
    Change(ChangeRecord),
    /// An outbox insert without a sequence number: dead-letter it on its own.
    Unpositioned(MissingSequenceNumber),
}

/// An outbox insert that cannot be placed in its shard: no sequence number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream record {event_id} has no sequence number")]
pub struct MissingSequenceNumber {
    /// The record's stream event id.
    pub event_id: String,
    /// The raw image (or keys).
    pub raw: String,
    /// What identifies it.
    pub identity: RecordIdentity,
}

impl MissingSequenceNumber {
    /// Its dead letter: it can be neither relayed in order nor retried.
    pub fn into_letter(self) -> DeadLetter {
        let reason = self.to_string();
        DeadLetter::new(
            LetterSource::UnpositionedStreamRecord {
                event_id: self.event_id,
            },
            reason,
            1,
            DeadLetterPayload::Raw { raw: self.raw },
            self.identity,
        )
    }
}

/// Decodes a record of a Lambda DynamoDB stream event.
pub fn decode_lambda_record(record: &EventRecord) -> Decoded {
    decode(
        record.event_name == "INSERT",
        record.change.sequence_number.as_deref(),
        &record.event_id,
        &record.change.keys,
        &record.change.new_image,
    )
}

/// Decodes a record read from the DynamoDB Streams API.
pub fn decode_streams_record(record: &Record) -> Decoded {
    let change = record.dynamodb.as_ref();
    let keys: Item = change
        .and_then(|c| c.keys.clone())
        .unwrap_or_default()
        .into();
    let image: Item = change
        .and_then(|c| c.new_image.clone())
        .unwrap_or_default()
        .into();
    decode(
        record.event_name == Some(OperationType::Insert),
        change.and_then(|c| c.sequence_number.as_deref()),
        record.event_id.as_deref().unwrap_or("?"),
        &keys,
        &image,
    )
}

/// Reads a dead letter's raw record (an outbox item's image as JSON) back into
/// its event, with today's decoder, or says why it still cannot be read.
///
/// # Errors
/// The reason, as text.
pub fn decode_raw_item(raw: &str) -> Result<outbox_application::EventEnvelope, String> {
    let item: Item =
        serde_json::from_str(raw).map_err(|error| format!("not an item image: {error}"))?;
    outbox_envelope(item).map_err(|error| format!("undecodable outbox item: {error}"))
}

/// The record as text, for a dead letter: its image, or its keys without one.
fn raw(keys: &Item, image: &Item) -> String {
    let shown = if image.is_empty() { keys } else { image };
    serde_json::to_string(shown).unwrap_or_default()
}

/// The raw text and the identity of a record are built only for poison: a
/// record that decodes costs one copy of its image, no serialization.
fn decode(
    inserted: bool,
    sequence: Option<&str>,
    event_id: &str,
    keys: &Item,
    image: &Item,
) -> Decoded {
    if !inserted || !is_outbox(keys, image) {
        return Decoded::Skipped;
    }
    let Some(sequence) = sequence else {
        return Decoded::Unpositioned(MissingSequenceNumber {
            event_id: RecordIdentity::bounded(event_id),
            raw: raw(keys, image),
            identity: identity(keys, image),
        });
    };
    let poison = |reason: String| ChangeContent::Poison {
        reason,
        raw: raw(keys, image),
        identity: identity(keys, image),
    };
    let content = if image.is_empty() {
        poison("the outbox record carries no new image; the stream must be NEW_IMAGE".into())
    } else {
        match outbox_envelope(image.clone()) {
            Ok(envelope) => ChangeContent::Outbox(envelope),
            Err(error) => poison(format!("undecodable outbox item: {error}")),
        }
    };
    Decoded::Change(ChangeRecord {
        sequence: SequenceNumber::new(sequence),
        content,
    })
}

/// The keys, event id and type of a record, where they are strings.
fn identity(keys: &Item, image: &Item) -> RecordIdentity {
    let text = |name: &str| match keys.get(name).or_else(|| image.get(name)) {
        Some(AttributeValue::S(value)) => Some(RecordIdentity::bounded(value)),
        _ => None,
    };
    RecordIdentity {
        pk: text(PK),
        sk: text(SK),
        event_id: text("eventId"),
        event_type: text("eventType"),
    }
}

/// An outbox item by its `entityType`, or, with no image, by its sort key.
fn is_outbox(keys: &Item, image: &Item) -> bool {
    match image.get(ENTITY_TYPE) {
        Some(AttributeValue::S(entity_type)) => entity_type == ENTITY_OUTBOX,
        Some(_) => false,
        None => matches!(keys.get(SK), Some(AttributeValue::S(sk)) if sk.starts_with("EVENT#")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::items::outbox_item;
    use aws_lambda_events::event::dynamodb::Event;
    use outbox_application::ports::LetterSource;
    use outbox_application::{AggregateId, AggregateRef, EventEnvelope, EventId, Traceparent};
    use outbox_domain::Version;
    use serde_json::json;
    use std::time::Duration;
    use time::OffsetDateTime;
    use uuid::Uuid;

    fn envelope() -> EventEnvelope {
        let aggregate_id = AggregateId::from_uuid(Uuid::from_u128(9));
        EventEnvelope {
            event_id: EventId::derive(&AggregateRef::new("Order", aggregate_id), Version::new(1)),
            event_type: "OrderPlaced".into(),
            schema_version: 1,
            aggregate_type: "Order".into(),
            aggregate_id,
            aggregate_version: Version::new(1),
            occurred_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            correlation_id: "c".into(),
            causation_id: "r".into(),
            traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
            data: json!({"customer": "Ada", "totalCents": 2300}),
        }
    }

    /// A Lambda event in the JSON shape AWS documents, with the given records.
    fn lambda_event(records: Vec<serde_json::Value>) -> Event {
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    fn lambda_record(name: &str, sequence: &str, image: &Item) -> serde_json::Value {
        json!({
            "eventID": format!("id-{sequence}"),
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1_700_000_000.0,
                "Keys": {"pk": {"S": "ORDER#9"}, "sk": {"S": "EVENT#00000000000000000001"}},
                "NewImage": image,
                "SequenceNumber": sequence,
                "SizeBytes": 512,
                "StreamViewType": "NEW_IMAGE"
            },
            "eventSourceARN": "arn:aws:dynamodb:eu-west-1:1:table/t/stream/s"
        })
    }

    fn image(envelope: &EventEnvelope) -> Item {
        outbox_item(
            envelope,
            Duration::from_secs(60),
            &outbox_seeds::service(&outbox_application::OutsidePorts::not_deployed()).sources(),
        )
        .unwrap()
        .into()
    }

    #[test]
    fn an_outbox_insert_becomes_an_event_and_everything_else_is_skipped() {
        let event = envelope();
        let mut state: Item = image(&event);
        state.insert(ENTITY_TYPE.into(), AttributeValue::S("AGGREGATE".into()));
        let batch = lambda_event(vec![
            lambda_record("INSERT", "100", &image(&event)),
            lambda_record("MODIFY", "101", &image(&event)),
            lambda_record("REMOVE", "102", &image(&event)),
            lambda_record("INSERT", "103", &state),
        ]);
        let decoded: Vec<_> = batch.records.iter().map(decode_lambda_record).collect();
        assert_eq!(
            decoded[0],
            Decoded::Change(ChangeRecord {
                sequence: SequenceNumber::new("100"),
                content: ChangeContent::Outbox(event),
            })
        );
        assert_eq!(
            decoded[1..],
            [Decoded::Skipped, Decoded::Skipped, Decoded::Skipped]
        );
    }

    #[test]
    fn an_undecodable_outbox_item_becomes_poison_with_its_reason() {
        let mut bad = image(&envelope());
        bad.insert("aggregateVersion".into(), AttributeValue::S("one".into()));
        let batch = lambda_event(vec![lambda_record("INSERT", "7", &bad)]);
        let Decoded::Change(ChangeRecord {
            sequence,
            content:
                ChangeContent::Poison {
                    reason,
                    raw,
                    identity,
                },
        }) = decode_lambda_record(&batch.records[0])
        else {
            panic!("expected poison");
        };
        assert_eq!(sequence, SequenceNumber::new("7"));
        assert!(reason.contains("undecodable outbox item"), "{reason}");
        assert!(raw.contains("\"one\""), "{raw}");
        let event = envelope();
        assert_eq!(
            identity,
            RecordIdentity {
                pk: Some("ORDER#9".into()),
                sk: Some("EVENT#00000000000000000001".into()),
                event_id: Some(event.event_id.to_string()),
                event_type: Some(event.event_type.clone()),
            },
            "the record's keys, and the event id and type read from the poison item"
        );
    }

    #[test]
    fn a_keys_only_outbox_record_is_poison_and_one_without_a_position_a_letter_of_its_own() {
        let batch = lambda_event(vec![lambda_record("INSERT", "8", &Item::default())]);
        assert!(matches!(
            decode_lambda_record(&batch.records[0]),
            Decoded::Change(ChangeRecord {
                content: ChangeContent::Poison { .. },
                ..
            })
        ));
        let mut record = batch.records[0].clone();
        record.change.new_image = image(&envelope());
        record.change.sequence_number = None;
        let Decoded::Unpositioned(missing) = decode_lambda_record(&record) else {
            panic!("a record without a position");
        };
        assert_eq!(missing.event_id, "id-8");
        let letter = missing.into_letter();
        assert_eq!(
            letter.source,
            LetterSource::UnpositionedStreamRecord {
                event_id: "id-8".into()
            }
        );
        assert_eq!(letter.identity.event_type.as_deref(), Some("OrderPlaced"));
    }

    #[test]
    fn a_streams_api_record_decodes_like_a_lambda_one() {
        let event = envelope();
        let item = outbox_item(
            &event,
            Duration::from_secs(60),
            &outbox_seeds::service(&outbox_application::OutsidePorts::not_deployed()).sources(),
        )
        .unwrap();
        let image = item
            .into_iter()
            .map(|(name, value)| {
                let value: serde_dynamo::AttributeValue = value.into();
                (name, value.into())
            })
            .collect();
        let record = Record::builder()
            .event_name(OperationType::Insert)
            .dynamodb(
                aws_sdk_dynamodbstreams::types::StreamRecord::builder()
                    .sequence_number("42")
                    .set_new_image(Some(image))
                    .build(),
            )
            .build();
        assert_eq!(
            decode_streams_record(&record),
            Decoded::Change(ChangeRecord {
                sequence: SequenceNumber::new("42"),
                content: ChangeContent::Outbox(event),
            })
        );
    }
}
