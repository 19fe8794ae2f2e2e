//! An ordered consumer's sequences on DynamoDB: one item collection per
//! (consumer, aggregate), `pk = SEQ#<consumer>#<AGGREGATE>#<id>`, holding
//!
//! - the sequence (`sk = SEQ`, `entityType = SEQUENCE`): the last applied
//!   version, the held count, the revision, and while parked `parkedReason`,
//!   `parkedSince` and `parkedBy` (the consumer: the key of the sparse index
//!   `parked-by-consumer`, which counts a consumer's parked aggregates);
//! - the parked list (`sk = HELD#<version, 20 digits>`, `entityType = HELD`),
//!   each item one held event, so a query reads it in version order;
//! - the skips an operator recorded (`sk = SKIP#<version>`, `entityType = SKIP`).
//!
//! A write is one `TransactWriteItems`: the sequence put under
//! `revision = :read` (or `attribute_not_exists` for the first), with the
//! effect, the held event (`attribute_not_exists`), the released one
//! (`attribute_exists`) or the skip. A write of the sequence alone (an event
//! the consumer does not act on) is one conditioned `PutItem`.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, Select, TransactWriteItem};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use outbox_application::ports::{
    Effect, InboxError, ParkedAggregate, Parking, Sequence, SequenceOutcome, SequenceWrite,
};
use outbox_application::{AggregateId, AggregateRef, EventEnvelope};
use outbox_domain::Version;

use crate::errors::{failed_conditions, DynamoError};
use crate::inbox::{effect_pk, encode, scan_all, DynamoInbox, EffectItem, ENTITY_EFFECT, NEW_ITEM};
use crate::items::Attributes;
use crate::layout::{ENTITY_TYPE, PARKED_BY, PARKED_BY_CONSUMER_INDEX, PK, READ_PAGE_ITEMS, SK};

/// `entityType` of a sequence.
pub const ENTITY_SEQUENCE: &str = "SEQUENCE";
/// `entityType` of a held event.
pub const ENTITY_HELD: &str = "HELD";
/// `entityType` of a recorded skip.
pub const ENTITY_SKIP: &str = "SKIP";

/// The sequence as stored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SequenceItem {
    pk: String,
    sk: String,
    entity_type: String,
    consumer: String,
    aggregate_type: String,
    aggregate_id: AggregateId,
    applied: Version,
    held: u64,
    revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parked_reason: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    parked_since: Option<OffsetDateTime>,
    /// The consumer, while parked: the sparse index's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parked_by: Option<String>,
}

impl SequenceItem {
    fn sequence(&self) -> Sequence {
        Sequence {
            applied: self.applied,
            parking: self
                .parked_reason
                .clone()
                .zip(self.parked_since)
                .map(|(reason, since)| Parking { reason, since }),
            held: self.held,
            revision: self.revision,
        }
    }
}

/// A held event.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeldItem {
    pk: String,
    sk: String,
    entity_type: String,
    event: EventEnvelope,
}

/// A recorded skip.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SkipItem {
    pk: String,
    sk: String,
    entity_type: String,
    version: Version,
    by: String,
    why: String,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
}

const SEQUENCE_SK: &str = "SEQ";

fn collection(consumer: &str, aggregate: &AggregateRef) -> String {
    format!("SEQ#{consumer}#{aggregate}")
}

fn held_sk(version: Version) -> String {
    format!("HELD#{:020}", version.value())
}

fn decode<T: for<'de> Deserialize<'de>>(item: Attributes) -> Result<T, InboxError> {
    serde_dynamo::from_item(item).map_err(|error| InboxError::Unavailable(Box::new(error)))
}

fn built<T, E: std::error::Error + Send + Sync + 'static>(
    result: Result<T, E>,
) -> Result<T, InboxError> {
    result.map_err(|error| InboxError::Unavailable(Box::new(error)))
}

impl DynamoInbox {
    /// Reads `consumer`'s sequence on `aggregate`, consistently.
    pub(crate) async fn read_sequence(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
    ) -> Result<Sequence, InboxError> {
        match self
            .get(collection(consumer, aggregate), SEQUENCE_SK)
            .await?
        {
            Some(item) => Ok(decode::<SequenceItem>(item)?.sequence()),
            None => Ok(Sequence::default()),
        }
    }

    /// Writes `write` if the sequence is still at `revision`.
    pub(crate) async fn write_sequence_items(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
        revision: u64,
        write: SequenceWrite,
    ) -> Result<SequenceOutcome, InboxError> {
        let pk = collection(consumer, aggregate);
        let next = write.next;
        let sequence = encode(SequenceItem {
            pk: pk.clone(),
            sk: SEQUENCE_SK.into(),
            entity_type: ENTITY_SEQUENCE.into(),
            consumer: consumer.into(),
            aggregate_type: aggregate.aggregate_type.clone(),
            aggregate_id: aggregate.aggregate_id,
            applied: next.applied,
            held: next.held,
            revision: next.revision,
            parked_reason: next.parking.as_ref().map(|p| p.reason.clone()),
            parked_since: next.parking.as_ref().map(|p| p.since),
            parked_by: next.parking.as_ref().map(|_| consumer.to_owned()),
        })?;
        let (condition, read) = if revision == 0 {
            (NEW_ITEM, None)
        } else {
            (
                "revision = :read",
                Some(AttributeValue::N(revision.to_string())),
            )
        };
        let alone = write.effect.is_none()
            && write.hold.is_none()
            && write.release.is_none()
            && write.skip.is_none();
        if alone {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(sequence))
                .condition_expression(condition)
                .set_expression_attribute_values(read.map(|r| [(":read".to_owned(), r)].into()))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(SequenceOutcome::Written),
                Err(error)
                    if matches!(
                        error.as_service_error(),
                        Some(PutItemError::ConditionalCheckFailedException(_))
                    ) =>
                {
                    Ok(SequenceOutcome::Conflict)
                }
                Err(error) => Err(DynamoError::from(error).into()),
            };
        }
        let mut actions = vec![TransactWriteItem::builder()
            .put(built(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(sequence))
                    .condition_expression(condition)
                    .set_expression_attribute_values(read.map(|r| [(":read".to_owned(), r)].into()))
                    .build(),
            )?)
            .build()];
        let mut hold_index = None;
        if let Some(effect) = write.effect {
            let item = encode(EffectItem {
                pk: effect_pk(consumer, effect.event_id),
                sk: ENTITY_EFFECT.into(),
                entity_type: ENTITY_EFFECT.into(),
                consumer: consumer.into(),
                effect,
                aggregate: Some(aggregate.to_string()),
                position: Some(next.revision),
                applied_at: Some(OffsetDateTime::now_utc()),
            })?;
            actions.push(self.put(item, None)?);
        }
        if let Some(event) = write.hold {
            hold_index = Some(actions.len());
            let item = encode(HeldItem {
                pk: pk.clone(),
                sk: held_sk(event.aggregate_version),
                entity_type: ENTITY_HELD.into(),
                event,
            })?;
            actions.push(self.put(item, Some(NEW_ITEM))?);
        }
        if let Some(version) = write.release {
            let delete = built(
                Delete::builder()
                    .table_name(&self.table)
                    .key(PK, AttributeValue::S(pk.clone()))
                    .key(SK, AttributeValue::S(held_sk(version)))
                    .condition_expression("attribute_exists(pk)")
                    .build(),
            )?;
            actions.push(TransactWriteItem::builder().delete(delete).build());
        }
        if let Some(skip) = write.skip {
            let item = encode(SkipItem {
                pk: pk.clone(),
                sk: format!("SKIP#{:020}", skip.version.value()),
                entity_type: ENTITY_SKIP.into(),
                version: skip.version,
                by: skip.by,
                why: skip.why,
                at: skip.at,
            })?;
            actions.push(self.put(item, None)?);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match result {
            Ok(_) => Ok(SequenceOutcome::Written),
            Err(error) => match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
                    let failed = failed_conditions(cancel.cancellation_reasons(), cancel.message());
                    let at = |index: usize| failed.get(index).copied().unwrap_or(false);
                    if failed.is_empty() {
                        return Err(DynamoError::from(error).into());
                    }
                    if !at(0) && hold_index.is_some_and(at) {
                        Ok(SequenceOutcome::AlreadyHeld)
                    } else if failed.iter().any(|f| *f) {
                        Ok(SequenceOutcome::Conflict)
                    } else {
                        Err(DynamoError::from(error).into())
                    }
                }
                _ => Err(DynamoError::from(error).into()),
            },
        }
    }

    /// The held event of `version`, consistently.
    pub(crate) async fn read_held(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
        version: Version,
    ) -> Result<Option<EventEnvelope>, InboxError> {
        self.get(collection(consumer, aggregate), &held_sk(version))
            .await?
            .map(|item| decode::<HeldItem>(item).map(|held| held.event))
            .transpose()
    }

    /// How many sequences `consumer` holds parked, by its sparse index (read
    /// eventually consistently: a level for an alarm, not an operator's view).
    pub(crate) async fn count_parked(&self, consumer: &str) -> Result<u64, InboxError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(PARKED_BY_CONSUMER_INDEX)
            .key_condition_expression("#parkedBy = :consumer")
            .expression_attribute_names("#parkedBy", PARKED_BY)
            .expression_attribute_values(":consumer", AttributeValue::S(consumer.to_owned()))
            .limit(READ_PAGE_ITEMS)
            .select(Select::Count)
            .into_paginator()
            .send();
        let mut count = 0;
        while let Some(page) = pages.next().await {
            let page = page.map_err(DynamoError::from)?;
            count += u64::try_from(page.count()).unwrap_or_default();
        }
        Ok(count)
    }

    /// Every parked sequence, by a consistent scan (an operator's view).
    pub(crate) async fn scan_parked(&self) -> Result<Vec<ParkedAggregate>, InboxError> {
        let items = scan_all(
            self.client
                .scan()
                .table_name(&self.table)
                .limit(READ_PAGE_ITEMS)
                .consistent_read(true)
                .filter_expression("#entityType = :sequence AND attribute_exists(parkedSince)")
                .expression_attribute_names("#entityType", ENTITY_TYPE)
                .expression_attribute_values(
                    ":sequence",
                    AttributeValue::S(ENTITY_SEQUENCE.into()),
                ),
        )
        .await?;
        let mut parked = items
            .into_iter()
            .map(|item| {
                let item = decode::<SequenceItem>(item)?;
                Ok(ParkedAggregate {
                    aggregate: AggregateRef::new(&item.aggregate_type, item.aggregate_id),
                    sequence: item.sequence(),
                    consumer: item.consumer,
                })
            })
            .collect::<Result<Vec<_>, InboxError>>()?;
        parked.sort_by(|a, b| (&a.consumer, &a.aggregate).cmp(&(&b.consumer, &b.aggregate)));
        Ok(parked)
    }

    /// The effects `consumer` applied to `aggregate` in order, from the
    /// positions their writes made (an ordered consumer's history).
    ///
    /// # Errors
    /// [`InboxError::Unavailable`] when the scan fails or an item does not decode.
    pub async fn history(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
    ) -> Result<Vec<(u64, Effect)>, InboxError> {
        let wanted = aggregate.to_string();
        let mut history = Vec::new();
        for item in scan_all(self.effects_scan(consumer)).await? {
            let item = decode::<EffectItem>(item)?;
            if let (Some(of), Some(position)) = (&item.aggregate, item.position) {
                if *of == wanted {
                    history.push((position, item.effect));
                }
            }
        }
        history.sort_by_key(|(position, _)| *position);
        Ok(history)
    }
}
