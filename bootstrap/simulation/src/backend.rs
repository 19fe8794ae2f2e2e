//! Where a simulated pipeline stores aggregates and reads its change feed: the
//! in-memory store and change log, or DynamoDB (embedded dynoxide, moto, AWS)
//! with its stream and the self-hosted stream relay.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use outbox_application::ports::{AggregateStore, ChangeFeed, DeadLetterQueue};
use outbox_application::{AggregateRef, BoxError, Relay};
use outbox_dynamodb::layout::{ENTITY_OUTBOX, ENTITY_TYPE, PK, SK};
use outbox_dynamodb::{
    DynamoDeadLetterQueue, DynamoStore, LeaseTable, StreamRelay, StreamRelayOptions,
};
use outbox_memory::{MemoryStore, MemoryStream, StreamPosition};

use crate::audit::StoredAggregate;

/// A store with its change feed, and what the audit reads of it.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Where the data lives, for reports.
    fn describe(&self) -> String;

    /// The aggregate store.
    fn store(&self) -> Arc<dyn AggregateStore>;

    /// A reader of the store's change feed relaying into `relay`.
    fn feed(&self, relay: Relay, batch_size: usize) -> Box<dyn ChangeFeed>;

    /// Every aggregate stored, earlier runs' included.
    async fn aggregates(&self) -> Result<Vec<AggregateRef>, BoxError>;

    /// One aggregate's state and outbox.
    async fn stored(&self, aggregate: &AggregateRef) -> Result<StoredAggregate, BoxError>;

    /// Writes an outbox record no relay can decode, as a foreign writer might;
    /// `tag` makes it unique.
    async fn write_poison(&self, tag: &str) -> Result<(), BoxError>;

    /// The dead-letter queue that outlives the run beside the store, where the
    /// operator's tools (`status`, `redrive`) read; `None` when the data does
    /// not outlive the run.
    fn lasting_dead_letters(&self) -> Option<Arc<dyn DeadLetterQueue>> {
        None
    }
}

/// The in-memory store and its change log.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    /// The store.
    pub store: MemoryStore,
    /// Where its readers stand.
    pub position: StreamPosition,
}

#[async_trait]
impl Backend for MemoryBackend {
    fn describe(&self) -> String {
        "memory".to_owned()
    }

    fn store(&self) -> Arc<dyn AggregateStore> {
        Arc::new(self.store.clone())
    }

    fn feed(&self, relay: Relay, batch_size: usize) -> Box<dyn ChangeFeed> {
        Box::new(MemoryStream::new(
            self.store.clone(),
            self.position.clone(),
            relay,
            batch_size,
        ))
    }

    async fn aggregates(&self) -> Result<Vec<AggregateRef>, BoxError> {
        Ok(self.store.aggregates())
    }

    async fn stored(&self, aggregate: &AggregateRef) -> Result<StoredAggregate, BoxError> {
        Ok(StoredAggregate {
            aggregate: aggregate.clone(),
            state: self.store.state_of(aggregate),
            outbox: self.store.outbox_of(aggregate),
        })
    }

    async fn write_poison(&self, tag: &str) -> Result<(), BoxError> {
        self.store
            .append_raw_change(serde_json::json!({ ENTITY_TYPE: ENTITY_OUTBOX, "eventId": tag }));
        Ok(())
    }
}

/// A DynamoDB table with its stream, read by the self-hosted stream relay.
#[derive(Clone)]
pub struct DynamoBackend {
    /// The store.
    pub store: DynamoStore,
    /// A client of the same endpoint.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// A Streams client of the same endpoint.
    pub streams: aws_sdk_dynamodbstreams::Client,
    /// The outbox table's stream.
    pub stream_arn: String,
    /// Where it runs, for reports.
    pub description: String,
}

#[async_trait]
impl Backend for DynamoBackend {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn lasting_dead_letters(&self) -> Option<Arc<dyn DeadLetterQueue>> {
        Some(Arc::new(DynamoDeadLetterQueue::new(
            self.dynamodb.clone(),
            &self.store.layout().dead_letter_table,
        )))
    }

    fn store(&self) -> Arc<dyn AggregateStore> {
        Arc::new(self.store.clone())
    }

    fn feed(&self, relay: Relay, batch_size: usize) -> Box<dyn ChangeFeed> {
        let leases = LeaseTable::new(
            self.dynamodb.clone(),
            &self.store.layout().checkpoint_table,
            &self.stream_arn,
        );
        let options = StreamRelayOptions {
            batch_size: i32::try_from(batch_size).unwrap_or(1000).clamp(1, 1000),
            idle_refresh: 3,
            ..StreamRelayOptions::default()
        };
        Box::new(StreamRelay::new(
            self.streams.clone(),
            &self.stream_arn,
            leases,
            relay,
            options,
        ))
    }

    async fn aggregates(&self) -> Result<Vec<AggregateRef>, BoxError> {
        Ok(self.store.aggregates().await?)
    }

    async fn stored(&self, aggregate: &AggregateRef) -> Result<StoredAggregate, BoxError> {
        Ok(StoredAggregate {
            aggregate: aggregate.clone(),
            state: self.store.load(aggregate).await?,
            outbox: self.store.outbox_of(aggregate).await?,
        })
    }

    async fn write_poison(&self, tag: &str) -> Result<(), BoxError> {
        self.dynamodb
            .put_item()
            .table_name(self.store.layout().outbox_table())
            .item(PK, AttributeValue::S(format!("FOREIGN#{tag}")))
            .item(SK, AttributeValue::S("EVENT#1".into()))
            .item(ENTITY_TYPE, AttributeValue::S(ENTITY_OUTBOX.into()))
            .item("eventType", AttributeValue::N("42".into()))
            .send()
            .await?;
        Ok(())
    }
}
