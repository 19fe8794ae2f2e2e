//! What the benches share: Lambda stream batches of outbox inserts in three
//! shapes, a loopback stand-in of both buses' `PutEvents`, and the median
//! with its spread.

// Each bench uses a part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use uuid::Uuid;

use outbox_application::{AggregateId, AggregateRef, EventEnvelope, EventId, Traceparent};
use outbox_domain::Version;

/// How long the stand-in `PutEvents` takes to answer.
pub const ROUND_TRIP: Duration = Duration::from_millis(20);
/// The padding that makes an outbox record about 1.2 KB.
pub const PADDING: usize = 700;

/// How a batch's records are spread over aggregates.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// N/4 aggregates × 4 events, round-robin.
    Interleaved,
    /// N/4 aggregates × 4 events, each aggregate's events consecutive.
    Consecutive,
    /// One aggregate, N events.
    OneBusy,
}

impl Shape {
    pub const ALL: [Self; 3] = [Self::Interleaved, Self::Consecutive, Self::OneBusy];

    pub fn name(self) -> &'static str {
        match self {
            Self::Interleaved => "N/4 aggregates × 4, interleaved",
            Self::Consecutive => "N/4 aggregates × 4, consecutive",
            Self::OneBusy => "one aggregate × N",
        }
    }

    /// The (aggregate, version) of record `index` of `n`.
    pub fn place(self, index: usize, n: usize) -> (u128, u64) {
        let aggregates = n / 4;
        match self {
            Self::Interleaved => (
                (index % aggregates) as u128,
                (index / aggregates) as u64 + 1,
            ),
            Self::Consecutive => ((index / 4) as u128, (index % 4) as u64 + 1),
            Self::OneBusy => (0, index as u64 + 1),
        }
    }

    /// The longest run of one aggregate's events.
    pub fn longest_chain(self, n: usize) -> usize {
        match self {
            Self::Interleaved | Self::Consecutive => 4,
            Self::OneBusy => n,
        }
    }
}

pub fn envelope(aggregate: u128, version: u64) -> EventEnvelope {
    let aggregate_id = AggregateId::from_uuid(Uuid::from_u128(
        0x0190_0000_0000_7000_8000_0000_0000_0000 + aggregate,
    ));
    EventEnvelope {
        event_id: EventId::derive(
            &AggregateRef::new("Repair", aggregate_id),
            Version::new(version),
        ),
        event_type: "LineItemAdded".into(),
        schema_version: 1,
        aggregate_type: "Repair".into(),
        aggregate_id,
        aggregate_version: Version::new(version),
        occurred_at: time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        correlation_id: "bench".into(),
        causation_id: "bench".into(),
        traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
        data: json!({ "description": "x".repeat(PADDING), "priceCents": 4999 }),
    }
}

/// The Lambda event of `n` outbox inserts in `shape`, as bytes.
pub fn stream_batch(shape: Shape, n: usize) -> Vec<u8> {
    let records: Vec<Value> = (0..n)
        .map(|index| {
            let (aggregate, version) = shape.place(index, n);
            let item = outbox_dynamodb::items::outbox_item(
                &envelope(aggregate, version),
                Duration::from_secs(86_400),
                &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
            )
            .unwrap();
            let image = serde_json::to_value(serde_dynamo::Item::from(item)).unwrap();
            json!({
                "eventID": format!("id-{index}"),
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1_700_000_000,
                    "Keys": { "pk": image["pk"].clone(), "sk": image["sk"].clone() },
                    "NewImage": image,
                    "SequenceNumber": format!("{:021}", index + 1),
                    "SizeBytes": 1200,
                    "StreamViewType": "NEW_IMAGE"
                },
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/outbox/stream/2024-01-01T00:00:00.000"
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "Records": records })).unwrap()
}

/// Entries in a classic `PutEvents` request (JSON).
pub fn json_entries(body: &[u8]) -> usize {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["Entries"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// Entries in a Custom Event Bus `PutEvents` request (CBOR).
pub fn cbor_entries(body: &[u8]) -> usize {
    let mut decoder = minicbor::Decoder::new(body);
    let Ok(length) = decoder.map() else {
        return 0;
    };
    let mut fields = 0;
    while length.is_none_or(|l| fields < l) {
        if decoder
            .datatype()
            .is_ok_and(|t| t == minicbor::data::Type::Break)
        {
            break;
        }
        let Ok(key) = decoder.str() else { return 0 };
        if key == "Entries" {
            return match decoder.array() {
                Ok(Some(n)) => usize::try_from(n).unwrap_or(0),
                Ok(None) => {
                    let mut n = 0;
                    while decoder
                        .datatype()
                        .is_ok_and(|t| t != minicbor::data::Type::Break)
                    {
                        decoder.skip().unwrap();
                        n += 1;
                    }
                    n
                }
                Err(_) => 0,
            };
        }
        decoder.skip().unwrap();
        fields += 1;
    }
    0
}

/// Requests the stand-in answered.
pub static REQUESTS: AtomicUsize = AtomicUsize::new(0);

/// The stand-in of both buses' `PutEvents`: every entry published, after [`ROUND_TRIP`].
pub async fn put_events(uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(ROUND_TRIP).await;
    if uri.path().ends_with("/operation/PutEvents") {
        let n = cbor_entries(&body);
        let mut encoder = minicbor::Encoder::new(Vec::new());
        encoder
            .map(2)
            .unwrap()
            .str("Entries")
            .unwrap()
            .array(n as u64)
            .unwrap();
        for _ in 0..n {
            encoder
                .map(2)
                .unwrap()
                .str("EventId")
                .unwrap()
                .str(&Uuid::new_v4().to_string())
                .unwrap()
                .str("SuccessCode")
                .unwrap()
                .str("PUBLISHED")
                .unwrap();
        }
        encoder.str("FailedEntryCount").unwrap().i32(0).unwrap();
        return (
            [
                ("content-type", "application/cbor"),
                ("smithy-protocol", "rpc-v2-cbor"),
            ],
            encoder.into_writer(),
        )
            .into_response();
    }
    assert_eq!(
        headers.get("x-amz-target").and_then(|v| v.to_str().ok()),
        Some("AWSEvents.PutEvents")
    );
    let entries: Vec<Value> = (0..json_entries(&body))
        .map(|_| json!({ "EventId": Uuid::new_v4().to_string() }))
        .collect();
    (
        [("content-type", "application/x-amz-json-1.1")],
        json!({ "FailedEntryCount": 0, "Entries": entries }).to_string(),
    )
        .into_response()
}

/// Starts the stand-in on a loopback port; its endpoint URL.
pub async fn stand_in() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(put_events);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

/// Median and spread (min–max) of `samples`.
pub fn summary(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
    )
}
