//! The relay at the API minimum: publish calls, wall time and CPU of one
//! Lambda stream batch, per stream shape and bus kind. `BENCHMARKS.md` holds
//! the numbers; `cargo bench -p bootstrap --bench relay` reproduces them.
//!
//! 1. Calls: every batch through `relay_stream_batch` with an in-process bus
//!    that accepts everything at once, against the minimum the bus's promise
//!    allows (classic: ⌈N/10⌉; Custom Event Bus: at least ⌈N/100⌉ and at least
//!    the longest run of one aggregate's events, as an aggregate's events go
//!    one per call).
//! 2. Wall time: the real publishers (AWS SDK) against a loopback stand-in of
//!    each bus's `PutEvents` that answers after 20 ms, so round trips dominate
//!    as on AWS, for 1, 2, 4 and 8 calls in flight. A round trip is what one
//!    call took with one call in flight (20 ms plus this machine's share);
//!    each figure is the median of three runs (one run for 10,000 records).
//! 3. CPU per record: reading the Lambda event's bytes and relaying them to the
//!    in-process bus, against `serde_json::from_slice::<Value>` of the same
//!    bytes, in the same run.
//!
//! `RELAY_BENCH_QUICK=1` runs only the 1,000-record batches; `RELAY_BENCH_ONLY`
//! = `cpu`, `calls` or `wall` runs one part.

// A bench binary: a panic is how it fails.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::Event;
use axum::body::Bytes;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use uuid::Uuid;

use application::ports::{
    BatchLimits, BusOrder, DeadLetter, DeadLetterError, DeadLetterQueue, EventPublisher,
    PublishError, PublishOutcome,
};
use application::Traceparent;
use application::{AggregateId, AggregateRef, EventEnvelope, EventId, EventSources, Relay};
use domain::Version;
use eventbridge_adapter::{CustomBusPublisher, EventBridgePublisher};
use lambda_adapter::relay_stream_batch;

/// How long the stand-in `PutEvents` takes to answer.
const ROUND_TRIP: Duration = Duration::from_millis(20);
/// The padding that makes an outbox record about 1.2 KB.
const PADDING: usize = 700;

/// How a batch's records are spread over aggregates.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// N/4 aggregates × 4 events, round-robin.
    Interleaved,
    /// N/4 aggregates × 4 events, each aggregate's events consecutive.
    Consecutive,
    /// One aggregate, N events.
    OneBusy,
}

impl Shape {
    const ALL: [Self; 3] = [Self::Interleaved, Self::Consecutive, Self::OneBusy];

    fn name(self) -> &'static str {
        match self {
            Self::Interleaved => "N/4 aggregates × 4, interleaved",
            Self::Consecutive => "N/4 aggregates × 4, consecutive",
            Self::OneBusy => "one aggregate × N",
        }
    }

    /// The (aggregate, version) of record `index` of `n`.
    fn place(self, index: usize, n: usize) -> (u128, u64) {
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
    fn longest_chain(self, n: usize) -> usize {
        match self {
            Self::Interleaved | Self::Consecutive => 4,
            Self::OneBusy => n,
        }
    }
}

/// The two buses, as the relay sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Classic,
    Custom,
}

impl Kind {
    fn limits(self) -> BatchLimits {
        match self {
            Self::Classic => BatchLimits {
                max_entries: 10,
                max_batch_bytes: 256 * 1024,
                order: BusOrder::Unordered,
            },
            Self::Custom => BatchLimits {
                max_entries: 100,
                max_batch_bytes: 256 * 1024,
                order: BusOrder::PerAggregate,
            },
        }
    }

    fn minimum_calls(self, shape: Shape, n: usize) -> usize {
        match self {
            Self::Classic => n.div_ceil(10),
            Self::Custom => n.div_ceil(100).max(shape.longest_chain(n)),
        }
    }
}

fn envelope(aggregate: u128, version: u64) -> EventEnvelope {
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
fn stream_batch(shape: Shape, n: usize) -> Vec<u8> {
    let records: Vec<Value> = (0..n)
        .map(|index| {
            let (aggregate, version) = shape.place(index, n);
            let item = dynamodb_adapter::items::outbox_item(
                &envelope(aggregate, version),
                Duration::from_secs(86_400),
                &EventSources::default(),
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

/// A bus in the process that accepts every entry at once, sizing entries as
/// the EventBridge publisher does, and counts the calls.
struct InstantBus {
    limits: BatchLimits,
    calls: AtomicUsize,
}

#[async_trait]
impl EventPublisher for InstantBus {
    fn limits(&self) -> BatchLimits {
        self.limits
    }

    fn entry_size(&self, event: &EventEnvelope) -> usize {
        14 + "carworkshop.outbox".len() + event.event_type.len() + event.json_len()
    }

    async fn publish(&self, events: &[EventEnvelope]) -> Result<Vec<PublishOutcome>, PublishError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(vec![PublishOutcome::Published; events.len()])
    }
}

/// A dead-letter queue that must never be needed.
struct NoLetters;

#[async_trait]
impl DeadLetterQueue for NoLetters {
    async fn send(&self, letter: DeadLetter) -> Result<(), DeadLetterError> {
        panic!("nothing should be dead-lettered: {}", letter.reason);
    }
}

async fn relay_once(relay: &Relay, bytes: &[u8]) {
    let event: Event = serde_json::from_slice(bytes).unwrap();
    let response = relay_stream_batch(relay, &event).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
}

/// Publish calls per shape, size and bus kind.
async fn calls(sizes: &[usize]) {
    println!("\n## Publish calls per stream batch (in-process bus)\n");
    println!("| records | stream shape | bus | calls | minimum |");
    println!("|---:|---|---|---:|---:|");
    for &n in sizes {
        for shape in Shape::ALL {
            let bytes = stream_batch(shape, n);
            for kind in [Kind::Classic, Kind::Custom] {
                let bus = Arc::new(InstantBus {
                    limits: kind.limits(),
                    calls: AtomicUsize::new(0),
                });
                let relay = Relay::new(bus.clone(), Arc::new(NoLetters));
                relay_once(&relay, &bytes).await;
                println!(
                    "| {n} | {} | {kind:?} | {} | {} |",
                    shape.name(),
                    bus.calls.load(Ordering::Relaxed),
                    kind.minimum_calls(shape, n)
                );
            }
        }
    }
}

/// Entries in a classic `PutEvents` request (JSON).
fn json_entries(body: &[u8]) -> usize {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["Entries"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// Entries in a Custom Event Bus `PutEvents` request (CBOR).
fn cbor_entries(body: &[u8]) -> usize {
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
static REQUESTS: AtomicUsize = AtomicUsize::new(0);

/// The stand-in of both buses' `PutEvents`: every entry published, after [`ROUND_TRIP`].
async fn put_events(uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
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
async fn stand_in() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(put_events);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn publisher(kind: Kind, endpoint: &str) -> Arc<dyn EventPublisher> {
    let credentials =
        aws_sdk_eventbridge::config::Credentials::new("bench", "bench", None, None, "bench");
    match kind {
        Kind::Classic => {
            let config = aws_sdk_eventbridge::Config::builder()
                .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
                .region(aws_sdk_eventbridge::config::Region::new("us-east-1"))
                .credentials_provider(credentials)
                .endpoint_url(endpoint)
                .build();
            Arc::new(EventBridgePublisher::new(
                aws_sdk_eventbridge::Client::from_conf(config),
                "outbox",
                EventSources::default(),
            ))
        }
        Kind::Custom => {
            let config = aws_sdk_eventbridgev2::Config::builder()
                .behavior_version(aws_sdk_eventbridgev2::config::BehaviorVersion::latest())
                .region(aws_sdk_eventbridgev2::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_eventbridgev2::config::Credentials::new(
                    "bench", "bench", None, None, "bench",
                ))
                .endpoint_url(endpoint)
                .build();
            Arc::new(CustomBusPublisher::new(
                aws_sdk_eventbridgev2::Client::from_conf(config),
                "arn:aws:events:us-east-1:123456789012:event-busv2/outbox/abcdefghijklmnopqrstuvwxy",
                EventSources::default(),
            ))
        }
    }
}

/// Wall time of one batch against the stand-in, per shape, bus and calls in flight.
async fn wall_times(sizes: &[usize]) {
    let endpoint = stand_in().await;
    println!("\n## Wall time per stream batch (stand-in answers after 20 ms)\n");
    println!(
        "| records | stream shape | bus | K=1 | K=2 | K=4 | K=8 | round trips at K=4 | one round trip |"
    );
    println!("|---:|---|---|---:|---:|---:|---:|---:|---:|");
    for &n in sizes {
        for shape in Shape::ALL {
            let bytes = stream_batch(shape, n);
            for kind in [Kind::Classic, Kind::Custom] {
                if kind == Kind::Custom && matches!(shape, Shape::OneBusy) && n > 1_000 {
                    println!(
                        "| {n} | {} | {kind:?} | not run: {n} calls one after another, ≥ {} s by construction | | | | | |",
                        shape.name(),
                        n as u128 * ROUND_TRIP.as_millis() / 1_000
                    );
                    continue;
                }
                let publisher = publisher(kind, &endpoint);
                let mut cells = Vec::new();
                let mut round_trip = ROUND_TRIP.as_secs_f64();
                let mut at_four = 0.0;
                // The median of three runs where a run is short, else one.
                let sequential = kind == Kind::Custom && matches!(shape, Shape::OneBusy);
                let runs = if n <= 1_000 && !sequential { 3 } else { 1 };
                for k in [1, 2, 4, 8] {
                    let relay = Relay::new(Arc::clone(&publisher), Arc::new(NoLetters))
                        .with_calls_in_flight(k);
                    if k == 1 && !sequential {
                        relay_once(&relay, &bytes).await; // warm the connections
                    }
                    let mut samples = Vec::new();
                    let mut calls = 0;
                    for _ in 0..runs {
                        let before = REQUESTS.load(Ordering::Relaxed);
                        let started = Instant::now();
                        relay_once(&relay, &bytes).await;
                        samples.push(started.elapsed().as_secs_f64());
                        calls = REQUESTS.load(Ordering::Relaxed) - before;
                    }
                    let (elapsed, _, _) = summary(samples);
                    if k == 1 {
                        // One call at a time: what one round trip really takes here.
                        round_trip = elapsed / calls as f64;
                    }
                    if k == 4 {
                        at_four = elapsed / round_trip;
                    }
                    cells.push(format!("{elapsed:.2} s"));
                }
                println!(
                    "| {n} | {} | {kind:?} | {} | {at_four:.1} | {:.1} ms |",
                    shape.name(),
                    cells.join(" | "),
                    round_trip * 1e3
                );
            }
        }
    }
}

/// Median and spread (min–max) of `samples`, in microseconds per record.
fn summary(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
    )
}

/// CPU per record of relaying a batch to the in-process bus, against parsing
/// the same bytes as a JSON value.
async fn cpu_per_record() {
    const N: usize = 1_000;
    const ROUNDS: usize = 31;
    let bytes = stream_batch(Shape::Interleaved, N);
    let relay = Relay::new(
        Arc::new(InstantBus {
            limits: Kind::Classic.limits(),
            calls: AtomicUsize::new(0),
        }),
        Arc::new(NoLetters),
    );
    let parsed_event: Event = serde_json::from_slice(&bytes).unwrap();
    let per_record = |started: Instant| started.elapsed().as_secs_f64() * 1e6 / N as f64;
    let (mut parse, mut relay_only, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        parse.push(per_record(started));
        drop(value);
        let started = Instant::now();
        let response = relay_stream_batch(&relay, &parsed_event).await.unwrap();
        relay_only.push(per_record(started));
        assert!(response.batch_item_failures.is_empty());
        let started = Instant::now();
        relay_once(&relay, &bytes).await;
        whole.push(per_record(started));
    }
    let ratio = |of: &[f64]| summary(of.iter().zip(&parse).map(|(x, p)| x / p).collect());
    let rows = [
        (
            "`serde_json::from_slice::<Value>` (reference)",
            summary(parse.clone()),
            None,
        ),
        (
            "relay a parsed batch (`relay_stream_batch`)",
            summary(relay_only.clone()),
            Some(ratio(&relay_only)),
        ),
        (
            "read the bytes and relay them",
            summary(whole.clone()),
            Some(ratio(&whole)),
        ),
    ];
    println!(
        "\n## CPU per record ({N} records of {} bytes each, {ROUNDS} rounds)\n",
        bytes.len() / N
    );
    println!("| what | median µs/record | min–max | ratio to the reference: median (min–max) |");
    println!("|---|---:|---:|---:|");
    for (what, (median, min, max), ratio) in rows {
        let ratio = ratio.map_or("1".to_owned(), |(m, lo, hi)| {
            format!("**{m:.2}×** ({lo:.2}–{hi:.2})")
        });
        println!("| {what} | {median:.2} | {min:.2}–{max:.2} | {ratio} |");
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let quick = std::env::var("RELAY_BENCH_QUICK").is_ok_and(|v| v == "1");
    let only = std::env::var("RELAY_BENCH_ONLY").unwrap_or_default();
    let sizes: &[usize] = if quick { &[1_000] } else { &[1_000, 10_000] };
    runtime.block_on(async {
        if only.is_empty() || only == "cpu" {
            cpu_per_record().await;
        }
        if only.is_empty() || only == "calls" {
            calls(sizes).await;
        }
        if only.is_empty() || only == "wall" {
            wall_times(sizes).await;
        }
    });
}
