//! A journal of commits for any store: what was asked and whether the store
//! applied it, so the audit can check that no failed commit leaked and no
//! idempotency key was committed twice.
//!
//! It sits directly on the store, inside the fault decorator, so it sees the
//! store's own answer: a commit whose reply is lost afterwards still counts as
//! applied, and a commit refused before it reached the store is not journaled.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use outbox_application::ports::{AggregateStore, StoreError};
use outbox_application::{
    AggregateRef, IdempotencyKey, IdempotencyRecord, StateRecord, WriteLimits, WriteSet,
};

/// One commit as the store answered it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitAttempt {
    /// What was asked.
    pub write: WriteSet,
    /// Whether the store applied it.
    pub applied: bool,
}

/// Wraps a store and journals every commit.
#[derive(Clone)]
pub struct JournaledStore {
    inner: Arc<dyn AggregateStore>,
    attempts: Arc<Mutex<Vec<CommitAttempt>>>,
}

impl JournaledStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn AggregateStore>) -> Self {
        Self {
            inner,
            attempts: Arc::default(),
        }
    }

    /// Every commit so far, oldest first.
    pub fn attempts(&self) -> Vec<CommitAttempt> {
        self.lock().clone()
    }

    /// Forgets the commits journaled so far (a long run audited window by window).
    pub fn forget(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, Vec<CommitAttempt>> {
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl AggregateStore for JournaledStore {
    fn limits(&self) -> WriteLimits {
        self.inner.limits()
    }

    async fn load(&self, aggregate: &AggregateRef) -> Result<Option<StateRecord>, StoreError> {
        self.inner.load(aggregate).await
    }

    async fn find_request(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.inner.find_request(key).await
    }

    async fn commit(&self, write: &WriteSet) -> Result<(), StoreError> {
        let result = self.inner.commit(write).await;
        self.lock().push(CommitAttempt {
            write: write.clone(),
            applied: result.is_ok(),
        });
        result
    }
}
