//! `redrive`: the dead-letter queue shown letter by letter (source, reason,
//! attempts, age) and by cause ([`letter_groups`](super::letter_groups)), and
//! chosen letters (all, by reason, by aggregate, one cause, one letter) sent
//! back where they came from — a relay's letter to the bus, a consumer's
//! letter to that consumer when it runs here. A letter is deleted only after
//! its event was accepted again; one still refused goes back with its
//! attempts raised. The console's redrive actions run [`send_back`] too.

use std::sync::Arc;

use time::OffsetDateTime;

use outbox_application::ports::StoredLetter;
use outbox_application::{
    letter_id, AggregateRef, LetterFilter, RedriveService, RedriveSummary, Redriven, Service,
};
use outbox_dynamodb::decode_raw_item;

use super::letter_groups::{group, LetterGroup};
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
    /// Send back the letters of one cause, by the id `--list` shows.
    #[arg(long, conflicts_with = "list")]
    pub cause: Option<String>,
    /// Send back one letter, by the id `--list` shows.
    #[arg(long, conflicts_with = "list")]
    pub letter: Option<String>,
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
    /// The letters listed, by cause (`--list` only).
    pub groups: Vec<LetterGroup>,
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
        if !self.groups.is_empty() {
            writeln!(f, "by cause (redrive one with --cause ID):")?;
            for group in &self.groups {
                writeln!(f, "  {group}")?;
            }
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

/// What `redrive` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Show the letters; send nothing back.
    List,
    /// Send back the letters the filter chooses.
    Send(LetterFilter),
}

impl RedriveOptions {
    /// What the flags ask for, the aggregate's type checked against `service`.
    ///
    /// # Errors
    /// [`LocalError::Config`] when nothing is chosen or the aggregate's type is unknown.
    pub fn choice(&self, service: &Service) -> Result<Choice, LocalError> {
        if self.list {
            return Ok(Choice::List);
        }
        let aggregate = self
            .aggregate
            .as_ref()
            .map(|raw| super::resolve_aggregate(service, raw))
            .transpose()?;
        let filter = LetterFilter {
            reason: self.reason.clone(),
            aggregate,
            cause: self.cause.clone(),
            letter: self.letter.clone(),
        };
        if !self.all && filter == LetterFilter::default() {
            return Err(LocalError::Config(
                "choose letters with --all, --reason, --aggregate, --cause or --letter, or show them with --list".into(),
            ));
        }
        Ok(Choice::Send(filter))
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
    let choice = options.choice(service)?;
    let stack = Stack::open(service, &options.stack, false).await?;
    let target = Target::resolve(&options.target, &stack)?;
    let report = match &choice {
        Choice::List => list(&target, options.max).await,
        Choice::Send(filter) => send_back(&target, filter, Letters::Read(options.max)).await,
    };
    stack.close().await?;
    report
}

/// The redrive use case over `target`'s letters and bus, a consumer's letter
/// going straight to that consumer when it runs here.
pub fn redrive_service(target: &Target) -> RedriveService {
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
    redrive
}

/// Lists up to `max` letters of `target`, one line each, and by cause.
///
/// # Errors
/// [`LocalError::DeadLetters`] when the queue cannot be read.
pub async fn list(target: &Target, max: usize) -> Result<RedriveReport, LocalError> {
    let listed = redrive_service(target).list(max).await?;
    let now = OffsetDateTime::now_utc();
    Ok(RedriveReport {
        lines: listed
            .iter()
            .map(|stored| describe(stored, now, None))
            .collect(),
        groups: group(&listed).groups,
        ..RedriveReport::default()
    })
}

/// Which letters a redrive looks at.
#[derive(Debug, Clone, Copy)]
pub enum Letters<'a> {
    /// Up to this many, read from the queue now.
    Read(usize),
    /// These, listed just before by the caller (a queue that hides what it
    /// returns would show a new read none of them).
    Listed(&'a [StoredLetter]),
}

/// Sends the letters `filter` chooses back, and lets the local consumers
/// finish with them.
///
/// # Errors
/// [`LocalError`]; every letter reported before was handled.
pub async fn send_back(
    target: &Target,
    filter: &LetterFilter,
    letters: Letters<'_>,
) -> Result<RedriveReport, LocalError> {
    let redrive = redrive_service(target);
    let now = OffsetDateTime::now_utc();
    let mut report = RedriveReport::default();
    let lines = &mut report.lines;
    let on_letter = |stored: &StoredLetter, outcome: &Redriven| {
        lines.push(describe(stored, now, Some(outcome)));
    };
    report.summary = match letters {
        Letters::Read(max) => redrive.redrive(filter, max, on_letter).await?,
        Letters::Listed(listed) => redrive.redrive_listed(listed, filter, on_letter).await?,
    };
    report.consumed = match &target.local {
        Some(local) => {
            local.drain().await;
            Some(local.drained())
        }
        None => None,
    };
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
            "letter {} | {} | {} | {} attempt(s) | {age}{fate}",
            letter_id(letter),
            letter.source,
            letter.reason,
            letter.attempts
        ),
        Err(malformed) => format!(
            "malformed message ({}) | {age} | {} bytes{fate}",
            malformed.reason,
            malformed.body.len()
        ),
    }
}
