//! The whole outbox pipeline in one process, over any [`Backend`]:
//! command → atomic commit → change feed → relay → bus → queues → consumers.
//!
//! Every port is wrapped in its fault decorator, the store also in a journal,
//! so a test or the local program can inject faults at every hop and audit the
//! result. The bus routes to the consumers' queues by each reaction's declared
//! subscription, as EventBridge rules would.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use outbox_application::consume::DEFAULT_CLAIM_LEASE;
use outbox_application::ports::{
    ChangeFeed, DeadLetter, DeadLetterError, DeadLetterPayload, DeadLetterQueue, FeedReport,
};
use outbox_application::{
    AggregateRef, AnyCommand, AnyRejection, BoxError, CommandError, CommandOutcome, CommandPolicy,
    CommandService, ConsumeError, ConsumeService, Consumed, Delivery, DeliveryContent, EventId,
    Reaction, Relay, RequestMeta, Service, Target,
};
use outbox_domain::Aggregate;
use outbox_memory::{
    MemoryBus, MemoryDeadLetterQueue, MemoryInbox, MemoryQueue, PatternError, SequentialIds,
    StepClock,
};

use crate::audit::{BusPromise, CompletedCall, ConsumerRecord, Observation};
use crate::backend::Backend;
use crate::faults::{FaultyDeadLetters, FaultyInbox, FaultyPublisher, FaultyStore};
use crate::journal::JournaledStore;

/// A consumer with its queue and its faulty view of the inbox.
pub struct Consumer {
    /// The consume use case.
    pub service: ConsumeService,
    /// The reaction.
    pub reaction: Arc<dyn Reaction>,
    /// Its queue.
    pub queue: MemoryQueue,
    /// Its inbox, with faults of its own.
    pub inbox: FaultyInbox,
    /// Its clock: the wall clock, plus the time skipped while a claim blocked it.
    pub clock: Arc<SkippingClock>,
}

/// The wall clock plus the time a consumer skipped. A delivery handed back
/// because a claim is held (its holder died mid-call) comes again only after
/// the queue's visibility timeout, longer than any claim; the simulation skips
/// that time instead of waiting for it.
#[derive(Debug, Default)]
pub struct SkippingClock {
    skipped: std::sync::Mutex<Duration>,
}

impl SkippingClock {
    /// Moves this clock on by `by`.
    pub fn skip(&self, by: Duration) {
        *self.skipped.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }
}

impl outbox_application::ports::Clock for SkippingClock {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
            + *self.skipped.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a pipeline run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Change-feed polls.
    pub relay_runs: usize,
    /// Polls after which a shard is read again from a failed record.
    pub relay_retries: usize,
    /// Entries the bus accepted, repeats included.
    pub published: usize,
    /// Records and deliveries sent to the dead-letter queue.
    pub dead_lettered: usize,
    /// Deliveries acknowledged after recording their effect (an effect whose
    /// consumer died before acknowledging is found again as a duplicate).
    pub effects_applied: usize,
    /// Deliveries acknowledged after their external call completed.
    pub calls_completed: usize,
    /// Deliveries a consumer recognised as repeats and ignored.
    pub duplicates_suppressed: usize,
    /// Deliveries an ordered consumer held behind a missing version (its
    /// aggregate parked); each is applied when the gap closes.
    pub held: usize,
}

/// The pipeline. Its parts are public so tests can inject faults and inspect.
pub struct Pipeline {
    /// What runs: the service's aggregates and consumers.
    pub service: Service,
    /// Where aggregates live.
    pub backend: Arc<dyn Backend>,
    /// The store as the command use case sees it: faults over the journal.
    pub store: FaultyStore,
    /// The store's journal.
    pub journal: JournaledStore,
    /// The bus.
    pub bus: MemoryBus,
    /// The bus as the relay sees it, with faults.
    pub publisher: FaultyPublisher,
    /// The dead-letter queue.
    pub dead_letters: MemoryDeadLetterQueue,
    /// The dead-letter queue as relay and consumers see it, with faults.
    pub faulty_dead_letters: FaultyDeadLetters,
    /// The consumers' shared inbox.
    pub inbox: MemoryInbox,
    /// The command use case.
    pub commands: CommandService,
    /// The service's consumers.
    pub consumers: Vec<Consumer>,
    feed: tokio::sync::Mutex<Box<dyn ChangeFeed>>,
    stats: Mutex<PipelineStats>,
    poisons: Mutex<usize>,
}

impl Pipeline {
    /// Deliveries one consumer takes from its queue at a time.
    pub const RECEIVE_BATCH: usize = 10;

    /// A pipeline of `service` over `backend`, reading the change feed
    /// `batch_size` records at a time, publishing to a classic bus.
    /// Deterministic clock and ids unless `real_time` (data that outlives the
    /// run needs real ids).
    ///
    /// # Errors
    /// [`PatternError`] when a subscription's event pattern is invalid.
    pub fn new(
        service: &Service,
        backend: Arc<dyn Backend>,
        batch_size: usize,
        real_time: bool,
    ) -> Result<Self, PatternError> {
        Self::with_bus(
            service,
            backend,
            batch_size,
            real_time,
            MemoryBus::new(service.sources()),
        )
    }

    /// The same pipeline publishing to `bus`, which has the service's event
    /// sources and no subscriptions yet
    /// (a classic bus, or a Custom Event Bus that keeps order per aggregate
    /// and drops repeats).
    ///
    /// # Errors
    /// [`PatternError`] when a subscription's event pattern is invalid.
    pub fn with_bus(
        service: &Service,
        backend: Arc<dyn Backend>,
        batch_size: usize,
        real_time: bool,
        bus: MemoryBus,
    ) -> Result<Self, PatternError> {
        let journal = JournaledStore::new(backend.store());
        let store = FaultyStore::new(Arc::new(journal.clone()));
        let sources = service.sources();
        let publisher = FaultyPublisher::new(Arc::new(bus.clone()));
        let dead_letters = MemoryDeadLetterQueue::new();
        let kept: Arc<dyn DeadLetterQueue> = match backend.lasting_dead_letters() {
            Some(lasting) => Arc::new(KeptLetters {
                lasting,
                seen: dead_letters.clone(),
            }),
            None => Arc::new(dead_letters.clone()),
        };
        let faulty_dead_letters = FaultyDeadLetters::new(kept);
        let inbox = MemoryInbox::new();
        let mut consumers = Vec::new();
        for reaction in service.consumers().iter().cloned() {
            let queue = MemoryQueue::new();
            bus.subscribe(
                &reaction.subscription().event_pattern(&sources),
                queue.clone(),
            )?;
            let faulty_inbox = FaultyInbox::new(Arc::new(inbox.clone()));
            let clock = Arc::new(SkippingClock::default());
            consumers.push(Consumer {
                service: ConsumeService::new(
                    Arc::new(faulty_inbox.clone()),
                    Arc::clone(&reaction),
                    Arc::new(faulty_dead_letters.clone()),
                )
                .with_clock(clock.clone()),
                reaction,
                queue,
                inbox: faulty_inbox,
                clock,
            });
        }
        let relay = Relay::new(
            Arc::new(publisher.clone()),
            Arc::new(faulty_dead_letters.clone()),
        );
        let commands = if real_time {
            CommandService::new(
                Arc::new(store.clone()),
                Arc::new(outbox_application::ports::SystemClock),
                Arc::new(outbox_application::ports::RandomIds),
                CommandPolicy::default(),
            )
        } else {
            CommandService::new(
                Arc::new(store.clone()),
                Arc::new(StepClock::default()),
                Arc::new(SequentialIds::default()),
                CommandPolicy::default(),
            )
        };
        Ok(Self {
            service: service.clone(),
            feed: tokio::sync::Mutex::new(backend.feed(relay, batch_size)),
            backend,
            store,
            journal,
            bus,
            publisher,
            dead_letters,
            faulty_dead_letters,
            inbox,
            commands,
            consumers,
            stats: Mutex::default(),
            poisons: Mutex::default(),
        })
    }

    /// What the pipeline did so far.
    pub fn stats(&self) -> PipelineStats {
        *self.lock()
    }

    /// Forgets what the audit of the aggregates told so far read (the
    /// journal, the bus's log, the dead letters, the inbox, the poison count),
    /// once they are settled and audited: a long run is audited window by
    /// window, its memory bounded by a window. The stats go on counting.
    pub fn forget(&self) {
        self.journal.forget();
        self.bus.forget();
        self.dead_letters.forget();
        self.inbox.forget();
        *self.poisons.lock().unwrap_or_else(PoisonError::into_inner) = 0;
    }

    /// Stops the change-feed reader, giving its shard lease up so that the
    /// next program on the same data relays at once.
    pub async fn stop_feed(&self) {
        self.feed.lock().await.stop().await;
    }

    /// How many poison records were written.
    pub fn poisons(&self) -> usize {
        *self.poisons.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops every queued fault of every hop.
    pub fn clear_faults(&self) {
        self.store.faults().clear();
        self.publisher.faults().clear();
        self.faulty_dead_letters.faults().clear();
        for consumer in &self.consumers {
            consumer.inbox.faults().clear();
        }
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

    /// Submits `command` as [`Pipeline::submit`] does, whatever its aggregate type.
    ///
    /// # Errors
    /// The use case's [`CommandError`], after the retries.
    pub async fn submit_any(
        &self,
        target: Target,
        command: &dyn AnyCommand,
        meta: &RequestMeta,
        attempts: u32,
    ) -> Result<CommandOutcome, CommandError<AnyRejection>> {
        let mut tries = 1;
        loop {
            match command.execute(&self.commands, target, meta).await {
                Err(CommandError::Unavailable(_))
                    if tries < attempts && meta.idempotency_key.is_some() =>
                {
                    tries += 1;
                }
                result => return result,
            }
        }
    }

    /// Writes a record no relay can decode into the change feed.
    ///
    /// # Errors
    /// The backend's, when the record could not be written.
    pub async fn write_poison(&self, tag: &str) -> Result<(), BoxError> {
        self.backend.write_poison(tag).await?;
        *self.poisons.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Ok(())
    }

    /// Polls the change feed once; the report of what it read and relayed.
    pub async fn relay_step(&self) -> FeedReport {
        let report = match self.feed.lock().await.poll().await {
            Ok(report) => report,
            Err(error) => {
                tracing::warn!(%error, "the change feed poll failed");
                FeedReport::default()
            }
        };
        let mut stats = self.lock();
        stats.relay_runs += 1;
        stats.relay_retries += report.retries;
        stats.published += report.published;
        stats.dead_lettered += report.dead_lettered;
        report
    }

    /// Lets every consumer take one batch from its queue; undeleted deliveries
    /// become visible again afterwards. Returns the number of deliveries handled.
    pub async fn consume_step(&self) -> usize {
        let mut handled = 0;
        for consumer in &self.consumers {
            for message in consumer.queue.receive(Self::RECEIVE_BATCH) {
                handled += 1;
                let delivery = Delivery {
                    message_id: message.message_id,
                    receive_count: message.receive_count,
                    first_received_at: Some(message.first_received_at),
                    content: DeliveryContent::Event(message.envelope),
                };
                match consumer.service.consume(delivery).await {
                    Ok(consumed) => {
                        self.count(consumed);
                        consumer.queue.delete(message.receipt);
                    }
                    Err(ConsumeError::InProgress { .. }) => {
                        consumer
                            .clock
                            .skip(DEFAULT_CLAIM_LEASE + Duration::from_secs(1));
                    }
                    Err(_) => {}
                }
            }
            consumer.queue.expire_in_flight();
        }
        handled
    }

    /// Whether every queue is empty.
    pub fn queues_empty(&self) -> bool {
        self.consumers.iter().all(|c| c.queue.is_empty())
    }

    /// Relays and consumes until every outbox event of `aggregates` was
    /// published (or dead-lettered), every poison record dead-lettered and the
    /// queues are empty; false after `max_rounds` rounds or `timeout`.
    pub async fn settle(
        &self,
        aggregates: &[AggregateRef],
        max_rounds: usize,
        timeout: Duration,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut expected = Vec::new();
        for aggregate in aggregates {
            match self.backend.stored(aggregate).await {
                Ok(stored) => expected.extend(stored.outbox.into_iter().map(|e| e.event_id)),
                Err(error) => {
                    tracing::warn!(%error, "reading the outbox failed");
                    return false;
                }
            }
        }
        for _ in 0..max_rounds {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            let read = self.relay_step().await.records;
            let consumed = self.consume_step().await;
            if read == 0 && consumed == 0 && self.queues_empty() && self.handled_all(&expected) {
                return true;
            }
            if read == 0 && consumed == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        false
    }

    /// Whether every event of `expected` was published or dead-lettered, and every poison record dead-lettered.
    fn handled_all(&self, expected: &[EventId]) -> bool {
        let published: std::collections::HashSet<EventId> =
            self.bus.accepted().iter().map(|e| e.event_id).collect();
        let letters = self.dead_letters.letters();
        let raw = letters
            .iter()
            .filter(|l| matches!(l.payload, DeadLetterPayload::Raw { .. }))
            .count();
        let dead: std::collections::HashSet<EventId> = letters
            .iter()
            .filter_map(|l| match &l.payload {
                DeadLetterPayload::Event { envelope } => Some(envelope.event_id),
                DeadLetterPayload::Raw { .. } => None,
            })
            .collect();
        raw >= self.poisons()
            && expected
                .iter()
                .all(|id| published.contains(id) || dead.contains(id))
    }

    /// What the audit reads: `aggregates` as stored, the journal, the bus, the
    /// dead letters and every consumer's effects.
    ///
    /// # Errors
    /// The backend's, when an aggregate could not be read.
    pub async fn observe(&self, aggregates: &[AggregateRef]) -> Result<Observation, BoxError> {
        let mut stored = Vec::with_capacity(aggregates.len());
        for aggregate in aggregates {
            stored.push(self.backend.stored(aggregate).await?);
        }
        Ok(Observation {
            stored,
            attempts: self.journal.attempts(),
            published: self.bus.acceptances(),
            bus: {
                let (order, deduplication_window) = self.bus.promise();
                BusPromise {
                    order,
                    deduplication_window,
                }
            },
            dead_letters: self.dead_letters.letters(),
            consumers: self
                .consumers
                .iter()
                .map(|c| ConsumerRecord {
                    reaction: Arc::clone(&c.reaction),
                    effects: self.inbox.effects_of(c.reaction.name()),
                    completions: self
                        .inbox
                        .completions_of(c.reaction.name())
                        .into_iter()
                        .map(|(event_id, completion)| CompletedCall {
                            event_id,
                            recorded: completion.record.is_some(),
                        })
                        .collect(),
                })
                .collect(),
            aggregates: self.service.aggregates().to_vec(),
        })
    }

    fn count(&self, consumed: Consumed) {
        let mut stats = self.lock();
        match consumed {
            Consumed::Applied => stats.effects_applied += 1,
            Consumed::Released { released } => stats.effects_applied += 1 + released,
            Consumed::Called => stats.calls_completed += 1,
            Consumed::Duplicate => stats.duplicates_suppressed += 1,
            Consumed::DeadLettered => stats.dead_lettered += 1,
            Consumed::Parked | Consumed::Held => stats.held += 1,
            Consumed::Ignored => {}
        }
    }

    fn lock(&self) -> MutexGuard<'_, PipelineStats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Letters sent to the queue that outlives the run (where `status` and
/// `redrive` read them) and, once it took them, kept in memory for the audit.
struct KeptLetters {
    lasting: Arc<dyn DeadLetterQueue>,
    seen: MemoryDeadLetterQueue,
}

#[async_trait::async_trait]
impl DeadLetterQueue for KeptLetters {
    async fn send(&self, letter: DeadLetter) -> Result<(), DeadLetterError> {
        self.lasting.send(letter.clone()).await?;
        self.seen.send(letter).await
    }
}
