//! Property tests: random interleavings of commands over several aggregates of
//! both kinds, with faults injected at random steps at every hop, never let state
//! and outbox diverge, never leak a failed commit, never double an effect.
//!
//! What the bus promises decides what delivery must show. On a classic bus
//! every event is published at least once, in no promised order. On a Custom
//! Event Bus, per aggregate the bus first accepts events in version order, and
//! an event published again within the deduplication window is not accepted
//! twice.
//!
//! The classic cases run on the in-memory store (`PROPTEST_CASES`, default
//! 2000) and on DynamoDB on embedded dynoxide, read through its stream by the
//! self-hosted relay (`DYNOXIDE_PROPTEST_CASES`, default 200); the Custom Event
//! Bus cases on the in-memory store (`CUSTOM_BUS_PROPTEST_CASES`, default
//! 1000). A failing case prints its shrunk steps. Three mutation checks break
//! one rule each — an adapter that loses entries, a relay that packs an ordered
//! bus's calls freely, a bus that forgets repeats — and require the same
//! property to find a failing case and shrink it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use outbox_application::ports::{BusOrder, DeadLetterPayload};
use outbox_application::{AggregateId, CommandOutcome, IdempotencyKey, RequestMeta, Target};
use outbox_bootstrap::clients::LocalClients;
use outbox_bootstrap::embedded::EmbeddedDynamo;
use outbox_dynamodb::{create_tables, stream_arn, DynamoStore, TableLayout};
use outbox_memory::{MemoryBus, StepClock, DEDUPLICATION_WINDOW};
use outbox_seeds_domain::order::{Order, OrderCommand, OrderStatus};
use outbox_seeds_domain::repair::{Repair, RepairCommand};
use outbox_simulation::faults::{DeadLetterFault, InboxFault, PublisherFault, StoreFault};
use outbox_simulation::{
    audit, audit_delivery, Backend, BusPromise, DynamoBackend, MemoryBackend, Pipeline, Violation,
};
use outbox_tests::{line_item, open_repair, place_order, runtime, text};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestError, TestRng, TestRunner};

/// The aggregate slots per kind a case works on.
const SLOTS: usize = 3;

#[derive(Debug, Clone)]
enum RepairAction {
    Open,
    Start,
    AddItem(i64),
    Complete,
    Cancel,
}

#[derive(Debug, Clone)]
enum OrderAction {
    Place(usize),
    Move(OrderStatus),
    Cancel,
}

#[derive(Debug, Clone)]
enum Action {
    Repair(RepairAction),
    Order(OrderAction),
}

#[derive(Debug, Clone)]
enum HopFault {
    Bus(PublisherFault),
    DeadLettersDown,
    ConsumerCrash(usize),
    InboxDown(usize),
}

#[derive(Debug, Clone)]
enum Step {
    /// A client command on a slot, maybe with a key, maybe suffering a store fault.
    Command {
        slot: usize,
        action: Action,
        key: Option<u8>,
        fault: Option<StoreFault>,
    },
    /// One relay invocation, maybe with a fault.
    Relay(Option<HopFault>),
    /// One round of consumers, maybe with a fault.
    Consume(Option<HopFault>),
    /// A malformed outbox record from a foreign writer.
    Poison,
}

fn repair_action() -> impl Strategy<Value = RepairAction> {
    prop_oneof![
        Just(RepairAction::Open),
        Just(RepairAction::Start),
        (0i64..10_000).prop_map(RepairAction::AddItem),
        Just(RepairAction::Complete),
        Just(RepairAction::Cancel),
    ]
}

fn order_action() -> impl Strategy<Value = OrderAction> {
    prop_oneof![
        (0usize..4).prop_map(OrderAction::Place),
        proptest::sample::select(OrderStatus::ALL.to_vec()).prop_map(OrderAction::Move),
        Just(OrderAction::Cancel),
    ]
}

fn store_fault() -> impl Strategy<Value = Option<StoreFault>> {
    prop_oneof![
        6 => Just(None),
        1 => Just(Some(StoreFault::FailBeforeCommit)),
        1 => Just(Some(StoreFault::FailAfterCommit)),
        1 => Just(Some(StoreFault::Throttle)),
    ]
}

fn relay_fault() -> impl Strategy<Value = Option<HopFault>> {
    relay_fault_or(Just(None))
}

/// The relay's faults, or `broken` once in a while instead of no fault.
fn relay_fault_or(
    broken: impl Strategy<Value = Option<HopFault>> + 'static,
) -> impl Strategy<Value = Option<HopFault>> {
    prop_oneof![
        3 => Just(None),
        1 => broken,
        1 => (proptest::collection::hash_set(0usize..10, 1..4), any::<bool>())
            .prop_map(|(entries, retryable)| Some(HopFault::Bus(PublisherFault::Reject { entries, retryable }))),
        1 => Just(Some(HopFault::Bus(PublisherFault::Throttle))),
        1 => Just(Some(HopFault::Bus(PublisherFault::CrashMidBatch))),
        1 => Just(Some(HopFault::Bus(PublisherFault::Duplicate))),
        1 => Just(Some(HopFault::DeadLettersDown)),
    ]
}

fn consume_fault() -> impl Strategy<Value = Option<HopFault>> {
    prop_oneof![
        3 => Just(None),
        1 => (0usize..5).prop_map(|s| Some(HopFault::ConsumerCrash(s))),
        1 => (0usize..5).prop_map(|s| Some(HopFault::InboxDown(s))),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    step_with(relay_fault())
}

/// A step whose relay faults come from `relay_faults`.
fn step_with(
    relay_faults: impl Strategy<Value = Option<HopFault>> + 'static,
) -> impl Strategy<Value = Step> {
    let action = prop_oneof![
        repair_action().prop_map(Action::Repair),
        order_action().prop_map(Action::Order),
    ];
    prop_oneof![
        6 => (0..SLOTS, action, proptest::option::of(0u8..6), store_fault())
            .prop_map(|(slot, action, key, fault)| Step::Command { slot, action, key, fault }),
        3 => relay_faults.prop_map(Step::Relay),
        3 => consume_fault().prop_map(Step::Consume),
        1 => Just(Step::Poison),
    ]
}

/// The client's view of a case: which aggregate each slot holds, what each key returned.
#[derive(Default)]
struct Client {
    repairs: [Option<AggregateId>; SLOTS],
    orders: [Option<AggregateId>; SLOTS],
    first_result: HashMap<String, CommandOutcome>,
    poison: usize,
}

impl Client {
    fn target(slot: Option<AggregateId>, creates: bool, unknown: u128) -> Target {
        match (slot, creates) {
            (Some(id), _) => Target::Existing(id),
            (None, true) => Target::New,
            (None, false) => Target::Existing(AggregateId::from_uuid(uuid_of(unknown))),
        }
    }

    /// Runs one command step and checks what the client sees of idempotency.
    async fn command(
        &mut self,
        pipeline: &Pipeline,
        slot: usize,
        action: &Action,
        key: Option<u8>,
    ) -> Result<(), TestCaseError> {
        let meta = RequestMeta {
            idempotency_key: key
                .map(|k| IdempotencyKey::parse(&format!("key-{k}")).expect("valid key")),
            ..RequestMeta::default()
        };
        let outcome = match action {
            Action::Repair(action) => {
                let target = Self::target(
                    self.repairs[slot],
                    matches!(action, RepairAction::Open),
                    slot as u128,
                );
                let command = match action {
                    RepairAction::Open => open_repair("Ada"),
                    RepairAction::Start => RepairCommand::StartWork,
                    RepairAction::AddItem(price) => line_item(*price),
                    RepairAction::Complete => RepairCommand::CompleteRepair,
                    RepairAction::Cancel => RepairCommand::CancelRepair {
                        reason: text("changed mind"),
                    },
                };
                let result = pipeline
                    .submit::<Repair>(target, &command, &meta, 3)
                    .await
                    .ok();
                if let (Some(outcome), None) = (&result, self.repairs[slot]) {
                    if matches!(action, RepairAction::Open) {
                        self.repairs[slot] = Some(outcome.aggregate.aggregate_id);
                    }
                }
                result
            }
            Action::Order(action) => {
                let target = Self::target(
                    self.orders[slot],
                    matches!(action, OrderAction::Place(_)),
                    100 + slot as u128,
                );
                let command = match action {
                    OrderAction::Place(lines) => place_order("Grace", *lines),
                    OrderAction::Move(to) => OrderCommand::ChangeStatus { to: *to },
                    OrderAction::Cancel => OrderCommand::CancelOrder,
                };
                let result = pipeline
                    .submit::<Order>(target, &command, &meta, 3)
                    .await
                    .ok();
                if let (Some(outcome), None) = (&result, self.orders[slot]) {
                    if matches!(action, OrderAction::Place(_))
                        && outcome.aggregate.aggregate_type == "Order"
                    {
                        self.orders[slot] = Some(outcome.aggregate.aggregate_id);
                    }
                }
                result
            }
        };
        if let (Some(outcome), Some(key)) = (outcome, &meta.idempotency_key) {
            if let Some(first) = self.first_result.get(key.as_str()) {
                prop_assert_eq!(
                    &first.event_ids,
                    &outcome.event_ids,
                    "a repeated key returned other events"
                );
                prop_assert_eq!(&first.aggregate, &outcome.aggregate);
                prop_assert!(outcome.replayed);
            } else {
                self.first_result.insert(key.as_str().to_owned(), outcome);
            }
        }
        Ok(())
    }
}

fn uuid_of(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0xdead_0000_0000_0000_0000_0000_0000_0000 + n)
}

fn inject(pipeline: &Pipeline, fault: &HopFault) {
    match fault {
        HopFault::Bus(fault) => pipeline.publisher.faults().inject(fault.clone()),
        HopFault::DeadLettersDown => pipeline
            .faulty_dead_letters
            .faults()
            .inject(DeadLetterFault::Unavailable),
        HopFault::ConsumerCrash(s) => pipeline.consumers[*s]
            .inbox
            .faults()
            .inject(InboxFault::CrashAfterApply),
        HopFault::InboxDown(s) => pipeline.consumers[*s]
            .inbox
            .faults()
            .inject(InboxFault::Unavailable),
    }
}

/// The bus of a case, and the promise its delivery is held to (by default,
/// the bus's own).
struct Bus {
    bus: MemoryBus,
    held_to: Option<BusPromise>,
}

impl Bus {
    fn classic() -> Self {
        Self {
            bus: MemoryBus::new(
                outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
            ),
            held_to: None,
        }
    }

    fn custom() -> Self {
        Self {
            bus: MemoryBus::custom(
                outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
                Arc::new(StepClock::default()),
            ),
            held_to: None,
        }
    }

    /// The Custom Event Bus's promise: order per aggregate, repeats dropped for 5 minutes.
    fn custom_promise() -> BusPromise {
        BusPromise {
            order: BusOrder::PerAggregate,
            deduplication_window: DEDUPLICATION_WINDOW,
        }
    }
}

/// How long a case on the in-memory store may take to come to rest: there,
/// nothing moves by waiting, so a case not at rest by then never will be.
const MEMORY_SETTLE: Duration = Duration::from_millis(300);
/// How long a case on dynoxide may take to come to rest.
const DYNOXIDE_SETTLE: Duration = Duration::from_secs(60);

/// Runs `steps` on a fresh pipeline over `backend` and `bus`; `audit_every_step`
/// checks the step invariants after each step (on a slow store, only at
/// rest); the pipeline must come to rest within `settle_within`.
async fn run_case(
    backend: Arc<dyn Backend>,
    bus: Bus,
    steps: &[Step],
    batch_size: usize,
    audit_every_step: bool,
    settle_within: Duration,
) -> Result<(), TestCaseError> {
    let pipeline = Pipeline::with_bus(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        backend,
        batch_size,
        false,
        bus.bus,
    )
    .expect("valid routes");
    let mut client = Client::default();
    for (index, step) in steps.iter().enumerate() {
        match step {
            Step::Command {
                slot,
                action,
                key,
                fault,
            } => {
                if let Some(fault) = fault {
                    pipeline.store.faults().inject(*fault);
                }
                client.command(&pipeline, *slot, action, *key).await?;
            }
            Step::Relay(fault) => {
                if let Some(fault) = fault {
                    inject(&pipeline, fault);
                }
                pipeline.relay_step().await;
            }
            Step::Consume(fault) => {
                if let Some(fault) = fault {
                    inject(&pipeline, fault);
                }
                pipeline.consume_step().await;
            }
            Step::Poison => {
                client.poison += 1;
                pipeline
                    .write_poison(&format!("step-{index}"))
                    .await
                    .expect("the poison record is written");
            }
        }
        pipeline.clear_faults();
        if audit_every_step {
            let aggregates = pipeline.backend.aggregates().await.expect("aggregates");
            let observed = pipeline.observe(&aggregates).await.expect("observation");
            let violations = audit(&observed);
            prop_assert!(
                violations.is_empty(),
                "after step {index} ({step:?}): {violations:?}"
            );
        }
    }
    let aggregates = pipeline.backend.aggregates().await.expect("aggregates");
    let settled = pipeline.settle(&aggregates, 10_000, settle_within).await;
    let mut observed = pipeline.observe(&aggregates).await.expect("observation");
    if let Some(promise) = bus.held_to {
        observed.bus = promise;
    }
    let mut violations = audit(&observed);
    if !settled || !pipeline.queues_empty() {
        violations.push(Violation::Unsettled);
    }
    violations.extend(audit_delivery(&observed));
    prop_assert!(violations.is_empty(), "at rest: {violations:?}");
    let poisoned: HashSet<String> = pipeline
        .dead_letters
        .letters()
        .into_iter()
        .filter(|letter| matches!(letter.payload, DeadLetterPayload::Raw { .. }))
        .map(|letter| letter.source.to_string())
        .collect();
    prop_assert_eq!(
        poisoned.len(),
        client.poison,
        "every poison record is dead-lettered"
    );
    Ok(())
}

/// A fresh table on the shared dynoxide server.
async fn dynoxide_backend(endpoint: &str) -> Arc<dyn Backend> {
    let clients = LocalClients::new(endpoint);
    let layout = TableLayout::single_table(
        format!("prop-{}", uuid::Uuid::now_v7().simple()),
        outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
    );
    create_tables(&clients.dynamodb, &layout)
        .await
        .expect("tables");
    let arn = stream_arn(&clients.dynamodb, layout.outbox_table())
        .await
        .expect("stream");
    Arc::new(DynamoBackend {
        store: DynamoStore::new(clients.dynamodb.clone(), layout),
        dynamodb: clients.dynamodb,
        streams: clients.streams,
        stream_arn: arn,
        description: "dynoxide".into(),
    })
}

/// The endpoint of the embedded dynoxide server every dynoxide case shares; it
/// runs on a runtime of its own for the whole test binary.
fn dynoxide_endpoint() -> &'static str {
    static SERVER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a server runtime");
            runtime.block_on(async move {
                let server = EmbeddedDynamo::start(None).await.expect("dynoxide starts");
                let _ = sender.send(server.endpoint());
                std::future::pending::<()>().await;
            });
        });
        receiver.recv().expect("the dynoxide endpoint")
    })
}

fn cases(variable: &str, default: u32) -> u32 {
    std::env::var(variable)
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases("PROPTEST_CASES", 2_000), ..ProptestConfig::default() })]

    #[test]
    fn state_and_outbox_never_diverge_under_faults(
        steps in proptest::collection::vec(step(), 1..60),
        batch_size in 1usize..12,
    ) {
        runtime().block_on(run_case(Arc::new(MemoryBackend::default()), Bus::classic(), &steps, batch_size, true, MEMORY_SETTLE))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases("DYNOXIDE_PROPTEST_CASES", 200), ..ProptestConfig::default() })]

    #[test]
    fn state_and_outbox_never_diverge_under_faults_on_dynoxide(
        steps in proptest::collection::vec(step(), 1..30),
        batch_size in 1usize..12,
    ) {
        let endpoint = dynoxide_endpoint();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let backend = dynoxide_backend(endpoint).await;
            run_case(backend, Bus::classic(), &steps, batch_size, false, DYNOXIDE_SETTLE).await
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases("CUSTOM_BUS_PROPTEST_CASES", 1_000), ..ProptestConfig::default() })]

    #[test]
    fn on_a_custom_event_bus_each_aggregate_is_accepted_in_version_order_and_never_twice(
        steps in proptest::collection::vec(step(), 1..60),
        batch_size in 1usize..12,
    ) {
        runtime().block_on(run_case(Arc::new(MemoryBackend::default()), Bus::custom(), &steps, batch_size, true, MEMORY_SETTLE))?;
    }
}

/// Runs the property on the memory store with `bus` and steps from `steps`,
/// from a fixed seed, until a case fails; the failure with its shrunk steps,
/// or `None` when `cases` cases all passed.
fn counterexample(
    bus: fn() -> Bus,
    steps: impl Strategy<Value = Step> + 'static,
    cases: u32,
) -> Option<String> {
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    // A fixed seed: the check finds the same counterexample on every run.
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let strategy = (proptest::collection::vec(steps, 1..60), 1usize..12);
    match runner.run(&strategy, |(steps, batch_size)| {
        runtime().block_on(run_case(
            Arc::new(MemoryBackend::default()),
            bus(),
            &steps,
            batch_size,
            false,
            MEMORY_SETTLE,
        ))
    }) {
        Err(TestError::Fail(reason, (steps, batch_size))) => Some(format!(
            "{reason}\nshrunk to batch size {batch_size} and {} steps: {steps:?}",
            steps.len()
        )),
        Err(TestError::Abort(reason)) => Some(format!("aborted: {reason}")),
        Ok(()) => None,
    }
}

#[test]
fn mutation_an_adapter_that_loses_entries_breaks_at_least_once() {
    let lose = Just(Some(HopFault::Bus(PublisherFault::LoseSilently)));
    let failure = counterexample(Bus::classic, step_with(relay_fault_or(lose)), 500)
        .expect("the property finds an adapter that loses entries");
    println!("{failure}");
    assert!(failure.contains("Unpublished"), "{failure}");
}

#[test]
fn mutation_a_relay_that_packs_an_ordered_bus_freely_breaks_version_order() {
    // The classic bus makes the relay pack calls freely; its delivery is
    // held to the Custom Event Bus's order (without deduplication).
    let ordered_freely = || Bus {
        held_to: Some(BusPromise {
            deduplication_window: time::Duration::ZERO,
            ..Bus::custom_promise()
        }),
        ..Bus::classic()
    };
    let failure = counterexample(ordered_freely, step(), 2_000)
        .expect("the property finds a relay that ignores the order promise");
    println!("{failure}");
    assert!(failure.contains("PublishedOutOfOrder"), "{failure}");
}

#[test]
fn mutation_a_bus_that_forgets_repeats_breaks_deduplication() {
    let forgetful = || Bus {
        bus: Bus::custom()
            .bus
            .with_deduplication_window(time::Duration::ZERO),
        held_to: Some(Bus::custom_promise()),
    };
    let failure = counterexample(forgetful, step(), 500)
        .expect("the property finds a bus that accepts a repeat twice");
    println!("{failure}");
    assert!(failure.contains("AcceptedTwiceWithinWindow"), "{failure}");
}
