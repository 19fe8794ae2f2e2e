//! The inbox on DynamoDB: a consumer's effect and its (consumer, event id) mark
//! written by one `TransactWriteItems`, the mark under `attribute_not_exists`, so
//! a redelivered event finds its mark and writes nothing.
//!
//! Items of the consumer's table: the mark (`pk = INBOX#<consumer>#<eventId>`,
//! `sk = INBOX`, `entityType = INBOX`, TTL `expiresAt`) and the effect
//! (`pk = EFFECT#<consumer>#<eventId>`, `sk = EFFECT`, `entityType = EFFECT`,
//! `appliedAt`, kept for good: an invoice is business data). A redelivery recognised as a
//! duplicate raises the consumer's counter (`pk = COUNT#<consumer>`,
//! `sk = DUPLICATES`), outside the transaction so it never contends with an
//! effect. An ordered consumer's sequences live beside them ([`crate::sequence`]).
//!
//! An external effect's claim is the mark itself, in progress: `status =
//! IN_PROGRESS`, the holder's `claimToken` and `claimUntil` (epoch
//! milliseconds), put under `attribute_not_exists(pk) OR (status =
//! IN_PROGRESS AND claimUntil < now)`. Completing it puts the completed mark
//! (`status = COMPLETED`, `callKind`, `resultDigest`) under `claimToken =
//! token`, with the record in the same transaction; releasing deletes it under
//! the same condition. A mark without `status` is a data effect's, complete.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use outbox_application::ports::{
    Claim, ClaimOutcome, CompleteOutcome, Completion, Effect, Inbox, InboxError, InboxOutcome,
    ParkedAggregate, Sequence, SequenceOutcome, SequenceWrite,
};
use outbox_application::{AggregateRef, EventEnvelope, EventId};
use outbox_domain::Version;

use crate::errors::{failed_conditions, DynamoError};
use crate::items::{expiry, now, Attributes};
use crate::layout::{ENTITY_TYPE, PK, READ_PAGE_ITEMS, SK};

/// `entityType` of an inbox mark.
pub const ENTITY_INBOX: &str = "INBOX";
/// `entityType` of a recorded effect.
pub const ENTITY_EFFECT: &str = "EFFECT";

/// A mark: this consumer handled this event, or (with a `status` of
/// [`IN_PROGRESS`]) is calling out for it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MarkItem {
    pk: String,
    sk: String,
    entity_type: String,
    consumer: String,
    event_id: EventId,
    expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claim_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claim_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    call_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result_digest: Option<String>,
}

/// `status` of a claimed mark whose call has not completed.
const IN_PROGRESS: &str = "IN_PROGRESS";
/// `status` of an external effect's completed mark.
const COMPLETED: &str = "COMPLETED";
/// The condition of a claim: no mark, or an in-progress one that expired.
const CLAIMABLE: &str = "attribute_not_exists(pk) OR (#status = :inProgress AND claimUntil < :now)";
/// The condition of completing or releasing a claim: it is still the caller's.
const HELD_BY: &str = "#status = :inProgress AND claimToken = :token";

/// An effect, as the consumer recorded it; an ordered consumer's also names
/// its aggregate and the sequence revision its write made, so the order
/// effects were applied in can be read back.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EffectItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    pub(crate) entity_type: String,
    pub(crate) consumer: String,
    pub(crate) effect: Effect,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) aggregate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) position: Option<u64>,
    /// When the effect was written.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub(crate) applied_at: Option<time::OffsetDateTime>,
}

/// The inbox of consumers whose marks and effects live in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoInbox {
    pub(crate) client: Client,
    pub(crate) table: String,
    retention: Duration,
}

impl DynamoInbox {
    /// Marks outlive every redelivery: SQS keeps a message at most 14 days.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

    /// An inbox in `table` through `client`, marks kept [`Self::DEFAULT_RETENTION`].
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            retention: Self::DEFAULT_RETENTION,
        }
    }

    /// The effects `consumer` recorded, by a consistent scan (for inspection and tests).
    ///
    /// # Errors
    /// [`InboxError::Unavailable`] when the scan fails or an item does not decode.
    pub async fn effects_of(&self, consumer: &str) -> Result<Vec<Effect>, InboxError> {
        scan_all(self.effects_scan(consumer))
            .await?
            .into_iter()
            .map(|item| {
                serde_dynamo::from_item::<_, EffectItem>(item)
                    .map(|item| item.effect)
                    .map_err(|error| InboxError::Unavailable(Box::new(error)))
            })
            .collect()
    }

    /// A consistent scan of `consumer`'s effect items.
    pub(crate) fn effects_scan(
        &self,
        consumer: &str,
    ) -> aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder {
        self.client
            .scan()
            .table_name(&self.table)
            .limit(READ_PAGE_ITEMS)
            .consistent_read(true)
            .filter_expression("#entityType = :effect AND consumer = :consumer")
            .expression_attribute_names("#entityType", ENTITY_TYPE)
            .expression_attribute_values(":effect", AttributeValue::S(ENTITY_EFFECT.into()))
            .expression_attribute_values(":consumer", AttributeValue::S(consumer.into()))
    }

    /// What `consumer` did: effects recorded (a consistent scan) and duplicates suppressed.
    ///
    /// # Errors
    /// [`InboxError::Unavailable`] when the table cannot be read.
    pub async fn tally(&self, consumer: &str) -> Result<ConsumerTally, InboxError> {
        let pages: Vec<i32> = self
            .effects_scan(consumer)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|error| InboxError::from(DynamoError::from(error)))?
            .iter()
            .map(|page| page.count())
            .collect();
        let effects = pages
            .into_iter()
            .map(|n| u64::try_from(n).unwrap_or(0))
            .sum();
        let counter = self.get(counter_pk(consumer), DUPLICATES).await?;
        let duplicates = counter
            .as_ref()
            .and_then(|item| item.get(DUPLICATES_COUNT))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Ok(ConsumerTally {
            effects,
            duplicates,
        })
    }

    /// The events `consumer` has handled (its marks, a call in progress
    /// excluded), by a consistent scan: what `status` holds the outbox against.
    ///
    /// # Errors
    /// [`InboxError::Unavailable`] when the table cannot be read.
    pub async fn handled_events(
        &self,
        consumer: &str,
    ) -> Result<std::collections::HashSet<EventId>, InboxError> {
        let pages: Vec<_> = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(READ_PAGE_ITEMS)
            .consistent_read(true)
            .filter_expression("#entityType = :mark AND consumer = :consumer")
            .expression_attribute_names("#entityType", ENTITY_TYPE)
            .expression_attribute_values(":mark", AttributeValue::S(ENTITY_INBOX.into()))
            .expression_attribute_values(":consumer", AttributeValue::S(consumer.into()))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|error| InboxError::from(DynamoError::from(error)))?;
        let mut handled = std::collections::HashSet::new();
        for item in pages.iter().flat_map(|page| page.items()) {
            if in_progress(item) {
                continue;
            }
            let mark: MarkItem = serde_dynamo::from_item(item.clone())
                .map_err(|error| InboxError::Unavailable(Box::new(error)))?;
            handled.insert(mark.event_id);
        }
        Ok(handled)
    }

    /// The item under (`pk`, `sk`), read consistently.
    pub(crate) async fn get(&self, pk: String, sk: &str) -> Result<Option<Attributes>, InboxError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(pk))
            .key(SK, AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| InboxError::from(DynamoError::from(error)))?;
        Ok(output.item)
    }

    /// A transaction's put of `item` into this table, under `condition` if any.
    pub(crate) fn put(
        &self,
        item: Attributes,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, InboxError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(|error| InboxError::Unavailable(Box::new(error)))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

impl DynamoInbox {
    /// The mark of `consumer` on `event_id`, complete, without a call's attributes.
    fn mark(&self, consumer: &str, event_id: EventId) -> MarkItem {
        MarkItem {
            pk: mark_pk(consumer, event_id),
            sk: ENTITY_INBOX.into(),
            entity_type: ENTITY_INBOX.into(),
            consumer: consumer.into(),
            event_id,
            expires_at: expiry(now(), self.retention),
            status: None,
            claim_token: None,
            claim_until: None,
            call_kind: None,
            result_digest: None,
        }
    }

    /// A transaction's put of `consumer`'s `effect` of `event_id`, once.
    fn effect_put(
        &self,
        consumer: &str,
        event_id: EventId,
        effect: Effect,
    ) -> Result<TransactWriteItem, InboxError> {
        self.put(
            encode(EffectItem {
                pk: effect_pk(consumer, event_id),
                sk: ENTITY_EFFECT.into(),
                entity_type: ENTITY_EFFECT.into(),
                consumer: consumer.into(),
                effect,
                aggregate: None,
                position: None,
                applied_at: Some(OffsetDateTime::now_utc()),
            })?,
            Some(NEW_ITEM),
        )
    }
}

/// Whether `mark` is an in-progress claim rather than a completed mark.
fn in_progress(mark: &Attributes) -> bool {
    mark.get("status")
        .and_then(|status| status.as_s().ok())
        .is_some_and(|status| status == IN_PROGRESS)
}

/// `at` in epoch milliseconds.
fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Epoch milliseconds as a time.
fn from_millis(millis: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Every item `scan` finds, page by page.
pub(crate) async fn scan_all(
    scan: aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder,
) -> Result<Vec<Attributes>, InboxError> {
    scan.into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|error| InboxError::from(DynamoError::from(error)))
}

/// What one consumer did, as its inbox knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerTally {
    /// Effects recorded.
    pub effects: u64,
    /// Redeliveries recognised and ignored.
    pub duplicates: u64,
}

/// The condition of a put that must not overwrite an item.
pub(crate) const NEW_ITEM: &str = "attribute_not_exists(pk)";

/// The sort key of a consumer's duplicate counter.
const DUPLICATES: &str = "DUPLICATES";
/// The counter's attribute.
const DUPLICATES_COUNT: &str = "duplicates";

fn counter_pk(consumer: &str) -> String {
    format!("COUNT#{consumer}")
}

/// The partition keys of every item `consumer`'s inbox writes (its counter,
/// effects, marks and sequences), as IAM `StringLike` patterns: a deployment
/// grants each consumer exactly these as `dynamodb:LeadingKeys`, so no
/// consumer can touch another's items in a shared inbox table.
pub fn leading_keys(consumer: &str) -> Vec<String> {
    vec![
        counter_pk(consumer),
        format!("EFFECT#{consumer}#*"),
        format!("INBOX#{consumer}#*"),
        format!("SEQ#{consumer}#*"),
    ]
}

/// The key of `consumer`'s effect of `event_id`.
pub(crate) fn effect_pk(consumer: &str, event_id: EventId) -> String {
    format!("EFFECT#{consumer}#{event_id}")
}

fn mark_pk(consumer: &str, event_id: EventId) -> String {
    format!("INBOX#{consumer}#{event_id}")
}

/// `item` as DynamoDB attributes.
pub(crate) fn encode<T: Serialize>(item: T) -> Result<Attributes, InboxError> {
    serde_dynamo::to_item(item).map_err(|error| InboxError::Unavailable(Box::new(error)))
}

#[async_trait]
impl Inbox for DynamoInbox {
    async fn processed(&self, consumer: &str, event_id: EventId) -> Result<bool, InboxError> {
        let mark = self.get(mark_pk(consumer, event_id), ENTITY_INBOX).await?;
        Ok(mark.is_some_and(|mark| !in_progress(&mark)))
    }

    async fn apply_once(
        &self,
        consumer: &str,
        event_id: EventId,
        effect: Option<Effect>,
    ) -> Result<InboxOutcome, InboxError> {
        let mark = encode(self.mark(consumer, event_id))?;
        let mut actions = vec![self.put(mark, Some(NEW_ITEM))?];
        if let Some(effect) = effect {
            actions.push(self.effect_put(consumer, event_id, effect)?);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match result {
            Ok(_) => Ok(InboxOutcome::Applied),
            Err(error) => match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancel))
                    if failed_conditions(cancel.cancellation_reasons(), cancel.message())
                        .first()
                        .is_some_and(|failed| *failed) =>
                {
                    Ok(InboxOutcome::AlreadyProcessed)
                }
                _ => Err(InboxError::from(DynamoError::from(error))),
            },
        }
    }

    async fn claim(
        &self,
        consumer: &str,
        event_id: EventId,
        claim: &Claim,
    ) -> Result<ClaimOutcome, InboxError> {
        let mark = encode(MarkItem {
            status: Some(IN_PROGRESS.into()),
            claim_token: Some(claim.token.clone()),
            claim_until: Some(millis(claim.until)),
            ..self.mark(consumer, event_id)
        })?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(mark))
            .condition_expression(CLAIMABLE)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":inProgress", AttributeValue::S(IN_PROGRESS.into()))
            .expression_attribute_values(":now", AttributeValue::N(millis(claim.at).to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(ClaimOutcome::Claimed {
                took_over: output.attributes.is_some_and(|old| !old.is_empty()),
            }),
            Err(error) if error.code() == Some("ConditionalCheckFailedException") => {
                let Some(mark) = self.get(mark_pk(consumer, event_id), ENTITY_INBOX).await? else {
                    // Released between the put and the read: the next delivery claims it.
                    return Ok(ClaimOutcome::Held { until: claim.at });
                };
                if !in_progress(&mark) {
                    return Ok(ClaimOutcome::Completed);
                }
                let until = mark
                    .get("claimUntil")
                    .and_then(|until| until.as_n().ok())
                    .and_then(|until| until.parse::<i64>().ok())
                    .map_or(claim.at, from_millis);
                Ok(ClaimOutcome::Held { until })
            }
            Err(error) => Err(InboxError::from(DynamoError::from(error))),
        }
    }

    async fn complete(
        &self,
        consumer: &str,
        event_id: EventId,
        token: &str,
        completion: Completion,
    ) -> Result<CompleteOutcome, InboxError> {
        let mark = encode(MarkItem {
            status: Some(COMPLETED.into()),
            call_kind: Some(completion.kind),
            result_digest: Some(completion.digest),
            ..self.mark(consumer, event_id)
        })?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(mark))
            .condition_expression(HELD_BY)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":inProgress", AttributeValue::S(IN_PROGRESS.into()))
            .expression_attribute_values(":token", AttributeValue::S(token.to_owned()))
            .build()
            .map_err(|error| InboxError::Unavailable(Box::new(error)))?;
        let mut actions = vec![TransactWriteItem::builder().put(put).build()];
        if let Some(effect) = completion.record {
            actions.push(self.effect_put(consumer, event_id, effect)?);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match result {
            Ok(_) => Ok(CompleteOutcome::Completed),
            Err(error) => match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancel))
                    if failed_conditions(cancel.cancellation_reasons(), cancel.message())
                        .first()
                        .is_some_and(|failed| *failed) =>
                {
                    Ok(CompleteOutcome::Lost)
                }
                _ => Err(InboxError::from(DynamoError::from(error))),
            },
        }
    }

    async fn release(
        &self,
        consumer: &str,
        event_id: EventId,
        token: &str,
    ) -> Result<(), InboxError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(mark_pk(consumer, event_id)))
            .key(SK, AttributeValue::S(ENTITY_INBOX.into()))
            .condition_expression(HELD_BY)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":inProgress", AttributeValue::S(IN_PROGRESS.into()))
            .expression_attribute_values(":token", AttributeValue::S(token.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Taken over or completed by another holder: nothing of ours to release.
            Err(error) if error.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(error) => Err(InboxError::from(DynamoError::from(error))),
        }
    }

    async fn count_duplicate(&self, consumer: &str) -> Result<(), InboxError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(counter_pk(consumer)))
            .key(SK, AttributeValue::S(DUPLICATES.into()))
            .update_expression("ADD #count :one")
            .expression_attribute_names("#count", DUPLICATES_COUNT)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await
            .map_err(|error| InboxError::from(DynamoError::from(error)))?;
        Ok(())
    }

    async fn sequence(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
    ) -> Result<Sequence, InboxError> {
        self.read_sequence(consumer, aggregate).await
    }

    async fn write_sequence(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
        revision: u64,
        write: SequenceWrite,
    ) -> Result<SequenceOutcome, InboxError> {
        self.write_sequence_items(consumer, aggregate, revision, write)
            .await
    }

    async fn held(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
        version: Version,
    ) -> Result<Option<EventEnvelope>, InboxError> {
        self.read_held(consumer, aggregate, version).await
    }

    async fn parked(&self) -> Result<Vec<ParkedAggregate>, InboxError> {
        self.scan_parked().await
    }

    async fn parked_count(&self, consumer: &str) -> Result<u64, InboxError> {
        self.count_parked(consumer).await
    }
}
