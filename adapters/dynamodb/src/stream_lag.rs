//! How far the self-hosted relay is behind its stream, per shard: its
//! checkpoint, and the oldest record after it (not relayed yet) with the time
//! the stream received it. Reads only; the relay's own iterators are untouched.

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use time::OffsetDateTime;

use outbox_application::SequenceNumber;

use crate::lease_table::LeaseTable;
use crate::stream_relay::{received_at, streams_error, StreamRelayError};

/// Empty `GetRecords` pages read past before a shard counts as caught up (a
/// stream may answer empty pages before its next record).
const EMPTY_PAGES: usize = 3;

/// One shard of the stream, as the relay stands in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLag {
    /// The shard.
    pub shard: String,
    /// The last record the relay handled; `None` before its first.
    pub position: Option<SequenceNumber>,
    /// Whether the shard is closed and relayed to its end.
    pub finished: bool,
    /// The relay instance holding the shard's lease, if any.
    pub holder: Option<String>,
    /// The oldest record not relayed yet, if any.
    pub oldest_unrelayed: Option<SequenceNumber>,
    /// When the stream received that record.
    pub oldest_at: Option<OffsetDateTime>,
}

/// The relay's lag on every shard of `stream_arn`, by the checkpoints in its `leases`.
///
/// # Errors
/// [`StreamRelayError`] when the stream or the checkpoints cannot be read.
pub async fn stream_lag(
    streams: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    leases: &LeaseTable,
) -> Result<Vec<ShardLag>, StreamRelayError> {
    let mut lags = Vec::new();
    let mut start = None;
    loop {
        let description = streams
            .describe_stream()
            .stream_arn(stream_arn)
            .set_exclusive_start_shard_id(start.take())
            .send()
            .await
            .map_err(|e| streams_error("DescribeStream", e))?
            .stream_description;
        let Some(description) = description else {
            break;
        };
        for shard in description.shards.unwrap_or_default() {
            let Some(shard_id) = shard.shard_id else {
                continue;
            };
            let checkpoint = leases.load(&shard_id).await?;
            let oldest = if checkpoint.finished {
                None
            } else {
                oldest_after(streams, stream_arn, &shard_id, checkpoint.sequence.as_ref()).await?
            };
            lags.push(ShardLag {
                shard: shard_id,
                position: checkpoint.sequence,
                finished: checkpoint.finished,
                holder: checkpoint.owner,
                oldest_at: oldest.as_ref().and_then(|(_, at)| *at),
                oldest_unrelayed: oldest.map(|(sequence, _)| sequence),
            });
        }
        match description.last_evaluated_shard_id {
            Some(last) => start = Some(last),
            None => break,
        }
    }
    Ok(lags)
}

/// The first record of `shard` after `position` (from the oldest kept when `None`).
async fn oldest_after(
    streams: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    shard: &str,
    position: Option<&SequenceNumber>,
) -> Result<Option<(SequenceNumber, Option<OffsetDateTime>)>, StreamRelayError> {
    let request = streams
        .get_shard_iterator()
        .stream_arn(stream_arn)
        .shard_id(shard);
    let request = match position {
        Some(sequence) => request
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(sequence.as_str()),
        None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
    };
    let mut iterator = request
        .send()
        .await
        .map_err(|e| streams_error("GetShardIterator", e))?
        .shard_iterator;
    for _ in 0..EMPTY_PAGES {
        let Some(current) = iterator.take() else {
            break;
        };
        let output = streams
            .get_records()
            .shard_iterator(current)
            .limit(1)
            .send()
            .await
            .map_err(|e| streams_error("GetRecords", e))?;
        let first = output
            .records
            .unwrap_or_default()
            .into_iter()
            .find_map(|record| {
                let at = received_at(&record);
                let sequence = record.dynamodb?.sequence_number?;
                Some((SequenceNumber::new(sequence), at))
            });
        if first.is_some() {
            return Ok(first);
        }
        iterator = output.next_shard_iterator;
    }
    Ok(None)
}
