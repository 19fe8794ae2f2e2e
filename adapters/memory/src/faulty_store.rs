//! Store faults for any aggregate store: a decorator that fails commits as its
//! [`FaultPlan`] says, so a real store (DynamoDB on dynoxide) suffers the same
//! lost replies and throttling as the in-memory one.

use std::sync::Arc;

use async_trait::async_trait;

use application::ports::{AggregateStore, StoreError};
use application::{AggregateRef, IdempotencyKey, IdempotencyRecord, StateRecord, WriteSet};

use crate::fault::{FaultPlan, InjectedFault};
use crate::store::StoreFault;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use application::envelope::EventContext;
    use application::{AggregateId, Traceparent};
    use domain::repair::{Repair, RepairCommand};
    use domain::{decide, Text, Version};
    use uuid::Uuid;

    fn opening_write() -> WriteSet {
        let text = |raw: &str| Text::parse("t", raw).unwrap();
        let command = RepairCommand::OpenRepair {
            vehicle: text("car"),
            customer: text("Ada"),
            description: text("brakes"),
        };
        let decision = decide::<Repair>(&None, Version::INITIAL, &command).unwrap();
        let context = EventContext {
            occurred_at: time::OffsetDateTime::UNIX_EPOCH,
            correlation_id: "c".into(),
            causation_id: "r".into(),
            traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
        };
        let id = AggregateId::from_uuid(Uuid::from_u128(3));
        WriteSet::from_decision(id, &decision, &context, Uuid::from_u128(4), None).unwrap()
    }

    #[tokio::test]
    async fn a_lost_reply_still_commits_and_a_refusal_writes_nothing() {
        let inner = MemoryStore::journaled();
        let store = FaultyStore::new(Arc::new(inner.clone()));
        store.faults().inject(StoreFault::FailBeforeCommit);
        store.faults().inject(StoreFault::FailAfterCommit);
        let write = opening_write();
        assert!(store.commit(&write).await.unwrap_err().is_retryable());
        assert!(inner.state_of(&write.aggregate).is_none());
        assert!(store.commit(&write).await.unwrap_err().is_retryable());
        assert_eq!(inner.state_of(&write.aggregate), Some(write.state.clone()));
    }
}
