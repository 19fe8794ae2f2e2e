//! The self-hosted relay's shard leases, with their checkpoints, kept in
//! DynamoDB: one item per (stream, shard).
//!
//! An item holds the shard's parent, its owner (the relay instance reading it,
//! if any), a counter every write increments, the last sequence number fully
//! handled and whether the shard is finished. Every write is conditional on the
//! counter read before (and, for the holder's own writes, on being the owner),
//! so two relays can never both move a lease or a checkpoint from one view; the
//! loser learns it has lost the lease. What to write when is the application's
//! [`LeaseKeeper`](outbox_application::LeaseKeeper).

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use outbox_application::{BoxError, LeaseView, SequenceNumber};

use crate::layout::{PK, SK};

/// One shard's lease and checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardLease {
    /// The shard.
    #[serde(rename = "sk")]
    pub shard: String,
    /// The shard it was split from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The relay instance holding the lease; `None` when free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Counts writes; every write must know the current one.
    pub revision: u64,
    /// The last record fully handled; `None` when nothing was handled yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<SequenceNumber>,
    /// When the stream received that record, if known: a checkpoint older than
    /// the stream's retention may have records after it trimmed away.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub sequence_at: Option<OffsetDateTime>,
    /// Whether the shard is closed and read to its end.
    #[serde(default)]
    pub finished: bool,
}

impl ShardLease {
    /// The lease as the protocol sees it.
    pub fn view(&self) -> LeaseView {
        LeaseView {
            shard: self.shard.clone(),
            parent: self.parent.clone(),
            owner: self.owner.clone(),
            counter: self.revision,
            finished: self.finished,
        }
    }
}

/// Why a lease could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The lease moved since it was read: another relay took it (or wrote it).
    #[error("the lease of shard {shard} moved under this relay")]
    Moved {
        /// The shard.
        shard: String,
    },
    /// The lease table failed or held an unreadable item.
    #[error("lease table: {0}")]
    Table(#[source] BoxError),
}

/// The lease items of one stream.
#[derive(Debug, Clone)]
pub struct LeaseTable {
    client: Client,
    table: String,
    stream_arn: String,
}

impl LeaseTable {
    /// The leases of `stream_arn` in `table`.
    pub fn new(client: Client, table: impl Into<String>, stream_arn: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            stream_arn: stream_arn.into(),
        }
    }

    /// Every lease of the stream, read consistently.
    ///
    /// # Errors
    /// [`LeaseError::Table`].
    pub async fn list(&self) -> Result<Vec<ShardLease>, LeaseError> {
        let mut leases = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :stream")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":stream", AttributeValue::S(self.stream_arn.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(table_error)?;
            for item in output.items.unwrap_or_default() {
                leases.push(serde_dynamo::from_item(item).map_err(table_error)?);
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(leases)
    }

    /// The lease of `shard`; a free one at revision 0 when it has no item yet.
    ///
    /// # Errors
    /// [`LeaseError::Table`].
    pub async fn load(&self, shard: &str) -> Result<ShardLease, LeaseError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(self.stream_arn.clone()))
            .key(SK, AttributeValue::S(shard.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(table_error)?;
        match output.item {
            None => Ok(ShardLease {
                shard: shard.to_owned(),
                ..ShardLease::default()
            }),
            Some(item) => serde_dynamo::from_item(item).map_err(table_error),
        }
    }

    /// Creates the free lease of a shard the stream lists, unless it exists.
    ///
    /// # Errors
    /// [`LeaseError::Table`].
    pub async fn create(&self, shard: &str, parent: Option<&str>) -> Result<(), LeaseError> {
        let lease = ShardLease {
            shard: shard.to_owned(),
            parent: parent.map(str::to_owned),
            ..ShardLease::default()
        };
        let mut item: std::collections::HashMap<String, AttributeValue> =
            serde_dynamo::to_item(&lease).map_err(table_error)?;
        item.insert(PK.into(), AttributeValue::S(self.stream_arn.clone()));
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(e) => Err(table_error(e)),
        }
    }

    /// Takes the lease of `shard` for `owner` if its revision is still `revision`.
    ///
    /// # Errors
    /// [`LeaseError::Moved`] when it is not.
    pub async fn take(&self, shard: &str, revision: u64, owner: &str) -> Result<u64, LeaseError> {
        let set = [(OWNER, AttributeValue::S(owner.into()))];
        self.write(shard, revision, None, &set, &[]).await
    }

    /// Renews `owner`'s lease of `shard` at `revision`.
    ///
    /// # Errors
    /// [`LeaseError::Moved`] when it is no longer `owner`'s at that revision.
    pub async fn renew(&self, shard: &str, revision: u64, owner: &str) -> Result<u64, LeaseError> {
        self.write(shard, revision, Some(owner), &[], &[]).await
    }

    /// Frees `owner`'s lease of `shard` at `revision`.
    ///
    /// # Errors
    /// [`LeaseError::Moved`] when it is no longer `owner`'s at that revision.
    pub async fn release(
        &self,
        shard: &str,
        revision: u64,
        owner: &str,
    ) -> Result<u64, LeaseError> {
        self.write(shard, revision, Some(owner), &[], &[OWNER])
            .await
    }

    /// Saves the checkpoint of `owner`'s lease of `shard` at `revision` (the
    /// last record handled, when the stream received it, whether the shard is
    /// finished), renewing it; returns the new revision.
    ///
    /// # Errors
    /// [`LeaseError::Moved`] when the lease is no longer `owner`'s at that revision.
    pub async fn checkpoint(
        &self,
        shard: &str,
        revision: u64,
        owner: &str,
        checkpoint: (Option<&SequenceNumber>, Option<OffsetDateTime>),
        finished: bool,
    ) -> Result<u64, LeaseError> {
        let (sequence, at) = checkpoint;
        let mut set = vec![(FINISHED, AttributeValue::Bool(finished))];
        let mut remove = Vec::new();
        match sequence {
            Some(sequence) => set.push((SEQUENCE, AttributeValue::S(sequence.as_str().into()))),
            None => remove.push(SEQUENCE),
        }
        let at = at.and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
        match at {
            Some(at) => set.push((SEQUENCE_AT, AttributeValue::S(at))),
            None => remove.push(SEQUENCE_AT),
        }
        self.write(shard, revision, Some(owner), &set, &remove)
            .await
    }

    /// One conditional write: the attributes set and removed, and the
    /// revision's increment, if the revision is `revision` and (when given) the
    /// owner `holder`. Every attribute goes by a placeholder (`owner` is a
    /// reserved word).
    async fn write(
        &self,
        shard: &str,
        revision: u64,
        holder: Option<&str>,
        set: &[(&str, AttributeValue)],
        remove: &[&str],
    ) -> Result<u64, LeaseError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(self.stream_arn.clone()))
            .key(SK, AttributeValue::S(shard.to_owned()))
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#revision", REVISION)
            .expression_attribute_values(":revision", AttributeValue::N(revision.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        let mut update = "SET #revision = #revision + :one".to_owned();
        let mut condition = "attribute_exists(#pk) AND #revision = :revision".to_owned();
        let mut names = std::collections::BTreeSet::new();
        for (attribute, value) in set {
            update.push_str(&format!(", #{attribute} = :{attribute}"));
            names.insert(*attribute);
            request = request.expression_attribute_values(format!(":{attribute}"), value.clone());
        }
        if !remove.is_empty() {
            let removed: Vec<String> = remove.iter().map(|a| format!("#{a}")).collect();
            update.push_str(&format!(" REMOVE {}", removed.join(", ")));
            names.extend(remove.iter().copied());
        }
        if let Some(holder) = holder {
            condition.push_str(&format!(" AND #{OWNER} = :holder"));
            names.insert(OWNER);
            request =
                request.expression_attribute_values(":holder", AttributeValue::S(holder.into()));
        }
        for name in names {
            request = request.expression_attribute_names(format!("#{name}"), name);
        }
        match request
            .update_expression(update)
            .condition_expression(condition)
            .send()
            .await
        {
            Ok(_) => Ok(revision + 1),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                Err(LeaseError::Moved {
                    shard: shard.to_owned(),
                })
            }
            Err(e) => Err(table_error(e)),
        }
    }
}

/// The attributes of a lease item, as [`ShardLease`] serializes them.
const OWNER: &str = "owner";
const REVISION: &str = "revision";
const SEQUENCE: &str = "sequence";
const FINISHED: &str = "finished";
const SEQUENCE_AT: &str = "sequenceAt";

fn table_error(error: impl std::error::Error + Send + Sync + 'static) -> LeaseError {
    LeaseError::Table(Box::new(error))
}
