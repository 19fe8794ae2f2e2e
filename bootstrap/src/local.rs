//! The local program: the seed stories through the whole pipeline, with faults.
//!
//! By default the store is the real DynamoDB adapter on an embedded dynoxide
//! server whose data lives in a file (state survives a restart), and the
//! self-hosted stream relay reads its stream; `--store memory` runs everything
//! in memory instead, and `--endpoint` points the DynamoDB mode at another
//! server (moto, or DynamoDB itself). Bus, queues and consumers are in memory
//! until the EventBridge and SQS adapters arrive.
//!
//! Repairs are opened, worked on, billed and completed (invoicing and customer
//! notification act); orders are placed and moved through their statuses, every
//! other one cancelled (shipping, restaurant and tracking act). With a fault rate,
//! every hop fails at random — lost replies, throttling, rejected entries, crashed
//! relays and consumers, duplicate deliveries, a malformed outbox record — and
//! the clients retry with their idempotency keys, as real ones would.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use clap::{Parser, ValueEnum};

use application::ports::{AggregateStore, RandomIds, SystemClock};
use application::{
    AggregateRef, BoxError, CommandPolicy, CommandService, EventId, IdempotencyKey, RequestMeta,
    Target,
};
use domain::order::{Order, OrderCommand, OrderLine, OrderStatus, Quantity};
use domain::repair::{Repair, RepairCommand};
use domain::{Aggregate, Money, Text};
use dynamodb_adapter::{
    create_tables, stream_arn, Checkpoints, DynamoStore, StreamRelay, StreamRelayOptions,
    TableLayout,
};
use memory_adapter::{
    audit_at_rest, audit_delivery, audit_stored, BusFault, ConsumerFault, FaultyStore,
    MemoryPipeline, PipelineStats, QueueFault, StoreFault, StoredAggregate, StreamFault, Violation,
};

use crate::clients::LocalClients;
use crate::embedded::EmbeddedDynamo;

/// Which store the local program writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// The DynamoDB adapter on embedded dynoxide (or on `--endpoint`), with the stream relay.
    Dynoxide,
    /// The in-memory store and change log.
    Memory,
}

/// Command-line options of `outbox-local`.
#[derive(Debug, Clone, Parser)]
#[command(
    version,
    about = "Runs the outbox pipeline's seed stories in one process"
)]
pub struct LocalOptions {
    /// Probability (0 to 1) that any one hop suffers a fault.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub fault_rate: f64,
    /// Seed of the fault dice, to repeat a run.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// How many repairs to run through the workshop story.
    #[arg(long, default_value_t = 3)]
    pub repairs: usize,
    /// How many orders to run through the food ordering story.
    #[arg(long, default_value_t = 4)]
    pub orders: usize,
    /// Stream records per relay invocation.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    /// Where aggregates and their outbox live.
    #[arg(long, value_enum, default_value_t = StoreKind::Dynoxide)]
    pub store: StoreKind,
    /// The embedded dynoxide server's data file.
    #[arg(long, default_value = "outbox-local.db")]
    pub data: PathBuf,
    /// A DynamoDB-compatible endpoint to use instead of the embedded server.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// The main table's name (the checkpoint table is `<table>-checkpoints`).
    #[arg(long, default_value = "outbox-local")]
    pub table: String,
}

fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("`{raw}` is not a probability between 0 and 1")),
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct LocalReport {
    /// Where the data lives.
    pub store: String,
    /// Aggregates in the store, earlier runs' included.
    pub aggregates_stored: usize,
    /// Commands accepted (replays of a repeated key included once).
    pub commands_committed: usize,
    /// Commands that failed after the client's retries.
    pub commands_failed: usize,
    /// Events in the outbox.
    pub events_committed: usize,
    /// What the pipeline counted.
    pub stats: PipelineStats,
    /// Effects per consumer.
    pub effects: Vec<(&'static str, usize)>,
    /// Faults injected.
    pub faults_injected: usize,
    /// Broken invariants; empty when all held.
    pub violations: Vec<Violation>,
}

impl fmt::Display for LocalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        writeln!(f, "store                  {}", self.store)?;
        writeln!(
            f,
            "aggregates stored      {} (earlier runs included)",
            self.aggregates_stored
        )?;
        writeln!(f, "commands committed     {}", self.commands_committed)?;
        writeln!(f, "commands failed        {}", self.commands_failed)?;
        writeln!(f, "faults injected        {}", self.faults_injected)?;
        writeln!(f, "events committed       {}", self.events_committed)?;
        writeln!(
            f,
            "events published       {} (repeats included)",
            s.published
        )?;
        writeln!(
            f,
            "relay runs / retries   {} / {}",
            s.relay_runs, s.relay_retries
        )?;
        writeln!(f, "dead-lettered          {}", s.dead_lettered)?;
        writeln!(f, "effects applied        {}", s.effects_applied)?;
        writeln!(f, "duplicates suppressed  {}", s.duplicates_suppressed)?;
        for (consumer, count) in &self.effects {
            writeln!(f, "  {consumer:<24} {count}")?;
        }
        if self.violations.is_empty() {
            writeln!(f, "invariants             all held")
        } else {
            writeln!(f, "invariants             {} broken", self.violations.len())?;
            for violation in &self.violations {
                writeln!(f, "  {violation:?}")?;
            }
            Ok(())
        }
    }
}

/// Injects faults with a fixed probability from a seeded die.
struct Dice {
    rng: fastrand::Rng,
    rate: f64,
    injected: usize,
}

impl Dice {
    fn hit(&mut self) -> bool {
        let hit = self.rate > 0.0 && self.rng.f64() < self.rate;
        self.injected += usize::from(hit);
        hit
    }

    /// Arms random faults on every hop of `pipeline` for its next calls.
    /// Returns whether the relay process should die now.
    fn arm(&mut self, pipeline: &MemoryPipeline, feed: &Feed) -> bool {
        if self.hit() {
            let fault = [
                StoreFault::FailBeforeCommit,
                StoreFault::FailAfterCommit,
                StoreFault::Throttle,
            ][self.rng.usize(0..3)];
            match feed {
                Feed::Memory => pipeline.store.faults().inject(fault),
                Feed::Dynamo(dynamo) => dynamo.faulty.faults().inject(fault),
            }
        }
        if self.hit() {
            let fault = match self.rng.usize(0..4) {
                0 => BusFault::Throttle,
                1 if self.rng.bool() => BusFault::Reject {
                    entries: [0].into(),
                    retryable: false,
                },
                _ => BusFault::Reject {
                    entries: [self.rng.usize(0..3)].into(),
                    retryable: true,
                },
            };
            pipeline.bus.faults().inject(fault);
        }
        let relay_dies = self.hit();
        for subscriber in &pipeline.subscribers {
            if self.hit() {
                subscriber.faults.inject(ConsumerFault::CrashAfterEffect);
            }
            if self.hit() {
                subscriber.queue.faults().inject(QueueFault::Duplicate);
            }
        }
        relay_dies
    }
}

/// The DynamoDB side of a run: the store (with injected faults) and the relay reading its stream.
struct DynamoFeed {
    store: DynamoStore,
    faulty: FaultyStore,
    clients: LocalClients,
    arn: String,
    relay: StreamRelay,
    batch_size: i32,
}

impl DynamoFeed {
    /// The relay process dies and a new one starts from the checkpoints.
    fn restart_relay(&mut self, pipeline: &MemoryPipeline) {
        self.relay = stream_relay(
            &self.clients,
            &self.store.layout().checkpoint_table,
            &self.arn,
            pipeline.relay.clone(),
            self.batch_size,
        );
    }
}

/// A stream relay process starting from the checkpoints in `checkpoint_table`.
fn stream_relay(
    clients: &LocalClients,
    checkpoint_table: &str,
    arn: &str,
    relay: application::Relay,
    batch_size: i32,
) -> StreamRelay {
    let checkpoints = Checkpoints::new(clients.dynamodb.clone(), checkpoint_table, arn);
    let options = StreamRelayOptions {
        batch_size,
        idle_refresh: 3,
        describe_interval: Duration::from_secs(1),
        ..StreamRelayOptions::default()
    };
    StreamRelay::new(clients.streams.clone(), arn, checkpoints, relay, options)
}

/// Where the relay's records come from.
enum Feed {
    /// The in-memory store's change log.
    Memory,
    /// A DynamoDB stream.
    Dynamo(Box<DynamoFeed>),
}

/// A client of the pipeline that counts its results and lets the pipeline move on between commands.
struct Client<'p> {
    pipeline: &'p MemoryPipeline,
    feed: Feed,
    dice: Dice,
    run: String,
    touched: BTreeSet<AggregateRef>,
    report: LocalReport,
}

impl Client<'_> {
    /// One relay step; returns whether it read anything.
    async fn relay_step(&mut self) -> bool {
        match &mut self.feed {
            Feed::Memory => self.pipeline.relay_step().await.is_some(),
            Feed::Dynamo(dynamo) => match dynamo.relay.poll().await {
                Ok(report) => {
                    self.pipeline.count_relay_run(
                        report.published,
                        report.dead_lettered,
                        report.retries > 0,
                    );
                    report.records > 0
                }
                Err(error) => {
                    tracing::warn!(%error, "stream poll failed");
                    false
                }
            },
        }
    }

    async fn send<A: Aggregate>(
        &mut self,
        target: Target,
        command: A::Command,
        key: String,
    ) -> Option<Target> {
        if self.dice.arm(self.pipeline, &self.feed) {
            match &mut self.feed {
                Feed::Memory => self
                    .pipeline
                    .stream
                    .faults()
                    .inject(StreamFault::CrashAfterRelay),
                Feed::Dynamo(dynamo) => dynamo.restart_relay(self.pipeline),
            }
        }
        let key = format!("{}{key}", self.run);
        let meta = RequestMeta {
            idempotency_key: IdempotencyKey::parse(&key).ok(),
            ..RequestMeta::default()
        };
        let result = self.pipeline.submit::<A>(target, &command, &meta, 5).await;
        self.relay_step().await;
        self.pipeline.consume_step().await;
        match result {
            Ok(outcome) => {
                self.report.commands_committed += 1;
                let id = outcome.aggregate.aggregate_id;
                self.touched.insert(outcome.aggregate);
                Some(Target::Existing(id))
            }
            Err(error) => {
                self.report.commands_failed += 1;
                tracing::warn!(%key, %error, "command failed");
                None
            }
        }
    }
}

/// Why the local program could not run.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The embedded server did not start.
    #[error(transparent)]
    Embedded(#[from] crate::embedded::EmbeddedError),
    /// The tables could not be set up.
    #[error(transparent)]
    Tables(#[from] dynamodb_adapter::TableError),
    /// The store could not be read for the audit.
    #[error("reading the store failed: {0}")]
    Store(#[from] application::ports::StoreError),
    /// Writing the malformed outbox item failed.
    #[error("writing the malformed outbox item failed: {0}")]
    Poison(#[source] BoxError),
}

/// How long a run may take to come to rest after its last command.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the seed stories and audits the result.
///
/// # Errors
/// [`LocalError`] when the store cannot be set up or read; broken invariants are
/// reported in [`LocalReport::violations`].
pub async fn run(options: &LocalOptions) -> Result<LocalReport, LocalError> {
    let mut pipeline = MemoryPipeline::new(usize::from(options.batch_size));
    let mut server = None;
    let (feed, store_name) = match options.store {
        StoreKind::Memory => (Feed::Memory, "memory".to_owned()),
        StoreKind::Dynoxide => {
            let (endpoint, name) = match &options.endpoint {
                Some(endpoint) => (endpoint.clone(), format!("DynamoDB at {endpoint}")),
                None => {
                    let embedded = EmbeddedDynamo::start(Some(&options.data)).await?;
                    let endpoint = embedded.endpoint();
                    server = Some(embedded);
                    (
                        endpoint,
                        format!("dynoxide, data in {}", options.data.display()),
                    )
                }
            };
            let clients = LocalClients::new(&endpoint);
            let layout = TableLayout::single_table(&options.table);
            create_tables(&clients.dynamodb, &layout).await?;
            let arn = stream_arn(&clients.dynamodb, layout.outbox_table()).await?;
            let store = DynamoStore::new(clients.dynamodb.clone(), layout);
            let faulty = FaultyStore::new(Arc::new(store.clone()));
            pipeline.commands = CommandService::new(
                Arc::new(faulty.clone()),
                Arc::new(SystemClock),
                Arc::new(RandomIds),
                CommandPolicy::default(),
            );
            let batch_size = i32::from(options.batch_size);
            let dynamo = DynamoFeed {
                relay: stream_relay(
                    &clients,
                    &store.layout().checkpoint_table,
                    &arn,
                    pipeline.relay.clone(),
                    batch_size,
                ),
                store,
                faulty,
                clients,
                arn,
                batch_size,
            };
            (Feed::Dynamo(Box::new(dynamo)), name)
        }
    };
    let mut client = Client {
        pipeline: &pipeline,
        feed,
        dice: Dice {
            rng: fastrand::Rng::with_seed(options.seed),
            rate: options.fault_rate,
            injected: 0,
        },
        run: run_prefix(options),
        touched: BTreeSet::new(),
        report: LocalReport {
            store: store_name,
            ..LocalReport::default()
        },
    };
    if options.fault_rate > 0.0 {
        // A foreign writer's malformed outbox item: it must be dead-lettered, not block the stream.
        client.write_poison().await?;
        client.dice.injected += 1;
    }
    for n in 0..options.repairs {
        repair_story(&mut client, n).await;
    }
    for n in 0..options.orders {
        order_story(&mut client, n).await;
    }
    let report = client.finish().await?;
    if let Some(server) = server {
        server.stop().await?;
    }
    Ok(report)
}

/// Idempotency keys are scoped to a run when data outlives it, so a new run's
/// requests are new requests.
fn run_prefix(options: &LocalOptions) -> String {
    match options.store {
        StoreKind::Memory => String::new(),
        StoreKind::Dynoxide => format!("run-{}-", uuid::Uuid::now_v7().simple()),
    }
}

impl Client<'_> {
    async fn write_poison(&self) -> Result<(), LocalError> {
        let image = serde_json::json!({"entityType": "OUTBOX", "eventType": 42});
        match &self.feed {
            Feed::Memory => self.pipeline.store.append_raw_change(image),
            Feed::Dynamo(dynamo) => {
                dynamo
                    .clients
                    .dynamodb
                    .put_item()
                    .table_name(dynamo.store.layout().outbox_table())
                    .item("pk", AttributeValue::S(format!("FOREIGN#{}", self.run)))
                    .item("sk", AttributeValue::S("EVENT#1".into()))
                    .item("entityType", AttributeValue::S("OUTBOX".into()))
                    .item("eventType", AttributeValue::N("42".into()))
                    .send()
                    .await
                    .map_err(|e| LocalError::Poison(Box::new(e)))?;
            }
        }
        Ok(())
    }

    /// Lets the pipeline come to rest, then audits this run's aggregates.
    async fn finish(mut self) -> Result<LocalReport, LocalError> {
        let pipeline = self.pipeline;
        let mut report = std::mem::take(&mut self.report);
        report.faults_injected = self.dice.injected;
        match &self.feed {
            Feed::Memory => {
                pipeline.store.faults().clear();
                // An unsettled pipeline shows up in the audit as `Violation::Unsettled`.
                pipeline.settle(1_000_000).await;
                report.events_committed = pipeline.store.outbox().len();
                report.aggregates_stored = pipeline.store.aggregates().len();
                report.violations = audit_at_rest(pipeline);
            }
            Feed::Dynamo(dynamo) => {
                dynamo.faulty.faults().clear();
                let mut stored = Vec::new();
                for aggregate in &self.touched {
                    stored.push(StoredAggregate {
                        aggregate: aggregate.clone(),
                        state: dynamo.store.load(aggregate).await?,
                        outbox: dynamo.store.outbox_of(aggregate).await?,
                    });
                }
                let outbox: Vec<_> = stored.iter().flat_map(|s| s.outbox.clone()).collect();
                let settled = self.settle(&outbox).await;
                let Feed::Dynamo(dynamo) = &self.feed else {
                    unreachable!("the feed does not change kind")
                };
                report.events_committed = outbox.len();
                report.aggregates_stored = dynamo.store.aggregates().await?.len();
                report.violations = audit_stored(&stored);
                if !settled {
                    report.violations.push(Violation::Unsettled);
                }
                report.violations.extend(audit_delivery(&outbox, pipeline));
            }
        }
        report.stats = pipeline.stats();
        report.effects = pipeline
            .subscribers
            .iter()
            .map(|s| {
                (
                    s.service.name(),
                    pipeline.inbox.effects_of(s.service.name()).len(),
                )
            })
            .collect();
        Ok(report)
    }

    /// Relays and consumes until every event of `outbox` was published (or
    /// dead-lettered) and the queues are empty; false after [`SETTLE_TIMEOUT`].
    async fn settle(&mut self, outbox: &[application::EventEnvelope]) -> bool {
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        let expected: HashSet<EventId> = outbox.iter().map(|e| e.event_id).collect();
        while tokio::time::Instant::now() < deadline {
            let read = self.relay_step().await;
            let consumed = self.pipeline.consume_step().await;
            let mut handled: HashSet<EventId> = self
                .pipeline
                .bus
                .accepted()
                .iter()
                .map(|e| e.event_id)
                .collect();
            handled.extend(
                self.pipeline
                    .dead_letters
                    .letters()
                    .into_iter()
                    .filter_map(|letter| match letter.payload {
                        application::ports::DeadLetterPayload::Event { envelope } => {
                            Some(envelope.event_id)
                        }
                        application::ports::DeadLetterPayload::Raw { .. } => None,
                    }),
            );
            let queues_empty = self.pipeline.subscribers.iter().all(|s| s.queue.is_empty());
            if expected.is_subset(&handled) && queues_empty && consumed == 0 {
                return true;
            }
            if !read && consumed == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        false
    }
}

/// A repair opened, started, billed twice and completed (seed `000`).
async fn repair_story(client: &mut Client<'_>, n: usize) {
    let text = |raw: String| Text::parse("story", &raw).ok();
    let (Some(vehicle), Some(customer), Some(description)) = (
        text(format!("WS-{n:03}")),
        text(format!("Customer {n}")),
        text("brakes squeal".into()),
    ) else {
        return;
    };
    let open = RepairCommand::OpenRepair {
        vehicle,
        customer,
        description,
    };
    let Some(repair) = client
        .send::<Repair>(Target::New, open, format!("repair-{n}-open"))
        .await
    else {
        return;
    };
    let mut steps = vec![("start", RepairCommand::StartWork)];
    for (item, cents) in [("pads", 4_999), ("labour", 8_000 + 100 * n as i64)] {
        if let (Some(description), Ok(price_cents)) = (text(item.into()), Money::from_cents(cents))
        {
            steps.push((
                item,
                RepairCommand::AddLineItem {
                    description,
                    price_cents,
                },
            ));
        }
    }
    steps.push(("complete", RepairCommand::CompleteRepair));
    for (step, command) in steps {
        client
            .send::<Repair>(repair, command, format!("repair-{n}-{step}"))
            .await;
    }
}

/// An order placed and delivered, or cancelled while preparing (seeds `001`, `002`).
async fn order_story(client: &mut Client<'_>, n: usize) {
    let (Ok(customer), Ok(sku), Ok(quantity), Ok(price)) = (
        Text::parse("customer", &format!("Diner {n}")),
        Text::parse("sku", "PIZZA-MARGHERITA"),
        Quantity::new(1 + n as i64 % 3),
        Money::from_cents(1_150),
    ) else {
        return;
    };
    let place = OrderCommand::PlaceOrder {
        customer,
        items: vec![OrderLine {
            sku,
            quantity,
            unit_price_cents: price,
        }],
    };
    let Some(order) = client
        .send::<Order>(Target::New, place, format!("order-{n}-place"))
        .await
    else {
        return;
    };
    let path: &[OrderStatus] = if n.is_multiple_of(2) {
        &[
            OrderStatus::Preparing,
            OrderStatus::ReadyForPickup,
            OrderStatus::PickedUp,
            OrderStatus::Delivered,
        ]
    } else {
        &[OrderStatus::Preparing]
    };
    for to in path {
        client
            .send::<Order>(
                order,
                OrderCommand::ChangeStatus { to: *to },
                format!("order-{n}-{to:?}"),
            )
            .await;
    }
    if n % 2 == 1 {
        client
            .send::<Order>(
                order,
                OrderCommand::CancelOrder,
                format!("order-{n}-cancel"),
            )
            .await;
    }
}
