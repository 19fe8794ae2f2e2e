//! `status`: one screen for an operator — the self-hosted relay's position and
//! lag per shard (the oldest record not relayed yet, and its age), the
//! dead-letter queue's depth and oldest letter, per consumer the effects
//! applied, the duplicates suppressed and what it sent (documents and emails in
//! the [`SentFolder`] beside the data file), and the aggregates ordered
//! consumers parked (the missing version, why, since when). `--json` for scripts.

use serde::Serialize;
use time::OffsetDateTime;

use outbox_application::ports::Inbox;
use outbox_application::Service;
use outbox_dynamodb::{stream_lag, DynamoInbox};

use super::sent::{Sends, SentFolder};
use super::stack::{Stack, StoreArgs};
use super::target::{Target, TargetArgs};
use super::LocalError;

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
        Ok(())
    }
}

/// Reads the status.
///
/// # Errors
/// [`LocalError`] when a table, the stream or the queue cannot be read.
pub async fn status(service: &Service, options: &StatusOptions) -> Result<Status, LocalError> {
    let stack = Stack::open(service, &options.stack, false).await?;
    stack.require(&stack.layout.checkpoint_table).await?;
    stack.require(&stack.layout.inbox_table).await?;
    let now = OffsetDateTime::now_utc();
    let stream_arn = stack.stream_arn().await?;
    let shards = stream_lag(&stack.streams, &stream_arn, &stack.leases(&stream_arn))
        .await?
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
    let depth = Target::letters(&options.target, &stack).depth().await?;
    let inbox = DynamoInbox::new(stack.dynamodb.clone(), &stack.layout.inbox_table);
    let sent = SentFolder::beside(&options.stack.data);
    let sends = sent.sends().map_err(|source| LocalError::File {
        path: sent.root().display().to_string(),
        source,
    })?;
    let mut consumers = Vec::new();
    for reaction in service.consumers() {
        let tally = inbox
            .tally(reaction.name())
            .await
            .map_err(|error| LocalError::Store(Box::new(error)))?;
        consumers.push(ConsumerStatus {
            name: reaction.name().to_owned(),
            effects: tally.effects,
            duplicates: tally.duplicates,
            sent: sends.get(reaction.name()).copied().unwrap_or_default(),
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
    let status = Status {
        store: stack.description.clone(),
        shards,
        dead_letters: depth.letters,
        oldest_letter_seconds: depth.oldest.map(|at| (now - at).whole_seconds().max(0)),
        consumers,
        parked,
    };
    stack.close().await?;
    Ok(status)
}
