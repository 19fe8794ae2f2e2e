//! `relay`: the self-hosted stream relay alone, the shape a container runs, in
//! front of the local bus and its consumers. Any number of them (and `serve`,
//! whose relay is the same) share a stream's shards through the leases in the
//! checkpoint table: a shard is read by one at a time, a killed one's shards
//! are taken over within the lease's takeover bound, and one stopping in order
//! gives its shards up at once.
//!
//! Like `serve`'s, the relay publishes through a [`DeliveringBus`]: a checkpoint
//! moves only past events every consumer has handled durably, so a kill at any
//! instant loses no delivery. A checkpoint behind the stream's trim horizon
//! makes it republish the gap from the outbox's time index.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use outbox_application::ports::FeedReport;
use outbox_application::{LeaseTimings, Relay, Service};
use outbox_dynamodb::{
    DynamoArchive, DynamoDeadLetterQueue, DynamoInbox, StreamRelay, StreamRelayOptions,
};

use super::demo::BusKind;
use super::local_bus::{DeliveringBus, Drained, LocalBus};
use super::stack::{Stack, StoreArgs};
use super::LocalError;

/// The pause of the relay when the stream has nothing new.
const IDLE_PAUSE: Duration = Duration::from_millis(20);
/// How long a stopping relay goes on reading its shards to their end. With a
/// batch in flight (at most about 5 s of delivery attempts) and the consumers'
/// last drain (as long), a stop completes within about 25 s: inside the 30 s
/// ECS and Kubernetes give a stopping container by default. What is left
/// unread stays behind the checkpoint for the next relay.
pub const STOP_READ_LIMIT: Duration = Duration::from_secs(15);

/// How long a relay's shard leases last.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct LeaseArgs {
    /// How long a shard lease lasts without renewal, in milliseconds. A killed
    /// relay's shards are taken over within it plus a fifth; a relay stopped in
    /// order gives them up at once.
    #[arg(long = "lease-ms", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub lease_ms: u64,
}

impl LeaseArgs {
    /// The lease timings these flags give.
    pub fn timings(&self) -> LeaseTimings {
        LeaseTimings::from_duration(Duration::from_millis(self.lease_ms))
    }
}

/// Options of `outbox-local relay`.
#[derive(Debug, Clone, clap::Args)]
pub struct RelayOptions {
    /// The bus between relay and consumers.
    #[arg(long, value_enum, default_value_t = BusKind::Classic)]
    pub bus: BusKind,
    /// The shard leases.
    #[command(flatten)]
    pub lease: LeaseArgs,
    /// Where the data lives.
    #[command(flatten)]
    pub stack: StoreArgs,
}

/// What a relay did, told when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Entries the relay published.
    pub published: usize,
    /// Records and events the relay dead-lettered.
    pub relay_dead_lettered: usize,
    /// Events republished from the outbox over gaps the stream had trimmed.
    pub republished: usize,
    /// What the consumers did.
    pub consumed: Drained,
}

impl RelayReport {
    fn add(&mut self, polled: &FeedReport) {
        self.published += polled.published;
        self.relay_dead_lettered += polled.dead_lettered;
        self.republished += polled.republished;
    }
}

/// A stream relay in front of the local bus and the service's consumers.
pub struct LocalRelay {
    stream_relay: StreamRelay,
    delivering: DeliveringBus,
}

impl LocalRelay {
    /// The relay of `stack`'s outbox stream, delivering to the consumers of
    /// `service` (each behind the DynamoDB inbox) over a bus of `bus` kind.
    ///
    /// # Errors
    /// [`LocalError`] when the stream cannot be found or the bus wired.
    pub async fn new(
        service: &Service,
        stack: &Stack,
        bus: BusKind,
        lease: LeaseTimings,
    ) -> Result<Self, LocalError> {
        let layout = &stack.layout;
        let dead_letters = Arc::new(DynamoDeadLetterQueue::new(
            stack.dynamodb.clone(),
            &layout.dead_letter_table,
        ));
        let inbox = Arc::new(DynamoInbox::new(
            stack.dynamodb.clone(),
            &layout.inbox_table,
        ));
        let local = LocalBus::new(service, inbox, dead_letters.clone(), bus == BusKind::Custom)?;
        let stream_arn = stack.stream_arn().await?;
        let delivering = DeliveringBus::new(local);
        let relay = Relay::new(Arc::new(delivering.clone()), dead_letters);
        let stream_relay = StreamRelay::new(
            stack.streams.clone(),
            &stream_arn,
            stack.leases(&stream_arn),
            relay,
            StreamRelayOptions {
                lease,
                ..StreamRelayOptions::default()
            },
        )
        .with_archive(Arc::new(DynamoArchive::new(stack.dynamodb.clone(), layout)));
        Ok(Self {
            stream_relay,
            delivering,
        })
    }

    /// This relay's name in the lease table.
    pub fn owner(&self) -> &str {
        self.stream_relay.owner()
    }

    /// Relays until `stop` resolves; then reads its shards to their end (so
    /// every committed event is relayed and checkpointed) for at most
    /// [`STOP_READ_LIMIT`], gives its leases up and lets the consumers drain.
    pub async fn run(mut self, stop: impl Future<Output = ()>) -> RelayReport {
        let mut report = RelayReport::default();
        let mut stopping: Option<tokio::time::Instant> = None;
        tokio::pin!(stop);
        loop {
            if stopping.is_some_and(|since| since.elapsed() >= STOP_READ_LIMIT) {
                warn!("stopping before the stream's end: the rest waits behind the checkpoint");
                break;
            }
            match self.stream_relay.poll().await {
                Ok(polled) if polled.failures == 0 => {
                    report.add(&polled);
                    if polled.records > 0 {
                        continue;
                    }
                    if stopping.is_some() {
                        break;
                    }
                }
                outcome => {
                    if let Ok(polled) = &outcome {
                        report.add(polled);
                    }
                    if let Err(error) = outcome {
                        warn!(%error, "stream poll failed");
                    }
                    if stopping.is_some() {
                        tokio::time::sleep(IDLE_PAUSE).await;
                    }
                }
            }
            if stopping.is_none() {
                tokio::select! {
                    () = &mut stop => stopping = Some(tokio::time::Instant::now()),
                    () = tokio::time::sleep(IDLE_PAUSE) => {}
                }
            }
        }
        self.stream_relay.release().await;
        self.delivering.drain().await;
        report.consumed = self.delivering.drained();
        report
    }
}

/// Runs the relay alone until `shutdown` resolves, then stops in order.
///
/// # Errors
/// [`LocalError`] when the store cannot be opened or the relay wired.
pub async fn relay(
    service: &Service,
    options: &RelayOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<RelayReport, LocalError> {
    let stack = Stack::open(service, &options.stack, true).await?;
    let relay = LocalRelay::new(service, &stack, options.bus, options.lease.timings()).await?;
    info!(
        owner = %relay.owner(),
        store = %stack.description,
        dynamodb_endpoint = stack.endpoint.as_deref().unwrap_or("AWS"),
        takeover_bound = ?options.lease.timings().takeover_bound(),
        "relaying the outbox stream"
    );
    let report = relay.run(shutdown).await;
    stack.close().await?;
    info!(?report, "stopped");
    Ok(report)
}
