//! The whole outbox pipeline in one process, on the in-memory adapters:
//! command → atomic commit → change log → relay → bus → queues → consumers.
//!
//! Every hop takes faults from its own [`FaultPlan`](crate::FaultPlan), and the
//! pipeline counts what happened so a run can be reported and audited.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use application::consume::Reaction;
use application::ports::{DeadLetter, DeadLetterPayload, DeadLetterQueue};
use application::reactions::{
    CustomerNotification, Invoicing, OrderTracking, RestaurantNotification, Shipping,
};
use application::{
    CommandError, CommandOutcome, CommandPolicy, CommandService, ConsumeError, ConsumeService,
    Consumed, Relay, RelayReport, RequestMeta, SequenceNumber, Target,
};
use domain::Aggregate;

use crate::bus::{EventPattern, MemoryBus};
use crate::dead_letter::MemoryDeadLetterQueue;
use crate::determinism::{SequentialIds, StepClock};
use crate::fault::FaultPlan;
use crate::inbox::MemoryInbox;
use crate::queue::MemoryQueue;
use crate::store::MemoryStore;
use crate::stream::MemoryStream;

/// A fault to inject into a consumer's next delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerFault {
    /// The consumer records its effect, then dies before deleting the message,
    /// so the queue delivers it again.
    CrashAfterEffect,
}

/// A consumer with its queue and the pattern routing events to it.
#[derive(Clone)]
pub struct Subscriber {
    /// The consume use case.
    pub service: ConsumeService,
    /// The reaction, for audits.
    pub reaction: Arc<dyn Reaction>,
    /// What the bus routes to it.
    pub pattern: EventPattern,
    /// Its queue.
    pub queue: MemoryQueue,
    /// Faults of its next deliveries.
    pub faults: FaultPlan<ConsumerFault>,
}

/// What a pipeline run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Relay invocations.
    pub relay_runs: usize,
    /// Relay invocations that reported a failed record.
    pub relay_retries: usize,
    /// Events the bus accepted, repeats included.
    pub published: usize,
    /// Records and deliveries sent to the dead-letter queue.
    pub dead_lettered: usize,
    /// Effects recorded by consumers.
    pub effects_applied: usize,
    /// Deliveries a consumer recognised as repeats and ignored.
    pub duplicates_suppressed: usize,
    /// Deliveries that failed and were left for redelivery.
    pub consumer_retries: usize,
}

/// The in-memory pipeline. Its parts are public so tests can inject faults and inspect.
pub struct MemoryPipeline {
    /// The aggregate store (journaled).
    pub store: MemoryStore,
    /// The change feed reader.
    pub stream: MemoryStream,
    /// The bus.
    pub bus: MemoryBus,
    /// The dead-letter queue.
    pub dead_letters: MemoryDeadLetterQueue,
    /// The consumers' inbox.
    pub inbox: MemoryInbox,
    /// The command use case.
    pub commands: CommandService,
    /// The relay use case.
    pub relay: Relay,
    /// The consumers of the seed stories.
    pub subscribers: Vec<Subscriber>,
    stats: Mutex<PipelineStats>,
}

impl MemoryPipeline {
    /// Deliveries one consumer takes from its queue at a time.
    pub const RECEIVE_BATCH: usize = 10;

    /// A pipeline with the seed stories' consumers, reading the change log
    /// `batch_size` records at a time.
    pub fn new(batch_size: usize) -> Self {
        let store = MemoryStore::journaled();
        let bus = MemoryBus::new();
        let dead_letters = MemoryDeadLetterQueue::new();
        let inbox = MemoryInbox::new();
        let reactions: [(Arc<dyn Reaction>, EventPattern); 5] = [
            (
                Arc::new(Invoicing),
                EventPattern::new("Repair", &["RepairCompleted"]),
            ),
            (
                Arc::new(CustomerNotification),
                EventPattern::new("Repair", &["RepairCompleted"]),
            ),
            (
                Arc::new(Shipping),
                EventPattern::new("Order", &["OrderPlaced"]),
            ),
            (
                Arc::new(RestaurantNotification),
                EventPattern::new("Order", &["OrderPlaced", "OrderCancelled"]),
            ),
            (Arc::new(OrderTracking), EventPattern::new("Order", &[])),
        ];
        let subscribers = reactions
            .into_iter()
            .map(|(reaction, pattern)| {
                let queue = MemoryQueue::new();
                bus.subscribe(pattern.clone(), queue.clone());
                Subscriber {
                    service: ConsumeService::new(Arc::new(inbox.clone()), reaction.clone()),
                    reaction,
                    pattern,
                    queue,
                    faults: FaultPlan::default(),
                }
            })
            .collect();
        Self {
            stream: MemoryStream::new(store.clone(), batch_size),
            commands: CommandService::new(
                Arc::new(store.clone()),
                Arc::new(StepClock::default()),
                Arc::new(SequentialIds::default()),
                CommandPolicy::default(),
            ),
            relay: Relay::new(Arc::new(bus.clone()), Arc::new(dead_letters.clone())),
            store,
            bus,
            dead_letters,
            inbox,
            subscribers,
            stats: Mutex::default(),
        }
    }

    /// What the pipeline did so far.
    pub fn stats(&self) -> PipelineStats {
        *self.lock()
    }

    /// Executes a command as a well-behaved client does: on a retryable failure it
    /// repeats the request with the same idempotency key, up to `attempts` times.
    ///
    /// # Errors
    /// The last [`CommandError`].
    pub async fn submit<A: Aggregate>(
        &self,
        target: Target,
        command: &A::Command,
        meta: &RequestMeta,
        attempts: u32,
    ) -> Result<CommandOutcome, CommandError<A::Error>> {
        let mut tries = 1;
        loop {
            match self.commands.execute::<A>(target, command, meta).await {
                Err(CommandError::Unavailable(_))
                    if tries < attempts && meta.idempotency_key.is_some() =>
                {
                    tries += 1;
                }
                result => return result,
            }
        }
    }

    /// Delivers the next stream batch to the relay; `None` when the stream is drained.
    pub async fn relay_step(&self) -> Option<RelayReport> {
        let report = self.stream.deliver(&self.relay).await?;
        self.count_relay_run(
            report.published,
            report.dead_lettered,
            report.retry_from.is_some(),
        );
        Some(report)
    }

    /// Counts a run of [`MemoryPipeline::relay`] fed by another change feed (a
    /// DynamoDB stream): what it published and dead-lettered, and whether it
    /// left a record to retry.
    pub fn count_relay_run(&self, published: usize, dead_lettered: usize, retried: bool) {
        let mut stats = self.lock();
        stats.relay_runs += 1;
        stats.published += published;
        stats.dead_lettered += dead_lettered;
        stats.relay_retries += usize::from(retried);
    }

    /// Lets every consumer take one batch from its queue; undeleted deliveries
    /// become visible again afterwards. Returns the number of deliveries handled.
    pub async fn consume_step(&self) -> usize {
        let mut handled = 0;
        for subscriber in &self.subscribers {
            for delivery in subscriber.queue.receive(Self::RECEIVE_BATCH) {
                handled += 1;
                match subscriber.service.consume(&delivery.envelope).await {
                    Ok(consumed) => {
                        self.count(consumed);
                        if subscriber.faults.take() == Some(ConsumerFault::CrashAfterEffect) {
                            break;
                        }
                        subscriber.queue.delete(delivery.receipt);
                    }
                    Err(ConsumeError::Undecodable(error)) => {
                        let letter = DeadLetter {
                            sequence: SequenceNumber::new(delivery.receipt.to_string()),
                            reason: format!("{}: {error}", subscriber.service.name()),
                            attempts: delivery.receive_count,
                            payload: DeadLetterPayload::Event {
                                envelope: delivery.envelope.clone(),
                            },
                        };
                        if self.dead_letters.send(letter).await.is_ok() {
                            self.lock().dead_lettered += 1;
                            subscriber.queue.delete(delivery.receipt);
                        }
                    }
                    Err(ConsumeError::Inbox(_)) => self.lock().consumer_retries += 1,
                }
            }
            subscriber.queue.expire_in_flight();
        }
        handled
    }

    /// Runs relay and consumers until nothing is left to do or `max_rounds` pass.
    /// Returns whether the pipeline came to rest.
    pub async fn settle(&self, max_rounds: usize) -> bool {
        for _ in 0..max_rounds {
            if self.relay_step().await.is_some() {
                continue;
            }
            if self.consume_step().await == 0 {
                return self.is_at_rest();
            }
        }
        self.is_at_rest()
    }

    /// Whether the stream is drained and every queue is empty.
    pub fn is_at_rest(&self) -> bool {
        self.stream.is_drained() && self.subscribers.iter().all(|s| s.queue.is_empty())
    }

    fn count(&self, consumed: Consumed) {
        let mut stats = self.lock();
        match consumed {
            Consumed::Applied => stats.effects_applied += 1,
            Consumed::Duplicate => stats.duplicates_suppressed += 1,
            Consumed::Ignored => {}
        }
    }

    fn lock(&self) -> MutexGuard<'_, PipelineStats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
