//! The in-memory event bus: accepts batches entry by entry, logs what it accepted
//! and routes each accepted event to the queues whose EventBridge event pattern
//! matches, like EventBridge rules with SQS targets.
//!
//! Each event is matched as the EventBridge event a rule sees (`source`,
//! `detail-type`, and the envelope as `detail`) by `quamina`, a port of the
//! matcher behind EventBridge-style patterns, so a pattern that routes here
//! routes the same on AWS. Its limits are EventBridge's: 10 entries and less
//! than 256 KiB per call, an entry's size counted as EventBridge counts it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use quamina::Quamina;
use serde_json::{json, Value};

use application::ports::{BatchLimits, EventPublisher, PublishError, PublishOutcome};
use application::{EventEnvelope, EventSources};

use crate::queue::MemoryQueue;

/// What the `Time` field of an EventBridge entry counts for.
const TIME_BYTES: usize = 14;

/// An event pattern the bus cannot use.
#[derive(Debug, thiserror::Error)]
#[error("invalid event pattern {pattern}: {reason}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// The matcher's reason.
    pub reason: String,
}

#[derive(Default)]
struct Routes {
    matcher: Quamina<usize>,
    queues: Vec<MemoryQueue>,
    accepted: Vec<EventEnvelope>,
}

/// The in-memory bus. Clones share the same routes and log.
#[derive(Clone, Default)]
pub struct MemoryBus {
    routes: Arc<Mutex<Routes>>,
    sources: EventSources,
}

impl MemoryBus {
    /// A bus with no subscriptions, publishing each event under its `sources` source.
    pub fn new(sources: EventSources) -> Self {
        Self {
            routes: Arc::default(),
            sources,
        }
    }

    /// Routes events matching the EventBridge event `pattern` to `queue`.
    ///
    /// # Errors
    /// [`PatternError`] when the pattern is not a valid event pattern.
    pub fn subscribe(&self, pattern: &Value, queue: MemoryQueue) -> Result<(), PatternError> {
        let mut routes = self.lock();
        let index = routes.queues.len();
        routes
            .matcher
            .add_pattern(index, &pattern.to_string())
            .map_err(|error| PatternError {
                pattern: pattern.to_string(),
                reason: error.to_string(),
            })?;
        routes.queues.push(queue);
        Ok(())
    }

    /// Every event accepted, in the order accepted (repeats included).
    pub fn accepted(&self) -> Vec<EventEnvelope> {
        self.lock().accepted.clone()
    }

    /// The event a rule sees for `event`.
    fn rule_input(&self, event: &EventEnvelope) -> Value {
        json!({
            "source": self.sources.source_of(&event.aggregate_type),
            "detail-type": event.event_type,
            "detail": event,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl EventPublisher for MemoryBus {
    fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_entries: 10,
            max_batch_bytes: 256 * 1024,
        }
    }

    fn entry_size(&self, event: &EventEnvelope) -> usize {
        let detail = serde_json::to_string(event).map_or(0, |detail| detail.len());
        TIME_BYTES
            + self.sources.source_of(&event.aggregate_type).len()
            + event.event_type.len()
            + detail
    }

    async fn publish(&self, events: &[EventEnvelope]) -> Result<Vec<PublishOutcome>, PublishError> {
        let mut routes = self.lock();
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            let input = self.rule_input(event).to_string();
            let matched = match routes.matcher.matches_for_event(input.as_bytes()) {
                Ok(matched) => matched,
                Err(error) => {
                    outcomes.push(PublishOutcome::Failed {
                        retryable: false,
                        reason: format!("MalformedDetail: {error}"),
                        attempts: 1,
                    });
                    continue;
                }
            };
            routes.accepted.push(event.clone());
            for index in matched {
                if let Some(queue) = routes.queues.get(index) {
                    queue.send(event.clone());
                }
            }
            outcomes.push(PublishOutcome::Published);
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use application::envelope::EventContext;
    use application::{AggregateId, Traceparent};
    use domain::order::{Order, OrderEvent, OrderStatus};
    use domain::Version;
    use uuid::Uuid;

    fn status_changed(version: u64) -> EventEnvelope {
        let context = EventContext {
            occurred_at: time::OffsetDateTime::UNIX_EPOCH,
            correlation_id: "c".into(),
            causation_id: "r".into(),
            traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
        };
        let event = OrderEvent::OrderStatusChanged {
            from: OrderStatus::Accepted,
            to: OrderStatus::Preparing,
        };
        EventEnvelope::wrap::<Order>(
            AggregateId::from_uuid(Uuid::from_u128(3)),
            Version::new(version),
            &event,
            &context,
        )
        .expect("the event encodes")
    }

    #[tokio::test]
    async fn events_are_routed_by_eventbridge_patterns_with_prefix_and_anything_but() {
        let bus = MemoryBus::new(EventSources::default());
        let (by_type, by_prefix, by_exclusion, elsewhere) = (
            MemoryQueue::new(),
            MemoryQueue::new(),
            MemoryQueue::new(),
            MemoryQueue::new(),
        );
        let subscribe = |pattern: Value, queue: &MemoryQueue| {
            bus.subscribe(&pattern, queue.clone())
                .expect("a valid pattern");
        };
        subscribe(
            json!({"source": ["orders.outbox"], "detail-type": ["OrderStatusChanged"]}),
            &by_type,
        );
        subscribe(json!({"source": [{"prefix": "orders."}]}), &by_prefix);
        subscribe(
            json!({"detail": {"aggregateVersion": [{"anything-but": [1]}]}}),
            &by_exclusion,
        );
        subscribe(json!({"source": ["carworkshop.outbox"]}), &elsewhere);
        let outcomes = bus
            .publish(&[status_changed(1), status_changed(2)])
            .await
            .expect("the bus accepts");
        assert_eq!(outcomes, vec![PublishOutcome::Published; 2]);
        assert_eq!(by_type.receive(10).len(), 2);
        assert_eq!(by_prefix.receive(10).len(), 2);
        let excluded = by_exclusion.receive(10);
        assert_eq!(excluded.len(), 1);
        assert_eq!(excluded[0].envelope.aggregate_version, Version::new(2));
        assert!(elsewhere.is_empty());
    }

    #[test]
    fn a_malformed_pattern_is_a_typed_error() {
        let bus = MemoryBus::new(EventSources::default());
        assert!(bus
            .subscribe(&json!({"source": "not-a-list"}), MemoryQueue::new())
            .is_err());
    }
}
