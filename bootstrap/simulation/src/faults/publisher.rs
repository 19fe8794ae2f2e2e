//! Bus faults for any publisher: throttling, refused entries, a relay that dies
//! right after publishing, a bus that delivers a batch twice, and (to prove the
//! audit catches it) an adapter that loses entries while reporting them published.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;

use outbox_application::ports::{BatchLimits, EventPublisher, PublishError, PublishOutcome};
use outbox_application::EventEnvelope;

use super::{FaultPlan, InjectedFault};

/// A fault to inject into the next publish call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublisherFault {
    /// Refuse the whole call as throttled.
    Throttle,
    /// Refuse the entries at these positions of the batch (a position past its
    /// end means its last entry); the rest go out.
    Reject {
        /// Positions in the batch.
        entries: HashSet<usize>,
        /// Whether they are refused as retryable (throttling) or for good.
        retryable: bool,
    },
    /// Publish the first half of the batch (rounded up), then fail as if the
    /// relay died mid-call: the batch is relayed again from its first record.
    CrashMidBatch,
    /// Publish the batch twice, as an at-least-once bus may: every subscriber
    /// receives each event twice.
    Duplicate,
    /// A broken adapter, not a fault of the bus: report every entry of the
    /// call published and send none. The audit must catch it; the property
    /// tests inject it only to prove that.
    LoseSilently,
}

/// Wraps a publisher and injects [`PublisherFault`]s into its calls.
#[derive(Clone)]
pub struct FaultyPublisher {
    inner: Arc<dyn EventPublisher>,
    faults: FaultPlan<PublisherFault>,
}

impl FaultyPublisher {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn EventPublisher>) -> Self {
        Self {
            inner,
            faults: FaultPlan::default(),
        }
    }

    /// The faults its next calls suffer.
    pub fn faults(&self) -> &FaultPlan<PublisherFault> {
        &self.faults
    }
}

#[async_trait]
impl EventPublisher for FaultyPublisher {
    fn limits(&self) -> BatchLimits {
        self.inner.limits()
    }

    fn entry_size(&self, event: &EventEnvelope) -> usize {
        self.inner.entry_size(event)
    }

    async fn publish(&self, events: &[EventEnvelope]) -> Result<Vec<PublishOutcome>, PublishError> {
        match self.faults.take() {
            None => self.inner.publish(events).await,
            Some(PublisherFault::Throttle) => Err(PublishError::Throttled(Box::new(
                InjectedFault("bus throttled"),
            ))),
            Some(PublisherFault::CrashMidBatch) => {
                self.inner
                    .publish(&events[..events.len().div_ceil(2)])
                    .await?;
                Err(PublishError::Unavailable(Box::new(InjectedFault(
                    "the relay died after publishing half its batch",
                ))))
            }
            Some(PublisherFault::LoseSilently) => Ok(vec![PublishOutcome::Published; events.len()]),
            Some(PublisherFault::Duplicate) => {
                let outcomes = self.inner.publish(events).await?;
                self.inner.publish(events).await?;
                Ok(outcomes)
            }
            Some(PublisherFault::Reject { entries, retryable }) => {
                let last = events.len().saturating_sub(1);
                let entries: HashSet<usize> = entries.iter().map(|p| (*p).min(last)).collect();
                let kept: Vec<EventEnvelope> = events
                    .iter()
                    .enumerate()
                    .filter(|(index, _)| !entries.contains(index))
                    .map(|(_, event)| event.clone())
                    .collect();
                let mut sent = if kept.is_empty() {
                    Vec::new().into_iter()
                } else {
                    self.inner.publish(&kept).await?.into_iter()
                };
                let reason = if retryable {
                    "ThrottlingException: injected"
                } else {
                    "MalformedDetail: injected"
                };
                Ok((0..events.len())
                    .map(|index| match entries.contains(&index) {
                        true => PublishOutcome::Failed {
                            retryable,
                            reason: reason.to_owned(),
                            attempts: 1,
                        },
                        false => sent.next().unwrap_or(PublishOutcome::Failed {
                            retryable: true,
                            reason: "no outcome".to_owned(),
                            attempts: 1,
                        }),
                    })
                    .collect())
            }
        }
    }
}
