//! The relay at the API minimum: publish calls, wall time and CPU of one
//! Lambda stream batch, per stream shape and bus kind. `BENCHMARKS.md` holds
//! the numbers; `cargo bench -p outbox-bootstrap --bench relay` reproduces them.
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

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::Event;
use serde_json::Value;

use outbox_application::ports::{
    BatchLimits, DeadLetter, DeadLetterError, DeadLetterQueue, EventPublisher, PublishError,
    PublishOutcome,
};
use outbox_application::{EventEnvelope, Relay};
use outbox_eventbridge::{CustomBusPublisher, EventBridgePublisher};
use outbox_lambda::relay_stream_batch;

use support::{stand_in, stream_batch, summary, Shape, REQUESTS, ROUND_TRIP};

/// The two buses, as the relay sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Classic,
    Custom,
}

impl Kind {
    fn limits(self) -> BatchLimits {
        match self {
            Self::Classic => BatchLimits::CLASSIC_EVENT_BUS,
            Self::Custom => BatchLimits::CUSTOM_EVENT_BUS,
        }
    }

    fn minimum_calls(self, shape: Shape, n: usize) -> usize {
        match self {
            Self::Classic => n.div_ceil(10),
            Self::Custom => n.div_ceil(100).max(shape.longest_chain(n)),
        }
    }
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

fn publisher(kind: Kind, endpoint: &str) -> Arc<dyn EventPublisher> {
    let credentials =
        aws_sdk_eventbridge::config::Credentials::new("bench", "bench", None, None, "bench");
    match kind {
        Kind::Classic => {
            let config = aws_sdk_eventbridge::Config::builder()
                .http_client(outbox_bootstrap::https::platform_roots())
                .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
                .region(aws_sdk_eventbridge::config::Region::new("us-east-1"))
                .credentials_provider(credentials)
                .endpoint_url(endpoint)
                .build();
            Arc::new(EventBridgePublisher::new(
                aws_sdk_eventbridge::Client::from_conf(config),
                "outbox",
                outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
            ))
        }
        Kind::Custom => {
            let config = aws_sdk_eventbridgev2::Config::builder()
                .http_client(outbox_bootstrap::https::platform_roots())
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
                outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
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
