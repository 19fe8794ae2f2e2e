//! The store contract, run against the in-memory store, dynoxide (single table and
//! separate outbox table) and moto: atomic commits, no lost update under 32
//! concurrent writers, idempotent replay, limits enforced before any call, and the
//! stream → relay round trip, including a relay killed mid-batch and restarted.

// The rules below are helpers shared by generated tests; a panic is how they fail.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use uuid::Uuid;

use outbox_application::envelope::EventContext;
use outbox_application::ports::{
    BatchLimits, DeadLetterPayload, EventPublisher, PublishError, PublishOutcome, StoreError,
};
use outbox_application::{
    AggregateId, CommandError, CommandPolicy, CommandService, ConsumeError, ConsumeService,
    Consumed, EventEnvelope, EventId, IdempotencyKey, LimitError, ParkingPolicy, Relay,
    RequestMeta, Target, Traceparent, WriteLimits, WriteSet,
};
use outbox_domain::{decide, fold, Version};
use outbox_memory::{MemoryDeadLetterQueue, MemoryDocuments, SequentialIds, StepClock};
use outbox_seeds::reactions::{Invoicing, OrderTracking};
use outbox_seeds_domain::repair::{Repair, RepairCommand};
use outbox_tests::backends::{Backend, BackendInbox, RelayWorker};
use outbox_tests::{delivery, keyed, line_item, open_repair, order_events, text};

/// A publisher standing in for a bus that keeps order per aggregate (so the
/// relay keeps the stream's order per aggregate, and the tests can see it); it
/// records every entry it accepts and can hang forever on one call, after
/// accepting it — a relay process dying before it checkpoints.
#[derive(Default)]
struct RecordingPublisher {
    accepted: Mutex<Vec<EventEnvelope>>,
    last_call: Mutex<Vec<EventId>>,
    calls: AtomicUsize,
    hang_on_call: Option<usize>,
    hung: Notify,
}

impl RecordingPublisher {
    fn hanging_on(call: usize) -> Self {
        Self {
            hang_on_call: Some(call),
            ..Self::default()
        }
    }

    fn accepted(&self) -> Vec<EventEnvelope> {
        self.accepted.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventPublisher for RecordingPublisher {
    fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_entries: 10,
            ..BatchLimits::CUSTOM_EVENT_BUS
        }
    }

    fn entry_size(&self, event: &EventEnvelope) -> usize {
        serde_json::to_string(event).map_or(usize::MAX, |json| json.len())
    }

    async fn publish(&self, events: &[EventEnvelope]) -> Result<Vec<PublishOutcome>, PublishError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.accepted.lock().unwrap().extend_from_slice(events);
        *self.last_call.lock().unwrap() = events.iter().map(|e| e.event_id).collect();
        if self.hang_on_call == Some(call) {
            self.hung.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(vec![PublishOutcome::Published; events.len()])
    }
}

fn service(backend: &Backend, max_attempts: u32) -> CommandService {
    CommandService::new(
        backend.store(),
        Arc::new(StepClock::default()),
        Arc::new(SequentialIds::default()),
        CommandPolicy { max_attempts },
    )
}

fn context() -> EventContext {
    EventContext {
        occurred_at: time::OffsetDateTime::UNIX_EPOCH,
        correlation_id: "contract".into(),
        causation_id: "contract".into(),
        traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
    }
}

/// The write set that opens repair `id` for `customer`, with an optional key.
fn opening(id: AggregateId, customer: &str, key: Option<&str>) -> WriteSet {
    let decision = decide::<Repair>(&None, Version::INITIAL, &open_repair(customer)).unwrap();
    let request = key.map(|k| (IdempotencyKey::parse(k).unwrap(), Uuid::from_u128(7)));
    WriteSet::from_decision(id, &decision, &context(), Uuid::now_v7(), request).unwrap()
}

async fn a_failed_condition_writes_nothing(backend: Backend) {
    let store = backend.store();
    let id = AggregateId::from_uuid(Uuid::now_v7());
    let first = opening(id, "Ada", Some("open-ada"));
    store.commit(&first).await.unwrap();
    let before = (
        store.load(&first.aggregate).await.unwrap(),
        backend.outbox_of(&first.aggregate).await,
    );

    let stale = opening(id, "Bob", None);
    let error = store.commit(&stale).await.unwrap_err();
    assert!(
        matches!(error, StoreError::VersionConflict { .. }),
        "{}: {error}",
        backend.name
    );

    // Right version, but a key committed before: the state put must not happen either.
    let state = serde_json::from_value(first.state.state.clone()).unwrap();
    let decision = decide::<Repair>(&state, Version::new(1), &RepairCommand::StartWork).unwrap();
    let reused = WriteSet::from_decision(
        id,
        &decision,
        &context(),
        Uuid::now_v7(),
        Some((
            IdempotencyKey::parse("open-ada").unwrap(),
            Uuid::from_u128(8),
        )),
    )
    .unwrap();
    let error = store.commit(&reused).await.unwrap_err();
    assert!(
        matches!(error, StoreError::DuplicateRequest(_)),
        "{}: {error}",
        backend.name
    );

    let after = (
        store.load(&first.aggregate).await.unwrap(),
        backend.outbox_of(&first.aggregate).await,
    );
    assert_eq!(
        after, before,
        "{}: a cancelled commit changed state or outbox",
        backend.name
    );
    assert_eq!(after.1.len(), 1);
}

async fn concurrent_writers_lose_no_update(backend: Backend) {
    let service = Arc::new(service(&backend, 5));
    let (opened, id) = started_repair(&service).await;

    let started = std::time::Instant::now();
    let writers: Vec<_> = (0..32)
        .map(|i| {
            let service = Arc::clone(&service);
            tokio::spawn(async move {
                service
                    .execute::<Repair>(id, &line_item(100 + i), &RequestMeta::default())
                    .await
            })
        })
        .collect();
    let mut committed = Vec::new();
    let (mut gave_up, mut throttled) = (0, 0);
    for writer in writers {
        match writer.await.unwrap() {
            Ok(outcome) => committed.push(outcome),
            Err(CommandError::Conflict { .. }) => gave_up += 1,
            Err(CommandError::Unavailable(_)) => throttled += 1,
            Err(other) => panic!("{}: unexpected failure: {other}", backend.name),
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{}: 32 writers, {} committed, {gave_up} gave up after 5 conflicts, {throttled} throttled, {elapsed:?}",
        backend.name,
        committed.len()
    );
    let outbox = backend.outbox_of(&opened.aggregate).await;
    let state = backend
        .store()
        .load(&opened.aggregate)
        .await
        .unwrap()
        .unwrap();
    let expected = 2 + committed.len() as u64;
    assert_eq!(state.version, Version::new(expected), "{}", backend.name);
    let versions: Vec<u64> = outbox.iter().map(|e| e.aggregate_version.value()).collect();
    assert_eq!(
        versions,
        (1..=expected).collect::<Vec<_>>(),
        "{}",
        backend.name
    );
    let stored: HashSet<EventId> = outbox.iter().map(|e| e.event_id).collect();
    for outcome in &committed {
        assert_eq!(outcome.event_ids.len(), 1);
        assert!(
            stored.contains(&outcome.event_ids[0]),
            "{}: a committed event is missing",
            backend.name
        );
    }
    let events: Vec<_> = outbox
        .iter()
        .map(|e| e.decode::<Repair>().unwrap())
        .collect();
    let replayed = fold::<Repair>(None, &events);
    assert_eq!(
        serde_json::to_value(&replayed).unwrap(),
        state.state,
        "{}",
        backend.name
    );
    assert!(
        !committed.is_empty(),
        "{}: no writer got through",
        backend.name
    );
}

async fn a_repeated_request_is_replayed_not_recommitted(backend: Backend) {
    let service = service(&backend, 5);
    let meta = keyed("open-once");
    let first = service
        .execute::<Repair>(Target::New, &open_repair("Ada"), &meta)
        .await
        .unwrap();
    let again = service
        .execute::<Repair>(Target::New, &open_repair("Ada"), &meta)
        .await
        .unwrap();
    assert!(again.replayed, "{}", backend.name);
    assert_eq!(
        (
            again.aggregate.clone(),
            again.version,
            again.event_ids.clone()
        ),
        (
            first.aggregate.clone(),
            first.version,
            first.event_ids.clone()
        )
    );
    assert_eq!(
        backend.outbox_of(&first.aggregate).await.len(),
        1,
        "{}",
        backend.name
    );

    // The same write sent twice with one ClientRequestToken, as an SDK retry does.
    let store = backend.store();
    let write = opening(AggregateId::from_uuid(Uuid::now_v7()), "Bob", None);
    store.commit(&write).await.unwrap();
    let repeated = store.commit(&write).await;
    if backend.honours_request_token {
        assert!(repeated.is_ok(), "{}: {repeated:?}", backend.name);
    } else {
        assert!(
            matches!(repeated, Err(StoreError::VersionConflict { .. })),
            "{}: {repeated:?}",
            backend.name
        );
    }
    assert_eq!(
        backend.outbox_of(&write.aggregate).await.len(),
        1,
        "{}: written twice",
        backend.name
    );
}

async fn limits_are_refused_before_any_call(backend: Backend) {
    let limits = backend.store().limits();
    assert_eq!(
        limits,
        WriteLimits::default(),
        "{}: DynamoDB's limits",
        backend.name
    );
    let mut write = opening(
        AggregateId::from_uuid(Uuid::now_v7()),
        "Ada",
        Some("too-long"),
    );
    let event = write.outbox[0].clone();
    write.outbox = vec![event; 99];
    assert_eq!(
        write.check(&limits),
        Err(LimitError::TooManyActions {
            actions: 101,
            max: 100
        })
    );
    // A repair whose line items grow its state past 400 KB: the command that
    // would cross the limit is refused by the use case, and no commit of it
    // reaches the store.
    let service = service(&backend, 1);
    let meta = RequestMeta::default();
    let (opened, repair) = started_repair(&service).await;
    let long_item = RepairCommand::AddLineItem {
        description: text(&"x".repeat(outbox_domain::Text::MAX_CHARS)),
        price_cents: outbox_domain::Money::from_cents(1).unwrap(),
    };
    let mut accepted = 0;
    let (refusal, commits) = loop {
        let calls = backend.store_calls();
        match service.execute::<Repair>(repair, &long_item, &meta).await {
            Ok(_) => accepted += 1,
            Err(error) => break (error, backend.store_calls() - calls),
        }
        assert!(
            accepted < 400,
            "{}: the state never outgrew the limit",
            backend.name
        );
    };
    assert!(
        accepted > 150,
        "{}: refused early, after {accepted}",
        backend.name
    );
    if backend.sizes_items_as_dynamodb {
        assert!(
            matches!(
                refusal,
                CommandError::TooLarge(LimitError::ItemTooLarge { .. })
            ),
            "{}: {refusal:?}",
            backend.name
        );
        assert_eq!(
            commits, 0,
            "{}: a refused write reached the store",
            backend.name
        );
    } else {
        // The store's own, stricter measure refused first: still a typed limit.
        assert!(
            matches!(
                refusal,
                CommandError::TooLarge(LimitError::RefusedByStore { .. })
            ),
            "{}: {refusal:?}",
            backend.name
        );
        assert_eq!(commits, 1, "{}", backend.name);
    }
    let outbox = backend.outbox_of(&opened.aggregate).await;
    assert_eq!(
        outbox.len(),
        2 + accepted,
        "{}: the refused command wrote nothing",
        backend.name
    );
}

/// A repair opened and started: its first result, and the target of its next commands.
async fn started_repair(service: &CommandService) -> (outbox_application::CommandOutcome, Target) {
    let meta = RequestMeta::default();
    let opened = service
        .execute::<Repair>(Target::New, &open_repair("Ada"), &meta)
        .await
        .unwrap();
    let repair = Target::Existing(opened.aggregate.aggregate_id);
    service
        .execute::<Repair>(repair, &RepairCommand::StartWork, &meta)
        .await
        .unwrap();
    (opened, repair)
}

/// A client that timed out repeats its request while the first is still
/// running: twenty simultaneous repeats with one key all get the first answer,
/// and exactly one set of events is stored.
async fn concurrent_repeats_of_one_key_all_get_the_first_answer(backend: Backend) {
    let service = service(&backend, 5);
    let (opened, repair) = started_repair(&service).await;
    let key = format!("complete-{}", Uuid::now_v7().simple());
    let repeats: Vec<_> = (0..20)
        .map(|_| {
            let service = service.clone();
            let meta = keyed(&key);
            tokio::spawn(async move {
                service
                    .execute::<Repair>(repair, &RepairCommand::CompleteRepair, &meta)
                    .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for repeat in repeats {
        answers.push(repeat.await.unwrap());
    }
    let answers: Vec<_> = answers
        .into_iter()
        .map(|answer| answer.unwrap_or_else(|error| panic!("{}: refused: {error}", backend.name)))
        .collect();
    let first = &answers[0];
    for answer in &answers {
        assert_eq!(
            (&answer.aggregate, answer.version, &answer.event_ids),
            (&first.aggregate, first.version, &first.event_ids),
            "{}: every answer is the first one",
            backend.name
        );
    }
    assert!(
        answers.iter().filter(|a| !a.replayed).count() <= 1,
        "{}: one request committed, the rest replayed",
        backend.name
    );
    let completed = backend
        .outbox_of(&opened.aggregate)
        .await
        .into_iter()
        .filter(|e| e.event_type == "RepairCompleted")
        .count();
    assert_eq!(completed, 1, "{}: one RepairCompleted stored", backend.name);
}

/// Opens `aggregates` repairs and moves them round-robin, so neighbouring events
/// belong to different aggregates; returns the outbox.
async fn write_events(backend: &Backend, aggregates: usize) -> Vec<EventEnvelope> {
    let service = service(backend, 5);
    let meta = RequestMeta::default();
    let mut ids = Vec::new();
    for n in 0..aggregates {
        let outcome = service
            .execute::<Repair>(Target::New, &open_repair(&format!("C{n}")), &meta)
            .await
            .unwrap();
        ids.push(Target::Existing(outcome.aggregate.aggregate_id));
    }
    for command in [RepairCommand::StartWork, line_item(4_999)] {
        for id in &ids {
            service
                .execute::<Repair>(*id, &command, &meta)
                .await
                .unwrap();
        }
    }
    backend.outbox().await
}

/// Polls `worker` until `done` holds, failing after a generous deadline.
async fn poll_until(
    worker: &mut outbox_tests::backends::RelayWorker,
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        if !worker.poll().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Versions of each aggregate in order of first publication.
fn first_publication_order(published: &[EventEnvelope]) -> BTreeMap<String, Vec<u64>> {
    let mut seen = HashSet::new();
    let mut order: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for event in published {
        if seen.insert(event.event_id) {
            order
                .entry(event.aggregate().to_string())
                .or_default()
                .push(event.aggregate_version.value());
        }
    }
    order
}

async fn the_stream_carries_every_event_to_the_relay_in_order(backend: Backend) {
    let outbox = write_events(&backend, 4).await;
    backend.write_poison().await;
    assert_eq!(outbox.len(), 12, "{}", backend.name);
    let publisher = Arc::new(RecordingPublisher::default());
    let dead_letters = MemoryDeadLetterQueue::new();
    let relay = Relay::new(publisher.clone(), Arc::new(dead_letters.clone()));
    let mut worker = backend.relay_worker(relay).await;
    let expected: HashSet<EventId> = outbox.iter().map(|e| e.event_id).collect();
    poll_until(&mut worker, "every event to be published", || {
        let published: HashSet<EventId> = publisher.accepted().iter().map(|e| e.event_id).collect();
        published == expected && !dead_letters.letters().is_empty()
    })
    .await;
    for (aggregate, versions) in first_publication_order(&publisher.accepted()) {
        assert_eq!(
            versions,
            vec![1, 2, 3],
            "{}: {aggregate} published out of order",
            backend.name
        );
    }
    let letters = dead_letters.letters();
    assert_eq!(
        letters.len(),
        1,
        "{}: the poison record is dead-lettered once",
        backend.name
    );
    assert!(
        matches!(&letters[0].payload, DeadLetterPayload::Raw { raw } if raw.contains("42")),
        "{}: {:?}",
        backend.name,
        letters[0]
    );
}

async fn a_relay_killed_mid_batch_loses_nothing(backend: Backend) {
    let outbox = write_events(&backend, 4).await;
    let expected: HashSet<EventId> = outbox.iter().map(|e| e.event_id).collect();
    let dead_letters = Arc::new(MemoryDeadLetterQueue::new());

    // The first process accepts its third publish call, then dies before checkpointing it.
    let dying = Arc::new(RecordingPublisher::hanging_on(3));
    let mut worker = backend
        .relay_worker(Relay::new(dying.clone(), dead_letters.clone()))
        .await;
    tokio::select! {
        () = dying.hung.notified() => {}
        () = async { loop { worker.poll().await; tokio::time::sleep(Duration::from_millis(20)).await; } } => {}
        () = tokio::time::sleep(Duration::from_secs(60)) => panic!("{}: the relay never reached its third publish", backend.name),
    }
    drop(worker);
    let before_kill = dying.accepted();
    let hung_call = dying.last_call.lock().unwrap().clone();

    // A new process resumes from the checkpoint.
    let publisher = Arc::new(RecordingPublisher::default());
    let mut worker = backend
        .relay_worker(Relay::new(publisher.clone(), dead_letters.clone()))
        .await;
    let mut all = before_kill.clone();
    poll_until(&mut worker, "the restarted relay to catch up", || {
        let published: HashSet<EventId> = before_kill
            .iter()
            .chain(publisher.accepted().iter())
            .map(|e| e.event_id)
            .collect();
        published == expected
    })
    .await;
    let after = publisher.accepted();
    all.extend(after.iter().cloned());
    let mut counts: HashMap<EventId, usize> = HashMap::new();
    for event in &all {
        *counts.entry(event.event_id).or_default() += 1;
    }
    let repeated: HashSet<EventId> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    let killed: HashSet<EventId> = before_kill.iter().map(|e| e.event_id).collect();
    println!(
        "{}: {} published before the kill, {} after, {} repeated",
        backend.name,
        before_kill.len(),
        after.len(),
        repeated.len()
    );
    assert!(
        repeated.is_subset(&killed),
        "{}: an event not published before the kill was repeated",
        backend.name
    );
    assert!(
        !repeated.is_empty(),
        "{}: the unfinished batch must come again",
        backend.name
    );
    assert!(
        repeated.len() < killed.len(),
        "{}: checkpointed events were published again",
        backend.name
    );
    assert!(
        hung_call.iter().all(|id| repeated.contains(id)),
        "{}: the batch that died unacknowledged must come again",
        backend.name
    );
    for (aggregate, versions) in first_publication_order(&all) {
        assert_eq!(
            versions,
            vec![1, 2, 3],
            "{}: {aggregate} published out of order",
            backend.name
        );
    }
    assert!(counts.values().all(|n| *n <= 2), "{}", backend.name);
}

/// The inbox: eight concurrent deliveries of one event make its call once,
/// under the claim, and record its invoice once; a later delivery finds the
/// completed mark and writes nothing.
async fn an_effect_is_recorded_once_however_often_the_event_arrives(backend: Backend) {
    let inbox = backend.inbox();
    let service = service(&backend, 5);
    let meta = RequestMeta::default();
    let opened = service
        .execute::<Repair>(Target::New, &open_repair("Ada"), &meta)
        .await
        .unwrap();
    let repair = Target::Existing(opened.aggregate.aggregate_id);
    for command in [
        RepairCommand::StartWork,
        line_item(12_000),
        RepairCommand::CompleteRepair,
    ] {
        service
            .execute::<Repair>(repair, &command, &meta)
            .await
            .unwrap();
    }
    let completed = backend
        .outbox_of(&opened.aggregate)
        .await
        .into_iter()
        .find(|e| e.event_type == "RepairCompleted")
        .expect("the repair was completed");
    let documents = MemoryDocuments::new();
    let consume = ConsumeService::new(
        inbox.port(),
        Arc::new(Invoicing::new(Arc::new(documents.clone()))),
        Arc::new(MemoryDeadLetterQueue::new()),
    );
    let deliveries: Vec<_> = (0..8)
        .map(|_| {
            let consume = consume.clone();
            let event = completed.clone();
            tokio::spawn(async move { consume.consume(delivery(&event)).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for delivery in deliveries {
        match delivery.await.unwrap() {
            Ok(outcome) => outcomes.push(outcome),
            Err(ConsumeError::InProgress { .. }) => {}
            Err(error) => panic!("{}: {error}", backend.name),
        }
    }
    assert_eq!(
        outcomes.iter().filter(|o| **o == Consumed::Called).count(),
        1,
        "{}: {outcomes:?}",
        backend.name
    );
    assert_eq!(
        documents.puts().values().sum::<usize>(),
        1,
        "{}: one call",
        backend.name
    );
    assert_eq!(
        consume.consume(delivery(&completed)).await.unwrap(),
        Consumed::Duplicate,
        "{}",
        backend.name
    );
    let invoices = inbox.effects_of("invoicing").await;
    assert_eq!(invoices.len(), 1, "{}: {invoices:?}", backend.name);
    assert_eq!(invoices[0].event_id, completed.event_id);
    assert_eq!(invoices[0].data["amountCents"], 12_000, "{}", backend.name);
}

/// Eight deliveries at a time of one order's versions `1..=n`, each delivered
/// twice, in random order, each handed back while it waits for an earlier
/// one: the ordered consumer applies `n` effects, once each, in version order.
async fn concurrent_deliveries_in_random_order_apply_in_version_order(backend: Backend) {
    const N: u64 = 12;
    let inbox = backend.inbox();
    let seed = Uuid::now_v7().as_u128();
    let events = order_events(seed, N, true);
    let aggregate = events[0].aggregate();
    let consume = ConsumeService::new(
        inbox.port(),
        Arc::new(OrderTracking),
        Arc::new(MemoryDeadLetterQueue::new()),
    )
    .with_parking(ParkingPolicy {
        max_attempts: u32::MAX,
        max_wait: Duration::from_secs(3600),
    });
    // A random permutation, reproducible from the seed in the failure message.
    let mut state = seed as u64 | 1;
    let mut pool: Vec<(EventEnvelope, u32)> = events
        .iter()
        .chain(&events)
        .map(|e| (e.clone(), 0))
        .collect();
    for i in (1..pool.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        pool.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let pool = Arc::new(Mutex::new(std::collections::VecDeque::from(pool)));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let applied = Arc::new(AtomicUsize::new(0));
    let handed_back = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (consume, pool) = (consume.clone(), Arc::clone(&pool));
            let (acknowledged, handed_back) = (Arc::clone(&acknowledged), Arc::clone(&handed_back));
            let applied = Arc::clone(&applied);
            tokio::spawn(async move {
                while acknowledged.load(Ordering::SeqCst) < 2 * N as usize {
                    let next = pool.lock().unwrap().pop_front();
                    let Some((event, received)) = next else {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        continue;
                    };
                    let mut delivery = delivery(&event);
                    delivery.receive_count = received + 1;
                    match consume.consume(delivery).await {
                        Ok(outcome) => {
                            if outcome == Consumed::Applied {
                                applied.fetch_add(1, Ordering::SeqCst);
                            }
                            acknowledged.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(ConsumeError::OutOfOrder { .. } | ConsumeError::Contended(_)) => {
                            handed_back.fetch_add(1, Ordering::SeqCst);
                            pool.lock().unwrap().push_back((event, received + 1));
                        }
                        Err(error) => panic!("{error}"),
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(120), worker)
            .await
            .expect("the deliveries settle")
            .unwrap();
    }
    let history = inbox.history("order-tracking", &aggregate).await;
    let versions: Vec<u64> = history
        .iter()
        .map(|effect| effect.data["version"].as_u64().unwrap())
        .collect();
    assert_eq!(
        versions,
        (1..=N).collect::<Vec<_>>(),
        "{}: seed {seed}, {} deliveries handed back",
        backend.name,
        handed_back.load(Ordering::SeqCst)
    );
    let sequence = inbox
        .port()
        .sequence("order-tracking", &aggregate)
        .await
        .unwrap();
    assert_eq!(sequence.applied, Version::new(N), "{}", backend.name);
    assert!(sequence.parking.is_none(), "{}", backend.name);
    assert_eq!(
        applied.load(Ordering::SeqCst),
        N as usize,
        "{}: seed {seed}: each version applied by one delivery, its repeat dropped",
        backend.name
    );
}

/// What each outcome of an ordered consumer costs on the wire, beside an
/// unordered one's: an event applied in order is one read and one transaction
/// (the same as an unordered consumer's), an event it does not act on one
/// read and one conditioned put, a repeat one read and the counter, an event
/// ahead of a gap one read and nothing written.
async fn an_ordered_event_costs_what_an_unordered_one_does(backend: Backend) {
    let inbox = backend.inbox();
    let BackendInbox::Dynamo(_, log) = &inbox else {
        panic!("{}: requests are counted on DynamoDB only", backend.name);
    };
    let events = order_events(Uuid::now_v7().as_u128(), 4, true);
    let service = |reaction: Arc<dyn outbox_application::Reaction>| {
        ConsumeService::new(
            inbox.port(),
            reaction,
            Arc::new(MemoryDeadLetterQueue::new()),
        )
    };
    let tracking = service(Arc::new(OrderTracking));
    let restaurant = service(Arc::new(outbox_seeds::reactions::RestaurantNotification));
    let shipping = service(Arc::new(outbox_seeds::reactions::Shipping));
    log.take();
    let cost =
        |outcome: Result<Consumed, ConsumeError>| (outcome.map_err(|e| e.to_string()), log.take());
    let read_and = |write: &str| vec!["GetItem".to_owned(), write.to_owned()];
    assert_eq!(
        cost(tracking.consume(delivery(&events[0])).await),
        (Ok(Consumed::Applied), read_and("TransactWriteItems")),
        "{}: applied in order",
        backend.name
    );
    assert_eq!(
        cost(shipping.consume(delivery(&events[0])).await),
        (Ok(Consumed::Applied), read_and("TransactWriteItems")),
        "{}: applied, unordered",
        backend.name
    );
    restaurant.consume(delivery(&events[0])).await.unwrap();
    log.take();
    assert_eq!(
        cost(restaurant.consume(delivery(&events[1])).await),
        (Ok(Consumed::Ignored), read_and("PutItem")),
        "{}: a status change restaurant notification does not act on",
        backend.name
    );
    assert_eq!(
        cost(tracking.consume(delivery(&events[0])).await),
        (Ok(Consumed::Duplicate), read_and("UpdateItem")),
        "{}: a repeat, ordered",
        backend.name
    );
    assert_eq!(
        cost(shipping.consume(delivery(&events[0])).await),
        (Ok(Consumed::Duplicate), read_and("UpdateItem")),
        "{}: a repeat, unordered",
        backend.name
    );
    let (ahead, requests) = cost(tracking.consume(delivery(&events[3])).await);
    assert!(
        ahead.unwrap_err().contains("waits for version 2"),
        "{}",
        backend.name
    );
    assert_eq!(
        requests,
        vec!["GetItem".to_owned()],
        "{}: ahead of a gap",
        backend.name
    );
}

/// What an external effect costs on the wire: a call with a record is one
/// read, the claim's put and one transaction (completed mark and record); a
/// call without one the same (the completed mark alone); a repeat one read and
/// the counter, as a data effect's; a retryable failure one read, the claim
/// and its delete.
async fn an_external_effect_costs_a_claim_and_a_completion(backend: Backend) {
    let inbox = backend.inbox();
    let BackendInbox::Dynamo(_, log) = &inbox else {
        panic!("{}: requests are counted on DynamoDB only", backend.name);
    };
    let completed = outbox_tests::one_event_of_each_type()
        .await
        .into_iter()
        .find(|event| event.event_type == "RepairCompleted")
        .expect("a completed repair");
    let outside = outbox_memory::MemoryOutside::new();
    let service = |reaction: Arc<dyn outbox_application::Reaction>| {
        ConsumeService::new(
            inbox.port(),
            reaction,
            Arc::new(MemoryDeadLetterQueue::new()),
        )
    };
    let invoicing = service(Arc::new(Invoicing::new(Arc::new(
        outside.documents.clone(),
    ))));
    let notification = service(Arc::new(
        outbox_seeds::reactions::CustomerNotification::new(Arc::new(outside.mailer.clone())),
    ));
    log.take();
    let cost =
        |outcome: Result<Consumed, ConsumeError>| (outcome.map_err(|e| e.to_string()), log.take());
    let names = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        cost(invoicing.consume(delivery(&completed)).await),
        (
            Ok(Consumed::Called),
            names(&["GetItem", "PutItem", "TransactWriteItems"])
        ),
        "{}: a call with its record",
        backend.name
    );
    assert_eq!(
        cost(invoicing.consume(delivery(&completed)).await),
        (Ok(Consumed::Duplicate), names(&["GetItem", "UpdateItem"])),
        "{}: a repeat",
        backend.name
    );
    outside.mailer.failing_next(1);
    let (failed, requests) = cost(notification.consume(delivery(&completed)).await);
    assert!(
        matches!(failed, Err(ref e) if e.contains("the Email call failed")),
        "{}: {failed:?}",
        backend.name
    );
    assert_eq!(
        requests,
        names(&["GetItem", "PutItem", "DeleteItem"]),
        "{}: a retryable failure releases the claim",
        backend.name
    );
    assert_eq!(
        cost(notification.consume(delivery(&completed)).await),
        (
            Ok(Consumed::Called),
            names(&["GetItem", "PutItem", "TransactWriteItems"])
        ),
        "{}: a call without a record",
        backend.name
    );
    assert_eq!(outside.mailer.sent().len(), 1, "{}", backend.name);
}

/// Generates one test per contract rule for a backend.
macro_rules! contract {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_failed_condition_writes_nothing() {
                super::a_failed_condition_writes_nothing($make).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn thirty_two_concurrent_writers_lose_no_update() {
                super::concurrent_writers_lose_no_update($make).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_repeated_request_is_replayed_not_recommitted() {
                super::a_repeated_request_is_replayed_not_recommitted($make).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_repeats_of_one_key_all_get_the_first_answer() {
                super::concurrent_repeats_of_one_key_all_get_the_first_answer($make).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn limits_are_refused_before_any_call() {
                super::limits_are_refused_before_any_call($make).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn the_stream_carries_every_event_to_the_relay_in_order() {
                super::the_stream_carries_every_event_to_the_relay_in_order($make).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn an_effect_is_recorded_once_however_often_the_event_arrives() {
                super::an_effect_is_recorded_once_however_often_the_event_arrives($make).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_relay_killed_mid_batch_loses_nothing() {
                super::a_relay_killed_mid_batch_loses_nothing($make).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_deliveries_in_random_order_apply_in_version_order() {
                super::concurrent_deliveries_in_random_order_apply_in_version_order($make).await;
            }
        }
    };
}

contract!(memory, Backend::memory());
contract!(dynoxide, Backend::dynoxide(false).await);
contract!(dynoxide_outbox_table, Backend::dynoxide(true).await);
contract!(moto, Backend::moto().await);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynoxide_an_ordered_event_costs_what_an_unordered_one_does() {
    an_ordered_event_costs_what_an_unordered_one_does(Backend::dynoxide(false).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_moto_an_ordered_event_costs_what_an_unordered_one_does() {
    an_ordered_event_costs_what_an_unordered_one_does(Backend::moto().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynoxide_an_external_effect_costs_a_claim_and_a_completion() {
    an_external_effect_costs_a_claim_and_a_completion(Backend::dynoxide(false).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_moto_an_external_effect_costs_a_claim_and_a_completion() {
    an_external_effect_costs_a_claim_and_a_completion(Backend::moto().await).await;
}

/// The long-running relay loop of a container: it publishes events as they are
/// committed, while it runs, and returns when asked to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_stream_relay_follows_the_stream_and_stops_on_request() {
    let backend = Backend::dynoxide(false).await;
    let publisher = Arc::new(RecordingPublisher::default());
    let relay = Relay::new(publisher.clone(), Arc::new(MemoryDeadLetterQueue::new()));
    let RelayWorker::Dynamo(mut worker) = backend.relay_worker(relay).await else {
        panic!("dynoxide has a DynamoDB stream");
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        worker
            .run(async {
                let _ = stopped.await;
            })
            .await;
    });
    let expected: HashSet<EventId> = write_events(&backend, 2)
        .await
        .iter()
        .map(|e| e.event_id)
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let published: HashSet<EventId> = publisher.accepted().iter().map(|e| e.event_id).collect();
        if published == expected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the running relay fell behind"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the relay stops when asked")
        .unwrap();
}
