//! `redrive`: the dead-letter queue shown letter by letter (source, reason,
//! attempts, age), and chosen letters (all, by reason, by aggregate) sent back
//! where they came from — a relay's letter to the bus, a consumer's letter to
//! that consumer when it runs here. A letter is deleted only after its event
//! was accepted again; one still refused goes back with its attempts raised.

use std::sync::Arc;

use time::OffsetDateTime;

use outbox_application::ports::StoredLetter;
use outbox_application::{
    AggregateRef, LetterFilter, RedriveService, RedriveSummary, Redriven, Service,
};
use outbox_dynamodb::decode_raw_item;

use super::local_bus::Drained;
use super::stack::{Stack, StoreArgs};
use super::target::{Target, TargetArgs};
use super::{parse_aggregate, LocalError};

/// Options of `outbox-local redrive`.
#[derive(Debug, Clone, clap::Args)]
pub struct RedriveOptions {
    /// Only show the letters; send nothing back.
    #[arg(long)]
    pub list: bool,
    /// Send back every letter.
    #[arg(long, conflicts_with = "list")]
    pub all: bool,
    /// Send back the letters whose reason contains this text.
    #[arg(long, conflicts_with = "list")]
    pub reason: Option<String>,
    /// Send back the letters of this aggregate's events (TYPE#ID).
    #[arg(long, value_parser = parse_aggregate, conflicts_with = "list")]
    pub aggregate: Option<AggregateRef>,
    /// The most letters to read.
    #[arg(long, default_value_t = 1000)]
    pub max: usize,
    /// Where the data lives.
    #[command(flatten)]
    pub stack: StoreArgs,
    /// Where events go and letters are.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// What `redrive` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveReport {
    /// One line per letter seen.
    pub lines: Vec<String>,
    /// How many went which way (all zero for `--list`).
    pub summary: RedriveSummary,
    /// What the local consumers did with redriven events, when local.
    pub consumed: Option<Drained>,
}

impl std::fmt::Display for RedriveReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        let s = &self.summary;
        writeln!(
            f,
            "{} accepted, {} returned to the queue, {} kept, {} not chosen, {} malformed",
            s.accepted, s.returned, s.kept, s.skipped, s.malformed
        )?;
        if let Some(consumed) = self.consumed {
            writeln!(
                f,
                "consumers: {} applied, {} calls made, {} duplicates dropped",
                consumed.applied, consumed.called, consumed.duplicates
            )?;
        }
        Ok(())
    }
}

/// Runs `redrive`.
///
/// # Errors
/// [`LocalError`]; every letter reported before was handled.
pub async fn redrive(
    service: &Service,
    options: &RedriveOptions,
) -> Result<RedriveReport, LocalError> {
    let chosen = options.all || options.reason.is_some() || options.aggregate.is_some();
    if !options.list && !chosen {
        return Err(LocalError::Config(
            "choose letters with --all, --reason or --aggregate, or show them with --list".into(),
        ));
    }
    let aggregate = options
        .aggregate
        .as_ref()
        .map(|raw| super::resolve_aggregate(service, raw))
        .transpose()?;
    let stack = Stack::open(service, &options.stack, false).await?;
    let target = Target::resolve(&options.target, &stack)?;
    let mut redrive = RedriveService::new(
        target.letters.clone(),
        Arc::clone(&target.publisher),
        Arc::new(decode_raw_item),
    );
    if let Some(local) = &target.local {
        for consumer in local.consumers() {
            redrive = redrive.with_consumer(consumer.clone());
        }
    }
    let now = OffsetDateTime::now_utc();
    let mut report = RedriveReport::default();
    if options.list {
        for stored in redrive.list(options.max).await? {
            report.lines.push(describe(&stored, now, None));
        }
    } else {
        let filter = LetterFilter {
            reason: options.reason.clone(),
            aggregate,
        };
        report.summary = redrive
            .redrive(&filter, options.max, |stored, outcome| {
                report.lines.push(describe(stored, now, Some(outcome)));
            })
            .await?;
        report.consumed = match &target.local {
            Some(local) => {
                local.drain().await;
                Some(local.drained())
            }
            None => None,
        };
    }
    stack.close().await?;
    Ok(report)
}

/// One letter as a line: source, reason, attempts, age, and its fate.
fn describe(stored: &StoredLetter, now: OffsetDateTime, outcome: Option<&Redriven>) -> String {
    let age = stored.stored_at.map_or_else(
        || "age unknown".to_owned(),
        |at| {
            let seconds = (now - at).whole_seconds().max(0);
            format!(
                "{}h{:02}m{:02}s old",
                seconds / 3600,
                seconds / 60 % 60,
                seconds % 60
            )
        },
    );
    let fate = match outcome {
        None => String::new(),
        Some(Redriven::Accepted) => " → accepted, deleted".into(),
        Some(Redriven::Returned { reason }) => format!(" → refused again, returned: {reason}"),
        Some(Redriven::Kept { reason }) => format!(" → kept: {reason}"),
        Some(Redriven::Skipped) => " → not chosen".into(),
        Some(Redriven::Malformed) => " → malformed, kept".into(),
    };
    match &stored.content {
        Ok(letter) => format!(
            "{} | {} | {} attempt(s) | {age}{fate}",
            letter.source, letter.reason, letter.attempts
        ),
        Err(malformed) => format!(
            "malformed message ({}) | {age} | {} bytes{fate}",
            malformed.reason,
            malformed.body.len()
        ),
    }
}
