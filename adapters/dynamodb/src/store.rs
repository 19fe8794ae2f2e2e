//! The aggregate store on DynamoDB: one consistent `GetItem` per load, exactly
//! one `TransactWriteItems` per commit.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use tracing::debug;

use outbox_application::ports::{AggregateStore, StoreError};
use outbox_application::{
    AggregateId, AggregateRef, EventEnvelope, IdempotencyKey, IdempotencyRecord, StateRecord,
    WriteLimits, WriteSet,
};

use crate::errors::{cancelled, DynamoError};
use crate::items::{
    outbox_envelope, outbox_item, request_item, request_record, state_item, state_record,
    Attributes,
};
use crate::layout::{
    aggregate_pk, request_pk, TableLayout, ENTITY_OUTBOX, ENTITY_STATE, ENTITY_TYPE, PK,
    READ_PAGE_ITEMS, REQUEST_SK, SK, STATE_SK, VERSION,
};

/// The condition of a put that must create its item.
const MUST_BE_NEW: &str = "attribute_not_exists(pk)";

/// The aggregate store on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    layout: TableLayout,
}

impl DynamoStore {
    /// A store on `layout`'s tables through `client`.
    pub fn new(client: Client, layout: TableLayout) -> Self {
        Self { client, layout }
    }

    /// The tables it writes.
    pub fn layout(&self) -> &TableLayout {
        &self.layout
    }

    /// The transaction `write` becomes: the state put under its version
    /// condition, each outbox put and the idempotency record put as new items.
    fn transaction(&self, write: &WriteSet) -> Result<Vec<TransactWriteItem>, StoreError> {
        let failed = |error: crate::items::ItemError| StoreError::Failed(Box::new(error));
        let mut actions = Vec::with_capacity(write.action_count());
        let state = state_item(
            &write.aggregate.aggregate_type,
            write.aggregate.aggregate_id,
            &write.state,
        )
        .map_err(failed)?;
        let state_put = if write.expected_version.value() == 0 {
            put(&self.layout.table, state, MUST_BE_NEW)
        } else {
            put(&self.layout.table, state, "#version = :expected")
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .expression_attribute_names("#version", VERSION)
                .expression_attribute_values(
                    ":expected",
                    AttributeValue::N(write.expected_version.to_string()),
                )
        };
        actions.push(action(state_put)?);
        for envelope in &write.outbox {
            let item = outbox_item(envelope, self.layout.outbox_retention, &self.layout.sources)
                .map_err(failed)?;
            actions.push(action(put(self.layout.outbox_table(), item, MUST_BE_NEW))?);
        }
        if let Some(request) = &write.request {
            let item = request_item(request, self.layout.request_retention).map_err(failed)?;
            actions.push(action(put(&self.layout.table, item, MUST_BE_NEW))?);
        }
        Ok(actions)
    }

    /// The outbox events of `aggregate` in version order, read consistently.
    ///
    /// # Errors
    /// As [`AggregateStore::load`].
    pub async fn outbox_of(
        &self,
        aggregate: &AggregateRef,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let pages = self
            .client
            .query()
            .table_name(self.layout.outbox_table())
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :event)")
            .expression_attribute_values(":pk", AttributeValue::S(aggregate_pk(aggregate)))
            .expression_attribute_values(":event", AttributeValue::S("EVENT#".into()))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(DynamoError::from)?;
        pages.into_iter().map(decode_envelope).collect()
    }

    /// Every outbox event still in the table (TTL removes old ones), by a consistent scan.
    ///
    /// # Errors
    /// As [`AggregateStore::load`].
    pub async fn outbox(&self) -> Result<Vec<EventEnvelope>, StoreError> {
        let items = self.scan(self.layout.outbox_table(), ENTITY_OUTBOX).await?;
        items.into_iter().map(decode_envelope).collect()
    }

    /// Every outbox item still in the table, by a consistent scan: the events
    /// that decode, and how many items do not (poison a foreign writer left,
    /// which the relay dead-letters).
    ///
    /// # Errors
    /// As [`AggregateStore::load`], only when the table cannot be read.
    pub async fn outbox_readable(&self) -> Result<(Vec<EventEnvelope>, usize), StoreError> {
        let items = self.scan(self.layout.outbox_table(), ENTITY_OUTBOX).await?;
        let total = items.len();
        let events: Vec<EventEnvelope> = items
            .into_iter()
            .filter_map(|item| decode_envelope(item).ok())
            .collect();
        let unreadable = total - events.len();
        Ok((events, unreadable))
    }

    /// Every aggregate with a state item, by a consistent scan.
    ///
    /// # Errors
    /// As [`AggregateStore::load`].
    pub async fn aggregates(&self) -> Result<Vec<AggregateRef>, StoreError> {
        // Only the names: a table of many aggregates is listed without
        // holding every state in memory.
        let items: Vec<Attributes> = self
            .scan_of(&self.layout.table, ENTITY_STATE)
            .projection_expression("#pk, aggregateType, aggregateId")
            .expression_attribute_names("#pk", PK)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(DynamoError::from)?;
        items
            .into_iter()
            .map(|item| {
                let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
                let id = text("aggregateId").and_then(|raw| AggregateId::parse(&raw).ok());
                match (text("aggregateType"), id) {
                    (Some(aggregate_type), Some(id)) => Ok(AggregateRef::new(&aggregate_type, id)),
                    _ => Err(StoreError::Corrupt(
                        format!("state item {:?} names no aggregate", item.get(PK)).into(),
                    )),
                }
            })
            .collect()
    }

    async fn scan(&self, table: &str, entity_type: &str) -> Result<Vec<Attributes>, StoreError> {
        self.scan_of(table, entity_type)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|error| DynamoError::from(error).into())
    }

    /// A consistent scan of `table`'s items of `entity_type`.
    fn scan_of(
        &self,
        table: &str,
        entity_type: &str,
    ) -> aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder {
        self.client
            .scan()
            .table_name(table)
            .limit(READ_PAGE_ITEMS)
            .consistent_read(true)
            .filter_expression("#entityType = :entityType")
            .expression_attribute_names("#entityType", ENTITY_TYPE)
            .expression_attribute_values(":entityType", AttributeValue::S(entity_type.into()))
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Attributes>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.layout.table)
            .key(PK, AttributeValue::S(pk))
            .key(SK, AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(DynamoError::from)?;
        Ok(output.item)
    }
}

#[async_trait]
impl AggregateStore for DynamoStore {
    /// DynamoDB's: 100 actions per `TransactWriteItems`, 400 KB per item.
    fn limits(&self) -> WriteLimits {
        WriteLimits::default()
    }

    async fn load(&self, aggregate: &AggregateRef) -> Result<Option<StateRecord>, StoreError> {
        self.get(aggregate_pk(aggregate), STATE_SK)
            .await?
            .map(|item| state_record(item).map_err(|error| StoreError::Corrupt(Box::new(error))))
            .transpose()
    }

    async fn find_request(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.get(request_pk(key), REQUEST_SK)
            .await?
            .map(|item| request_record(item).map_err(|error| StoreError::Corrupt(Box::new(error))))
            .transpose()
    }

    async fn commit(&self, write: &WriteSet) -> Result<(), StoreError> {
        let actions = self.transaction(write)?;
        debug!(aggregate = %write.aggregate, actions = actions.len(), "committing");
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .client_request_token(&write.request_token)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
                    Err(cancelled(
                        write,
                        cancel.cancellation_reasons(),
                        cancel.message().unwrap_or_default(),
                    ))
                }
                _ => Err(DynamoError::from(error).into()),
            },
        }
    }
}

/// A put of `item` into `table` under `condition`.
fn put(
    table: &str,
    item: Attributes,
    condition: &str,
) -> aws_sdk_dynamodb::types::builders::PutBuilder {
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
}

/// One transaction action of a put.
fn action(
    put: aws_sdk_dynamodb::types::builders::PutBuilder,
) -> Result<TransactWriteItem, StoreError> {
    let put = put
        .build()
        .map_err(|error| StoreError::Failed(Box::new(error)))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Decodes an outbox item read back from the table.
fn decode_envelope(item: Attributes) -> Result<EventEnvelope, StoreError> {
    outbox_envelope(item).map_err(|error| StoreError::Corrupt(Box::new(error)))
}
