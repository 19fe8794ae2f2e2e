//! `status`: one screen for an operator — the self-hosted relay's position and
//! lag per shard (the oldest record not relayed yet, and its age), the
//! dead-letter queue's depth and oldest letter, per consumer the effects
//! applied, the duplicates suppressed and what it sent (documents and emails in
//! the [`SentFolder`] beside the data file) and the committed events it has
//! not applied (outbox against inbox, the oldest with its age), the aggregates
//! ordered consumers parked (the missing version, why, since when), and the
//! commands that fix what is behind. `--json` for scripts.

use serde::Serialize;
use time::OffsetDateTime;

use std::collections::HashMap;

use outbox_application::ports::Inbox;
use outbox_application::{AggregateRef, EventEnvelope, Service};
use outbox_dynamodb::{stream_lag, DynamoInbox, DynamoStore};

use super::sent::{Sends, SentFolder};
use super::stack::{Stack, StoreArgs};
use super::target::{Target, TargetArgs};
use super::LocalError;

/// The longest a command takes from stamping its events to committing them
/// (the command API's timeout).
pub const COMMAND_TIME: time::Duration = time::Duration::seconds(10);

/// Options of `outbox-local status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusOptions {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Where the data lives.
    #[command(flatten)]
    pub stack: StoreArgs,
    /// Where the dead letters are.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// One shard of the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardStatus {
    /// The shard.
    pub shard: String,
    /// The last record relayed.
    pub position: Option<String>,
    /// Whether the shard is closed and relayed to its end.
    pub finished: bool,
    /// The relay holding its lease, if any.
    pub holder: Option<String>,
    /// The oldest record not relayed yet.
    pub oldest_unrelayed: Option<String>,
    /// Its age in seconds.
    pub lag_seconds: Option<i64>,
}

/// One consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerStatus {
    /// Its name.
    pub name: String,
    /// Effects applied.
    pub effects: u64,
    /// Redeliveries recognised and ignored.
    pub duplicates: u64,
    /// What it sent locally.
    pub sent: Sends,
    /// Committed events it subscribes to and has handled: its effect applied,
    /// its call made, or (ordered) its version skipped on record.
    pub handled: u64,
    /// Committed events it subscribes to and has not applied (the outbox
    /// against its inbox): in flight, held behind a gap, dead-lettered, or lost.
    pub unapplied: u64,
    /// The age in seconds of the oldest of those events.
    pub oldest_unapplied_seconds: Option<i64>,
}

/// An aggregate an ordered consumer parked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParkedStatus {
    /// The consumer.
    pub consumer: String,
    /// The aggregate, `TYPE#ID`.
    pub aggregate: String,
    /// The version it waits for.
    pub missing: u64,
    /// Later events held in order behind it.
    pub held: u64,
    /// Why it was parked.
    pub reason: String,
    /// Seconds since it was parked.
    pub parked_seconds: i64,
}

/// The whole screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// What the store is.
    pub store: String,
    /// Events in the outbox (decodable or not).
    pub committed: u64,
    /// Of those, the events the self-hosted relay has surely relayed by its
    /// checkpoints: all of them when it is caught up, else those stamped
    /// before [`relayed_before`](Self::relayed_before) (a lower bound).
    pub relayed: u64,
    /// [`COMMAND_TIME`] before the oldest record not relayed yet reached the
    /// stream: an event stamped before it was committed before that record,
    /// so relayed. `None` when the relay is caught up.
    #[serde(with = "time::serde::rfc3339::option")]
    pub relayed_before: Option<OffsetDateTime>,
    /// The relay per shard.
    pub shards: Vec<ShardStatus>,
    /// Letters waiting in the dead-letter queue.
    pub dead_letters: u64,
    /// The age in seconds of the oldest letter seen.
    pub oldest_letter_seconds: Option<i64>,
    /// The consumers.
    pub consumers: Vec<ConsumerStatus>,
    /// Aggregates parked by ordered consumers.
    pub parked: Vec<ParkedStatus>,
    /// Outbox items that do not decode (poison, which the relay dead-letters).
    pub undecodable_outbox_items: usize,
    /// What to run to bring what is behind up to date, one command a line.
    pub fixes: Vec<String>,
}

impl Status {
    /// Records not relayed yet exist on some shard.
    pub fn lagging(&self) -> bool {
        self.shards.iter().any(|s| s.oldest_unrelayed.is_some())
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "store: {}", self.store)?;
        writeln!(
            f,
            "outbox: {} events committed, {} relayed",
            self.committed, self.relayed
        )?;
        writeln!(f, "relay:")?;
        for shard in &self.shards {
            let lag = match (&shard.oldest_unrelayed, shard.lag_seconds) {
                _ if shard.finished => "finished".to_owned(),
                (None, _) => "caught up".to_owned(),
                (Some(sequence), Some(age)) => format!("behind from {sequence}, {age} s old"),
                (Some(sequence), None) => format!("behind from {sequence}"),
            };
            let holder = shard
                .holder
                .as_deref()
                .map_or_else(String::new, |owner| format!("  (read by {owner})"));
            writeln!(
                f,
                "  {}  at {}  {lag}{holder}",
                shard.shard,
                shard.position.as_deref().unwrap_or("(start)")
            )?;
        }
        let oldest = self
            .oldest_letter_seconds
            .map_or_else(String::new, |age| format!(", oldest {age} s old"));
        writeln!(f, "dead letters: {}{oldest}", self.dead_letters)?;
        if self.undecodable_outbox_items > 0 {
            writeln!(
                f,
                "outbox items no relay can decode: {} (dead-lettered as poison when relayed)",
                self.undecodable_outbox_items
            )?;
        }
        writeln!(f, "consumers:")?;
        for consumer in &self.consumers {
            write!(
                f,
                "  {:<24} {} applied, {} duplicates suppressed",
                consumer.name, consumer.effects, consumer.duplicates
            )?;
            let Sends { documents, emails } = consumer.sent;
            if documents > 0 {
                write!(f, ", {documents} documents written")?;
            }
            if emails > 0 {
                write!(f, ", {emails} emails sent")?;
            }
            if consumer.unapplied > 0 {
                let age = consumer
                    .oldest_unapplied_seconds
                    .map_or_else(String::new, |age| format!(", the oldest {age} s old"));
                write!(
                    f,
                    "; {} committed events not applied{age}",
                    consumer.unapplied
                )?;
            }
            writeln!(f)?;
        }
        writeln!(f, "parked aggregates: {}", self.parked.len())?;
        for parked in &self.parked {
            writeln!(
                f,
                "  {} {}: waits for version {}, {} held, parked {} s ago: {}",
                parked.consumer,
                parked.aggregate,
                parked.missing,
                parked.held,
                parked.parked_seconds,
                parked.reason
            )?;
        }
        if !self.fixes.is_empty() {
            writeln!(f, "to fix:")?;
            for fix in &self.fixes {
                writeln!(f, "  {fix}")?;
            }
        }
        Ok(())
    }
}

/// Reads the status.
///
/// # Errors
/// [`LocalError`] when a table, the stream or the queue cannot be read.
pub async fn status(service: &Service, options: &StatusOptions) -> Result<Status, LocalError> {
    let stack = Stack::open(service, &options.stack, false).await?;
    let status = read(&stack, &options.target, &options.stack).await;
    stack.close().await?;
    status
}

/// Reads the status of the open `stack`, its letters where `target` says, what
/// it sent beside the data file `store` names.
///
/// # Errors
/// [`LocalError`] when a table, the stream or the queue cannot be read.
pub async fn read(
    stack: &Stack,
    target: &TargetArgs,
    store: &StoreArgs,
) -> Result<Status, LocalError> {
    let service = &stack.service;
    stack.require(&stack.layout.checkpoint_table).await?;
    stack.require(&stack.layout.inbox_table).await?;
    let now = OffsetDateTime::now_utc();
    let stream_arn = stack.stream_arn().await?;
    let lags = stream_lag(&stack.streams, &stream_arn, &stack.leases(&stream_arn)).await?;
    // Records reach a shard in commit order: what was committed before its
    // oldest record not relayed went out. An event is stamped before its
    // commit, within a command's time: only events stamped longer before are
    // surely committed before it.
    let relayed_before = lags
        .iter()
        .filter(|lag| lag.oldest_unrelayed.is_some())
        .map(|lag| lag.oldest_at.unwrap_or(OffsetDateTime::UNIX_EPOCH) - COMMAND_TIME)
        .min();
    let shards = lags
        .into_iter()
        .map(|lag| ShardStatus {
            shard: lag.shard,
            position: lag.position.map(|s| s.as_str().to_owned()),
            finished: lag.finished,
            holder: lag.holder,
            oldest_unrelayed: lag.oldest_unrelayed.map(|s| s.as_str().to_owned()),
            lag_seconds: lag.oldest_at.map(|at| (now - at).whole_seconds().max(0)),
        })
        .collect();
    let depth = Target::letters(target, stack).depth().await?;
    let inbox = DynamoInbox::new(stack.dynamodb.clone(), &stack.layout.inbox_table);
    let sent = SentFolder::beside(&store.data);
    let sends = sent.sends().map_err(|source| LocalError::File {
        path: sent.root().display().to_string(),
        source,
    })?;
    // An outbox item that does not decode is poison: the relay dead-letters it.
    let (events, undecodable) = DynamoStore::new(stack.dynamodb.clone(), stack.layout.clone())
        .outbox_readable()
        .await
        .map_err(|error| LocalError::Store(Box::new(error)))?;
    let mut consumers = Vec::new();
    let mut oldest_unapplied: Option<OffsetDateTime> = None;
    for reaction in service.consumers() {
        let tally = inbox
            .tally(reaction.name())
            .await
            .map_err(|error| LocalError::Store(Box::new(error)))?;
        let unapplied = unapplied(&inbox, reaction, &events).await?;
        let subscription = reaction.subscription();
        let subscribed = events.iter().filter(|e| subscription.accepts(e)).count();
        let oldest = unapplied.iter().map(|event| event.occurred_at).min();
        oldest_unapplied = match (oldest_unapplied, oldest) {
            (Some(before), Some(this)) => Some(before.min(this)),
            (before, this) => before.or(this),
        };
        consumers.push(ConsumerStatus {
            name: reaction.name().to_owned(),
            effects: tally.effects,
            duplicates: tally.duplicates,
            sent: sends.get(reaction.name()).copied().unwrap_or_default(),
            handled: subscribed.saturating_sub(unapplied.len()) as u64,
            unapplied: unapplied.len() as u64,
            oldest_unapplied_seconds: oldest.map(|at| (now - at).whole_seconds().max(0)),
        });
    }
    let parked = inbox
        .parked()
        .await
        .map_err(|error| LocalError::Store(Box::new(error)))?
        .into_iter()
        .map(|parked| {
            let parking = parked.sequence.parking.clone();
            ParkedStatus {
                consumer: parked.consumer,
                aggregate: parked.aggregate.to_string(),
                missing: parked.sequence.missing().value(),
                held: parked.sequence.held,
                reason: parking
                    .as_ref()
                    .map(|p| p.reason.clone())
                    .unwrap_or_default(),
                parked_seconds: parking.map_or(0, |p| (now - p.since).whole_seconds().max(0)),
            }
        })
        .collect();
    let relayed = match relayed_before {
        None => events.len(),
        Some(before) => events.iter().filter(|e| e.occurred_at < before).count(),
    };
    let mut status = Status {
        store: stack.description.clone(),
        committed: (events.len() + undecodable) as u64,
        relayed: relayed as u64,
        relayed_before,
        shards,
        dead_letters: depth.letters,
        oldest_letter_seconds: depth.oldest.map(|at| (now - at).whole_seconds().max(0)),
        consumers,
        parked,
        undecodable_outbox_items: undecodable,
        fixes: Vec::new(),
    };
    status.fixes = fixes(&status, oldest_unapplied, now, store);
    Ok(status)
}

/// The events of `events` that `reaction` subscribes to and has not applied:
/// an unordered consumer by its marks, an ordered one by how far its
/// sequence of each aggregate got (a skipped version counts as applied).
async fn unapplied<'e>(
    inbox: &DynamoInbox,
    reaction: &std::sync::Arc<dyn outbox_application::Reaction>,
    events: &'e [EventEnvelope],
) -> Result<Vec<&'e EventEnvelope>, LocalError> {
    let store = |error: outbox_application::ports::InboxError| LocalError::Store(Box::new(error));
    let subscription = reaction.subscription();
    let accepted = events.iter().filter(|event| subscription.accepts(event));
    if !subscription.is_ordered() {
        let handled = inbox.handled_events(reaction.name()).await.map_err(store)?;
        return Ok(accepted
            .filter(|event| !handled.contains(&event.event_id))
            .collect());
    }
    let mut reached: HashMap<AggregateRef, u64> = HashMap::new();
    let mut missing = Vec::new();
    for event in accepted {
        let aggregate = event.aggregate();
        let applied = match reached.get(&aggregate) {
            Some(applied) => *applied,
            None => {
                let applied = inbox
                    .sequence(reaction.name(), &aggregate)
                    .await
                    .map_err(store)?
                    .applied
                    .value();
                reached.insert(aggregate, applied);
                applied
            }
        };
        if event.aggregate_version.value() > applied {
            missing.push(event);
        }
    }
    Ok(missing)
}

/// The commands that bring what is behind up to date: the relay when the
/// stream has records it has not relayed, `unpark` for parked aggregates,
/// `redrive` for dead letters, and a replay of the window from the oldest
/// unapplied event when consumers miss events nothing else accounts for.
fn fixes(
    status: &Status,
    oldest_unapplied: Option<OffsetDateTime>,
    now: OffsetDateTime,
    stack: &StoreArgs,
) -> Vec<String> {
    let data = format!("--data {}", stack.data.display());
    let mut fixes = Vec::new();
    if status.lagging() {
        fixes.push(format!(
            "outbox-local relay {data}   # the stream has records not relayed yet: run a relay (or serve)"
        ));
    }
    if !status.parked.is_empty() {
        fixes.push(format!(
            "outbox-local unpark {data} --consumer <consumer> --aggregate <TYPE#ID>   # see the parked aggregates above"
        ));
    }
    if status.dead_letters > 0 {
        fixes.push(format!(
            "outbox-local redrive {data} --list   # then redrive what can go again"
        ));
    }
    let unexplained = status.consumers.iter().any(|c| c.unapplied > 0)
        && !status.lagging()
        && status.parked.is_empty()
        && status.dead_letters == 0;
    if let (true, Some(from)) = (unexplained, oldest_unapplied) {
        let format = &time::format_description::well_known::Rfc3339;
        let to = now + time::Duration::SECOND;
        if let (Ok(from), Ok(to)) = (from.format(format), to.format(format)) {
            fixes.push(format!(
                "outbox-local replay {data} --from {from} --to {to}   # committed events the consumers never applied; the inboxes drop what they have"
            ));
        }
    }
    fixes
}
