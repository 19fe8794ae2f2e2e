//! The in-memory event bus: accepts batches entry by entry, logs what it accepted
//! and routes each accepted event to the queues whose pattern matches, like
//! EventBridge rules with SQS targets.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use application::ports::{EventPublisher, PublishError, PublishOutcome};
use application::EventEnvelope;

use crate::fault::{FaultPlan, InjectedFault};
use crate::queue::MemoryQueue;

/// A fault to inject into the next publish call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusFault {
    /// Refuse the entries at these positions of the batch.
    Reject {
        /// Positions in the batch.
        entries: HashSet<usize>,
        /// Whether they are refused as retryable (throttling) or for good.
        retryable: bool,
    },
    /// Refuse the whole call as throttled.
    Throttle,
}

/// Which events a subscription receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPattern {
    /// The aggregate type to match.
    pub aggregate_type: String,
    /// The event types to match; empty matches every type.
    pub event_types: Vec<String>,
}

impl EventPattern {
    /// Matches the given event types of an aggregate type (all of them if empty).
    pub fn new(aggregate_type: &str, event_types: &[&str]) -> Self {
        Self {
            aggregate_type: aggregate_type.to_owned(),
            event_types: event_types.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    /// Whether `event` matches.
    pub fn matches(&self, event: &EventEnvelope) -> bool {
        event.aggregate_type == self.aggregate_type
            && (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
    }
}

#[derive(Debug, Default)]
struct Routes {
    subscriptions: Vec<(EventPattern, MemoryQueue)>,
    accepted: Vec<EventEnvelope>,
}

/// The in-memory bus. Clones share the same routes and log.
#[derive(Debug, Clone, Default)]
pub struct MemoryBus {
    routes: Arc<Mutex<Routes>>,
    faults: FaultPlan<BusFault>,
}

impl MemoryBus {
    /// A bus with no subscriptions.
    pub fn new() -> Self {
        Self::default()
    }

    /// The faults its next publish calls suffer.
    pub fn faults(&self) -> &FaultPlan<BusFault> {
        &self.faults
    }

    /// Routes events matching `pattern` to `queue`.
    pub fn subscribe(&self, pattern: EventPattern, queue: MemoryQueue) {
        self.lock().subscriptions.push((pattern, queue));
    }

    /// Every event accepted, in the order accepted (repeats included).
    pub fn accepted(&self) -> Vec<EventEnvelope> {
        self.lock().accepted.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl EventPublisher for MemoryBus {
    async fn publish(&self, events: &[EventEnvelope]) -> Result<Vec<PublishOutcome>, PublishError> {
        let (rejected, retryable) = match self.faults.take() {
            Some(BusFault::Throttle) => {
                return Err(PublishError::Throttled(Box::new(InjectedFault(
                    "bus throttled",
                ))))
            }
            Some(BusFault::Reject { entries, retryable }) => (entries, retryable),
            None => (HashSet::new(), true),
        };
        let mut routes = self.lock();
        let mut outcomes = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            if rejected.contains(&index) {
                outcomes.push(PublishOutcome::Failed {
                    retryable,
                    reason: if retryable {
                        "ThrottlingException"
                    } else {
                        "ValidationException"
                    }
                    .to_owned(),
                    attempts: 1,
                });
                continue;
            }
            routes.accepted.push(event.clone());
            for (pattern, queue) in &routes.subscriptions {
                if pattern.matches(event) {
                    queue.send(event.clone());
                }
            }
            outcomes.push(PublishOutcome::Published);
        }
        Ok(outcomes)
    }
}
