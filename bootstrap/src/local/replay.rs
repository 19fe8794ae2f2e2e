//! `replay`: the outbox events of a time window published again, past the
//! stream's 24 hours, read from the outbox time index (no table scan), per
//! aggregate in version order, with their own event ids so every inbox drops
//! what it applied. The position after each page goes to a file, so an
//! interrupted replay continues with `--resume`; the file is removed when the
//! window is done.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use outbox_application::ports::{ArchiveCursor, ArchiveWindow};
use outbox_application::{AggregateRef, Relay, ReplayProgress, ReplayService, Service};
use outbox_dynamodb::DynamoArchive;

use super::local_bus::Drained;
use super::stack::{Stack, StoreArgs};
use super::target::{Target, TargetArgs};
use super::{parse_aggregate, LocalError};

/// The longest window one replay reads: every hour of it costs a query per
/// index shard, found or not (outbox items live 7 days by default).
const MAX_WINDOW: time::Duration = time::Duration::days(31);

/// Options of `outbox-local replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayOptions {
    /// The window's first instant (RFC 3339, e.g. 2026-11-23T08:00:00Z).
    #[arg(long, value_parser = parse_instant)]
    pub from: OffsetDateTime,
    /// The first instant after the window.
    #[arg(long, value_parser = parse_instant)]
    pub to: OffsetDateTime,
    /// Only this aggregate's events (TYPE#ID).
    #[arg(long, value_parser = parse_aggregate)]
    pub aggregate: Option<AggregateRef>,
    /// Count the window's events; publish nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Continue an interrupted replay of the same window from its position file.
    #[arg(long)]
    pub resume: bool,
    /// Where the position is kept while the replay runs.
    #[arg(long, default_value = "outbox-replay.position")]
    pub position_file: PathBuf,
    /// Where the data lives.
    #[command(flatten)]
    pub stack: StoreArgs,
    /// Where the events go.
    #[command(flatten)]
    pub target: TargetArgs,
}

fn parse_instant(raw: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .map_err(|error| format!("`{raw}` is not an RFC 3339 instant: {error}"))
}

/// The position file: the window it belongs to and where to go on.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    window: ArchiveWindow,
    next: String,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplayReport {
    /// How far it got.
    pub progress: ReplayProgress,
    /// Events per second read (and published, unless a dry run).
    pub rate: f64,
    /// What the local consumers did with the replayed events, when local.
    pub consumed: Option<Drained>,
    /// Whether the window was only read and counted (`--dry-run`).
    pub dry_run: bool,
}

impl std::fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.progress;
        if self.dry_run {
            return writeln!(
                f,
                "dry run: {} events in {} pages would be replayed; nothing was published ({:.0} events/s read)",
                p.events, p.pages, self.rate
            );
        }
        writeln!(
            f,
            "replayed {} events in {} pages: {} published, {} dead-lettered ({:.0} events/s)",
            p.events, p.pages, p.published, p.dead_lettered, self.rate
        )?;
        if let Some(consumed) = self.consumed {
            writeln!(
                f,
                "consumers: {} applied, {} released from parking, {} calls made, {} duplicates dropped, {} dead-lettered",
                consumed.applied,
                consumed.released,
                consumed.called,
                consumed.duplicates,
                consumed.dead_lettered
            )?;
        }
        Ok(())
    }
}

/// Runs `replay`.
///
/// # Errors
/// [`LocalError`]; the position file then holds where to resume.
pub async fn replay(
    service: &Service,
    options: &ReplayOptions,
) -> Result<ReplayReport, LocalError> {
    if options.from >= options.to {
        return Err(LocalError::Config("--from must be before --to".to_owned()));
    }
    if options.to - options.from > MAX_WINDOW {
        return Err(LocalError::Config(format!(
            "the window spans more than {} days; the time index is read hour by hour, so replay a longer span as several windows",
            MAX_WINDOW.whole_days()
        )));
    }
    let window = ArchiveWindow {
        from: options.from,
        to: options.to,
        aggregate: options
            .aggregate
            .as_ref()
            .map(|raw| super::resolve_aggregate(service, raw))
            .transpose()?,
    };
    let resume = if options.resume {
        Some(read_position(options, &window)?)
    } else {
        None
    };
    let stack = Stack::open(service, &options.stack, false).await?;
    let target = Target::resolve(&options.target, &stack)?;
    let relay = Relay::new(Arc::clone(&target.publisher), target.letters.clone())
        .with_calls_in_flight(options.target.calls_in_flight);
    let archive = DynamoArchive::new(stack.dynamodb.clone(), &stack.layout);
    let service = ReplayService::new(Arc::new(archive), relay);

    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let started = Instant::now();
    let mut write_error = None;
    let result = service
        .run(&window, resume, options.dry_run, |progress| {
            let rate = progress.events as f64 / started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "{} events, {} published, {} dead-lettered, {rate:.0}/s",
                progress.events, progress.published, progress.dead_lettered
            ));
            bar.tick();
            if options.dry_run || write_error.is_some() {
                return;
            }
            if let Some(next) = &progress.position {
                write_error = write_position(options, &window, next).err();
            }
        })
        .await;
    bar.finish_and_clear();
    let progress = result?;
    if let Some(error) = write_error {
        return Err(error);
    }
    let rate = progress.events as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let consumed = match &target.local {
        Some(local) => {
            local.drain().await;
            Some(local.drained())
        }
        None => None,
    };
    if !options.dry_run {
        remove_position(options)?;
    }
    stack.close().await?;
    Ok(ReplayReport {
        progress,
        rate,
        consumed,
        dry_run: options.dry_run,
    })
}

/// What to tell when a replay is stopped before its end: where it stands and
/// how to go on (a dry run keeps no position).
pub fn interrupted(options: &ReplayOptions) -> String {
    if options.dry_run {
        return "interrupted: a dry run publishes nothing and keeps no position".to_owned();
    }
    if options.position_file.exists() {
        format!(
            "interrupted: {} holds where the replay stands; run it again with --resume to go on",
            options.position_file.display()
        )
    } else {
        "interrupted before its first page was delivered: run it again".to_owned()
    }
}

fn file_error(options: &ReplayOptions) -> impl Fn(std::io::Error) -> LocalError + '_ {
    |source| LocalError::File {
        path: options.position_file.display().to_string(),
        source,
    }
}

fn read_position(
    options: &ReplayOptions,
    window: &ArchiveWindow,
) -> Result<ArchiveCursor, LocalError> {
    let text = std::fs::read_to_string(&options.position_file).map_err(file_error(options))?;
    let position: Position = serde_json::from_str(&text).map_err(|error| {
        LocalError::Config(format!(
            "{} is no replay position: {error}",
            options.position_file.display()
        ))
    })?;
    if position.window != *window {
        return Err(LocalError::Config(format!(
            "{} belongs to another window ({} to {}); replay that window, or start this one without --resume",
            options.position_file.display(),
            position.window.from,
            position.window.to
        )));
    }
    Ok(ArchiveCursor(position.next))
}

fn write_position(
    options: &ReplayOptions,
    window: &ArchiveWindow,
    next: &ArchiveCursor,
) -> Result<(), LocalError> {
    let position = Position {
        window: window.clone(),
        next: next.0.clone(),
    };
    let text =
        serde_json::to_string(&position).map_err(|error| LocalError::Config(error.to_string()))?;
    let temporary = options.position_file.with_extension("tmp");
    std::fs::write(&temporary, text).map_err(file_error(options))?;
    std::fs::rename(&temporary, &options.position_file).map_err(file_error(options))
}

fn remove_position(options: &ReplayOptions) -> Result<(), LocalError> {
    match std::fs::remove_file(&options.position_file) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(file_error(options)(error))
        }
        _ => Ok(()),
    }
}
