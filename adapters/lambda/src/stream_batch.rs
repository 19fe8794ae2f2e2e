//! A DynamoDB stream invocation as the relay reads it: each record decoded into
//! what the relay needs while the invocation's JSON is read, one typed record
//! alive at a time.
//!
//! Deserializing the whole `aws_lambda_events` event first would hold every
//! record's keys and image as typed attribute maps at once — about four times
//! the payload — beside the payload and the envelopes built from them. Read
//! through [`StreamBatch`]'s `Deserialize`, a record is decoded as soon as it
//! is read and dropped: what stays is its [`ChangeRecord`], or nothing for a
//! record that is not an outbox insert. The records are the same, in the same
//! order, as [`StreamBatch::from`] an already typed [`Event`] gives.

use std::fmt;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use outbox_application::ChangeRecord;
use outbox_dynamodb::{decode_lambda_record, Decoded, MissingSequenceNumber};

/// A DynamoDB stream batch, decoded record by record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamBatch {
    /// How many records the invocation carried, outbox inserts or not.
    pub records: usize,
    /// The outbox inserts, poison ones included, in stream order.
    pub changes: Vec<ChangeRecord>,
    /// Outbox inserts without a sequence number, in stream order: each is
    /// dead-lettered on its own.
    pub unpositioned: Vec<MissingSequenceNumber>,
}

impl StreamBatch {
    /// Decodes `record` and keeps what the relay needs of it.
    fn push(&mut self, record: &EventRecord) {
        self.records += 1;
        match decode_lambda_record(record) {
            Decoded::Change(change) => self.changes.push(change),
            Decoded::Skipped => {}
            Decoded::Unpositioned(missing) => self.unpositioned.push(missing),
        }
    }
}

impl From<&Event> for StreamBatch {
    fn from(event: &Event) -> Self {
        let mut batch = Self::default();
        for record in &event.records {
            batch.push(record);
        }
        batch
    }
}

/// The name of the records' array in a stream invocation.
const RECORDS: &str = "Records";

impl<'de> Deserialize<'de> for StreamBatch {
    /// Reads a stream invocation (`{"Records": [...]}`), refusing what the
    /// typed [`Event`] refuses: no `Records`, or a record that is not one.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(InvocationVisitor)
    }
}

/// Visits the invocation's object: `Records` is decoded, anything else skipped.
struct InvocationVisitor;

impl<'de> Visitor<'de> for InvocationVisitor {
    type Value = StreamBatch;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a DynamoDB stream event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StreamBatch, A::Error> {
        let mut batch = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != RECORDS {
                map.next_value::<IgnoredAny>()?;
            } else if batch.is_some() {
                return Err(de::Error::duplicate_field(RECORDS));
            } else {
                let mut records = StreamBatch::default();
                map.next_value_seed(RecordsSeed(&mut records))?;
                batch = Some(records);
            }
        }
        batch.ok_or_else(|| de::Error::missing_field(RECORDS))
    }
}

/// Decodes the records' array into the batch, one record at a time.
struct RecordsSeed<'b>(&'b mut StreamBatch);

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an array of DynamoDB stream records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut records: A) -> Result<(), A::Error> {
        while let Some(record) = records.next_element::<EventRecord>()? {
            self.0.push(&record);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outbox_application::ChangeContent;
    use serde_json::{json, Value};

    fn record(sequence: Option<&str>, name: &str, image: Value) -> Value {
        let mut change = json!({
            "ApproximateCreationDateTime": 1_700_000_000,
            "Keys": {"pk": image["pk"].clone(), "sk": image["sk"].clone()},
            "NewImage": image,
            "SizeBytes": 100,
            "StreamViewType": "NEW_IMAGE"
        });
        if let Some(sequence) = sequence {
            change["SequenceNumber"] = json!(sequence);
        }
        json!({
            "eventID": format!("id-{}", sequence.unwrap_or("none")),
            "eventName": name,
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": change
        })
    }

    /// `batch` as JSON, each raw image parsed: an image's attributes come in any order.
    fn comparable(batch: StreamBatch) -> Value {
        let raw = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        let changes: Vec<Value> = batch
            .changes
            .into_iter()
            .map(|change| {
                let content = match change.content {
                    ChangeContent::Poison {
                        reason,
                        raw: image,
                        identity,
                    } => json!({"reason": reason, "raw": raw(&image), "identity": format!("{identity:?}")}),
                    ChangeContent::Outbox(envelope) => serde_json::to_value(envelope).unwrap(),
                };
                json!([change.sequence.as_str(), content])
            })
            .collect();
        let unpositioned: Vec<Value> = batch
            .unpositioned
            .into_iter()
            .map(|missing| json!([missing.event_id, raw(&missing.raw)]))
            .collect();
        json!({"records": batch.records, "changes": changes, "unpositioned": unpositioned})
    }

    fn outbox(pk: &str) -> Value {
        json!({"pk": {"S": pk}, "sk": {"S": "EVENT#1"}, "entityType": {"S": "OUTBOX"}, "eventId": {"N": "7"}})
    }

    #[test]
    fn read_record_by_record_it_is_what_the_typed_event_gives() {
        let invocation = json!({
            "Records": [
                record(Some("1"), "INSERT", outbox("Repair#1")),
                record(Some("2"), "MODIFY", outbox("Repair#1")),
                record(None, "INSERT", outbox("Repair#2")),
                record(Some("3"), "INSERT", json!({"pk": {"S": "Repair#3"}, "sk": {"S": "STATE"}, "entityType": {"S": "AGGREGATE"}})),
                record(Some("4"), "INSERT", outbox("Repair#4")),
            ],
            "somethingElse": {"ignored": [1, 2]}
        });
        let typed: Event = serde_json::from_value(invocation.clone()).unwrap();
        let streamed: StreamBatch = serde_json::from_value(invocation.clone()).unwrap();
        let from_bytes: StreamBatch =
            serde_json::from_slice(invocation.to_string().as_bytes()).unwrap();

        assert_eq!(
            comparable(streamed.clone()),
            comparable(StreamBatch::from(&typed))
        );
        assert_eq!(comparable(from_bytes), comparable(streamed.clone()));
        assert_eq!(streamed.records, 5);
        let sequences: Vec<&str> = streamed
            .changes
            .iter()
            .map(|change| change.sequence.as_str())
            .collect();
        assert_eq!(sequences, ["1", "4"], "outbox inserts, in stream order");
        assert_eq!(streamed.unpositioned.len(), 1);
        assert_eq!(streamed.unpositioned[0].event_id, "id-none");
    }

    #[test]
    fn what_the_typed_event_refuses_is_refused() {
        for invocation in [
            r#"{}"#,
            r#"{"Records": {}}"#,
            r#"[]"#,
            r#"{"Records": [{"eventName": "INSERT"}]}"#,
            r#"{"Records": [], "Records": []}"#,
        ] {
            assert!(
                serde_json::from_str::<Event>(invocation).is_err(),
                "the typed event refuses {invocation}"
            );
            assert!(
                serde_json::from_str::<StreamBatch>(invocation).is_err(),
                "so does the batch: {invocation}"
            );
        }
        let empty: StreamBatch = serde_json::from_value(json!({"Records": []})).unwrap();
        assert_eq!(empty, StreamBatch::default());
    }
}
