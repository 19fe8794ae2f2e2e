//! `outbox-local`: the local service and the operator's tools, one binary.
//!
//! - `serve`: the command API over HTTP, the self-hosted relay and the consumers.
//! - `demo`: the seed stories with faults, a summary and the invariant check.
//! - `replay`: the outbox events of a time window, published again.
//! - `redrive`: dead letters shown, and chosen ones sent back.
//! - `status`: relay lag, dead letters, consumers and parked aggregates on one screen.
//! - `unpark`: a parked aggregate's held events applied in order, its missing
//!   version skipped on an operator's explicit word.
//!
//! Each reads its store from [`stack::StoreArgs`] (embedded dynoxide by
//! default) and, for the operator's tools, its bus and dead-letter queue from
//! [`target::TargetArgs`] (the local bus by default).

pub mod demo;
pub mod local_bus;
pub mod redrive;
pub mod replay;
pub mod serve;
pub mod stack;
pub mod status;
pub mod target;
pub mod unpark;

pub use demo::{run, BusKind, DemoOptions, StoreKind};

use outbox_application::{AggregateId, AggregateRef};
use outbox_domain::order::Order;
use outbox_domain::repair::Repair;
use outbox_domain::Aggregate;

/// The command line of `outbox-local`.
#[derive(Debug, clap::Parser)]
#[command(
    version,
    about = "The transactional outbox, locally: a service to call, the seed stories, and the operator's tools"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve the command API over HTTP, with the relay and the consumers behind it.
    Serve(serve::ServeOptions),
    /// Run the seed stories with faults and check every invariant.
    Demo(DemoOptions),
    /// Publish the outbox events of a time window again (past the stream's 24 hours).
    Replay(replay::ReplayOptions),
    /// Show dead letters and send chosen ones back where they came from.
    Redrive(redrive::RedriveOptions),
    /// Relay lag per shard, dead letters, what each consumer did, parked aggregates.
    Status(status::StatusOptions),
    /// Apply a parked aggregate's held events in order, skipping its missing version if told.
    Unpark(unpark::UnparkOptions),
}

/// Why a subcommand could not do its work; shown as one line.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The embedded server did not start.
    #[error(transparent)]
    Embedded(#[from] crate::embedded::EmbeddedError),
    /// The tables could not be set up or described.
    #[error(transparent)]
    Tables(#[from] outbox_dynamodb::TableError),
    /// A table the command needs does not exist.
    #[error("table {0} does not exist (check --table or TABLE_NAME, and the region)")]
    UnknownTable(String),
    /// DynamoDB could not be reached.
    #[error("DynamoDB is unreachable: {0}")]
    Unreachable(String),
    /// The flags or variables are inconsistent.
    #[error("{0}")]
    Config(String),
    /// The pipeline could not be wired.
    #[error(transparent)]
    Routing(#[from] outbox_memory::PatternError),
    /// The store could not be read or written outside a command.
    #[error("the store failed: {0}")]
    Store(#[source] outbox_application::BoxError),
    /// The outbox archive could not be read.
    #[error(transparent)]
    Replay(#[from] outbox_application::ReplayError),
    /// The dead-letter queue could not be read or written.
    #[error(transparent)]
    DeadLetters(#[from] outbox_application::ports::DeadLetterError),
    /// A parked aggregate could not be unparked.
    #[error(transparent)]
    Unpark(#[from] outbox_application::UnparkError),
    /// The stream could not be read.
    #[error(transparent)]
    Stream(#[from] outbox_dynamodb::StreamRelayError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Parses `TYPE#ID` (e.g. `REPAIR#0196…`), the aggregate's key in the table.
///
/// # Errors
/// What is wrong with it, for clap to show.
pub fn parse_aggregate(raw: &str) -> Result<AggregateRef, String> {
    let (kind, id) = raw
        .split_once('#')
        .ok_or_else(|| format!("`{raw}` is not TYPE#ID, e.g. REPAIR#<uuid>"))?;
    let aggregate_type = [Repair::TYPE, Order::TYPE]
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(kind))
        .ok_or_else(|| format!("`{kind}` is no aggregate type (REPAIR or ORDER)"))?;
    let id = AggregateId::parse(id).map_err(|error| error.to_string())?;
    Ok(AggregateRef::new(aggregate_type, id))
}
