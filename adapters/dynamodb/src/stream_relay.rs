//! The self-hosted stream relay, for runtimes without Lambda (a container, the
//! local program): what a Lambda event source mapping does, done by hand.
//!
//! `DescribeStream` lists the shards; a child shard is read only after its parent
//! is finished, so an aggregate's events keep their order across a shard split.
//! Each shard is read with `GetShardIterator` and `GetRecords`; the records go
//! through the relay use case, and the last fully handled sequence number is
//! checkpointed (conditionally) in DynamoDB. After a restart, or when an
//! iterator expires, reading resumes `AFTER_SEQUENCE_NUMBER` of the checkpoint,
//! so a record is lost never and repeated only if it was not checkpointed. Where
//! the checkpoint moves after a read — past it, or to just before the first failed
//! record, with a re-read from there — and when an idle iterator is re-acquired
//! (which heals servers whose iterator chains go stale) is the application's
//! [`ShardTracker`], shared with the in-memory feed. It is a [`ChangeFeed`].

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use outbox_application::ports::{ChangeFeed, DeadLetterError, FeedError, FeedReport};
use outbox_application::{BoxError, BusRefused, ChangeRecord, Relay, SequenceNumber, ShardTracker};

use crate::checkpoint::{Checkpoint, CheckpointError, Checkpoints};
use crate::stream_decode::{decode_streams_record, Decoded};

/// How the relay reads its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRelayOptions {
    /// Records per `GetRecords` call (1 to 1000).
    pub batch_size: i32,
    /// Empty reads of a shard after which its iterator is re-acquired from the checkpoint.
    pub idle_refresh: u32,
    /// The shortest time between two `DescribeStream` calls.
    pub describe_interval: Duration,
    /// The first pause of [`StreamRelay::run`] when there was nothing to read.
    pub min_backoff: Duration,
    /// The longest pause of [`StreamRelay::run`].
    pub max_backoff: Duration,
}

impl Default for StreamRelayOptions {
    fn default() -> Self {
        Self {
            batch_size: 100,
            idle_refresh: 20,
            describe_interval: Duration::from_secs(5),
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
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
    /// A checkpoint could not be read or saved.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A record without a position could not be dead-lettered.
    #[error(transparent)]
    DeadLetters(#[from] DeadLetterError),
    /// The bus refuses the relay.
    #[error(transparent)]
    BusRefused(#[from] BusRefused),
}

/// One shard as the relay tracks it.
#[derive(Debug, Clone)]
struct Shard {
    parent: Option<String>,
    checkpoint: Checkpoint,
    tracker: ShardTracker,
    iterator: Option<String>,
}

impl Shard {
    fn new(parent: Option<String>, checkpoint: Checkpoint, idle_refresh: u32) -> Self {
        Self {
            parent,
            tracker: ShardTracker::new(checkpoint.sequence.clone(), idle_refresh),
            checkpoint,
            iterator: None,
        }
    }
}

/// Reads a DynamoDB stream and relays its outbox records, checkpointing per shard.
pub struct StreamRelay {
    streams: aws_sdk_dynamodbstreams::Client,
    checkpoints: Checkpoints,
    stream_arn: String,
    relay: Relay,
    options: StreamRelayOptions,
    shards: BTreeMap<String, Shard>,
    described_at: Option<Instant>,
}

impl StreamRelay {
    /// A relay of `stream_arn` through `relay`, checkpointing in `checkpoints`.
    /// Nothing is read until the first poll.
    pub fn new(
        streams: aws_sdk_dynamodbstreams::Client,
        stream_arn: impl Into<String>,
        checkpoints: Checkpoints,
        relay: Relay,
        options: StreamRelayOptions,
    ) -> Self {
        Self {
            streams,
            checkpoints,
            stream_arn: stream_arn.into(),
            relay,
            options,
            shards: BTreeMap::new(),
            described_at: None,
        }
    }

    /// Reads each ready shard once and relays what it found.
    ///
    /// # Errors
    /// [`StreamRelayError`]; the shard that failed is read again from its
    /// checkpoint on the next poll.
    pub async fn poll(&mut self) -> Result<FeedReport, StreamRelayError> {
        self.describe().await?;
        let mut report = FeedReport::default();
        for shard_id in self.ready_shards() {
            match self.poll_shard(&shard_id, &mut report).await {
                Ok(()) => {}
                Err(StreamRelayError::Checkpoint(CheckpointError::Moved { shard })) => {
                    warn!(%shard, "another relay moved the checkpoint; re-reading it");
                    self.forget(&shard_id).await?;
                }
                Err(error) => {
                    self.reset_iterator(&shard_id);
                    return Err(error);
                }
            }
        }
        Ok(report)
    }

    /// Polls until `stop` resolves, pausing with exponential backoff while there
    /// is nothing to read or a poll fails.
    pub async fn run(&mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut backoff = self.options.min_backoff;
        loop {
            let busy = match self.poll().await {
                Ok(report) => report.records > 0 && report.retries == 0,
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
                () = &mut stop => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Learns new shards (and their checkpoints), at most once per `describe_interval`.
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
                if !self.shards.contains_key(&shard_id) {
                    let checkpoint = self.checkpoints.load(&shard_id).await?;
                    debug!(shard = %shard_id, ?checkpoint, "new shard");
                    self.shards.insert(
                        shard_id,
                        Shard::new(shard.parent_shard_id, checkpoint, self.options.idle_refresh),
                    );
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

    /// Unfinished shards whose parent is finished or no longer listed, parents first.
    fn ready_shards(&self) -> Vec<String> {
        self.shards
            .iter()
            .filter(|(_, shard)| !shard.checkpoint.finished)
            .filter(|(_, shard)| {
                shard
                    .parent
                    .as_ref()
                    .and_then(|parent| self.shards.get(parent))
                    .is_none_or(|parent| parent.checkpoint.finished)
            })
            .map(|(id, _)| id.clone())
            .collect()
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
        let records = output.records.unwrap_or_default();
        report.records += records.len();
        let mut changes: Vec<ChangeRecord> = Vec::new();
        let mut positions: Vec<SequenceNumber> = Vec::with_capacity(records.len());
        for record in &records {
            match decode_streams_record(record) {
                Decoded::Change(change) => changes.push(change),
                Decoded::Skipped => {}
                Decoded::Unpositioned(missing) => {
                    self.relay.dead_letter_record(missing.into_letter()).await?;
                }
            }
            if let Some(sequence) = record
                .dynamodb
                .as_ref()
                .and_then(|d| d.sequence_number.clone())
            {
                positions.push(SequenceNumber::new(sequence));
            }
        }
        let outcome = self.relay.relay(&changes).await?;
        report.published += outcome.published;
        report.dead_lettered += outcome.dead_lettered;
        report.retries += usize::from(outcome.retry_from.is_some());
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
            let previous = shard.checkpoint.clone();
            shard.checkpoint = self
                .checkpoints
                .save(
                    shard_id,
                    &previous,
                    shard.tracker.checkpoint().cloned(),
                    finished,
                )
                .await?;
        }
        if finished {
            info!(shard = %shard_id, "shard finished");
            self.described_at = None;
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
        let request = self
            .streams
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard_id);
        let request = match &shard.checkpoint.sequence {
            Some(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence.as_str()),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let iterator = match request.send().await {
            Ok(output) => output.shard_iterator,
            Err(e) if e.code() == Some("TrimmedDataAccessException") => {
                warn!(shard = %shard_id, "the checkpoint is past the stream's retention; records were lost before this relay read them");
                self.streams
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(shard_id)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .map_err(|e| streams_error("GetShardIterator", e))?
                    .shard_iterator
            }
            Err(e) => return Err(streams_error("GetShardIterator", e)),
        };
        if let Some(shard) = self.shards.get_mut(shard_id) {
            shard.iterator.clone_from(&iterator);
        }
        Ok(iterator)
    }

    fn reset_iterator(&mut self, shard_id: &str) {
        if let Some(shard) = self.shards.get_mut(shard_id) {
            shard.iterator = None;
        }
    }

    /// Drops what this relay knew of a shard and re-reads its checkpoint.
    async fn forget(&mut self, shard_id: &str) -> Result<(), StreamRelayError> {
        let checkpoint = self.checkpoints.load(shard_id).await?;
        if let Some(shard) = self.shards.get_mut(shard_id) {
            *shard = Shard::new(shard.parent.take(), checkpoint, self.options.idle_refresh);
        }
        Ok(())
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
    use super::*;
    use async_trait::async_trait;
    use outbox_application::ports::{
        BatchLimits, BusOrder, DeadLetter, DeadLetterError, DeadLetterQueue, EventPublisher,
        PublishError, PublishOutcome,
    };
    use outbox_application::EventEnvelope;
    use std::sync::Arc;

    struct Nowhere;

    #[async_trait]
    impl EventPublisher for Nowhere {
        fn limits(&self) -> BatchLimits {
            BatchLimits {
                max_entries: 10,
                max_batch_bytes: 1024,
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
            Ok(vec![PublishOutcome::Published; events.len()])
        }
    }

    #[async_trait]
    impl DeadLetterQueue for Nowhere {
        async fn send(&self, _letter: DeadLetter) -> Result<(), DeadLetterError> {
            Ok(())
        }
    }

    /// A relay that never calls out; only its shard bookkeeping is exercised.
    fn offline_relay() -> StreamRelay {
        let region = aws_sdk_dynamodb::config::Region::new("us-east-1");
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version_latest()
                .region(region.clone())
                .build(),
        );
        let streams = aws_sdk_dynamodbstreams::Client::from_conf(
            aws_sdk_dynamodbstreams::Config::builder()
                .behavior_version_latest()
                .region(region)
                .build(),
        );
        let relay = Relay::new(Arc::new(Nowhere), Arc::new(Nowhere));
        StreamRelay::new(
            streams,
            "arn",
            Checkpoints::new(dynamodb, "checkpoints", "arn"),
            relay,
            StreamRelayOptions::default(),
        )
    }

    fn shard(parent: Option<&str>, finished: bool) -> Shard {
        let checkpoint = Checkpoint {
            finished,
            ..Checkpoint::default()
        };
        Shard::new(parent.map(str::to_owned), checkpoint, 3)
    }

    #[test]
    fn a_child_shard_waits_until_its_parent_is_finished() {
        let mut relay = offline_relay();
        relay.shards.insert("a".into(), shard(None, true));
        relay.shards.insert("b".into(), shard(Some("a"), false));
        relay
            .shards
            .insert("c".into(), shard(Some("trimmed-away"), false));
        relay.shards.insert("d".into(), shard(Some("e"), false));
        relay.shards.insert("e".into(), shard(None, false));
        assert_eq!(relay.ready_shards(), vec!["b", "c", "e"]);
        if let Some(parent) = relay.shards.get_mut("e") {
            parent.checkpoint.finished = true;
        }
        assert_eq!(relay.ready_shards(), vec!["b", "c", "d"]);
    }
}
