//! The claim protocol of external effects as a property: any interleaving of
//! deliveries of one event — calls that succeed, fail and retry, consumers
//! killed mid-call, time passing — makes the call at least once, never two at
//! a time, and writes the completed mark exactly once, only after a call
//! succeeded. The consume use case runs for real on the memory inbox; each
//! call waits at a gate the generated steps open, fail or abandon (a killed
//! consumer), and the clock moves only when a step says so. A call still
//! open when the function's timeout passes is stopped, as Lambda stops it:
//! the protocol's one assumption is that a call ends inside its claim's lease
//! (the 30 s timeout against the 60 s lease).
//!
//! Three mutation checks run the same property against one broken rule each
//! and require a shrunk failure: an inbox that drops the claim (`TwoAtOnce`),
//! one that writes the mark before the call (`MarkedBeforeACall`), one that
//! never lets an expired claim be taken over (`NeverCompleted`).

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestError, TestRng, TestRunner};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use outbox_application::ports::{
    Claim, ClaimOutcome, Clock, CompleteOutcome, Completion, Effect, Inbox, InboxError,
    InboxOutcome, ParkedAggregate, Sequence, SequenceOutcome, SequenceWrite,
};
use outbox_application::{
    async_trait, AggregateRef, CallError, CallKey, Called, ConsumeService, EventEnvelope, EventId,
    ExternalCall, Reacted, Reaction, ReactionError, Subscription,
};
use outbox_domain::Version;
use outbox_memory::{MemoryDeadLetterQueue, MemoryInbox};
use outbox_seeds_domain::repair::{Repair, RepairEvent};
use outbox_tests::{delivery, one_event_of_each_type};

/// The consumer's name.
const CONSUMER: &str = "mailer";
/// The claim's lease.
const LEASE: Duration = Duration::from_secs(60);
/// The consumer function's timeout: no call outlives it.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(30);

/// One step of a schedule.
#[derive(Debug, Clone)]
enum Step {
    /// A new delivery of the event starts.
    Deliver,
    /// The nth open call returns successfully.
    Succeed(usize),
    /// The nth open call fails, retryably.
    Fail(usize),
    /// The consumer making the nth open call dies.
    Kill(usize),
    /// Time passes: this many tens of seconds.
    Wait(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Deliver),
        3 => (0usize..4).prop_map(Step::Succeed),
        1 => (0usize..4).prop_map(Step::Fail),
        1 => (0usize..4).prop_map(Step::Kill),
        2 => (1u8..8).prop_map(Step::Wait),
    ]
}

/// What the calls did, as the other system saw them.
#[derive(Debug, Default)]
struct Calls {
    in_flight: usize,
    most_at_once: usize,
    attempted: usize,
    succeeded: usize,
    gates: BTreeMap<usize, oneshot::Sender<Result<(), CallError>>>,
    started: BTreeMap<usize, OffsetDateTime>,
}

type Shared = Arc<Mutex<Calls>>;

/// Leaves the call in flight when dropped, however the call ends.
struct InFlight(Shared);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().unwrap().in_flight -= 1;
    }
}

/// A call that waits at its delivery's gate.
struct GatedCall {
    delivery: usize,
    calls: Shared,
    clock: Arc<ScheduleClock>,
}

#[async_trait]
impl ExternalCall for GatedCall {
    fn kind(&self) -> &'static str {
        "Email"
    }

    async fn call(&self, _: &CallKey) -> Result<Called, CallError> {
        let (open, gate) = oneshot::channel();
        {
            let mut calls = self.calls.lock().unwrap();
            calls.attempted += 1;
            calls.in_flight += 1;
            calls.most_at_once = calls.most_at_once.max(calls.in_flight);
            calls.gates.insert(self.delivery, open);
            calls.started.insert(self.delivery, self.clock.now());
        }
        let _in_flight = InFlight(Arc::clone(&self.calls));
        let answer = gate
            .await
            .unwrap_or_else(|_| Err(CallError::Retryable("the gate was dropped".into())));
        answer?;
        self.calls.lock().unwrap().succeeded += 1;
        Ok(Called {
            receipt: serde_json::json!({ "delivery": self.delivery }),
            record: None,
        })
    }
}

/// The consumer of one delivery: its call waits at that delivery's gate.
struct Mailer {
    delivery: usize,
    calls: Shared,
    clock: Arc<ScheduleClock>,
}

#[async_trait]
impl Reaction for Mailer {
    fn name(&self) -> &'static str {
        CONSUMER
    }

    fn description(&self) -> &'static str {
        "Mails completed repairs."
    }

    fn subscription(&self) -> Subscription {
        Subscription::of::<Repair>(&[RepairEvent::REPAIR_COMPLETED])
    }

    async fn react(&self, _: &EventEnvelope) -> Result<Reacted, ReactionError> {
        Ok(Reacted::Call(Box::new(GatedCall {
            delivery: self.delivery,
            calls: Arc::clone(&self.calls),
            clock: Arc::clone(&self.clock),
        })))
    }
}

/// A clock the schedule moves.
#[derive(Debug)]
struct ScheduleClock(Mutex<OffsetDateTime>);

impl Clock for ScheduleClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// One rule of the protocol broken on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mutation {
    /// Claims without writing anything: every delivery may call.
    DropTheClaim,
    /// Writes the mark when claiming, before the call.
    MarkBeforeTheCall,
    /// An in-progress claim never expires.
    IgnoreTheExpiry,
}

/// The memory inbox, with one rule broken if told, and a record of each mark
/// written: whether a call had succeeded by then.
struct Observed {
    inner: MemoryInbox,
    mutation: Option<Mutation>,
    calls: Shared,
    marks: Mutex<Vec<bool>>,
}

impl Observed {
    fn marked(&self) {
        let succeeded = self.calls.lock().unwrap().succeeded > 0;
        self.marks.lock().unwrap().push(succeeded);
    }
}

#[async_trait]
impl Inbox for Observed {
    async fn processed(&self, consumer: &str, event_id: EventId) -> Result<bool, InboxError> {
        self.inner.processed(consumer, event_id).await
    }

    async fn apply_once(
        &self,
        consumer: &str,
        event_id: EventId,
        effect: Option<Effect>,
    ) -> Result<InboxOutcome, InboxError> {
        self.inner.apply_once(consumer, event_id, effect).await
    }

    async fn claim(
        &self,
        consumer: &str,
        event_id: EventId,
        claim: &Claim,
    ) -> Result<ClaimOutcome, InboxError> {
        match self.mutation {
            Some(Mutation::DropTheClaim) => {
                if self.inner.processed(consumer, event_id).await? {
                    return Ok(ClaimOutcome::Completed);
                }
                Ok(ClaimOutcome::Claimed { took_over: false })
            }
            Some(Mutation::MarkBeforeTheCall) => {
                match self.inner.apply_once(consumer, event_id, None).await? {
                    InboxOutcome::Applied => {
                        self.marked();
                        Ok(ClaimOutcome::Claimed { took_over: false })
                    }
                    InboxOutcome::AlreadyProcessed => Ok(ClaimOutcome::Completed),
                }
            }
            Some(Mutation::IgnoreTheExpiry) => match self.inner.claim_on(consumer, event_id) {
                Some(held) => Ok(ClaimOutcome::Held { until: held.until }),
                None => self.inner.claim(consumer, event_id, claim).await,
            },
            None => self.inner.claim(consumer, event_id, claim).await,
        }
    }

    async fn complete(
        &self,
        consumer: &str,
        event_id: EventId,
        token: &str,
        completion: Completion,
    ) -> Result<CompleteOutcome, InboxError> {
        match self.mutation {
            Some(Mutation::MarkBeforeTheCall) => Ok(CompleteOutcome::Completed),
            Some(Mutation::DropTheClaim) => {
                match self.inner.apply_once(consumer, event_id, None).await? {
                    InboxOutcome::Applied => {
                        self.marked();
                        Ok(CompleteOutcome::Completed)
                    }
                    InboxOutcome::AlreadyProcessed => Ok(CompleteOutcome::Lost),
                }
            }
            _ => {
                let outcome = self
                    .inner
                    .complete(consumer, event_id, token, completion)
                    .await?;
                if outcome == CompleteOutcome::Completed {
                    self.marked();
                }
                Ok(outcome)
            }
        }
    }

    async fn release(
        &self,
        consumer: &str,
        event_id: EventId,
        token: &str,
    ) -> Result<(), InboxError> {
        self.inner.release(consumer, event_id, token).await
    }

    async fn count_duplicate(&self, consumer: &str) -> Result<(), InboxError> {
        self.inner.count_duplicate(consumer).await
    }

    async fn sequence(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
    ) -> Result<Sequence, InboxError> {
        self.inner.sequence(consumer, aggregate).await
    }

    async fn write_sequence(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
        revision: u64,
        write: SequenceWrite,
    ) -> Result<SequenceOutcome, InboxError> {
        self.inner
            .write_sequence(consumer, aggregate, revision, write)
            .await
    }

    async fn held(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
        version: Version,
    ) -> Result<Option<EventEnvelope>, InboxError> {
        self.inner.held(consumer, aggregate, version).await
    }

    async fn parked(&self) -> Result<Vec<ParkedAggregate>, InboxError> {
        self.inner.parked().await
    }
}

/// Lets every spawned delivery run until it waits at its gate or ends.
async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}

/// Runs `steps`, then brings the event to rest; the broken rule, if any.
async fn run_case(steps: &[Step], mutation: Option<Mutation>) -> Result<(), String> {
    let event = one_event_of_each_type()
        .await
        .into_iter()
        .find(|event| event.event_type == RepairEvent::REPAIR_COMPLETED)
        .unwrap();
    let calls: Shared = Arc::default();
    let inbox = Arc::new(Observed {
        inner: MemoryInbox::new(),
        mutation,
        calls: Arc::clone(&calls),
        marks: Mutex::default(),
    });
    let clock = Arc::new(ScheduleClock(Mutex::new(OffsetDateTime::UNIX_EPOCH)));
    let mut next = 0;
    let mut running: Vec<JoinHandle<()>> = Vec::new();
    let deliver = |n: usize| {
        let consume = ConsumeService::new(
            inbox.clone(),
            Arc::new(Mailer {
                delivery: n,
                calls: Arc::clone(&calls),
                clock: Arc::clone(&clock),
            }),
            Arc::new(MemoryDeadLetterQueue::new()),
        )
        .with_clock(clock.clone())
        .with_claim_lease(LEASE);
        let event = event.clone();
        tokio::spawn(async move {
            let _ = consume.consume(delivery(&event)).await;
        })
    };
    let open = |calls: &Shared, nth: usize| {
        let calls = calls.lock().unwrap();
        calls
            .gates
            .keys()
            .nth(nth % calls.gates.len().max(1))
            .copied()
    };
    for step in steps {
        match step {
            Step::Deliver => {
                running.push(deliver(next));
                next += 1;
            }
            Step::Succeed(nth) | Step::Fail(nth) => {
                if let Some(delivery) = open(&calls, *nth) {
                    let gate = calls.lock().unwrap().gates.remove(&delivery).unwrap();
                    let answer = match step {
                        Step::Succeed(_) => Ok(()),
                        _ => Err(CallError::Retryable("throttled".into())),
                    };
                    let _ = gate.send(answer);
                }
            }
            Step::Kill(nth) => {
                if let Some(delivery) = open(&calls, *nth) {
                    calls.lock().unwrap().gates.remove(&delivery);
                    running[delivery].abort();
                }
            }
            Step::Wait(tens) => {
                *clock.0.lock().unwrap() += Duration::from_secs(u64::from(*tens) * 10);
                // The function's timeout stops every call that outlived it.
                let now = clock.now();
                let mut calls = calls.lock().unwrap();
                let timed_out: Vec<usize> = calls
                    .gates
                    .keys()
                    .copied()
                    .filter(|d| calls.started[d] + FUNCTION_TIMEOUT <= now)
                    .collect();
                for delivery in timed_out {
                    calls.gates.remove(&delivery);
                    running[delivery].abort();
                }
            }
        }
        settle().await;
        let most = calls.lock().unwrap().most_at_once;
        if most > 1 {
            return Err(format!("TwoAtOnce: {most} calls in flight"));
        }
    }
    // At rest: the open calls succeed, time passes beyond any claim, and the
    // event is delivered again until a delivery finds it done.
    for _ in 0..4 {
        let gates: Vec<_> = std::mem::take(&mut calls.lock().unwrap().gates)
            .into_values()
            .collect();
        for gate in gates {
            let _ = gate.send(Ok(()));
        }
        settle().await;
        *clock.0.lock().unwrap() += LEASE + Duration::from_secs(1);
        running.push(deliver(next));
        next += 1;
        settle().await;
    }
    let gates: Vec<_> = std::mem::take(&mut calls.lock().unwrap().gates)
        .into_values()
        .collect();
    for gate in gates {
        let _ = gate.send(Ok(()));
    }
    settle().await;
    let calls = calls.lock().unwrap();
    if calls.most_at_once > 1 {
        return Err(format!("TwoAtOnce: {} calls in flight", calls.most_at_once));
    }
    let marks = inbox.marks.lock().unwrap().clone();
    if marks.iter().any(|succeeded| !succeeded) {
        return Err("MarkedBeforeACall: the mark was written before any call succeeded".into());
    }
    match marks.len() {
        0 => Err(format!(
            "NeverCompleted: {} calls attempted, none recorded complete",
            calls.attempted
        )),
        1 if calls.attempted >= 1 => Ok(()),
        n => Err(format!("CompletedNotOnce: {n} completed marks")),
    }
}

/// Cases per run: `PROPTEST_CASES`, 500 by default.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn a_call_is_made_at_least_once_never_twice_at_a_time_and_completed_once(
        steps in proptest::collection::vec(step(), 1..40)
    ) {
        let outcome = runtime().block_on(run_case(&steps, None));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

/// The shrunk counterexample the property finds against `mutation`.
fn counterexample(mutation: Mutation) -> String {
    let config = ProptestConfig {
        cases: 500,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    match runner.run(&proptest::collection::vec(step(), 1..40), |steps| {
        runtime()
            .block_on(run_case(&steps, Some(mutation)))
            .map_err(TestCaseError::fail)
    }) {
        Err(TestError::Fail(reason, steps)) => {
            format!("{reason}\nshrunk to {} steps: {steps:?}", steps.len())
        }
        Err(TestError::Abort(reason)) => format!("aborted: {reason}"),
        Ok(()) => panic!("the property holds against {mutation:?}"),
    }
}

#[test]
fn mutation_dropping_the_claim_lets_two_calls_run_at_once() {
    let failure = counterexample(Mutation::DropTheClaim);
    println!("{failure}");
    assert!(failure.contains("TwoAtOnce"), "{failure}");
}

#[test]
fn mutation_writing_the_mark_before_the_call_records_a_call_never_made() {
    let failure = counterexample(Mutation::MarkBeforeTheCall);
    println!("{failure}");
    assert!(failure.contains("MarkedBeforeACall"), "{failure}");
}

#[test]
fn mutation_ignoring_the_expiry_never_completes_after_a_kill() {
    let failure = counterexample(Mutation::IgnoreTheExpiry);
    println!("{failure}");
    assert!(failure.contains("NeverCompleted"), "{failure}");
}
