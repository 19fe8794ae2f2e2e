//! Per-shard checkpoints of the self-hosted stream relay, kept in DynamoDB.
//!
//! One item per (stream, shard): the last sequence number fully handled, whether
//! the shard is finished, and a revision. Every save is conditional on the
//! revision read before, so two relays reading one stream can never move a
//! checkpoint backwards over each other; the loser re-reads and carries on.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use outbox_application::{BoxError, SequenceNumber};

use crate::layout::{PK, SK};

/// Where a relay stands in one shard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// The last record fully handled; `None` when nothing was handled yet.
    pub sequence: Option<SequenceNumber>,
    /// Whether the shard is closed and read to its end.
    pub finished: bool,
    /// Counts saves; a save must know the current one.
    pub revision: u64,
}

/// Why a checkpoint could not be read or saved.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Another relay saved this shard's checkpoint since it was read.
    #[error("the checkpoint of shard {shard} moved under this relay")]
    Moved {
        /// The shard.
        shard: String,
    },
    /// The checkpoint table failed or held an unreadable item.
    #[error("checkpoint table: {0}")]
    Table(#[source] BoxError),
}

/// The checkpoint items of one stream.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    client: Client,
    table: String,
    stream_arn: String,
}

impl Checkpoints {
    /// Checkpoints of `stream_arn` in `table`.
    pub fn new(client: Client, table: impl Into<String>, stream_arn: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            stream_arn: stream_arn.into(),
        }
    }

    /// The checkpoint of `shard`; the default when it has none yet.
    ///
    /// # Errors
    /// [`CheckpointError::Table`].
    pub async fn load(&self, shard: &str) -> Result<Checkpoint, CheckpointError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(self.stream_arn.clone()))
            .key(SK, AttributeValue::S(shard.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| CheckpointError::Table(Box::new(e)))?;
        match output.item {
            None => Ok(Checkpoint::default()),
            Some(item) => {
                serde_dynamo::from_item(item).map_err(|e| CheckpointError::Table(Box::new(e)))
            }
        }
    }

    /// Replaces `previous` (as loaded) by `next`, returning what was saved.
    ///
    /// # Errors
    /// [`CheckpointError::Moved`] when the stored revision is no longer `previous`'s.
    pub async fn save(
        &self,
        shard: &str,
        previous: &Checkpoint,
        sequence: Option<SequenceNumber>,
        finished: bool,
    ) -> Result<Checkpoint, CheckpointError> {
        let next = Checkpoint {
            sequence,
            finished,
            revision: previous.revision + 1,
        };
        let mut item: std::collections::HashMap<String, AttributeValue> =
            serde_dynamo::to_item(&next).map_err(|e| CheckpointError::Table(Box::new(e)))?;
        item.insert(PK.into(), AttributeValue::S(self.stream_arn.clone()));
        item.insert(SK.into(), AttributeValue::S(shard.to_owned()));
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = if previous.revision == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("revision = :revision")
                .expression_attribute_values(
                    ":revision",
                    AttributeValue::N(previous.revision.to_string()),
                )
        };
        match request.send().await {
            Ok(_) => Ok(next),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                Err(CheckpointError::Moved {
                    shard: shard.to_owned(),
                })
            }
            Err(e) => Err(CheckpointError::Table(Box::new(e))),
        }
    }
}
