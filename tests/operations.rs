//! The operator's use cases on the in-memory adapters: a replay republishes a
//! window's events per aggregate in version order and resumes from its last
//! position; a redrive deletes a letter only after its event was accepted
//! again, returns a still-poison record with its attempts raised, keeps a
//! letter the bus refused for a passing reason, and hands a consumer's letter
//! to that consumer.

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use outbox_application::ports::{ArchiveWindow, SystemClock};
use outbox_application::ports::{
    BatchLimits, DeadLetter, DeadLetterPayload, DeadLetterQueue, EventPublisher, LetterSource,
    PublishError, PublishOutcome,
};
use outbox_application::{
    AggregateRef, CommandPolicy, CommandService, ConsumeService, EventEnvelope, LetterFilter,
    RecordIdentity, RedriveService, Redriven, Relay, ReplayService, RequestMeta, SequenceNumber,
    Target,
};
use outbox_memory::{
    MemoryBus, MemoryDeadLetterQueue, MemoryInbox, MemoryStore, SequentialIds, StepClock,
};
use outbox_seeds_domain::repair::{Repair, RepairCommand};
use outbox_tests::{line_item, open_repair, runtime};
use time::macros::datetime;

/// `aggregates` repairs of five events each, in a memory store.
async fn repairs(aggregates: usize) -> MemoryStore {
    let store = MemoryStore::new();
    let commands = CommandService::new(
        Arc::new(store.clone()),
        Arc::new(StepClock::default()),
        Arc::new(SequentialIds::default()),
        CommandPolicy::default(),
    );
    let meta = RequestMeta::default();
    let mut ids = Vec::new();
    for n in 0..aggregates {
        let opened = commands
            .execute::<Repair>(Target::New, &open_repair(&format!("c{n}")), &meta)
            .await
            .unwrap();
        ids.push(opened.aggregate.aggregate_id);
    }
    // Interleaved, so a window holds every aggregate's events mixed in time.
    for command in [
        RepairCommand::StartWork,
        line_item(100),
        line_item(200),
        RepairCommand::CompleteRepair,
    ] {
        for id in &ids {
            commands
                .execute::<Repair>(Target::Existing(*id), &command, &meta)
                .await
                .unwrap();
        }
    }
    store
}

fn whole_window() -> ArchiveWindow {
    ArchiveWindow {
        from: datetime!(2024-01-01 00:00 UTC),
        to: datetime!(2024-01-02 00:00 UTC),
        aggregate: None,
    }
}

fn versions_by_aggregate(events: &[EventEnvelope]) -> BTreeMap<AggregateRef, Vec<u64>> {
    let mut by = BTreeMap::<AggregateRef, Vec<u64>>::new();
    for event in events {
        by.entry(event.aggregate())
            .or_default()
            .push(event.aggregate_version.value());
    }
    by
}

#[test]
fn a_replay_publishes_a_window_per_aggregate_in_version_order_and_resumes() {
    runtime().block_on(async {
        let store = repairs(60).await;
        let outbox: BTreeSet<_> = store.outbox().iter().map(|e| e.event_id).collect();
        assert_eq!(outbox.len(), 300);

        // A Custom Event Bus keeps acceptance order per aggregate and drops repeats.
        let bus = MemoryBus::custom(
            outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
            Arc::new(SystemClock),
        );
        let letters = MemoryDeadLetterQueue::new();
        let relay = Relay::new(Arc::new(bus.clone()), Arc::new(letters.clone()));
        let replay = ReplayService::new(Arc::new(store.clone()), relay);

        let dry = replay
            .run(&whole_window(), None, true, |_| {})
            .await
            .unwrap();
        assert_eq!((dry.events, dry.published), (300, 0));
        assert!(bus.accepted().is_empty(), "a dry run publishes nothing");

        // Interrupted after the first page: its position is where the next run starts.
        let mut first_position = None;
        let first = replay
            .run(
                &ArchiveWindow {
                    to: datetime!(2024-01-01 00:00:00.150 UTC),
                    ..whole_window()
                },
                None,
                false,
                |progress| {
                    first_position.get_or_insert(progress.position.clone());
                },
            )
            .await
            .unwrap();
        assert!(first.events > 0 && first.events < 300, "{first:?}");
        let resumed = replay
            .run(&whole_window(), first_position.flatten(), false, |_| {})
            .await
            .unwrap();
        assert!(resumed.events < 300, "a resumed replay skips what was done");

        let accepted: BTreeSet<_> = bus.accepted().iter().map(|e| e.event_id).collect();
        assert_eq!(
            accepted, outbox,
            "every event of the window reached the bus"
        );
        for (aggregate, versions) in versions_by_aggregate(&bus.accepted()) {
            assert_eq!(versions, (1..=5).collect::<Vec<_>>(), "{aggregate}");
        }
        assert!(letters.letters().is_empty());
    });
}

#[test]
fn a_replay_of_one_aggregate_reads_only_its_events() {
    runtime().block_on(async {
        let store = repairs(5).await;
        let wanted = store.aggregates()[2].clone();
        let bus = MemoryBus::new(
            outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
        );
        let relay = Relay::new(
            Arc::new(bus.clone()),
            Arc::new(MemoryDeadLetterQueue::new()),
        );
        let progress = ReplayService::new(Arc::new(store), relay)
            .run(
                &ArchiveWindow {
                    aggregate: Some(wanted.clone()),
                    ..whole_window()
                },
                None,
                false,
                |_| {},
            )
            .await
            .unwrap();
        assert_eq!(progress.published, 5);
        assert!(bus.accepted().iter().all(|e| e.aggregate() == wanted));
    });
}

/// A bus that refuses every entry, for good or for now.
struct Refusing {
    retryable: bool,
}

#[async_trait::async_trait]
impl EventPublisher for Refusing {
    fn limits(&self) -> BatchLimits {
        MemoryBus::new(
            outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
        )
        .limits()
    }

    fn entry_size(&self, event: &EventEnvelope) -> usize {
        MemoryBus::new(
            outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
        )
        .entry_size(event)
    }

    async fn publish(&self, events: &[EventEnvelope]) -> Result<Vec<PublishOutcome>, PublishError> {
        Ok(events
            .iter()
            .map(|_| PublishOutcome::Failed {
                retryable: self.retryable,
                reason: "refused".into(),
                attempts: 1,
            })
            .collect())
    }
}

fn letter(source: LetterSource, reason: &str, payload: DeadLetterPayload) -> DeadLetter {
    DeadLetter::new(source, reason, 1, payload, RecordIdentity::default())
}

fn relay_letter(envelope: EventEnvelope, n: usize) -> DeadLetter {
    letter(
        LetterSource::StreamRecord {
            sequence: SequenceNumber::new(n.to_string()),
        },
        "the bus refused the entry",
        DeadLetterPayload::Event { envelope },
    )
}

fn decode_raw() -> outbox_application::RawDecoder {
    Arc::new(|raw: &str| {
        serde_json::from_str::<EventEnvelope>(raw).map_err(|error| error.to_string())
    })
}

#[test]
fn a_redrive_deletes_a_letter_only_once_its_event_was_accepted_and_never_loses_poison() {
    runtime().block_on(async {
        let store = repairs(2).await;
        let events = store.outbox();
        let letters = MemoryDeadLetterQueue::new();
        letters
            .send(relay_letter(events[0].clone(), 1))
            .await
            .unwrap();
        letters
            .send(letter(
                LetterSource::StreamRecord {
                    sequence: SequenceNumber::new("2"),
                },
                "undecodable outbox item",
                DeadLetterPayload::Raw {
                    raw: "{\"pk\":{\"S\":\"REPAIR#broken\"}}".into(),
                },
            ))
            .await
            .unwrap();
        letters
            .send(letter(
                LetterSource::StreamRecord {
                    sequence: SequenceNumber::new("3"),
                },
                "undecodable outbox item",
                DeadLetterPayload::Raw {
                    raw: serde_json::to_string(&events[1]).unwrap(),
                },
            ))
            .await
            .unwrap();

        // A bus that refuses for now: nothing is deleted, nothing returned.
        let busy = RedriveService::new(
            Arc::new(letters.clone()),
            Arc::new(Refusing { retryable: true }),
            decode_raw(),
        );
        let filter = LetterFilter::default();
        let summary = busy.redrive(&filter, 100, |_, _| {}).await.unwrap();
        assert_eq!(
            (summary.kept, summary.returned, summary.accepted),
            (2, 1, 0)
        );
        assert_eq!(letters.waiting().len(), 3);

        let bus = MemoryBus::new(
            outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
        );
        let service = RedriveService::new(
            Arc::new(letters.clone()),
            Arc::new(bus.clone()),
            decode_raw(),
        );
        let mut fates = Vec::new();
        let summary = service
            .redrive(&filter, 100, |stored, outcome| {
                fates.push((stored.content.clone().unwrap().attempts, outcome.clone()));
            })
            .await
            .unwrap();
        assert_eq!(summary.accepted, 2, "{fates:?}");
        assert_eq!(summary.returned, 1, "{fates:?}");
        let accepted: BTreeSet<_> = bus.accepted().iter().map(|e| e.event_id).collect();
        assert_eq!(
            accepted,
            BTreeSet::from([events[0].event_id, events[1].event_id])
        );
        let waiting = letters.waiting();
        assert_eq!(waiting.len(), 1, "only the poison record is left");
        assert_eq!(
            waiting[0].payload_sha256,
            letters.letters()[1].payload_sha256
        );
        assert_eq!(
            waiting[0].attempts, 3,
            "returned twice, each time one attempt more"
        );
        assert!(matches!(fates.last(), Some((_, Redriven::Returned { .. }))));
    });
}

#[test]
fn a_redrive_by_reason_or_aggregate_leaves_the_others_and_a_consumer_letter_goes_to_its_consumer() {
    runtime().block_on(async {
        let store = repairs(2).await;
        let events = store.outbox();
        let completed = events
            .iter()
            .find(|e| e.event_type == "RepairCompleted")
            .unwrap()
            .clone();
        let letters = MemoryDeadLetterQueue::new();
        letters
            .send(relay_letter(events[0].clone(), 1))
            .await
            .unwrap();
        let other = events
            .iter()
            .find(|e| e.aggregate() != events[0].aggregate())
            .unwrap()
            .clone();
        letters.send(relay_letter(other.clone(), 2)).await.unwrap();
        letters
            .send(letter(
                LetterSource::QueueMessage {
                    consumer: "invoicing".into(),
                    message_id: "m-1".into(),
                },
                "the inbox was unavailable",
                DeadLetterPayload::Event {
                    envelope: completed.clone(),
                },
            ))
            .await
            .unwrap();

        let bus = MemoryBus::new(
            outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
        );
        let inbox = MemoryInbox::new();
        let invoicing = outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports())
            .consumers()
            .to_vec()
            .into_iter()
            .find(|r| r.name() == "invoicing")
            .unwrap();
        let consumer = ConsumeService::new(
            Arc::new(inbox.clone()),
            invoicing,
            Arc::new(letters.clone()),
        );
        let service = RedriveService::new(
            Arc::new(letters.clone()),
            Arc::new(bus.clone()),
            decode_raw(),
        )
        .with_consumer(consumer);

        let by_aggregate = LetterFilter {
            aggregate: Some(other.aggregate()),
            ..LetterFilter::default()
        };
        let summary = service
            .redrive(&by_aggregate, 100, |_, _| {})
            .await
            .unwrap();
        assert_eq!((summary.accepted, summary.skipped), (1, 2));
        assert_eq!(bus.accepted(), vec![other]);

        let by_reason = LetterFilter {
            reason: Some("inbox".into()),
            ..LetterFilter::default()
        };
        let summary = service.redrive(&by_reason, 100, |_, _| {}).await.unwrap();
        assert_eq!((summary.accepted, summary.skipped), (1, 1));
        assert_eq!(
            bus.accepted().len(),
            1,
            "a consumer's letter is not published again"
        );
        let invoices = inbox.effects_of("invoicing");
        assert_eq!(invoices.len(), 1);
        assert_eq!(invoices[0].event_id, completed.event_id);
        assert_eq!(letters.waiting(), vec![relay_letter(events[0].clone(), 1)]);
    });
}
