//! The local bus: the in-memory bus routing to one queue per consumer by the
//! reactions' declared subscriptions, as EventBridge rules would, and each
//! consumer behind the DynamoDB inbox, so an effect is applied once across
//! restarts, replays and redrives.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use outbox_application::ports::{
    BatchLimits, DeadLetterQueue, EventPublisher, Inbox, PublishError, PublishOutcome, SystemClock,
};
use outbox_application::{
    ConsumeService, Consumed, Delivery, DeliveryContent, EventEnvelope, Service,
};
use outbox_memory::{MemoryBus, MemoryQueue, PatternError};
use tracing::{info, warn};

/// Deliveries a consumer takes from its queue at a time.
const RECEIVE_BATCH: usize = 10;
/// The pause before a delivery that failed is tried again.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Steps with failed deliveries a [`DeliveringBus`] drain takes (with
/// [`RETRY_PAUSE`] between them, about 5 s) before its publish fails.
pub const DRAIN_ATTEMPTS: usize = 50;

/// What the consumers did in one drain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Effects recorded.
    pub applied: usize,
    /// External calls completed.
    pub called: usize,
    /// Repeats recognised and ignored.
    pub duplicates: usize,
    /// Events of no interest, marked handled.
    pub ignored: usize,
    /// Deliveries dead-lettered.
    pub dead_lettered: usize,
    /// Deliveries held behind a parked aggregate's missing version.
    pub held: usize,
    /// Held events applied once the version their aggregate missed came.
    pub released: usize,
    /// Deliveries that failed and wait in their queue.
    pub failed: usize,
}

impl std::ops::AddAssign for Drained {
    fn add_assign(&mut self, step: Self) {
        self.applied += step.applied;
        self.called += step.called;
        self.duplicates += step.duplicates;
        self.ignored += step.ignored;
        self.dead_lettered += step.dead_lettered;
        self.held += step.held;
        self.released += step.released;
        self.failed += step.failed;
    }
}

/// The bus and the consumers behind it.
#[derive(Clone)]
pub struct LocalBus {
    bus: MemoryBus,
    consumers: Vec<(ConsumeService, MemoryQueue)>,
}

impl LocalBus {
    /// `service`'s consumers behind a classic bus (or a Custom Event Bus when
    /// `custom`), each with `inbox` and `dead_letters`.
    ///
    /// # Errors
    /// [`PatternError`] when a subscription's pattern is invalid.
    pub fn new(
        service: &Service,
        inbox: Arc<dyn Inbox>,
        dead_letters: Arc<dyn DeadLetterQueue>,
        custom: bool,
    ) -> Result<Self, PatternError> {
        let sources = service.sources();
        let bus = if custom {
            MemoryBus::custom(sources.clone(), Arc::new(SystemClock))
        } else {
            MemoryBus::new(sources.clone())
        };
        let mut consumers = Vec::new();
        for reaction in service.consumers().iter().cloned() {
            let queue = MemoryQueue::new();
            bus.subscribe(
                &reaction.subscription().event_pattern(&sources),
                queue.clone(),
            )?;
            let service =
                ConsumeService::new(Arc::clone(&inbox), reaction, Arc::clone(&dead_letters));
            consumers.push((service, queue));
        }
        Ok(Self { bus, consumers })
    }

    /// The consumers.
    fn consumers(&self) -> impl Iterator<Item = &ConsumeService> {
        self.consumers.iter().map(|(service, _)| service)
    }

    /// Whether every queue is empty.
    fn is_idle(&self) -> bool {
        self.consumers.iter().all(|(_, queue)| queue.is_empty())
    }

    /// Delivers one batch of each queue; a failed delivery comes again on the next step.
    async fn step(&self) -> Drained {
        let mut drained = Drained::default();
        for (service, queue) in &self.consumers {
            for message in queue.receive(RECEIVE_BATCH) {
                let event_id = message.envelope.event_id;
                let delivery = Delivery {
                    message_id: message.message_id,
                    receive_count: message.receive_count,
                    first_received_at: Some(message.first_received_at),
                    content: DeliveryContent::Event(message.envelope),
                };
                match service.consume(delivery).await {
                    Ok(consumed) => {
                        queue.delete(message.receipt);
                        match consumed {
                            Consumed::Applied => drained.applied += 1,
                            Consumed::Released { released } => {
                                drained.applied += 1;
                                drained.released += released;
                            }
                            Consumed::Called => drained.called += 1,
                            Consumed::Duplicate => drained.duplicates += 1,
                            Consumed::Ignored => drained.ignored += 1,
                            Consumed::DeadLettered => drained.dead_lettered += 1,
                            Consumed::Parked | Consumed::Held => drained.held += 1,
                        }
                    }
                    Err(error) => {
                        drained.failed += 1;
                        warn!(consumer = service.name(), %event_id, %error, "delivery failed; it comes again");
                    }
                }
            }
            queue.expire_in_flight();
        }
        drained
    }

    /// Delivers until every queue is empty, pausing after failed deliveries;
    /// gives up after `attempts` steps that left something behind.
    async fn drain(&self, attempts: usize) -> Drained {
        let mut total = Drained::default();
        let mut left = attempts;
        while !self.is_idle() && left > 0 {
            let step = self.step().await;
            total += step;
            if step.failed > 0 {
                left -= 1;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
        total
    }
}

/// The local bus as a relay, a replay or a redrive publishes to it: each
/// accepted event is logged as published (so `serve`'s log shows each event's
/// way: committed → published → applied by each consumer), and a publish
/// returns only once the consumers have handled every delivery durably
/// (applied, recognised as a repeat, held behind a gap, or dead-lettered).
/// Whoever publishes therefore moves its position (a stream checkpoint, a
/// replay position, a deleted letter) only past events the consumers have: a
/// process killed at any instant loses no delivery, and the inboxes drop what
/// comes twice. Deliveries still failing after [`DRAIN_ATTEMPTS`] steps fail
/// the publish as unavailable, so the position stays before them and they
/// come again. One publish at a time drains.
#[derive(Clone)]
pub struct DeliveringBus {
    local: LocalBus,
    draining: Arc<tokio::sync::Mutex<()>>,
    drained: Arc<Mutex<Drained>>,
}

impl DeliveringBus {
    /// Publishes to `local`'s bus and drains its consumers, giving up a drain
    /// after [`DRAIN_ATTEMPTS`] steps with failed deliveries.
    pub fn new(local: LocalBus) -> Self {
        Self {
            local,
            draining: Arc::new(tokio::sync::Mutex::new(())),
            drained: Arc::default(),
        }
    }

    /// What the consumers did with everything published so far.
    pub fn drained(&self) -> Drained {
        *self.drained.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The consumers, for redrive.
    pub fn consumers(&self) -> impl Iterator<Item = &ConsumeService> {
        self.local.consumers()
    }

    /// Drains the consumers now (what a failed publish left behind); whether
    /// every queue was left empty, read while no other drain runs.
    pub async fn drain(&self) -> bool {
        let _draining = self.draining.lock().await;
        let step = self.local.drain(DRAIN_ATTEMPTS).await;
        *self.drained.lock().unwrap_or_else(PoisonError::into_inner) += step;
        self.local.is_idle()
    }
}

#[async_trait::async_trait]
impl EventPublisher for DeliveringBus {
    fn limits(&self) -> BatchLimits {
        self.local.bus.limits()
    }

    fn entry_size(&self, event: &EventEnvelope) -> usize {
        self.local.bus.entry_size(event)
    }

    async fn publish(&self, events: &[EventEnvelope]) -> Result<Vec<PublishOutcome>, PublishError> {
        let outcomes = self.local.bus.publish(events).await?;
        for (event, outcome) in events.iter().zip(&outcomes) {
            if *outcome == PublishOutcome::Published {
                info!(event_id = %event.event_id, event_type = %event.event_type, aggregate = %event.aggregate(), "published");
            }
        }
        if self.drain().await {
            Ok(outcomes)
        } else {
            Err(PublishError::Unavailable(
                "deliveries still fail after their retries; the position stays before them".into(),
            ))
        }
    }
}
