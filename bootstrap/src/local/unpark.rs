//! `unpark`: an aggregate an ordered consumer parked, applied again in order.
//! Without `--skip` it applies the held events once the missing one has
//! arrived (a late delivery or a redrive normally does that by itself); with
//! `--skip --by WHO --why WHY` the missing version is given up, the skip is
//! recorded beside the aggregate's sequence, and the held events follow.

use std::sync::Arc;

use outbox_application::ports::DeadLetterQueue;
use outbox_application::{AggregateRef, ConsumeService, Released, Service};
use outbox_dynamodb::DynamoInbox;

use super::stack::{Stack, StoreArgs};
use super::target::{Target, TargetArgs};
use super::{parse_aggregate, LocalError};

/// Options of `outbox-local unpark`.
#[derive(Debug, Clone, clap::Args)]
pub struct UnparkOptions {
    /// The ordered consumer that parked it, e.g. `order-tracking`.
    #[arg(long)]
    pub consumer: String,
    /// The parked aggregate (TYPE#ID).
    #[arg(long, value_parser = parse_aggregate)]
    pub aggregate: AggregateRef,
    /// Give up the missing version (recorded with --by and --why).
    #[arg(long, requires_all = ["by", "why"])]
    pub skip: bool,
    /// Who decides the skip.
    #[arg(long, requires = "skip")]
    pub by: Option<String>,
    /// Why the missing version is given up.
    #[arg(long, requires = "skip")]
    pub why: Option<String>,
    /// Where the data lives.
    #[command(flatten)]
    pub stack: StoreArgs,
    /// Where dead letters are.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// What `unpark` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnparkReport {
    /// The consumer.
    pub consumer: String,
    /// The aggregate.
    pub aggregate: AggregateRef,
    /// Whether a version was skipped.
    pub skipped: bool,
    /// What releasing did.
    pub released: Released,
}

impl std::fmt::Display for UnparkReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sequence = &self.released.sequence;
        if self.skipped {
            writeln!(f, "skipped: a version of {} (recorded)", self.aggregate)?;
        }
        writeln!(
            f,
            "{} applied {} held events of {}; now at version {}",
            self.consumer, self.released.applied, self.aggregate, sequence.applied
        )?;
        match &sequence.parking {
            Some(_) => writeln!(
                f,
                "still parked: waits for version {} ({} held)",
                sequence.missing(),
                sequence.held
            ),
            None => writeln!(f, "unparked"),
        }
    }
}

/// Unparks the aggregate.
///
/// # Errors
/// [`LocalError`] for an unknown or unordered consumer, an aggregate that is
/// not parked, a skip of a version that is held, or a store that fails.
pub async fn unpark(
    service: &Service,
    options: &UnparkOptions,
) -> Result<UnparkReport, LocalError> {
    let reaction = service.consumer_named(&options.consumer)?;
    let aggregate = super::resolve_aggregate(service, &options.aggregate)?;
    if !reaction.subscription().is_ordered() {
        return Err(LocalError::Config(format!(
            "{} is unordered: it never parks",
            options.consumer
        )));
    }
    let stack = Stack::open(service, &options.stack, false).await?;
    stack.require(&stack.layout.inbox_table).await?;
    let inbox = DynamoInbox::new(stack.dynamodb.clone(), &stack.layout.inbox_table);
    let letters: Arc<dyn DeadLetterQueue> = Target::letters(&options.target, &stack);
    let consume = ConsumeService::new(Arc::new(inbox), reaction, letters);
    let skip = options
        .by
        .clone()
        .zip(options.why.clone())
        .filter(|_| options.skip);
    let released = consume.unpark(&aggregate, skip).await?;
    stack.close().await?;
    Ok(UnparkReport {
        consumer: options.consumer.clone(),
        aggregate,
        skipped: options.skip,
        released,
    })
}
