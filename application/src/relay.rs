//! Relaying the outbox: change records in stream order → the bus.
//!
//! Records are published in batches packed up to the publisher's
//! [`BatchLimits`] (entries and bytes, as the bus counts them). A batch never
//! holds two events of one aggregate, so a partly failed batch can never let a
//! later event of an aggregate be published before an earlier one: per aggregate,
//! first publications follow version order. The relay stops at the first record
//! it could not publish and reports its sequence number; the caller retries from
//! there (Lambda's `batchItemFailures`), so everything after it comes again.
//! Poison records, entries too large for the bus and entries the bus refuses for
//! good go to the dead-letter queue and count as handled, so one bad record never
//! blocks its shard. A bus that refuses the publisher itself (missing, access
//! denied) stops the relay with [`BusRefused`]: dead-lettering every record
//! would only hide a configuration error.

use std::collections::HashSet;
use std::sync::Arc;

use tracing::{info, warn};

use crate::change::{ChangeContent, ChangeRecord, RecordIdentity, SequenceNumber};
use crate::envelope::EventEnvelope;
use crate::ports::{
    BatchLimits, DeadLetter, DeadLetterError, DeadLetterPayload, DeadLetterQueue, EventPublisher,
    LetterSource, PublishError, PublishOutcome,
};
use crate::BoxError;

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
}

/// `records` without the repeats of an event id: the same stream record twice in
/// one batch is relayed once. Dropping the later copy is safe: if the first
/// fails, the relay stops there and the whole rest comes again.
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
    /// Wires the relay to the bus and the dead-letter queue.
    pub fn new(publisher: Arc<dyn EventPublisher>, dead_letters: Arc<dyn DeadLetterQueue>) -> Self {
        Self {
            publisher,
            dead_letters,
        }
    }

    /// Relays `records`, given in stream order, and reports what was handled.
    ///
    /// # Errors
    /// [`BusRefused`] when the bus refuses the publisher itself.
    pub async fn relay(&self, records: &[ChangeRecord]) -> Result<RelayReport, BusRefused> {
        let limits = self.publisher.limits();
        let records = without_repeats(records);
        let mut report = RelayReport::default();
        let mut next = 0;
        while next < records.len() {
            let record = records[next];
            let letter = match &record.content {
                ChangeContent::Poison {
                    reason,
                    raw,
                    identity,
                } => Some(DeadLetter::new(
                    LetterSource::StreamRecord {
                        sequence: record.sequence.clone(),
                    },
                    reason.clone(),
                    1,
                    DeadLetterPayload::Raw { raw: raw.clone() },
                    identity.clone(),
                )),
                ChangeContent::Outbox(envelope) => self.oversized(record, envelope, &limits),
            };
            if let Some(letter) = letter {
                if !self.dead_letter(letter, &mut report).await {
                    report.retry_from = Some(record.sequence.clone());
                    return Ok(report);
                }
                next += 1;
                continue;
            }
            let batch = self.next_batch(&records[next..], &limits);
            if let Some(failed) = self.publish_batch(&batch, &mut report).await? {
                report.retry_from = Some(failed);
                return Ok(report);
            }
            next += batch.len();
        }
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

    /// The longest run of outbox records from the start of `records` that fits
    /// one call: within `limits`, no poison or oversized record, one event per aggregate.
    fn next_batch<'r>(
        &self,
        records: &[&'r ChangeRecord],
        limits: &BatchLimits,
    ) -> Vec<Pending<'r>> {
        let mut seen = HashSet::new();
        let mut bytes = 0;
        let mut batch = Vec::new();
        for record in records.iter().copied() {
            let ChangeContent::Outbox(envelope) = &record.content else {
                break;
            };
            let size = self.publisher.entry_size(envelope);
            let full = batch.len() >= limits.max_entries || bytes + size >= limits.max_batch_bytes;
            if full || !seen.insert(envelope.aggregate()) {
                break;
            }
            bytes += size;
            batch.push((&record.sequence, envelope));
        }
        batch
    }

    /// Publishes one batch; returns the first sequence number not handled, if any.
    async fn publish_batch(
        &self,
        batch: &[Pending<'_>],
        report: &mut RelayReport,
    ) -> Result<Option<SequenceNumber>, BusRefused> {
        let envelopes: Vec<EventEnvelope> = batch.iter().map(|(_, e)| (*e).clone()).collect();
        report.publish_calls += 1;
        let outcomes = match self.publisher.publish(&envelopes).await {
            Ok(outcomes) => outcomes,
            Err(PublishError::Refused(error)) => return Err(BusRefused(error)),
            Err(error) => {
                warn!(%error, events = batch.len(), "publishing a batch failed");
                return Ok(Some(batch[0].0.clone()));
            }
        };
        for (index, (sequence, envelope)) in batch.iter().enumerate() {
            match outcomes.get(index) {
                Some(PublishOutcome::Published) => report.published += 1,
                Some(PublishOutcome::Failed {
                    retryable: false,
                    reason,
                    attempts,
                }) => {
                    warn!(event_id = %envelope.event_id, reason, "the bus refused an event for good");
                    let letter = DeadLetter::new(
                        LetterSource::StreamRecord {
                            sequence: (*sequence).clone(),
                        },
                        reason.clone(),
                        *attempts,
                        DeadLetterPayload::Event {
                            envelope: (*envelope).clone(),
                        },
                        RecordIdentity::default(),
                    );
                    if !self.dead_letter(letter, report).await {
                        return Ok(Some((*sequence).clone()));
                    }
                }
                Some(PublishOutcome::Failed { reason, .. }) => {
                    info!(event_id = %envelope.event_id, reason, "event not published, will retry");
                    return Ok(Some((*sequence).clone()));
                }
                None => {
                    warn!(event_id = %envelope.event_id, "the bus reported no outcome for an event");
                    return Ok(Some((*sequence).clone()));
                }
            }
        }
        Ok(None)
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
    use crate::ids::AggregateId;
    use crate::ports::dead_letter::MockDeadLetterQueue;
    use crate::ports::publisher::MockEventPublisher;
    use crate::ports::DeadLetterError;
    use crate::trace::Traceparent;
    use domain::repair::{Repair, RepairEvent};
    use domain::Version;
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

    /// A publisher mock with EventBridge's limits, every entry 1 KiB.
    fn publisher() -> MockEventPublisher {
        let mut publisher = MockEventPublisher::new();
        publisher.expect_limits().return_const(BatchLimits {
            max_entries: 10,
            max_batch_bytes: 256 * 1024,
        });
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
    async fn a_batch_never_holds_two_events_of_one_aggregate() {
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
        let records = [
            outbox(1, 1, 1),
            outbox(2, 2, 1),
            outbox(3, 1, 2),
            outbox(4, 3, 1),
        ];
        let report = relay.relay(&records).await.unwrap();
        assert_eq!(
            report,
            RelayReport {
                published: 4,
                dead_lettered: 0,
                publish_calls: 2,
                retry_from: None
            }
        );
        assert_eq!(*batches.lock().unwrap(), vec![vec![1, 1], vec![2, 1]]);
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
        assert_eq!(*batches.lock().unwrap(), vec![2, 1, 1]);
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
        assert_eq!(report.published, 1);
        assert_eq!(report.retry_from, Some(SequenceNumber::new("2")));
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
                publish_calls: 2,
                retry_from: None
            }
        );
        let letters = letters.lock().unwrap();
        assert!(
            matches!(&letters[0].payload, DeadLetterPayload::Event { envelope } if envelope.aggregate_version == Version::new(1))
        );
        assert_eq!(letters[0].attempts, 3);
        assert!(matches!(&letters[1].payload, DeadLetterPayload::Raw { .. }));
        assert_eq!(
            letters[1].source,
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
