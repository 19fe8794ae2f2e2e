//! The in-memory aggregate store: atomic commits and an ordered change log.
//!
//! A commit checks every condition first (expected version, new event ids, new
//! idempotency key) and then applies everything under one lock, so it is all or
//! nothing. Each applied outbox event is appended to the change log, which
//! [`MemoryStream`](crate::MemoryStream) reads like a DynamoDB stream. It reports
//! DynamoDB's transaction limits, which the command use case checks.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use serde_json::Value;

use outbox_application::ports::{AggregateStore, StoreError};
use outbox_application::{
    AggregateRef, EventEnvelope, IdempotencyKey, IdempotencyRecord, StateRecord, WriteLimits,
    WriteSet,
};
use outbox_domain::Version;

#[derive(Debug, Default)]
struct Tables {
    states: BTreeMap<AggregateRef, StateRecord>,
    outbox: BTreeMap<(AggregateRef, Version), EventEnvelope>,
    requests: HashMap<IdempotencyKey, IdempotencyRecord>,
    changes: Vec<Value>,
}

/// The in-memory store. Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    tables: Arc<Mutex<Tables>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every aggregate with a state.
    pub fn aggregates(&self) -> Vec<AggregateRef> {
        self.lock().states.keys().cloned().collect()
    }

    /// The stored state of `aggregate`.
    pub fn state_of(&self, aggregate: &AggregateRef) -> Option<StateRecord> {
        self.lock().states.get(aggregate).cloned()
    }

    /// The outbox of `aggregate`, in version order.
    pub fn outbox_of(&self, aggregate: &AggregateRef) -> Vec<EventEnvelope> {
        self.lock()
            .outbox
            .range((aggregate.clone(), Version::INITIAL)..)
            .take_while(|((owner, _), _)| owner == aggregate)
            .map(|(_, envelope)| envelope.clone())
            .collect()
    }

    /// Every outbox event, ordered by aggregate and version.
    pub fn outbox(&self) -> Vec<EventEnvelope> {
        self.lock().outbox.values().cloned().collect()
    }

    /// The change log from `from` on (0-based), as raw item images.
    pub fn changes(&self, from: usize, max: usize) -> Vec<(usize, Value)> {
        let tables = self.lock();
        tables
            .changes
            .iter()
            .enumerate()
            .skip(from)
            .take(max)
            .map(|(index, image)| (index, image.clone()))
            .collect()
    }

    /// The number of records in the change log.
    pub fn change_count(&self) -> usize {
        self.lock().changes.len()
    }

    /// Appends a raw image to the change log, as a foreign writer of a malformed
    /// outbox item would; the stream turns it into a poison record.
    pub fn append_raw_change(&self, image: Value) {
        self.lock().changes.push(image);
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Tables {
    /// Checks every condition of `write`; nothing changes.
    fn check(&self, write: &WriteSet) -> Result<(), StoreError> {
        let current = self
            .states
            .get(&write.aggregate)
            .map_or(Version::INITIAL, |state| state.version);
        if current != write.expected_version {
            return Err(StoreError::VersionConflict {
                aggregate: write.aggregate.clone(),
                expected: write.expected_version,
                actual: Some(current),
            });
        }
        if let Some(request) = &write.request {
            if self.requests.contains_key(&request.key) {
                return Err(StoreError::DuplicateRequest(request.key.clone()));
            }
        }
        let taken = write.outbox.iter().any(|e| {
            self.outbox
                .contains_key(&(write.aggregate.clone(), e.aggregate_version))
        });
        if taken {
            return Err(StoreError::DuplicateEvent(write.aggregate.clone()));
        }
        Ok(())
    }

    /// Applies a checked `write`.
    fn apply(&mut self, write: &WriteSet) -> Result<(), StoreError> {
        let images = write
            .outbox
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| StoreError::Failed(error.into()))?;
        self.states
            .insert(write.aggregate.clone(), write.state.clone());
        for envelope in &write.outbox {
            self.outbox.insert(
                (write.aggregate.clone(), envelope.aggregate_version),
                envelope.clone(),
            );
        }
        if let Some(request) = &write.request {
            self.requests.insert(request.key.clone(), request.clone());
        }
        self.changes.extend(images);
        Ok(())
    }
}

#[async_trait]
impl AggregateStore for MemoryStore {
    fn limits(&self) -> WriteLimits {
        WriteLimits::default()
    }

    async fn load(&self, aggregate: &AggregateRef) -> Result<Option<StateRecord>, StoreError> {
        Ok(self.lock().states.get(aggregate).cloned())
    }

    async fn find_request(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.lock().requests.get(key).cloned())
    }

    async fn commit(&self, write: &WriteSet) -> Result<(), StoreError> {
        let mut tables = self.lock();
        tables.check(write)?;
        tables.apply(write)
    }
}
