//! The in-memory event bus: accepts batches entry by entry, logs what it accepted
//! and routes each accepted event to the queues whose EventBridge event pattern
//! matches, like EventBridge rules with SQS targets.
//!
//! Each event is matched as the EventBridge event a rule sees (`source`,
//! `detail-type`, and the envelope as `detail`) by `quamina`, a port of the
//! matcher behind EventBridge-style patterns, so a pattern that routes here
//! routes the same on AWS.
//!
//! It behaves like one of two buses, reporting the limits the real one's
//! publisher reports. [`MemoryBus::new`] is a classic EventBridge bus
//! ([`BatchLimits::CLASSIC_EVENT_BUS`]), an entry's size counted as EventBridge
//! counts it, no order promised, every publish delivered. [`MemoryBus::custom`]
//! is a Custom Event Bus ([`BatchLimits::CUSTOM_EVENT_BUS`]), order kept per
//! aggregate (the event group), and an event published again within 5 minutes
//! of its first acceptance is deduplicated: reported published, delivered to no
//! one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use quamina::Quamina;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use outbox_application::ports::{
    BatchLimits, BusOrder, Clock, EventPublisher, PublishError, PublishOutcome, SystemClock,
};
use outbox_application::{EventEnvelope, EventId, EventSources};

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

/// How long a Custom Event Bus drops a repeated `DeduplicationId`.
pub const DEDUPLICATION_WINDOW: Duration = Duration::minutes(5);

/// An event the bus accepted, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Acceptance {
    /// The event.
    pub event: EventEnvelope,
    /// When the bus accepted it.
    pub at: OffsetDateTime,
}

#[derive(Default)]
struct Routes {
    matcher: Quamina<usize>,
    queues: Vec<MemoryQueue>,
    accepted: Vec<Acceptance>,
    deduplicated: Vec<EventEnvelope>,
    first_accepted: HashMap<EventId, OffsetDateTime>,
}

/// The in-memory bus. Clones share the same routes and log.
#[derive(Clone)]
pub struct MemoryBus {
    routes: Arc<Mutex<Routes>>,
    sources: EventSources,
    clock: Arc<dyn Clock>,
    custom: bool,
    deduplication_window: Duration,
}

impl MemoryBus {
    /// A classic bus with no subscriptions, publishing each event under its
    /// `sources` source.
    pub fn new(sources: EventSources) -> Self {
        Self {
            routes: Arc::default(),
            sources,
            clock: Arc::new(SystemClock),
            custom: false,
            deduplication_window: Duration::ZERO,
        }
    }

    /// A Custom Event Bus with no subscriptions: order per aggregate, and
    /// deduplication by event id for [`DEDUPLICATION_WINDOW`] on `clock`.
    pub fn custom(sources: EventSources, clock: Arc<dyn Clock>) -> Self {
        Self {
            routes: Arc::default(),
            sources,
            clock,
            custom: true,
            deduplication_window: DEDUPLICATION_WINDOW,
        }
    }

    /// The same Custom Event Bus dropping repeats for `window` instead (zero:
    /// never), to see what a shorter window lets through.
    #[must_use]
    pub fn with_deduplication_window(mut self, window: Duration) -> Self {
        self.deduplication_window = window;
        self
    }

    /// The order the bus keeps and how long it drops a repeated event id.
    pub fn promise(&self) -> (BusOrder, Duration) {
        (self.limits().order, self.deduplication_window)
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
        self.lock()
            .accepted
            .iter()
            .map(|acceptance| acceptance.event.clone())
            .collect()
    }

    /// Every acceptance, in order, with its time.
    pub fn acceptances(&self) -> Vec<Acceptance> {
        self.lock().accepted.clone()
    }

    /// Forgets the acceptances logged so far, and the first acceptances past
    /// the deduplication window (a long run audited window by window); what
    /// the bus would still deduplicate stays.
    pub fn forget(&self) {
        let now = self.clock.now();
        let window = self.deduplication_window;
        let mut routes = self.lock();
        routes.accepted.clear();
        routes.deduplicated.clear();
        routes.first_accepted.retain(|_, at| now - *at < window);
    }

    /// Every publish a Custom Event Bus dropped as a duplicate, in order.
    pub fn deduplicated(&self) -> Vec<EventEnvelope> {
        self.lock().deduplicated.clone()
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
        if self.custom {
            BatchLimits::CUSTOM_EVENT_BUS
        } else {
            BatchLimits::CLASSIC_EVENT_BUS
        }
    }

    fn entry_size(&self, event: &EventEnvelope) -> usize {
        let detail = event.json_len();
        TIME_BYTES
            + self.sources.source_of(&event.aggregate_type).len()
            + event.event_type.len()
            + detail
    }

    async fn publish(&self, events: &[EventEnvelope]) -> Result<Vec<PublishOutcome>, PublishError> {
        let mut routes = self.lock();
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            let now = self.clock.now();
            let repeated = routes
                .first_accepted
                .get(&event.event_id)
                .is_some_and(|first| now - *first < self.deduplication_window);
            if repeated {
                routes.deduplicated.push(event.clone());
                outcomes.push(PublishOutcome::Published);
                continue;
            }
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
            if !repeated {
                routes.first_accepted.insert(event.event_id, now);
            }
            routes.accepted.push(Acceptance {
                event: event.clone(),
                at: now,
            });
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
    use outbox_application::envelope::EventContext;
    use outbox_application::{AggregateId, Traceparent};
    use outbox_domain::Version;
    use outbox_seeds_domain::order::{Order, OrderEvent, OrderStatus};
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
        let bus =
            MemoryBus::new(outbox_seeds::service(&crate::MemoryOutside::new().ports()).sources());
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
        let bus =
            MemoryBus::new(outbox_seeds::service(&crate::MemoryOutside::new().ports()).sources());
        assert!(bus
            .subscribe(&json!({"source": "not-a-list"}), MemoryQueue::new())
            .is_err());
    }

    /// A clock the test sets.
    #[derive(Default)]
    struct SetClock(Mutex<Option<OffsetDateTime>>);

    impl Clock for SetClock {
        fn now(&self) -> OffsetDateTime {
            self.0.lock().unwrap().unwrap_or(OffsetDateTime::UNIX_EPOCH)
        }
    }

    #[tokio::test]
    async fn a_custom_bus_drops_a_repeat_within_five_minutes_and_delivers_it_after() {
        let clock = Arc::new(SetClock::default());
        let bus = MemoryBus::custom(
            outbox_seeds::service(&crate::MemoryOutside::new().ports()).sources(),
            clock.clone(),
        );
        let queue = MemoryQueue::new();
        bus.subscribe(&json!({"source": ["orders.outbox"]}), queue.clone())
            .expect("a valid pattern");
        let event = status_changed(1);
        let at = |seconds: i64| {
            *clock.0.lock().unwrap() =
                Some(OffsetDateTime::UNIX_EPOCH + Duration::seconds(seconds));
        };
        for seconds in [0, 1, 299] {
            at(seconds);
            let outcomes = bus.publish(std::slice::from_ref(&event)).await.unwrap();
            assert_eq!(
                outcomes,
                vec![PublishOutcome::Published],
                "a repeat counts as published"
            );
        }
        assert_eq!(queue.receive(10).len(), 1);
        assert_eq!(bus.deduplicated().len(), 2);
        at(300);
        bus.publish(std::slice::from_ref(&event)).await.unwrap();
        assert_eq!(queue.receive(10).len(), 1, "the window is over");
        assert_eq!(bus.acceptances().len(), 2);
        assert_eq!(bus.limits().order, BusOrder::PerAggregate);
        assert_eq!(bus.limits().max_entries, 100);
    }

    #[tokio::test]
    async fn a_classic_bus_delivers_every_repeat_and_promises_no_order() {
        let bus =
            MemoryBus::new(outbox_seeds::service(&crate::MemoryOutside::new().ports()).sources());
        let queue = MemoryQueue::new();
        bus.subscribe(&json!({"source": ["orders.outbox"]}), queue.clone())
            .expect("a valid pattern");
        let event = status_changed(1);
        bus.publish(&[event.clone(), event]).await.unwrap();
        assert_eq!(queue.receive(10).len(), 2);
        assert!(bus.deduplicated().is_empty());
        assert_eq!(bus.promise(), (BusOrder::Unordered, Duration::ZERO));
    }
}
