//! Inbox faults for any inbox: an outage, and a consumer that dies right after
//! its effect was written, before the message was acknowledged.

use std::sync::Arc;

use async_trait::async_trait;

use application::ports::{Effect, Inbox, InboxError, InboxOutcome};
use application::EventId;

use super::{FaultPlan, InjectedFault};

/// A fault to inject into the next `apply_once`.
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
}
