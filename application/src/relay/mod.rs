//! Relaying the outbox: change records in stream order → the bus.
//!
//! Poison records and entries too large for any call go to the dead-letter
//! queue first and count as handled, so one bad record never blocks its shard.
//! The outbox events left are published in calls packed up to the publisher's
//! [`BatchLimits`], with up to [`Relay::with_calls_in_flight`] calls at once.
//! How calls may be packed depends on the order the bus keeps
//! ([`BusOrder`]): on an unordered bus (classic EventBridge) calls are packed
//! fully whatever the aggregates, ⌈N/10⌉ calls for N small events; on a bus
//! that keeps order per aggregate (the Custom Event Bus) an aggregate's event
//! is sent only after the call with its previous event came back with it
//! accepted, so per aggregate the bus accepts events in version order.
//!
//! The relay stops launching calls at the first failure, lets the calls in
//! flight finish, and reports the first record not handled; the caller retries
//! from there (Lambda's `batchItemFailures`), so everything after it comes
//! again, and the bus's or the consumers' deduplication absorbs what had been
//! published already. Entries the bus refuses for good are dead-lettered. A
//! bus that refuses the publisher itself (missing, access denied) stops the
//! relay with [`BusRefused`]: dead-lettering every record would only hide a
//! configuration error.

mod schedule;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tracing::{info, warn};

use crate::change::{ChangeContent, ChangeRecord, RecordIdentity, SequenceNumber};
use crate::envelope::EventEnvelope;
use crate::ports::{
    BatchLimits, BusOrder, DeadLetter, DeadLetterError, DeadLetterPayload, DeadLetterQueue,
    EventPublisher, LetterSource, PublishError, PublishOutcome,
};
use crate::BoxError;

use schedule::Schedule;

/// Publish calls a relay keeps in flight unless told otherwise: four. A
/// 1,000-event batch then takes 26 round trips instead of 100; the time keeps
/// falling as 1/K, so the limit is the bus's request quota: about 180
/// `PutEvents` requests per second per shard at four (`BENCHMARKS.md`).
pub const DEFAULT_CALLS_IN_FLIGHT: usize = 4;

/// What one relay run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Entries the bus accepted in this run (an event relayed again on a retry counts again).
    pub published: usize,
    /// Records sent to the dead-letter queue.
    pub dead_lettered: usize,
    /// Calls made to the bus.
    pub publish_calls: usize,
    /// The first record not handled; it and every later record must be retried.
    pub retry_from: Option<SequenceNumber>,
}

/// The bus refuses the relay for good; nothing after the last report was handled.
#[derive(Debug, thiserror::Error)]
#[error("the bus refuses the relay, fix its configuration: {0}")]
pub struct BusRefused(#[source] pub BoxError);

/// The relay use case.
#[derive(Clone)]
pub struct Relay {
    publisher: Arc<dyn EventPublisher>,
    dead_letters: Arc<dyn DeadLetterQueue>,
    calls_in_flight: usize,
}

/// `records` without the repeats of an event id: the same stream record twice in
/// one batch is relayed once. Dropping the later copy is safe: if the first
/// fails, the relay reports it and the whole rest comes again.
fn without_repeats(records: &[ChangeRecord]) -> Vec<&ChangeRecord> {
    let mut seen = HashSet::new();
    records
        .iter()
        .filter(|record| match &record.content {
            ChangeContent::Outbox(envelope) => seen.insert(envelope.event_id),
            ChangeContent::Poison { .. } => true,
        })
        .collect()
}

/// An outbox record on its way to the bus.
type Pending<'r> = (&'r SequenceNumber, &'r EventEnvelope);

impl Relay {
    /// Wires the relay to the bus and the dead-letter queue, with
    /// [`DEFAULT_CALLS_IN_FLIGHT`] calls in flight.
    pub fn new(publisher: Arc<dyn EventPublisher>, dead_letters: Arc<dyn DeadLetterQueue>) -> Self {
        Self {
            publisher,
            dead_letters,
            calls_in_flight: DEFAULT_CALLS_IN_FLIGHT,
        }
    }

    /// The same relay keeping up to `calls` publish calls in flight (at least one).
    #[must_use]
    pub fn with_calls_in_flight(mut self, calls: usize) -> Self {
        self.calls_in_flight = calls.max(1);
        self
    }

    /// Relays `records`, given in stream order, and reports what was handled.
    ///
    /// # Errors
    /// [`BusRefused`] when the bus refuses the publisher itself.
    pub async fn relay(&self, records: &[ChangeRecord]) -> Result<RelayReport, BusRefused> {
        let limits = self.publisher.limits();
        let mut report = RelayReport::default();
        let mut outbox = Vec::new();
        let mut blocked = None;
        for record in without_repeats(records) {
            let letter = match &record.content {
                ChangeContent::Poison {
                    reason,
                    raw,
                    identity,
                } => DeadLetter::new(
                    LetterSource::StreamRecord {
                        sequence: record.sequence.clone(),
                    },
                    reason.clone(),
                    1,
                    DeadLetterPayload::Raw { raw: raw.clone() },
                    identity.clone(),
                ),
                ChangeContent::Outbox(envelope) => {
                    match self.oversized(record, envelope, &limits) {
                        Some(letter) => letter,
                        None => {
                            outbox.push((&record.sequence, envelope));
                            continue;
                        }
                    }
                }
            };
            if !self.dead_letter(letter, &mut report).await {
                blocked = Some(record.sequence.clone());
                break;
            }
        }
        let unhandled = self.publish(&outbox, limits, &mut report).await?;
        report.retry_from = unhandled.or(blocked);
        Ok(report)
    }

    /// The dead letter of an event too large for any call to the bus, if it is.
    fn oversized(
        &self,
        record: &ChangeRecord,
        envelope: &EventEnvelope,
        limits: &BatchLimits,
    ) -> Option<DeadLetter> {
        let size = self.publisher.entry_size(envelope);
        (size >= limits.max_batch_bytes).then(|| {
            DeadLetter::new(
                LetterSource::StreamRecord {
                    sequence: record.sequence.clone(),
                },
                format!(
                    "the entry is {size} bytes, the bus takes less than {}",
                    limits.max_batch_bytes
                ),
                0,
                DeadLetterPayload::Event {
                    envelope: envelope.clone(),
                },
                RecordIdentity::default(),
            )
        })
    }

    /// Publishes `outbox` (in stream order) by the schedule the bus's limits and
    /// order allow; returns the first sequence number not handled, if any.
    async fn publish(
        &self,
        outbox: &[Pending<'_>],
        limits: BatchLimits,
        report: &mut RelayReport,
    ) -> Result<Option<SequenceNumber>, BusRefused> {
        let mut groups = HashMap::new();
        let entries: Vec<(usize, usize)> = outbox
            .iter()
            .enumerate()
            .map(|(index, (_, envelope))| {
                let group = match limits.order {
                    BusOrder::Unordered => index,
                    BusOrder::PerAggregate => {
                        let next = groups.len();
                        *groups.entry(envelope.aggregate()).or_insert(next)
                    }
                };
                (group, self.publisher.entry_size(envelope))
            })
            .collect();
        let mut schedule = Schedule::new(&entries, limits);
        let mut in_flight = FuturesUnordered::new();
        let mut stopping = false;
        loop {
            while !stopping && in_flight.len() < self.calls_in_flight {
                let Some(call) = schedule.next_call(in_flight.len()) else {
                    break;
                };
                let events: Vec<EventEnvelope> =
                    call.iter().map(|&index| outbox[index].1.clone()).collect();
                let publisher = Arc::clone(&self.publisher);
                report.publish_calls += 1;
                in_flight.push(async move { (call, publisher.publish(&events).await) });
            }
            let Some((call, result)) = in_flight.next().await else {
                break;
            };
            let outcomes = match result {
                Ok(outcomes) => outcomes,
                Err(PublishError::Refused(error)) => return Err(BusRefused(error)),
                Err(error) => {
                    warn!(%error, events = call.len(), "publishing a batch failed");
                    stopping = true;
                    continue;
                }
            };
            for (position, &index) in call.iter().enumerate() {
                if self
                    .settle(outbox[index], outcomes.get(position), report)
                    .await
                {
                    schedule.accept(index);
                } else {
                    stopping = true;
                }
            }
        }
        Ok(schedule
            .first_unhandled()
            .map(|index| outbox[index].0.clone()))
    }

    /// Acts on one entry's outcome; true when the entry is handled (published
    /// or dead-lettered).
    async fn settle(
        &self,
        (sequence, envelope): Pending<'_>,
        outcome: Option<&PublishOutcome>,
        report: &mut RelayReport,
    ) -> bool {
        match outcome {
            Some(PublishOutcome::Published) => {
                report.published += 1;
                true
            }
            Some(PublishOutcome::Failed {
                retryable: false,
                reason,
                attempts,
            }) => {
                warn!(event_id = %envelope.event_id, reason, "the bus refused an event for good");
                let letter = DeadLetter::new(
                    LetterSource::StreamRecord {
                        sequence: sequence.clone(),
                    },
                    reason.clone(),
                    *attempts,
                    DeadLetterPayload::Event {
                        envelope: envelope.clone(),
                    },
                    RecordIdentity::default(),
                );
                self.dead_letter(letter, report).await
            }
            Some(PublishOutcome::Failed { reason, .. }) => {
                info!(event_id = %envelope.event_id, reason, "event not published, will retry");
                false
            }
            None => {
                warn!(event_id = %envelope.event_id, "the bus reported no outcome for an event");
                false
            }
        }
    }

    /// Dead-letters a record that never reaches [`Relay::relay`] (one without a
    /// position in its shard).
    ///
    /// # Errors
    /// [`DeadLetterError`] when the letter could not be stored.
    pub async fn dead_letter_record(&self, letter: DeadLetter) -> Result<(), DeadLetterError> {
        warn!(source = %letter.source, reason = letter.reason, "dead-lettering a record");
        self.dead_letters.send(letter).await
    }

    /// Sends a dead letter; false when it could not be stored.
    async fn dead_letter(&self, letter: DeadLetter, report: &mut RelayReport) -> bool {
        let source = letter.source.clone();
        match self.dead_letters.send(letter).await {
            Ok(()) => {
                report.dead_lettered += 1;
                true
            }
            Err(error) => {
                warn!(%source, %error, "dead-lettering failed");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::EventContext;
    use crate::ids::{AggregateId, AggregateRef};
    use crate::ports::dead_letter::MockDeadLetterQueue;
    use crate::ports::publisher::MockEventPublisher;
    use crate::ports::DeadLetterError;
    use crate::trace::Traceparent;
    use outbox_domain::Version;
    use outbox_seeds_domain::repair::{Repair, RepairEvent};
    use std::sync::Mutex;
    use time::OffsetDateTime;
    use uuid::Uuid;

    fn event(aggregate: u128, version: u64) -> EventEnvelope {
        let context = EventContext {
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            correlation_id: "c".into(),
            causation_id: "r".into(),
            traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
        };
        EventEnvelope::wrap::<Repair>(
            AggregateId::from_uuid(Uuid::from_u128(aggregate)),
            Version::new(version),
            &RepairEvent::WorkStarted {},
            &context,
        )
        .unwrap()
    }

    fn outbox(sequence: u64, aggregate: u128, version: u64) -> ChangeRecord {
        ChangeRecord {
            sequence: SequenceNumber::new(sequence.to_string()),
            content: ChangeContent::Outbox(event(aggregate, version)),
        }
    }

    fn poison(sequence: u64) -> ChangeRecord {
        ChangeRecord {
            sequence: SequenceNumber::new(sequence.to_string()),
            content: ChangeContent::Poison {
                reason: "no eventId".into(),
                raw: "{}".into(),
                identity: RecordIdentity::default(),
            },
        }
    }

    fn failed(retryable: bool) -> PublishOutcome {
        PublishOutcome::Failed {
            retryable,
            reason: "InternalFailure".into(),
            attempts: 3,
        }
    }

    /// A publisher mock with a classic EventBridge bus's limits, every entry 1 KiB.
    fn publisher() -> MockEventPublisher {
        let mut publisher = MockEventPublisher::new();
        publisher
            .expect_limits()
            .return_const(BatchLimits::CLASSIC_EVENT_BUS);
        publisher.expect_entry_size().return_const(1024_usize);
        publisher
    }

    fn accepting_dlq(letters: Arc<Mutex<Vec<DeadLetter>>>) -> MockDeadLetterQueue {
        let mut dlq = MockDeadLetterQueue::new();
        dlq.expect_send().returning(move |letter| {
            letters.lock().unwrap().push(letter);
            Ok(())
        });
        dlq
    }

    #[tokio::test]
    async fn on_an_unordered_bus_calls_are_packed_whatever_the_aggregates() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = batches.clone();
        let mut publisher = publisher();
        publisher.expect_publish().returning(move |events| {
            seen.lock().unwrap().push(
                events
                    .iter()
                    .map(|e| e.aggregate_version.value())
                    .collect::<Vec<_>>(),
            );
            Ok(vec![PublishOutcome::Published; events.len()])
        });
        let relay = Relay::new(Arc::new(publisher), Arc::new(MockDeadLetterQueue::new()));
        let records: Vec<_> = (1..=12).map(|v| outbox(v, 1, v)).collect();
        let report = relay.relay(&records).await.unwrap();
        assert_eq!(
            report,
            RelayReport {
                published: 12,
                dead_lettered: 0,
                publish_calls: 2,
                retry_from: None
            }
        );
        let mut batches = batches.lock().unwrap().clone();
        batches.sort_by_key(Vec::len);
        assert_eq!(batches, vec![vec![11, 12], (1..=10).collect::<Vec<_>>()]);
    }

    #[tokio::test]
    async fn on_an_ordered_bus_a_call_holds_one_event_per_aggregate_in_version_order() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = batches.clone();
        let mut publisher = MockEventPublisher::new();
        publisher
            .expect_limits()
            .return_const(BatchLimits::CUSTOM_EVENT_BUS);
        publisher.expect_entry_size().return_const(1024_usize);
        publisher.expect_publish().returning(move |events| {
            seen.lock().unwrap().push(
                events
                    .iter()
                    .map(|e| {
                        (
                            e.aggregate_id.to_string().ends_with('1'),
                            e.aggregate_version.value(),
                        )
                    })
                    .collect::<Vec<_>>(),
            );
            Ok(vec![PublishOutcome::Published; events.len()])
        });
        let relay = Relay::new(Arc::new(publisher), Arc::new(MockDeadLetterQueue::new()));
        let records = [
            outbox(1, 1, 1),
            outbox(2, 1, 2),
            outbox(3, 2, 1),
            outbox(4, 1, 3),
        ];
        let report = relay.relay(&records).await.unwrap();
        assert_eq!((report.published, report.publish_calls), (4, 3));
        assert_eq!(
            *batches.lock().unwrap(),
            vec![
                vec![(true, 1), (false, 1)],
                vec![(true, 2)],
                vec![(true, 3)]
            ]
        );
    }

    #[tokio::test]
    async fn batches_hold_at_most_ten_events() {
        let mut publisher = publisher();
        publisher.expect_publish().times(3).returning(|events| {
            assert!(events.len() <= 10);
            Ok(vec![PublishOutcome::Published; events.len()])
        });
        let relay = Relay::new(Arc::new(publisher), Arc::new(MockDeadLetterQueue::new()));
        let records: Vec<_> = (0..25).map(|i| outbox(i, u128::from(i) + 1, 1)).collect();
        assert_eq!(relay.relay(&records).await.unwrap().published, 25);
    }

    #[tokio::test]
    async fn batches_stay_below_the_byte_limit_and_an_entry_too_large_is_dead_lettered() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = batches.clone();
        let letters = Arc::new(Mutex::new(Vec::new()));
        let mut publisher = MockEventPublisher::new();
        publisher.expect_limits().return_const(BatchLimits {
            max_entries: 10,
            max_batch_bytes: 3_000,
            order: BusOrder::Unordered,
        });
        publisher.expect_entry_size().returning(|e| {
            if e.aggregate_version.value() == 9 {
                3_000
            } else {
                1_000
            }
        });
        publisher.expect_publish().returning(move |events| {
            seen.lock().unwrap().push(events.len());
            Ok(vec![PublishOutcome::Published; events.len()])
        });
        let relay = Relay::new(
            Arc::new(publisher),
            Arc::new(accepting_dlq(letters.clone())),
        );
        let records = [
            outbox(1, 1, 1),
            outbox(2, 2, 1),
            outbox(3, 3, 1),
            outbox(4, 4, 9),
            outbox(5, 5, 1),
        ];
        let report = relay.relay(&records).await.unwrap();
        assert_eq!((report.published, report.dead_lettered), (4, 1));
        assert_eq!(*batches.lock().unwrap(), vec![2, 2]);
        let letters = letters.lock().unwrap();
        assert!(
            letters[0].reason.contains("3000 bytes"),
            "{}",
            letters[0].reason
        );
    }

    #[tokio::test]
    async fn a_bus_that_refuses_the_publisher_stops_the_relay_and_dead_letters_nothing() {
        let mut publisher = publisher();
        publisher
            .expect_publish()
            .times(1)
            .returning(|_| Err(PublishError::Refused("no such bus".into())));
        let mut dlq = MockDeadLetterQueue::new();
        dlq.expect_send().never();
        let relay = Relay::new(Arc::new(publisher), Arc::new(dlq));
        let refused = relay.relay(&[outbox(1, 1, 1), outbox(2, 2, 1)]).await;
        assert!(refused.unwrap_err().to_string().contains("no such bus"));
    }

    #[tokio::test]
    async fn the_same_record_twice_in_one_batch_is_published_once() {
        let published = Arc::new(Mutex::new(Vec::new()));
        let seen = published.clone();
        let mut publisher = publisher();
        publisher.expect_publish().returning(move |events| {
            seen.lock()
                .unwrap()
                .extend(events.iter().map(|e| e.event_id));
            Ok(vec![PublishOutcome::Published; events.len()])
        });
        let relay = Relay::new(Arc::new(publisher), Arc::new(MockDeadLetterQueue::new()));
        let twice = outbox(1, 1, 1);
        let report = relay
            .relay(&[twice.clone(), outbox(2, 2, 1), twice])
            .await
            .unwrap();
        assert_eq!(report.published, 2);
        let published = published.lock().unwrap();
        assert_eq!(published.len(), 2, "{published:?}");
    }

    #[tokio::test]
    async fn a_rejected_entry_stops_the_relay_at_its_sequence_number() {
        let mut publisher = publisher();
        publisher.expect_publish().times(1).returning(|_| {
            Ok(vec![
                PublishOutcome::Published,
                failed(true),
                PublishOutcome::Published,
            ])
        });
        let relay = Relay::new(Arc::new(publisher), Arc::new(MockDeadLetterQueue::new()));
        let records = [
            outbox(1, 1, 1),
            outbox(2, 2, 1),
            outbox(3, 3, 1),
            outbox(4, 1, 2),
        ];
        let report = relay.relay(&records).await.unwrap();
        assert_eq!(report.published, 2, "entries 1 and 3 were accepted");
        assert_eq!(report.retry_from, Some(SequenceNumber::new("2")));
    }

    /// A bus answering each call after a few milliseconds, accepting every entry,
    /// but failing the calls numbered in `failing` at once; it records the most calls
    /// in flight at once, and whether two calls in flight ever shared an aggregate.
    struct SlowBus {
        limits: BatchLimits,
        failing: Vec<usize>,
        calls: Mutex<usize>,
        in_flight: Mutex<Vec<Vec<AggregateRef>>>,
        most_in_flight: Mutex<usize>,
        shared_aggregate: Mutex<bool>,
        accepted: Mutex<Vec<EventEnvelope>>,
    }

    impl SlowBus {
        fn new(max_entries: usize, order: BusOrder, failing: Vec<usize>) -> Self {
            Self {
                limits: BatchLimits {
                    max_entries,
                    order,
                    ..BatchLimits::CLASSIC_EVENT_BUS
                },
                failing,
                calls: Mutex::default(),
                in_flight: Mutex::default(),
                most_in_flight: Mutex::default(),
                shared_aggregate: Mutex::default(),
                accepted: Mutex::default(),
            }
        }
    }

    #[async_trait::async_trait]
    impl EventPublisher for SlowBus {
        fn limits(&self) -> BatchLimits {
            self.limits
        }

        fn entry_size(&self, _: &EventEnvelope) -> usize {
            1024
        }

        async fn publish(
            &self,
            events: &[EventEnvelope],
        ) -> Result<Vec<PublishOutcome>, PublishError> {
            let aggregates: Vec<AggregateRef> =
                events.iter().map(EventEnvelope::aggregate).collect();
            let call = {
                let mut calls = self.calls.lock().unwrap();
                *calls += 1;
                *calls
            };
            {
                let mut in_flight = self.in_flight.lock().unwrap();
                if in_flight.iter().flatten().any(|a| aggregates.contains(a)) {
                    *self.shared_aggregate.lock().unwrap() = true;
                }
                in_flight.push(aggregates.clone());
                let mut most = self.most_in_flight.lock().unwrap();
                *most = (*most).max(in_flight.len());
            }
            if self.failing.contains(&call) {
                self.in_flight.lock().unwrap().retain(|c| *c != aggregates);
                return Err(PublishError::Throttled("slow down".into()));
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            self.in_flight.lock().unwrap().retain(|c| *c != aggregates);
            self.accepted.lock().unwrap().extend_from_slice(events);
            Ok(vec![PublishOutcome::Published; events.len()])
        }
    }

    #[tokio::test]
    async fn up_to_the_configured_number_of_calls_are_in_flight_at_once() {
        for calls_in_flight in [1, 4] {
            let bus = Arc::new(SlowBus::new(10, BusOrder::Unordered, vec![]));
            let relay = Relay::new(bus.clone(), Arc::new(MockDeadLetterQueue::new()))
                .with_calls_in_flight(calls_in_flight);
            let records: Vec<_> = (0..250).map(|i| outbox(i, u128::from(i) + 1, 1)).collect();
            let report = relay.relay(&records).await.unwrap();
            assert_eq!((report.published, report.publish_calls), (250, 25));
            assert_eq!(*bus.most_in_flight.lock().unwrap(), calls_in_flight);
        }
    }

    #[tokio::test]
    async fn on_an_ordered_bus_no_two_calls_in_flight_share_an_aggregate() {
        let bus = Arc::new(SlowBus::new(2, BusOrder::PerAggregate, vec![]));
        let relay =
            Relay::new(bus.clone(), Arc::new(MockDeadLetterQueue::new())).with_calls_in_flight(4);
        // Six aggregates with five events each, each aggregate's events consecutive.
        let records: Vec<_> = (0..30)
            .map(|i| outbox(i, u128::from(i / 5) + 1, i % 5 + 1))
            .collect();
        let report = relay.relay(&records).await.unwrap();
        assert_eq!((report.published, report.publish_calls), (30, 15));
        assert!(*bus.most_in_flight.lock().unwrap() > 1);
        assert!(!*bus.shared_aggregate.lock().unwrap());
        let mut versions: HashMap<AggregateRef, Vec<u64>> = HashMap::new();
        for event in bus.accepted.lock().unwrap().iter() {
            versions
                .entry(event.aggregate())
                .or_default()
                .push(event.aggregate_version.value());
        }
        assert!(
            versions.values().all(|v| *v == vec![1, 2, 3, 4, 5]),
            "{versions:?}"
        );
    }

    #[tokio::test]
    async fn a_failed_call_stops_new_calls_and_those_in_flight_finish() {
        let bus = Arc::new(SlowBus::new(10, BusOrder::Unordered, vec![2]));
        // Call 2 fails at once, while calls 1, 3 and 4 are in flight.
        let relay =
            Relay::new(bus.clone(), Arc::new(MockDeadLetterQueue::new())).with_calls_in_flight(4);
        let records: Vec<_> = (0..100).map(|i| outbox(i, u128::from(i) + 1, 1)).collect();
        let report = relay.relay(&records).await.unwrap();
        assert_eq!(report.publish_calls, 4, "no call starts after the failure");
        assert_eq!(report.published, 30);
        assert_eq!(
            report.retry_from,
            Some(SequenceNumber::new("10")),
            "the first record of call 2"
        );
    }

    #[tokio::test]
    async fn a_failed_call_publishes_nothing_of_its_batch() {
        let mut publisher = publisher();
        publisher
            .expect_publish()
            .times(1)
            .returning(|_| Err(PublishError::Throttled("slow down".into())));
        let relay = Relay::new(Arc::new(publisher), Arc::new(MockDeadLetterQueue::new()));
        let report = relay
            .relay(&[outbox(7, 1, 1), outbox(8, 2, 1)])
            .await
            .unwrap();
        assert_eq!(
            report,
            RelayReport {
                published: 0,
                dead_lettered: 0,
                publish_calls: 1,
                retry_from: Some(SequenceNumber::new("7"))
            }
        );
    }

    #[tokio::test]
    async fn a_missing_outcome_never_counts_as_published() {
        let mut publisher = publisher();
        publisher
            .expect_publish()
            .returning(|_| Ok(vec![PublishOutcome::Published]));
        let relay = Relay::new(Arc::new(publisher), Arc::new(MockDeadLetterQueue::new()));
        let report = relay
            .relay(&[outbox(1, 1, 1), outbox(2, 2, 1)])
            .await
            .unwrap();
        assert_eq!(report.published, 1);
        assert_eq!(report.retry_from, Some(SequenceNumber::new("2")));
    }

    #[tokio::test]
    async fn permanent_refusals_and_poison_go_to_the_dead_letter_queue() {
        let letters = Arc::new(Mutex::new(Vec::new()));
        let mut publisher = publisher();
        publisher.expect_publish().returning(|events| {
            Ok(events
                .iter()
                .map(|e| {
                    if e.aggregate_version.value() == 1 {
                        failed(false)
                    } else {
                        PublishOutcome::Published
                    }
                })
                .collect())
        });
        let relay = Relay::new(
            Arc::new(publisher),
            Arc::new(accepting_dlq(letters.clone())),
        );
        let report = relay
            .relay(&[outbox(1, 1, 1), poison(2), outbox(3, 1, 2)])
            .await
            .unwrap();
        assert_eq!(
            report,
            RelayReport {
                published: 1,
                dead_lettered: 2,
                publish_calls: 1,
                retry_from: None
            }
        );
        let letters = letters.lock().unwrap();
        assert!(
            matches!(&letters[1].payload, DeadLetterPayload::Event { envelope } if envelope.aggregate_version == Version::new(1))
        );
        assert_eq!(letters[1].attempts, 3);
        assert!(matches!(&letters[0].payload, DeadLetterPayload::Raw { .. }));
        assert_eq!(
            letters[0].source,
            LetterSource::StreamRecord {
                sequence: SequenceNumber::new("2")
            }
        );
    }

    #[tokio::test]
    async fn a_poison_record_that_cannot_be_dead_lettered_is_retried() {
        let mut publisher = publisher();
        publisher
            .expect_publish()
            .times(1)
            .returning(|events| Ok(vec![PublishOutcome::Published; events.len()]));
        let mut dlq = MockDeadLetterQueue::new();
        dlq.expect_send()
            .returning(|_| Err(DeadLetterError("queue down".into())));
        let relay = Relay::new(Arc::new(publisher), Arc::new(dlq));
        let report = relay
            .relay(&[outbox(1, 1, 1), poison(2), outbox(3, 2, 1)])
            .await
            .unwrap();
        assert_eq!(
            report,
            RelayReport {
                published: 1,
                dead_lettered: 0,
                publish_calls: 1,
                retry_from: Some(SequenceNumber::new("2"))
            }
        );
    }
}
