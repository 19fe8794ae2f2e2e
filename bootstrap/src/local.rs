//! The local program: the seed stories through the whole pipeline, with faults.
//!
//! Options and wiring only; the pipeline, the faults, the stories and the audit
//! are the `simulation` crate's. By default the store is the real DynamoDB
//! adapter on an embedded dynoxide server whose data lives in a file (state
//! survives a restart), read by the self-hosted stream relay; `--store memory`
//! runs everything in memory instead, and `--endpoint` points the DynamoDB mode
//! at another server (moto, or DynamoDB itself). The bus, queues and consumers
//! are the in-memory adapters, routed by the reactions' declared subscriptions;
//! `--bus custom` makes the bus behave like a Custom Event Bus (order per
//! aggregate, repeats dropped for 5 minutes) instead of a classic one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use application::ports::SystemClock;
use application::EventSources;
use dynamodb_adapter::{create_tables, stream_arn, DynamoStore, TableLayout};
use memory_adapter::MemoryBus;
use simulation::{
    audit, audit_delivery, Backend, Client, Dice, DynamoBackend, MemoryBackend, Pipeline,
    RunReport, Violation,
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

/// Which bus the relay publishes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BusKind {
    /// A classic EventBridge bus: calls packed fully, no order promised.
    Classic,
    /// A Custom Event Bus: order per aggregate, repeats dropped for 5 minutes.
    Custom,
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
    /// The bus the relay publishes to.
    #[arg(long, value_enum, default_value_t = BusKind::Classic)]
    pub bus: BusKind,
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

/// Why the local program could not run.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The embedded server did not start.
    #[error(transparent)]
    Embedded(#[from] crate::embedded::EmbeddedError),
    /// The tables could not be set up.
    #[error(transparent)]
    Tables(#[from] dynamodb_adapter::TableError),
    /// The pipeline could not be wired.
    #[error(transparent)]
    Routing(#[from] memory_adapter::PatternError),
    /// The store could not be read or written outside a command.
    #[error("the store failed: {0}")]
    Store(#[source] application::BoxError),
}

/// How long a run may take to come to rest after its last command.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the seed stories and audits the result.
///
/// # Errors
/// [`LocalError`] when the store cannot be set up or read; broken invariants are
/// reported in [`RunReport::violations`].
pub async fn run(options: &LocalOptions) -> Result<RunReport, LocalError> {
    let mut server = None;
    let backend: Arc<dyn Backend> = match options.store {
        StoreKind::Memory => Arc::new(MemoryBackend::default()),
        StoreKind::Dynoxide => {
            let (endpoint, description) = match &options.endpoint {
                Some(endpoint) => (endpoint.clone(), format!("DynamoDB at {endpoint}")),
                None => {
                    let embedded = EmbeddedDynamo::start(Some(&options.data)).await?;
                    let endpoint = embedded.endpoint();
                    server = Some(embedded);
                    let description = format!("dynoxide, data in {}", options.data.display());
                    (endpoint, description)
                }
            };
            let clients = LocalClients::new(&endpoint);
            let layout = TableLayout::single_table(&options.table);
            create_tables(&clients.dynamodb, &layout).await?;
            let stream_arn = stream_arn(&clients.dynamodb, layout.outbox_table()).await?;
            Arc::new(DynamoBackend {
                store: DynamoStore::new(clients.dynamodb.clone(), layout),
                dynamodb: clients.dynamodb,
                streams: clients.streams,
                stream_arn,
                description,
            })
        }
    };
    let durable = options.store == StoreKind::Dynoxide;
    let sources = EventSources::default();
    let bus = match options.bus {
        BusKind::Classic => MemoryBus::new(sources),
        BusKind::Custom => MemoryBus::custom(sources, Arc::new(SystemClock)),
    };
    let pipeline = Pipeline::with_bus(
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
    if options.fault_rate > 0.0 {
        // A foreign writer's malformed outbox item: it must be dead-lettered, not block the stream.
        pipeline
            .write_poison(&prefix)
            .await
            .map_err(LocalError::Store)?;
        dice.count();
    }
    let mut client = Client::new(&pipeline, &mut dice, prefix);
    for n in 0..options.repairs {
        client.repair_story(n).await;
    }
    for n in 0..options.orders {
        client.order_story(n).await;
    }
    let tally = client.tally;
    pipeline.clear_faults();
    let touched: Vec<_> = tally.touched.iter().cloned().collect();
    let settled = pipeline.settle(&touched, usize::MAX, SETTLE_TIMEOUT).await;
    let observed = pipeline
        .observe(&touched)
        .await
        .map_err(LocalError::Store)?;
    let mut violations = audit(&observed);
    if !settled {
        violations.push(Violation::Unsettled);
    }
    violations.extend(audit_delivery(&observed));
    let report = RunReport {
        store: backend.describe(),
        aggregates_stored: backend.aggregates().await.map_err(LocalError::Store)?.len(),
        commands_committed: tally.committed,
        commands_failed: tally.failed,
        events_committed: observed.outbox().count(),
        stats: pipeline.stats(),
        effects: pipeline
            .consumers
            .iter()
            .map(|c| {
                (
                    c.reaction.name(),
                    pipeline.inbox.effects_of(c.reaction.name()).len(),
                )
            })
            .collect(),
        faults_injected: dice.injected(),
        violations,
    };
    if let Some(server) = server {
        server.stop().await?;
    }
    Ok(report)
}
