//! Store faults for any aggregate store: lost replies, outages and throttling.

use std::sync::Arc;

use async_trait::async_trait;

use outbox_application::ports::{AggregateStore, StoreError};
use outbox_application::{
    AggregateRef, IdempotencyKey, IdempotencyRecord, StateRecord, WriteLimits, WriteSet,
};

use super::{FaultPlan, InjectedFault};

/// A fault to inject into the next commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFault {
    /// Fail with [`StoreError::Unavailable`] before writing anything.
    FailBeforeCommit,
    /// Write everything, then fail with [`StoreError::Unavailable`] as if the
    /// reply was lost: the caller does not hear that it succeeded.
    FailAfterCommit,
    /// Refuse with [`StoreError::Throttled`], writing nothing.
    Throttle,
}

/// Wraps a store and injects [`StoreFault`]s into its commits.
#[derive(Clone)]
pub struct FaultyStore {
    inner: Arc<dyn AggregateStore>,
    faults: FaultPlan<StoreFault>,
}

impl FaultyStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn AggregateStore>) -> Self {
        Self {
            inner,
            faults: FaultPlan::default(),
        }
    }

    /// The faults its next commits suffer.
    pub fn faults(&self) -> &FaultPlan<StoreFault> {
        &self.faults
    }
}

#[async_trait]
impl AggregateStore for FaultyStore {
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
        match self.faults.take() {
            Some(StoreFault::FailBeforeCommit) => Err(StoreError::Unavailable(Box::new(
                InjectedFault("store unavailable before commit"),
            ))),
            Some(StoreFault::Throttle) => Err(StoreError::Throttled(Box::new(InjectedFault(
                "store throttled",
            )))),
            Some(StoreFault::FailAfterCommit) => {
                self.inner.commit(write).await?;
                Err(StoreError::Unavailable(Box::new(InjectedFault(
                    "reply lost after commit",
                ))))
            }
            None => self.inner.commit(write).await,
        }
    }
}
