//! Inbox faults for any inbox: an outage, and a consumer that dies right after
//! its effect (or its ordered position, or an external effect's completed
//! mark) was written, before the message was acknowledged. An outage of the
//! completed mark is a consumer that died between its call and its mark.

use std::sync::Arc;

use async_trait::async_trait;

use outbox_application::ports::{
    Claim, ClaimOutcome, CompleteOutcome, Completion, Effect, Inbox, InboxError, InboxOutcome,
    ParkedAggregate, Sequence, SequenceOutcome, SequenceWrite,
};
use outbox_application::{AggregateRef, EventEnvelope, EventId};
use outbox_domain::Version;

use super::{FaultPlan, InjectedFault};

/// A fault to inject into the next `apply_once`, `complete` or `write_sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxFault {
    /// Fail before writing anything.
    Unavailable,
    /// Write the effect and the mark, then fail as if the consumer died: the
    /// message is delivered again.
    CrashAfterApply,
}

/// Wraps an inbox and injects [`InboxFault`]s into its writes.
#[derive(Clone)]
pub struct FaultyInbox {
    inner: Arc<dyn Inbox>,
    faults: FaultPlan<InboxFault>,
}

impl FaultyInbox {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Inbox>) -> Self {
        Self {
            inner,
            faults: FaultPlan::default(),
        }
    }

    /// The faults its next writes suffer.
    pub fn faults(&self) -> &FaultPlan<InboxFault> {
        &self.faults
    }
}

#[async_trait]
impl Inbox for FaultyInbox {
    async fn processed(&self, consumer: &str, event_id: EventId) -> Result<bool, InboxError> {
        self.inner.processed(consumer, event_id).await
    }

    async fn apply_once(
        &self,
        consumer: &str,
        event_id: EventId,
        effect: Option<Effect>,
    ) -> Result<InboxOutcome, InboxError> {
        match self.faults.take() {
            Some(InboxFault::Unavailable) => Err(InboxError::Unavailable(Box::new(InjectedFault(
                "inbox unavailable",
            )))),
            Some(InboxFault::CrashAfterApply) => {
                self.inner.apply_once(consumer, event_id, effect).await?;
                Err(InboxError::Unavailable(Box::new(InjectedFault(
                    "the consumer died after its effect",
                ))))
            }
            None => self.inner.apply_once(consumer, event_id, effect).await,
        }
    }

    async fn claim(
        &self,
        consumer: &str,
        event_id: EventId,
        claim: &Claim,
    ) -> Result<ClaimOutcome, InboxError> {
        self.inner.claim(consumer, event_id, claim).await
    }

    async fn complete(
        &self,
        consumer: &str,
        event_id: EventId,
        token: &str,
        completion: Completion,
    ) -> Result<CompleteOutcome, InboxError> {
        match self.faults.take() {
            Some(InboxFault::Unavailable) => Err(InboxError::Unavailable(Box::new(InjectedFault(
                "the consumer died between its call and its mark",
            )))),
            Some(InboxFault::CrashAfterApply) => {
                self.inner
                    .complete(consumer, event_id, token, completion)
                    .await?;
                Err(InboxError::Unavailable(Box::new(InjectedFault(
                    "the consumer died after its mark",
                ))))
            }
            None => {
                self.inner
                    .complete(consumer, event_id, token, completion)
                    .await
            }
        }
    }

    async fn release(
        &self,
        consumer: &str,
        event_id: EventId,
        token: &str,
    ) -> Result<(), InboxError> {
        self.inner.release(consumer, event_id, token).await
    }

    async fn count_duplicate(&self, consumer: &str) -> Result<(), InboxError> {
        self.inner.count_duplicate(consumer).await
    }

    async fn sequence(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
    ) -> Result<Sequence, InboxError> {
        self.inner.sequence(consumer, aggregate).await
    }

    async fn write_sequence(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
        revision: u64,
        write: SequenceWrite,
    ) -> Result<SequenceOutcome, InboxError> {
        match self.faults.take() {
            Some(InboxFault::Unavailable) => Err(InboxError::Unavailable(Box::new(InjectedFault(
                "inbox unavailable",
            )))),
            Some(InboxFault::CrashAfterApply) => {
                self.inner
                    .write_sequence(consumer, aggregate, revision, write)
                    .await?;
                Err(InboxError::Unavailable(Box::new(InjectedFault(
                    "the consumer died after its effect",
                ))))
            }
            None => {
                self.inner
                    .write_sequence(consumer, aggregate, revision, write)
                    .await
            }
        }
    }

    async fn held(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
        version: Version,
    ) -> Result<Option<EventEnvelope>, InboxError> {
        self.inner.held(consumer, aggregate, version).await
    }

    async fn parked(&self) -> Result<Vec<ParkedAggregate>, InboxError> {
        self.inner.parked().await
    }

    async fn parked_count(&self, consumer: &str) -> Result<u64, InboxError> {
        self.inner.parked_count(consumer).await
    }
}
