//! The self-hosted stream relay, for runtimes without Lambda (a container, the
//! local program): what a Lambda event source mapping does, done by hand, by
//! one instance or a fleet.
//!
//! `DescribeStream` lists the shards; each listed shard gets a lease item (the
//! [`LeaseTable`]). The application's [`LeaseKeeper`] decides which leases this
//! instance takes, renews and gives up, so that a fleet shares the shards fairly,
//! one reader per shard at a time, a dead instance's shards taken over within
//! [`LeaseTimings::takeover_bound`], and a child shard read only after its parent
//! is finished (an aggregate's events keep their order across a split).
//!
//! Each held shard is read with `GetShardIterator` and `GetRecords`; the records
//! go through the relay use case, and the last fully handled sequence number is
//! checkpointed in the lease (conditionally: only while the lease is this
//! instance's). After a restart, a takeover, or when an iterator expires, reading
//! resumes `AFTER_SEQUENCE_NUMBER` of the checkpoint, so a record is lost never
//! and repeated only if it was not checkpointed (the inboxes drop the repeat).
//! Where the checkpoint moves after a read, and when an idle iterator is
//! re-acquired, is the application's [`ShardTracker`]. A shard that fails is
//! logged and read again on the next poll; the others go on. It is a
//! [`ChangeFeed`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use outbox_application::ports::{
    ArchiveWindow, ChangeFeed, DeadLetterError, FeedError, FeedReport, OutboxArchive,
};
use outbox_application::{
    BoxError, BusRefused, ChangeRecord, LeaseAction, LeaseKeeper, LeaseTimings, Relay, ReplayError,
    ReplayService, SequenceNumber, ShardTracker,
};

use crate::lease_table::{LeaseError, LeaseTable};
use crate::stream_decode::{decode_streams_record, Decoded, MissingSequenceNumber};

/// How the relay reads its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRelayOptions {
    /// Records per `GetRecords` call (1 to 1000).
    pub batch_size: i32,
    /// Empty reads of a shard after which its iterator is re-acquired from the checkpoint.
    pub idle_refresh: u32,
    /// The shortest time between two `DescribeStream` calls. A shard that
    /// ends makes the next poll describe the stream at once, so the interval
    /// only bounds how late a shard split by DynamoDB is seen (the Kinesis
    /// Client Library syncs shards every 60 s too): `DescribeStream` is not
    /// free, dynoxide's reads every stream record of the shard.
    pub describe_interval: Duration,
    /// The first pause of [`StreamRelay::run`] when there was nothing to read.
    pub min_backoff: Duration,
    /// The longest pause of [`StreamRelay::run`].
    pub max_backoff: Duration,
    /// How long a shard lease lasts, and how often it is renewed and the leases read.
    pub lease: LeaseTimings,
}

impl Default for StreamRelayOptions {
    fn default() -> Self {
        Self {
            batch_size: 100,
            idle_refresh: 20,
            describe_interval: Duration::from_secs(60),
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            lease: LeaseTimings::default(),
        }
    }
}

/// Why a poll failed. The relay's state stays consistent; polling again resumes.
#[derive(Debug, thiserror::Error)]
pub enum StreamRelayError {
    /// A Streams API call failed.
    #[error("{operation} failed: {source}")]
    Streams {
        /// The operation.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// A lease could not be read or written.
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// A record without a position could not be dead-lettered.
    #[error(transparent)]
    DeadLetters(#[from] DeadLetterError),
    /// The bus refuses the relay.
    #[error(transparent)]
    BusRefused(#[from] BusRefused),
    /// A gap the stream trimmed could not be republished from the outbox.
    #[error("republishing a trimmed gap: {0}")]
    Republish(#[source] ReplayError),
}

/// How long DynamoDB Streams keeps a record.
pub const STREAM_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// The metric counting events republished from the outbox over a trimmed gap.
pub const TRIMMED_REPUBLISHED: &str = "TrimmedGapEventsRepublished";

/// A shard this instance holds: where it stands, and its iterator.
#[derive(Debug, Clone)]
struct Shard {
    tracker: ShardTracker,
    iterator: Option<String>,
    /// When the stream received the checkpoint's record, if known.
    checkpoint_at: Option<OffsetDateTime>,
    /// The start of a gap the stream may have trimmed, to republish before reading on.
    gap_from: Option<OffsetDateTime>,
}

/// Reads a DynamoDB stream and relays its outbox records, sharing the shards
/// with the other instances on the same lease table.
pub struct StreamRelay {
    streams: aws_sdk_dynamodbstreams::Client,
    leases: LeaseTable,
    stream_arn: String,
    relay: Relay,
    options: StreamRelayOptions,
    keeper: LeaseKeeper,
    shards: BTreeMap<String, Shard>,
    listed: BTreeSet<String>,
    described_at: Option<Instant>,
    scanned_at: Option<Instant>,
    origin: Instant,
    replay: Option<ReplayService>,
}

impl StreamRelay {
    /// A relay of `stream_arn` through `relay`, with its leases in `leases`,
    /// under a name of its own (process id and a random suffix). Nothing is
    /// read until the first poll.
    pub fn new(
        streams: aws_sdk_dynamodbstreams::Client,
        stream_arn: impl Into<String>,
        leases: LeaseTable,
        relay: Relay,
        options: StreamRelayOptions,
    ) -> Self {
        let suffix = uuid::Uuid::now_v7().simple().to_string();
        let me = format!(
            "relay-{}-{}",
            std::process::id(),
            &suffix[suffix.len() - 8..]
        );
        Self {
            streams,
            leases,
            stream_arn: stream_arn.into(),
            relay,
            keeper: LeaseKeeper::new(me, options.lease),
            options,
            shards: BTreeMap::new(),
            listed: BTreeSet::new(),
            described_at: None,
            scanned_at: None,
            origin: Instant::now(),
            replay: None,
        }
    }

    /// Republishes, from `archive` (the outbox's time index), the events of a
    /// gap the stream trimmed before this relay read it: a checkpoint older than
    /// the stream's retention, or a trimmed iterator. Without an archive such a
    /// gap is logged as lost.
    #[must_use]
    pub fn with_archive(mut self, archive: Arc<dyn OutboxArchive>) -> Self {
        self.replay = Some(ReplayService::new(archive, self.relay.clone()));
        self
    }

    /// This instance's name, the owner its leases carry.
    pub fn owner(&self) -> &str {
        self.keeper.me()
    }

    /// The shards this instance holds now.
    pub fn held_shards(&self) -> Vec<String> {
        self.keeper
            .held()
            .map(|(shard, _)| shard.to_owned())
            .collect()
    }

    /// Learns new shards and the leases, then reads each shard this instance
    /// may read once and relays what it found. A shard that fails is logged,
    /// counted in [`FeedReport::failures`] and read again on the next poll.
    ///
    /// # Errors
    /// [`StreamRelayError::BusRefused`]; or the failure to list the shards or the
    /// leases, after which nothing was read.
    pub async fn poll(&mut self) -> Result<FeedReport, StreamRelayError> {
        self.describe().await?;
        self.coordinate().await?;
        let mut report = FeedReport::default();
        let readable: Vec<String> = self
            .shards
            .keys()
            .filter(|shard| self.keeper.readable(shard, self.now()))
            .cloned()
            .collect();
        for shard_id in readable {
            match self.poll_shard(&shard_id, &mut report).await {
                Ok(()) => {}
                Err(StreamRelayError::BusRefused(refused)) => return Err(refused.into()),
                Err(StreamRelayError::Lease(LeaseError::Moved { shard })) => {
                    warn!(%shard, owner = %self.owner(), "another relay took the lease; leaving the shard to it");
                    self.lose(&shard_id);
                }
                Err(error) => {
                    warn!(shard = %shard_id, %error, "reading the shard failed; it is read again from its checkpoint");
                    report.failures += 1;
                    self.reset_iterator(&shard_id);
                }
            }
        }
        Ok(report)
    }

    /// Polls until `stop` resolves, pausing with exponential backoff while there
    /// is nothing to read or a poll fails, then gives its leases up.
    pub async fn run(&mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut backoff = self.options.min_backoff;
        loop {
            let busy = match self.poll().await {
                Ok(report) => report.records > 0 && report.retries == 0 && report.failures == 0,
                Err(error) => {
                    warn!(%error, "stream poll failed");
                    false
                }
            };
            backoff = if busy {
                self.options.min_backoff
            } else {
                (backoff * 2).min(self.options.max_backoff)
            };
            let pause = if busy { Duration::ZERO } else { backoff };
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        self.release().await;
    }

    /// Gives every lease up (this instance reads no more), so that the others
    /// take the shards over at once rather than after the lease expires.
    pub async fn release(&mut self) {
        let now = self.now();
        self.shards.clear();
        for (shard, revision) in self.keeper.release_all(now) {
            if let Err(error) = self
                .leases
                .release(&shard, revision, self.keeper.me())
                .await
            {
                warn!(%shard, %error, "could not release the lease; it expires instead");
            }
        }
    }

    /// Time on this instance's monotonic clock.
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Lists the shards and creates the lease of each new one, at most once
    /// per `describe_interval`.
    async fn describe(&mut self) -> Result<(), StreamRelayError> {
        let due = self
            .described_at
            .is_none_or(|at| at.elapsed() >= self.options.describe_interval);
        if !due {
            return Ok(());
        }
        let mut start = None;
        loop {
            let output = self
                .streams
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| streams_error("DescribeStream", e))?;
            let Some(description) = output.stream_description else {
                break;
            };
            for shard in description.shards.unwrap_or_default() {
                let Some(shard_id) = shard.shard_id else {
                    continue;
                };
                if !self.listed.contains(&shard_id) {
                    self.leases
                        .create(&shard_id, shard.parent_shard_id.as_deref())
                        .await?;
                    debug!(shard = %shard_id, "shard listed");
                    self.listed.insert(shard_id);
                    self.scanned_at = None;
                }
            }
            match description.last_evaluated_shard_id {
                Some(last) => start = Some(last),
                None => break,
            }
        }
        self.described_at = Some(Instant::now());
        Ok(())
    }

    /// Reads the leases, at most once per `scan_every`, and takes, renews or
    /// drops them as the keeper plans.
    async fn coordinate(&mut self) -> Result<(), StreamRelayError> {
        let due = self
            .scanned_at
            .is_none_or(|at| at.elapsed() >= self.options.lease.scan_every);
        if !due {
            return Ok(());
        }
        let leases = self.leases.list().await?;
        self.scanned_at = Some(Instant::now());
        let views: Vec<_> = leases.iter().map(|lease| lease.view()).collect();
        let actions = self.keeper.plan(&views, self.now());
        for action in actions {
            let sent = self.now();
            let me = self.keeper.me().to_owned();
            let written = match &action {
                LeaseAction::Renew { shard, counter } => {
                    self.leases.renew(shard, *counter, &me).await
                }
                LeaseAction::Take { shard, counter } => {
                    self.leases.take(shard, *counter, &me).await
                }
            };
            let shard = action.shard();
            match written {
                Ok(revision) => {
                    self.keeper.written(shard, revision, sent);
                    if let LeaseAction::Take { .. } = action {
                        let lease = leases.iter().find(|lease| lease.shard == shard);
                        let sequence = lease.and_then(|lease| lease.sequence.clone());
                        let checkpoint_at = lease.and_then(|lease| lease.sequence_at);
                        info!(%shard, owner = %me, ?sequence, "lease taken");
                        self.shards.insert(
                            shard.to_owned(),
                            Shard {
                                tracker: ShardTracker::new(sequence, self.options.idle_refresh),
                                iterator: None,
                                checkpoint_at,
                                gap_from: None,
                            },
                        );
                    }
                }
                Err(LeaseError::Moved { .. }) => {
                    debug!(%shard, "lease moved before this relay could write it");
                    self.lose(shard);
                }
                Err(error) => warn!(%shard, %error, "lease write failed"),
            }
        }
        // Shards whose lease the keeper dropped (lost or finished) are read no more.
        let held: BTreeSet<String> = self.held_shards().into_iter().collect();
        self.shards.retain(|shard, _| held.contains(shard));
        Ok(())
    }

    fn lose(&mut self, shard: &str) {
        self.keeper.lost(shard);
        self.shards.remove(shard);
    }

    async fn poll_shard(
        &mut self,
        shard_id: &str,
        report: &mut FeedReport,
    ) -> Result<(), StreamRelayError> {
        let Some(iterator) = self.iterator(shard_id).await? else {
            return Ok(());
        };
        let output = match self
            .streams
            .get_records()
            .shard_iterator(iterator)
            .limit(self.options.batch_size)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) if e.code() == Some("ExpiredIteratorException") => {
                info!(shard = %shard_id, "iterator expired; re-acquiring from the checkpoint");
                self.reset_iterator(shard_id);
                return Ok(());
            }
            Err(e) => return Err(streams_error("GetRecords", e)),
        };
        if !self.keeper.readable(shard_id, self.now()) {
            // The lease ran out while reading: what was read is left to the next holder.
            self.reset_iterator(shard_id);
            return Ok(());
        }
        let records = output.records.unwrap_or_default();
        self.republish_gap(shard_id, &records, report).await?;
        report.records += records.len();
        let mut changes: Vec<ChangeRecord> = Vec::new();
        let mut positions: Vec<SequenceNumber> = Vec::with_capacity(records.len());
        let mut received: Vec<Option<OffsetDateTime>> = Vec::with_capacity(records.len());
        // Each record without a position, with how many positioned records preceded it.
        let mut unpositioned: Vec<(usize, MissingSequenceNumber)> = Vec::new();
        for record in &records {
            match decode_streams_record(record) {
                Decoded::Change(change) => changes.push(change),
                Decoded::Skipped => {}
                Decoded::Unpositioned(missing) => unpositioned.push((positions.len(), missing)),
            }
            if let Some(sequence) = record
                .dynamodb
                .as_ref()
                .and_then(|d| d.sequence_number.clone())
            {
                positions.push(SequenceNumber::new(sequence));
                received.push(received_at(record));
            }
        }
        let outcome = self.relay.relay(&changes).await?;
        report.published += outcome.published;
        report.dead_lettered += outcome.dead_lettered;
        report.retries += usize::from(outcome.retry_from.is_some());
        // A record without a position is dead-lettered once the checkpoint
        // moves past it: when a positioned record after it was handled. Before
        // that, a re-read from the checkpoint would send its letter again.
        let handled = match &outcome.retry_from {
            None => positions.len(),
            Some(failed) => positions.iter().take_while(|p| *p < failed).count(),
        };
        for (preceding, missing) in unpositioned {
            if outcome.retry_from.is_none() || preceding < handled {
                self.relay.dead_letter_record(missing.into_letter()).await?;
                report.dead_lettered += 1;
            }
        }
        let Some(shard) = self.shards.get_mut(shard_id) else {
            return Ok(());
        };
        let ended = output.next_shard_iterator.is_none();
        let next = shard
            .tracker
            .after_read(&positions, outcome.retry_from.as_ref(), ended);
        shard.iterator = if next.reread {
            None
        } else {
            output.next_shard_iterator
        };
        let finished = ended && outcome.retry_from.is_none();
        if next.save {
            let sequence = shard.tracker.checkpoint().cloned();
            if let Some(at) = positions
                .iter()
                .position(|p| Some(p) == sequence.as_ref())
                .and_then(|index| received.get(index).copied().flatten())
            {
                shard.checkpoint_at = Some(at);
            }
            let checkpoint_at = shard.checkpoint_at;
            let Some(revision) = self.keeper.counter(shard_id) else {
                return Ok(());
            };
            let sent = self.now();
            let revision = self
                .leases
                .checkpoint(
                    shard_id,
                    revision,
                    self.keeper.me(),
                    (sequence.as_ref(), checkpoint_at),
                    finished,
                )
                .await?;
            self.keeper.written(shard_id, revision, sent);
        }
        if finished {
            info!(shard = %shard_id, "shard finished");
            self.keeper.finished(shard_id);
            self.shards.remove(shard_id);
            self.described_at = None;
            self.scanned_at = None;
        }
        Ok(())
    }

    /// The shard's iterator, acquired from its checkpoint when it has none.
    async fn iterator(&mut self, shard_id: &str) -> Result<Option<String>, StreamRelayError> {
        let Some(shard) = self.shards.get(shard_id) else {
            return Ok(None);
        };
        if let Some(iterator) = &shard.iterator {
            return Ok(Some(iterator.clone()));
        }
        let checkpoint = shard.tracker.checkpoint().cloned();
        let checkpoint_at = shard.checkpoint_at;
        let behind_horizon = checkpoint.is_some()
            && checkpoint_at.is_some_and(|at| OffsetDateTime::now_utc() - at >= STREAM_RETENTION);
        let request = self
            .streams
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard_id);
        let request = match &checkpoint {
            Some(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence.as_str()),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let (iterator, trimmed) = match request.send().await {
            Ok(output) => (output.shard_iterator, behind_horizon),
            Err(e) if e.code() == Some("TrimmedDataAccessException") => {
                let output = self
                    .streams
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(shard_id)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .map_err(|e| streams_error("GetShardIterator", e))?;
                (output.shard_iterator, true)
            }
            Err(e) => return Err(streams_error("GetShardIterator", e)),
        };
        if trimmed {
            match checkpoint_at {
                Some(from) => {
                    warn!(shard = %shard_id, %from, "the checkpoint is behind the stream's trim horizon; the gap is republished from the outbox");
                    if let Some(shard) = self.shards.get_mut(shard_id) {
                        shard.gap_from = Some(from);
                    }
                }
                None => {
                    error!(shard = %shard_id, "the checkpoint is behind the stream's trim horizon and its time is unknown: records after it may be lost; replay the window with `replay`")
                }
            }
        }
        if let Some(shard) = self.shards.get_mut(shard_id) {
            shard.iterator.clone_from(&iterator);
        }
        Ok(iterator)
    }

    /// Republishes the shard's trimmed gap, if it has one: the outbox events
    /// from the checkpoint's time to the first record still in the stream (or
    /// now), through the relay. What the stream also carries, the inboxes drop.
    async fn republish_gap(
        &mut self,
        shard_id: &str,
        records: &[aws_sdk_dynamodbstreams::types::Record],
        report: &mut FeedReport,
    ) -> Result<(), StreamRelayError> {
        let Some(from) = self.shards.get(shard_id).and_then(|shard| shard.gap_from) else {
            return Ok(());
        };
        let to = records
            .iter()
            .find_map(received_at)
            .unwrap_or_else(OffsetDateTime::now_utc)
            + time::Duration::SECOND;
        let Some(replay) = &self.replay else {
            error!(shard = %shard_id, %from, %to, "records of this window may be lost and this relay has no outbox archive to republish them; replay the window with `replay`");
            if let Some(shard) = self.shards.get_mut(shard_id) {
                shard.gap_from = None;
            }
            return Ok(());
        };
        let window = ArchiveWindow {
            from,
            to,
            aggregate: None,
        };
        let progress =
            replay
                .run(&window, None, false, |_| {})
                .await
                .map_err(|error| match error {
                    ReplayError::BusRefused(refused) => StreamRelayError::BusRefused(refused),
                    other => StreamRelayError::Republish(other),
                })?;
        metrics::counter!(TRIMMED_REPUBLISHED).increment(progress.events as u64);
        warn!(shard = %shard_id, %from, %to, events = progress.events, published = progress.published, "republished the trimmed gap from the outbox");
        report.republished += progress.events;
        report.published += progress.published;
        report.dead_lettered += progress.dead_lettered;
        if let Some(shard) = self.shards.get_mut(shard_id) {
            shard.gap_from = None;
        }
        Ok(())
    }

    fn reset_iterator(&mut self, shard_id: &str) {
        if let Some(shard) = self.shards.get_mut(shard_id) {
            shard.iterator = None;
        }
    }
}

#[async_trait::async_trait]
impl ChangeFeed for StreamRelay {
    async fn poll(&mut self) -> Result<FeedReport, FeedError> {
        StreamRelay::poll(self).await.map_err(|error| match error {
            StreamRelayError::BusRefused(refused) => FeedError::BusRefused(refused),
            other => FeedError::Read(Box::new(other)),
        })
    }

    async fn stop(&mut self) {
        self.release().await;
    }
}

/// When the stream received `record`, if it says.
pub(crate) fn received_at(
    record: &aws_sdk_dynamodbstreams::types::Record,
) -> Option<OffsetDateTime> {
    let at = record.dynamodb.as_ref()?.approximate_creation_date_time?;
    OffsetDateTime::from_unix_timestamp_nanos(at.as_nanos()).ok()
}

/// A Streams API failure of `operation`.
pub(crate) fn streams_error<E, R>(
    operation: &'static str,
    error: aws_sdk_dynamodbstreams::error::SdkError<E, R>,
) -> StreamRelayError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StreamRelayError::Streams {
        operation,
        source: Box::new(error),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A panic is how these tests fail.

    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use async_trait::async_trait;
    use aws_sdk_dynamodbstreams::types::{
        OperationType, Record, Shard as StreamShard, StreamDescription, StreamRecord,
    };
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use outbox_application::ports::{
        BatchLimits, BusOrder, DeadLetter, DeadLetterQueue, EventPublisher, PublishError,
        PublishOutcome,
    };
    use outbox_application::{AggregateId, AggregateRef, EventEnvelope, EventId, Traceparent};
    use outbox_domain::Version;

    /// Refuses (retryably) the event of version 2 on its first publication.
    #[derive(Default)]
    struct FailsOnce {
        calls: AtomicUsize,
    }

    #[async_trait]
    impl EventPublisher for FailsOnce {
        fn limits(&self) -> BatchLimits {
            BatchLimits {
                max_entries: 10,
                max_batch_bytes: 1 << 20,
                order: BusOrder::Unordered,
            }
        }

        fn entry_size(&self, _event: &EventEnvelope) -> usize {
            1
        }

        async fn publish(
            &self,
            events: &[EventEnvelope],
        ) -> Result<Vec<PublishOutcome>, PublishError> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(events
                .iter()
                .map(|event| {
                    if call == 0 && event.aggregate_version == Version::new(2) {
                        PublishOutcome::Failed {
                            retryable: true,
                            reason: "throttled".into(),
                            attempts: 1,
                        }
                    } else {
                        PublishOutcome::Published
                    }
                })
                .collect())
        }
    }

    #[derive(Default)]
    struct Letters(Mutex<Vec<DeadLetter>>);

    #[async_trait]
    impl DeadLetterQueue for Letters {
        async fn send(&self, letter: DeadLetter) -> Result<(), DeadLetterError> {
            self.0.lock().unwrap().push(letter);
            Ok(())
        }
    }

    fn outbox_record(version: u64, sequence: Option<&str>) -> Record {
        let aggregate_id = AggregateId::from_uuid(uuid::Uuid::from_u128(9));
        let aggregate = AggregateRef::new("Order", aggregate_id);
        let event = EventEnvelope {
            event_id: EventId::derive(&aggregate, Version::new(version)),
            event_type: "OrderPlaced".into(),
            schema_version: 1,
            aggregate_type: "Order".into(),
            aggregate_id,
            aggregate_version: Version::new(version),
            occurred_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            correlation_id: "c".into(),
            causation_id: "r".into(),
            traceparent: Traceparent::root(uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2)),
            data: serde_json::json!({"customer": "Ada", "totalCents": 2300}),
        };
        let sources =
            outbox_seeds::service(&outbox_application::OutsidePorts::not_deployed()).sources();
        let item = crate::items::outbox_item(&event, Duration::from_secs(60), &sources).unwrap();
        let image = item
            .into_iter()
            .map(|(name, value)| {
                let value: serde_dynamo::AttributeValue = value.into();
                (name, value.into())
            })
            .collect();
        Record::builder()
            .event_id(format!("record-{version}"))
            .event_name(OperationType::Insert)
            .dynamodb(
                StreamRecord::builder()
                    .set_sequence_number(sequence.map(str::to_owned))
                    .set_new_image(Some(image))
                    .build(),
            )
            .build()
    }

    /// A record without a position between two that have one, the second
    /// refused once: the batch is read twice, and the record's letter is sent
    /// once, when the record after it is handled (the old relay sent it twice).
    #[tokio::test]
    async fn a_record_without_a_position_is_dead_lettered_once_across_a_reread() {
        let lease_item = || {
            std::collections::HashMap::from([
                (
                    "pk".to_owned(),
                    aws_sdk_dynamodb::types::AttributeValue::S("arn".into()),
                ),
                (
                    "sk".to_owned(),
                    aws_sdk_dynamodb::types::AttributeValue::S("s1".into()),
                ),
                (
                    "revision".to_owned(),
                    aws_sdk_dynamodb::types::AttributeValue::N("0".into()),
                ),
            ])
        };
        let put = mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| {
            aws_sdk_dynamodb::operation::put_item::PutItemOutput::builder().build()
        });
        let query = mock!(aws_sdk_dynamodb::Client::query).then_output(move || {
            aws_sdk_dynamodb::operation::query::QueryOutput::builder()
                .items(lease_item())
                .build()
        });
        let update = mock!(aws_sdk_dynamodb::Client::update_item).then_output(|| {
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder().build()
        });
        let dynamodb = mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            [&put, &query, &update]
        );

        let describe = mock!(aws_sdk_dynamodbstreams::Client::describe_stream).then_output(|| {
            aws_sdk_dynamodbstreams::operation::describe_stream::DescribeStreamOutput::builder()
                .stream_description(
                    StreamDescription::builder()
                        .shards(StreamShard::builder().shard_id("s1").build())
                        .build(),
                )
                .build()
        });
        let iterator = || {
            mock!(aws_sdk_dynamodbstreams::Client::get_shard_iterator).then_output(|| {
                aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorOutput::builder()
                    .shard_iterator("it")
                    .build()
            })
        };
        let (from_start, from_checkpoint) = (iterator(), iterator());
        let first_read = mock!(aws_sdk_dynamodbstreams::Client::get_records).then_output(|| {
            aws_sdk_dynamodbstreams::operation::get_records::GetRecordsOutput::builder()
                .records(outbox_record(1, Some("100")))
                .records(outbox_record(7, None))
                .records(outbox_record(2, Some("300")))
                .next_shard_iterator("next")
                .build()
        });
        let reread = mock!(aws_sdk_dynamodbstreams::Client::get_records).then_output(|| {
            aws_sdk_dynamodbstreams::operation::get_records::GetRecordsOutput::builder()
                .records(outbox_record(7, None))
                .records(outbox_record(2, Some("300")))
                .next_shard_iterator("next")
                .build()
        });
        let streams = mock_client!(
            aws_sdk_dynamodbstreams,
            RuleMode::Sequential,
            [
                &describe,
                &from_start,
                &first_read,
                &from_checkpoint,
                &reread
            ]
        );

        let letters = Arc::new(Letters::default());
        let relay = Relay::new(Arc::new(FailsOnce::default()), letters.clone());
        let mut stream_relay = StreamRelay::new(
            streams,
            "arn",
            LeaseTable::new(dynamodb, "leases", "arn"),
            relay,
            StreamRelayOptions::default(),
        );
        let first = stream_relay.poll().await.unwrap();
        assert_eq!(first.retries, 1, "{first:?}");
        assert!(
            letters.0.lock().unwrap().is_empty(),
            "no letter before the record after it is handled"
        );
        let second = stream_relay.poll().await.unwrap();
        assert_eq!(second.retries, 0, "{second:?}");
        assert_eq!(
            letters.0.lock().unwrap().len(),
            1,
            "one letter for the record"
        );
    }
}
