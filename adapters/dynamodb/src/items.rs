//! The items a commit writes, as DynamoDB attribute maps, through `serde_dynamo`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use outbox_application::{
    AggregateId, EventEnvelope, EventSources, IdempotencyRecord, StateRecord,
};
use outbox_domain::Version;

use crate::layout::{
    aggregate_pk, outbox_at, outbox_hour, outbox_sk, request_pk, ENTITY_OUTBOX, ENTITY_REQUEST,
    ENTITY_STATE, ENTITY_TYPE, EVENT_SOURCE, EXPIRES_AT, OUTBOX_AT, OUTBOX_HOUR, PK, SK, STATE_SK,
};

/// An attribute map as the SDK takes it.
pub type Attributes = HashMap<String, AttributeValue>;

/// Why an item could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[error("{item}: {source}")]
pub struct ItemError {
    /// Which item.
    pub item: String,
    /// What `serde_dynamo` said.
    #[source]
    pub source: serde_dynamo::Error,
}

/// An aggregate's state item.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateItem {
    pk: String,
    sk: String,
    entity_type: String,
    aggregate_type: String,
    aggregate_id: AggregateId,
    version: Version,
    state: Value,
}

/// An idempotency record item; the record is kept whole under `request`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestItem {
    pk: String,
    sk: String,
    entity_type: String,
    expires_at: i64,
    request: IdempotencyRecord,
}

/// The state item of `record` for the aggregate of `aggregate_id`.
pub fn state_item(
    aggregate_type: &str,
    aggregate_id: AggregateId,
    record: &StateRecord,
) -> Result<Attributes, ItemError> {
    let aggregate = outbox_application::AggregateRef::new(aggregate_type, aggregate_id);
    let item = StateItem {
        pk: aggregate_pk(&aggregate),
        sk: STATE_SK.to_owned(),
        entity_type: ENTITY_STATE.to_owned(),
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id,
        version: record.version,
        state: record.state.clone(),
    };
    serde_dynamo::to_item(item).map_err(|source| ItemError {
        item: format!("{aggregate} state"),
        source,
    })
}

/// Reads a state item back.
pub fn state_record(item: Attributes) -> Result<StateRecord, ItemError> {
    let pk = string_attribute(&item, PK);
    let item: StateItem = serde_dynamo::from_item(item).map_err(|source| ItemError {
        item: format!("{pk} state"),
        source,
    })?;
    Ok(StateRecord {
        version: item.version,
        state: item.state,
    })
}

/// The outbox item of `envelope`: the envelope's attributes, its keys, `entityType`,
/// the time index's keys and a TTL `retention` after the event occurred.
pub fn outbox_item(
    envelope: &EventEnvelope,
    retention: Duration,
    sources: &EventSources,
) -> Result<Attributes, ItemError> {
    let error = |source| ItemError {
        item: format!("event {}", envelope.event_id),
        source,
    };
    let mut item: Attributes = serde_dynamo::to_item(envelope).map_err(error)?;
    item.insert(
        PK.to_owned(),
        AttributeValue::S(aggregate_pk(&envelope.aggregate())),
    );
    item.insert(
        SK.to_owned(),
        AttributeValue::S(outbox_sk(envelope.aggregate_version)),
    );
    item.insert(
        ENTITY_TYPE.to_owned(),
        AttributeValue::S(ENTITY_OUTBOX.to_owned()),
    );
    item.insert(
        EXPIRES_AT.to_owned(),
        AttributeValue::N(expiry(envelope.occurred_at, retention).to_string()),
    );
    item.insert(
        EVENT_SOURCE.to_owned(),
        AttributeValue::S(sources.source_of(&envelope.aggregate_type).to_owned()),
    );
    let aggregate = envelope.aggregate();
    item.insert(
        OUTBOX_HOUR.to_owned(),
        AttributeValue::S(outbox_hour(envelope.occurred_at, &aggregate)),
    );
    item.insert(
        OUTBOX_AT.to_owned(),
        AttributeValue::S(outbox_at(
            envelope.occurred_at,
            &aggregate,
            envelope.aggregate_version,
        )),
    );
    Ok(item)
}

/// Reads an outbox item back; its key and TTL attributes are ignored.
pub fn outbox_envelope<I: Into<serde_dynamo::Item>>(
    item: I,
) -> Result<EventEnvelope, serde_dynamo::Error> {
    serde_dynamo::from_item(item)
}

/// The idempotency record item of `record`, kept for `retention` from now.
pub fn request_item(
    record: &IdempotencyRecord,
    retention: Duration,
) -> Result<Attributes, ItemError> {
    let item = RequestItem {
        pk: request_pk(&record.key),
        sk: crate::layout::REQUEST_SK.to_owned(),
        entity_type: ENTITY_REQUEST.to_owned(),
        expires_at: expiry(now(), retention),
        request: record.clone(),
    };
    serde_dynamo::to_item(item).map_err(|source| ItemError {
        item: format!("request {}", record.key.as_str()),
        source,
    })
}

/// Reads an idempotency record item back.
pub fn request_record(item: Attributes) -> Result<IdempotencyRecord, ItemError> {
    let pk = string_attribute(&item, PK);
    serde_dynamo::from_item::<_, RequestItem>(item)
        .map(|item| item.request)
        .map_err(|source| ItemError { item: pk, source })
}

/// A string attribute's value, or `?` when it is missing.
fn string_attribute(item: &Attributes, name: &str) -> String {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .cloned()
        .unwrap_or_else(|| "?".to_owned())
}

/// Epoch seconds `retention` after `from`.
pub(crate) fn expiry(from: OffsetDateTime, retention: Duration) -> i64 {
    let retention = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    from.unix_timestamp().saturating_add(retention)
}

/// The wall clock, for TTLs only.
pub(crate) fn now() -> OffsetDateTime {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    OffsetDateTime::from_unix_timestamp(i64::try_from(seconds).unwrap_or(0))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use outbox_application::{AggregateRef, EventId, IdempotencyKey, Traceparent};
    use serde_json::json;
    use uuid::Uuid;

    fn envelope() -> EventEnvelope {
        let aggregate_id = AggregateId::from_uuid(Uuid::from_u128(9));
        let version = Version::new(3);
        EventEnvelope {
            event_id: EventId::derive(&AggregateRef::new("Repair", aggregate_id), version),
            event_type: "RepairCompleted".into(),
            schema_version: 1,
            aggregate_type: "Repair".into(),
            aggregate_id,
            aggregate_version: version,
            occurred_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            correlation_id: "corr".into(),
            causation_id: "cause".into(),
            traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
            data: json!({"vehicle": "WS-1", "totalCents": 12_999, "lines": [], "note": null}),
        }
    }

    #[test]
    fn an_outbox_item_round_trips_and_carries_keys_and_ttl() {
        let event = envelope();
        let item = outbox_item(
            &event,
            Duration::from_secs(60),
            &outbox_seeds::service(&outbox_application::OutsidePorts::not_deployed()).sources(),
        )
        .unwrap();
        assert_eq!(item[ENTITY_TYPE].as_s().unwrap(), ENTITY_OUTBOX);
        assert_eq!(item[SK].as_s().unwrap(), "EVENT#00000000000000000003");
        assert_eq!(item[EXPIRES_AT].as_n().unwrap(), "1700000060");
        assert_eq!(outbox_envelope(item).unwrap(), event);
    }

    #[test]
    fn a_state_item_round_trips() {
        let record = StateRecord {
            version: Version::new(4),
            state: json!({"status": "Open", "lines": [{"cents": 1}], "closed": null}),
        };
        let item = state_item(
            "Repair",
            AggregateId::from_uuid(Uuid::from_u128(9)),
            &record,
        )
        .unwrap();
        assert_eq!(
            item[PK].as_s().unwrap(),
            &format!("REPAIR#{}", Uuid::from_u128(9))
        );
        assert_eq!(item["version"].as_n().unwrap(), "4");
        assert_eq!(state_record(item).unwrap(), record);
    }

    #[test]
    fn a_request_item_round_trips() {
        let event = envelope();
        let record = IdempotencyRecord {
            key: IdempotencyKey::parse("key-1").unwrap(),
            fingerprint: Uuid::from_u128(5),
            aggregate: event.aggregate(),
            version: Version::new(3),
            event_ids: vec![event.event_id],
        };
        let item = request_item(&record, Duration::from_secs(60)).unwrap();
        assert_eq!(item[PK].as_s().unwrap(), "REQUEST#key-1");
        assert_eq!(request_record(item).unwrap(), record);
    }

    #[test]
    fn an_item_of_the_wrong_shape_is_an_error_not_a_panic() {
        let mut item = outbox_item(
            &envelope(),
            Duration::from_secs(60),
            &outbox_seeds::service(&outbox_application::OutsidePorts::not_deployed()).sources(),
        )
        .unwrap();
        item.insert("aggregateVersion".into(), AttributeValue::S("three".into()));
        assert!(outbox_envelope(item).is_err());
        let mut state = Attributes::new();
        state.insert(PK.into(), AttributeValue::S("REPAIR#x".into()));
        assert!(state_record(state)
            .unwrap_err()
            .to_string()
            .starts_with("REPAIR#x"));
    }
}
