//! `unpark`: an aggregate an ordered consumer parked, applied again in order.
//! Without `--skip` it applies the held events once the missing one has
//! arrived (a late delivery or a redrive normally does that by itself); with
//! `--skip --by WHO --why WHY` the missing version is given up, the skip is
//! recorded beside the aggregate's sequence, and the held events follow. The
//! console's unpark actions run [`unpark_in`] too.

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

/// A skip of the missing version: who decides it and why, both recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// Who decides.
    pub by: String,
    /// Why the version is given up.
    pub why: String,
}

impl Skip {
    /// A skip decided by `by` for `why`.
    ///
    /// # Errors
    /// [`LocalError::Config`] when either is blank: a skip is never anonymous
    /// nor unexplained.
    pub fn new(by: &str, why: &str) -> Result<Self, LocalError> {
        let (by, why) = (by.trim(), why.trim());
        if by.is_empty() || why.is_empty() {
            return Err(LocalError::Config(
                "a skip needs who decides it (--by) and why (--why)".into(),
            ));
        }
        Ok(Self {
            by: by.to_owned(),
            why: why.to_owned(),
        })
    }
}

/// What to unpark, checked against the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnparkRequest {
    /// The ordered consumer that parked it.
    pub consumer: String,
    /// The aggregate, its type as the service declares it.
    pub aggregate: AggregateRef,
    /// The missing version given up, if it is.
    pub skip: Option<Skip>,
}

impl UnparkRequest {
    /// `aggregate` of `consumer`, skipping if `skip`, for `service`.
    ///
    /// # Errors
    /// [`LocalError`] for an unknown or unordered consumer or an unknown aggregate type.
    pub fn new(
        service: &Service,
        consumer: &str,
        aggregate: &AggregateRef,
        skip: Option<Skip>,
    ) -> Result<Self, LocalError> {
        let reaction = service.consumer_named(consumer)?;
        let aggregate = super::resolve_aggregate(service, aggregate)?;
        if !reaction.subscription().is_ordered() {
            return Err(LocalError::Config(format!(
                "{consumer} is unordered: it never parks"
            )));
        }
        Ok(Self {
            consumer: consumer.to_owned(),
            aggregate,
            skip,
        })
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
    let skip = match (&options.by, &options.why) {
        (Some(by), Some(why)) if options.skip => Some(Skip::new(by, why)?),
        _ => None,
    };
    let request = UnparkRequest::new(service, &options.consumer, &options.aggregate, skip)?;
    let stack = Stack::open(service, &options.stack, false).await?;
    let report = unpark_in(&stack, &options.target, &request).await;
    stack.close().await?;
    report
}

/// Unparks what `request` names in the open `stack`, dead letters going where
/// `target` says: the use case `unpark` and the console share.
///
/// # Errors
/// [`LocalError`] for an aggregate that is not parked, a skip of a version
/// that is held, or a store that fails.
pub async fn unpark_in(
    stack: &Stack,
    target: &TargetArgs,
    request: &UnparkRequest,
) -> Result<UnparkReport, LocalError> {
    stack.require(&stack.layout.inbox_table).await?;
    let reaction = stack.service.consumer_named(&request.consumer)?;
    let inbox = DynamoInbox::new(stack.dynamodb.clone(), &stack.layout.inbox_table);
    let letters: Arc<dyn DeadLetterQueue> = Target::letters(target, stack);
    let consume = ConsumeService::new(Arc::new(inbox), reaction, letters);
    let skip = request
        .skip
        .as_ref()
        .map(|skip| (skip.by.clone(), skip.why.clone()));
    let released = consume.unpark(&request.aggregate, skip).await?;
    Ok(UnparkReport {
        consumer: request.consumer.clone(),
        aggregate: request.aggregate.clone(),
        skipped: request.skip.is_some(),
        released,
    })
}
