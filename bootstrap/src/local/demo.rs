//! `demo`: the declared aggregates' stories through the whole pipeline, with faults.
//!
//! Options and wiring only; the pipeline, the faults, the stories and the audit
//! are the `simulation` crate's. By default the store is the real DynamoDB
//! adapter on an embedded dynoxide server whose data lives in a file (state
//! survives a restart), read by the self-hosted stream relay, as in `serve`;
//! `--store memory` runs everything in memory instead, and `--endpoint-url`
//! points the DynamoDB mode at another server (moto, or DynamoDB itself). The bus, queues and consumers
//! are the in-memory adapters, routed by the reactions' declared subscriptions;
//! `--bus custom` makes the bus behave like a Custom Event Bus (order per
//! aggregate, repeats dropped for 5 minutes) instead of a classic one.
//!
//! The demo's consumers are its own, in memory, so it needs its table's stream
//! to itself: a stream another relay holds leased (a running `serve` or
//! `relay`) would hand the demo's events to that program's consumers, or the
//! other's events to the demo's. Such a table is refused by name; a lease
//! left by a killed program is waited out.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};

use outbox_application::ports::SystemClock;
use outbox_application::LeaseTimings;
use outbox_application::Service;
use outbox_dynamodb::{DynamoStore, LeaseTable, ShardLease};
use outbox_memory::MemoryBus;
use outbox_simulation::{
    audit, audit_delivery, Backend, Client, Dice, DynamoBackend, MemoryBackend, Pipeline,
    RunReport, Violation,
};

use super::stack::{Stack, StoreArgs};
use super::LocalError;

/// Which store the local program writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// The DynamoDB adapter on embedded dynoxide (or on `--endpoint`), with the stream relay.
    Dynoxide,
    /// The in-memory store and change log.
    Memory,
}

/// Which bus the relay publishes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BusKind {
    /// A classic EventBridge bus: calls packed fully, no order promised.
    Classic,
    /// A Custom Event Bus: order per aggregate, repeats dropped for 5 minutes.
    Custom,
}

/// Options of `outbox-local demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// Probability (0 to 1) that any one hop suffers a fault.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub fault_rate: f64,
    /// Seed of the fault dice, to repeat a run.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// How many times to tell the story of each declared aggregate type.
    #[arg(long, default_value_t = 4)]
    pub stories: usize,
    /// Stream records per relay invocation.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    /// Where aggregates and their outbox live.
    #[arg(long, value_enum, default_value_t = StoreKind::Dynoxide)]
    pub store: StoreKind,
    /// The bus the relay publishes to.
    #[arg(long, value_enum, default_value_t = BusKind::Classic)]
    pub bus: BusKind,
    /// Where the data lives.
    #[command(flatten)]
    pub stack: StoreArgs,
}

fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("`{raw}` is not a probability between 0 and 1")),
    }
}

/// Stories of each aggregate type told and audited together: what the audit
/// keeps in memory is one window's.
const WINDOW_STORIES: usize = 100;

/// The most stories `--store memory` tells: it keeps every aggregate and its
/// outbox in memory (about 100,000 events of the seeds at most).
pub const MAX_MEMORY_STORIES: usize = 8_000;

/// How long a run may take to come to rest after its last command.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Tells each of `service`'s stories `options.stories` times and audits the result.
///
/// # Errors
/// [`LocalError`] when the store cannot be set up or read; broken invariants are
/// reported in [`RunReport::violations`].
pub async fn run(service: &Service, options: &DemoOptions) -> Result<RunReport, LocalError> {
    service.validate()?;
    if options.store == StoreKind::Memory && options.stories > MAX_MEMORY_STORIES {
        return Err(LocalError::Config(format!(
            "--store memory keeps every aggregate in memory: at most {MAX_MEMORY_STORIES} stories; the default store (a data file) takes any number"
        )));
    }
    let mut stack = None;
    let backend: Arc<dyn Backend> = match options.store {
        StoreKind::Memory => Arc::new(MemoryBackend::default()),
        StoreKind::Dynoxide => {
            let opened = Stack::open(service, &options.stack, true).await?;
            let stream_arn = opened.stream_arn().await?;
            unshared(&opened.leases(&stream_arn), &options.stack.table).await?;
            let backend = Arc::new(DynamoBackend {
                store: DynamoStore::new(opened.dynamodb.clone(), opened.layout.clone()),
                dynamodb: opened.dynamodb.clone(),
                streams: opened.streams.clone(),
                stream_arn,
                description: opened.description.clone(),
            });
            stack = Some(opened);
            backend
        }
    };
    let durable = options.store == StoreKind::Dynoxide;
    let sources = service.sources();
    let bus = match options.bus {
        BusKind::Classic => MemoryBus::new(sources),
        BusKind::Custom => MemoryBus::custom(sources, Arc::new(SystemClock)),
    };
    let pipeline = Pipeline::with_bus(
        service,
        Arc::clone(&backend),
        usize::from(options.batch_size),
        durable,
        bus,
    )?;
    let mut dice = Dice::new(options.fault_rate, options.seed);
    // Keys are scoped to a run when data outlives it, so a new run's requests are new.
    let prefix = if durable {
        format!("run-{}-", uuid::Uuid::now_v7().simple())
    } else {
        String::new()
    };
    let told: Vec<_> = service
        .aggregates()
        .iter()
        .filter(|aggregate| !aggregate.story(0).is_empty())
        .collect();
    // Beside each story, at the fault rate, a foreign writer's malformed
    // outbox item: it must be dead-lettered, not block the stream.
    for story in 0..told.len() * options.stories {
        if dice.poison() {
            pipeline
                .write_poison(&format!("{prefix}{story}"))
                .await
                .map_err(LocalError::Store)?;
        }
    }
    let progress = ProgressBar::new((told.len() * options.stories) as u64).with_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} stories, {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.set_prefix("demo");
    // Told and audited window by window: once a window's aggregates are
    // settled and audited, what the audit read is forgotten, so memory stays
    // bounded by a window however many stories are told.
    let mut client = Client::new(&pipeline, &mut dice, prefix);
    let mut violations = Vec::new();
    let mut events_committed = 0;
    let mut effects: BTreeMap<&str, usize> = BTreeMap::new();
    let mut calls_completed = 0;
    let started = std::time::Instant::now();
    let plain_progress = !std::io::stderr().is_terminal();
    for window in (0..options.stories).step_by(WINDOW_STORIES) {
        let end = (window + WINDOW_STORIES).min(options.stories);
        for aggregate in &told {
            for n in window..end {
                client.tell(aggregate.as_ref(), n).await;
                progress.inc(1);
            }
        }
        pipeline.clear_faults();
        let touched: Vec<_> = std::mem::take(&mut client.tally.touched)
            .into_iter()
            .collect();
        let settled = pipeline.settle(&touched, usize::MAX, SETTLE_TIMEOUT).await;
        let observed = pipeline
            .observe(&touched)
            .await
            .map_err(LocalError::Store)?;
        violations.extend(audit(&observed));
        if !settled {
            violations.push(Violation::Unsettled);
        }
        violations.extend(audit_delivery(&observed));
        events_committed += observed.outbox().count();
        for consumer in &pipeline.consumers {
            let name = consumer.reaction.name();
            *effects.entry(name).or_default() += pipeline.inbox.effects_of(name).len();
            calls_completed += pipeline.inbox.completions_of(name).len();
        }
        pipeline.forget();
        if plain_progress {
            eprintln!(
                "demo: {}/{} stories, {} events, {:.0?}",
                end * told.len(),
                options.stories * told.len(),
                events_committed,
                started.elapsed()
            );
        }
    }
    progress.finish_and_clear();
    let tally = client.tally;
    let report = RunReport {
        store: backend.describe(),
        aggregates_stored: backend.aggregates().await.map_err(LocalError::Store)?.len(),
        store_persists: durable,
        commands_committed: tally.committed,
        commands_failed: tally.failed,
        events_committed,
        stats: pipeline.stats(),
        effects: pipeline
            .consumers
            .iter()
            .map(|c| {
                let name = c.reaction.name();
                (name, effects.get(name).copied().unwrap_or(0))
            })
            .collect(),
        calls_completed,
        faults_injected: dice.injected(),
        violations,
    };
    pipeline.stop_feed().await;
    if let Some(stack) = stack {
        stack.close().await?;
    }
    Ok(report)
}

/// Fails when another program relays the stream of `leases`: a lease with an
/// owner whose revision moves within a lease duration (its holder renews it).
/// A lease that stands still that long belongs to a program that is gone; the
/// demo's relay takes it over.
async fn unshared(leases: &LeaseTable, table: &str) -> Result<(), LocalError> {
    let read = || async {
        leases
            .list()
            .await
            .map_err(|error| LocalError::Store(Box::new(error)))
    };
    let held = |listed: &[ShardLease]| -> Vec<(String, u64)> {
        listed
            .iter()
            .filter(|lease| lease.owner.is_some() && !lease.finished)
            .map(|lease| (lease.shard.clone(), lease.revision))
            .collect()
    };
    let first = held(&read().await?);
    if first.is_empty() {
        return Ok(());
    }
    let patience = LeaseTimings::default().duration;
    let started = tokio::time::Instant::now();
    while started.elapsed() <= patience {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = read().await?;
        let live = now.iter().find(|lease| {
            lease.owner.is_some()
                && first
                    .iter()
                    .any(|(shard, revision)| *shard == lease.shard && *revision != lease.revision)
        });
        if let Some(lease) = live {
            return Err(LocalError::Config(format!(
                "the stream of table {table} is relayed by {} (a running serve or relay): the demo checks its own pipeline end to end and needs a table of its own (--table)",
                lease.owner.as_deref().unwrap_or("another relay")
            )));
        }
    }
    Ok(())
}
