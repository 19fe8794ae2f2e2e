//! The outbox invariants, checked against what a run left behind.
//!
//! The audit is pure: it reads an [`Observation`] — the stored aggregates, the
//! store's journal, what the bus accepted, the dead letters and each consumer's
//! effects — from any backend. [`audit`] holds after every step: state and
//! outbox never diverge, versions have no gaps, no event of a failed commit is
//! stored or published, and no idempotency key is committed twice.
//! [`audit_delivery`] holds at rest: every outbox event was published at least
//! once (or dead-lettered), every consumer applied the effect of each event it
//! subscribes to exactly once — an ordered consumer in version order, and only
//! up to its aggregate's first event that never reached the bus (the rest wait
//! parked behind it) — and the bus kept what it promised
//! ([`BusPromise`]): a classic bus promises no order, so none is checked; a
//! Custom Event Bus must accept each aggregate's events first in version order
//! and never accept one event twice within its deduplication window.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use futures_util::FutureExt;

use outbox_application::ports::{BusOrder, DeadLetter, DeadLetterPayload, Effect};
use outbox_application::{
    AggregateRef, DeclaredAggregate, EventEnvelope, EventId, Reacted, Reaction, StateRecord,
};
use outbox_memory::Acceptance;
use time::Duration;

use crate::journal::CommitAttempt;

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Folding the aggregate's outbox does not give its stored state and version.
    StateDiverges {
        /// The aggregate.
        aggregate: AggregateRef,
        /// Why.
        detail: String,
    },
    /// The aggregate's event versions do not run 1..=n.
    VersionGap {
        /// The aggregate.
        aggregate: AggregateRef,
        /// The versions found.
        versions: Vec<u64>,
    },
    /// An event of a commit that was not applied was stored or published.
    FailedCommitLeaked {
        /// The event.
        event_id: EventId,
    },
    /// One idempotency key was committed more than once.
    KeyCommittedTwice {
        /// The key.
        key: String,
        /// How many commits carried it.
        commits: usize,
    },
    /// An outbox event was neither published nor dead-lettered.
    Unpublished {
        /// The event.
        event_id: EventId,
    },
    /// A bus that keeps order per aggregate first accepted an aggregate's
    /// events out of version order.
    PublishedOutOfOrder {
        /// The aggregate.
        aggregate: AggregateRef,
        /// Versions in order of first publication.
        versions: Vec<u64>,
    },
    /// A bus that deduplicates accepted one event twice within its window.
    AcceptedTwiceWithinWindow {
        /// The event.
        event_id: EventId,
    },
    /// A consumer applied an event's effect other than exactly once.
    EffectCount {
        /// The consumer.
        consumer: String,
        /// The event.
        event_id: EventId,
        /// Effects expected.
        expected: usize,
        /// Effects found.
        found: usize,
    },
    /// A consumer completed an event's external call other than exactly once.
    CallCount {
        /// The consumer.
        consumer: String,
        /// The event.
        event_id: EventId,
        /// Completed marks expected.
        expected: usize,
        /// Completed marks found.
        found: usize,
    },
    /// An ordered consumer applied an aggregate's effects out of version order.
    AppliedOutOfOrder {
        /// The consumer.
        consumer: String,
        /// The aggregate.
        aggregate: AggregateRef,
        /// Versions in order of application.
        versions: Vec<u64>,
    },
    /// The pipeline did not come to rest.
    Unsettled,
}

/// One aggregate as a store holds it, whichever store that is.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAggregate {
    /// The aggregate.
    pub aggregate: AggregateRef,
    /// Its stored state, if any.
    pub state: Option<StateRecord>,
    /// Its outbox, in version order.
    pub outbox: Vec<EventEnvelope>,
}

/// One consumer's part of an observation.
#[derive(Clone)]
pub struct ConsumerRecord {
    /// The consumer's reaction (its name, subscription and expected effects).
    pub reaction: Arc<dyn Reaction>,
    /// The effects it recorded (data effects, and the records of its calls).
    pub effects: Vec<Effect>,
    /// Its completed external calls, one per completed mark.
    pub completions: Vec<CompletedCall>,
}

/// One completed mark of an external call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedCall {
    /// The event it was made for.
    pub event_id: EventId,
    /// Whether its completed mark carried a record.
    pub recorded: bool,
}

/// What the bus promised: the order it keeps, and how long it drops a repeated
/// event id (zero: it does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusPromise {
    /// The order kept.
    pub order: BusOrder,
    /// The deduplication window.
    pub deduplication_window: Duration,
}

impl Default for BusPromise {
    /// A classic bus: no order, no deduplication.
    fn default() -> Self {
        Self {
            order: BusOrder::Unordered,
            deduplication_window: Duration::ZERO,
        }
    }
}

/// Everything the audit reads.
#[derive(Clone, Default)]
pub struct Observation {
    /// The aggregates audited.
    pub stored: Vec<StoredAggregate>,
    /// The store's journal.
    pub attempts: Vec<CommitAttempt>,
    /// Every event the bus accepted, in order, repeats included.
    pub published: Vec<Acceptance>,
    /// What the bus promised.
    pub bus: BusPromise,
    /// Every dead letter.
    pub dead_letters: Vec<DeadLetter>,
    /// Every consumer.
    pub consumers: Vec<ConsumerRecord>,
    /// The declared aggregates, to replay each stored one's outbox.
    pub aggregates: Vec<Arc<dyn DeclaredAggregate>>,
}

impl Observation {
    /// Every stored outbox event.
    pub fn outbox(&self) -> impl Iterator<Item = &EventEnvelope> {
        self.stored.iter().flat_map(|s| s.outbox.iter())
    }
}

/// The invariants that hold after every step.
pub fn audit(observed: &Observation) -> Vec<Violation> {
    let mut violations: Vec<Violation> = observed
        .stored
        .iter()
        .flat_map(|stored| check_aggregate(&observed.aggregates, stored))
        .collect();
    let outbox: Vec<&EventEnvelope> = observed.outbox().collect();
    for attempt in observed.attempts.iter().filter(|attempt| !attempt.applied) {
        for event in &attempt.write.outbox {
            let published = observed.published.iter().any(|a| a.event == *event);
            if outbox.contains(&event) || published {
                violations.push(Violation::FailedCommitLeaked {
                    event_id: event.event_id,
                });
            }
        }
    }
    let mut commits_per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for attempt in observed.attempts.iter().filter(|attempt| attempt.applied) {
        if let Some(request) = &attempt.write.request {
            *commits_per_key.entry(request.key.as_str()).or_default() += 1;
        }
    }
    violations.extend(
        commits_per_key
            .into_iter()
            .filter(|(_, commits)| *commits > 1)
            .map(|(key, commits)| Violation::KeyCommittedTwice {
                key: key.to_owned(),
                commits,
            }),
    );
    violations
}

/// The delivery invariants at rest: every outbox event published at least
/// once (or dead-lettered), what the bus promised kept, and each consumer's
/// effect exactly once per event it subscribes to and reacts to.
pub fn audit_delivery(observed: &Observation) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut first_accepted = HashMap::new();
    let mut distinct = Vec::new();
    let mut first_order: BTreeMap<AggregateRef, Vec<u64>> = BTreeMap::new();
    for acceptance in &observed.published {
        let event = &acceptance.event;
        match first_accepted.get(&event.event_id) {
            None => {
                first_accepted.insert(event.event_id, acceptance.at);
                distinct.push(event);
                first_order
                    .entry(event.aggregate())
                    .or_default()
                    .push(event.aggregate_version.value());
            }
            Some(first) if acceptance.at - *first < observed.bus.deduplication_window => {
                violations.push(Violation::AcceptedTwiceWithinWindow {
                    event_id: event.event_id,
                });
            }
            Some(_) => {
                first_accepted.insert(event.event_id, acceptance.at);
            }
        }
    }
    let dead: HashSet<EventId> = observed
        .dead_letters
        .iter()
        .filter_map(|letter| match &letter.payload {
            DeadLetterPayload::Event { envelope } => Some(envelope.event_id),
            DeadLetterPayload::Raw { .. } => None,
        })
        .collect();
    for event in observed.outbox() {
        if !first_accepted.contains_key(&event.event_id) && !dead.contains(&event.event_id) {
            violations.push(Violation::Unpublished {
                event_id: event.event_id,
            });
        }
    }
    if observed.bus.order == BusOrder::PerAggregate {
        for (aggregate, versions) in first_order {
            if versions.windows(2).any(|pair| pair[0] >= pair[1]) {
                violations.push(Violation::PublishedOutOfOrder {
                    aggregate,
                    versions,
                });
            }
        }
    }
    // Per aggregate, the first version the bus never accepted: an ordered
    // consumer stops before it and parks the rest.
    let mut gaps: HashMap<AggregateRef, u64> = HashMap::new();
    for event in observed.outbox() {
        if !first_accepted.contains_key(&event.event_id) {
            let gap = gaps
                .entry(event.aggregate())
                .or_insert(event.aggregate_version.value());
            *gap = (*gap).min(event.aggregate_version.value());
        }
    }
    for consumer in &observed.consumers {
        violations.extend(check_consumer(consumer, &distinct, &gaps));
    }
    violations
}

/// One consumer's effects against the events the bus accepted.
fn check_consumer(
    consumer: &ConsumerRecord,
    distinct: &[&EventEnvelope],
    gaps: &HashMap<AggregateRef, u64>,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    let reaction = &consumer.reaction;
    let name = reaction.name();
    let ordered = reaction.subscription().is_ordered();
    let mut found: HashMap<EventId, usize> = HashMap::new();
    for effect in &consumer.effects {
        *found.entry(effect.event_id).or_default() += 1;
    }
    let mut completed: HashMap<EventId, usize> = HashMap::new();
    let mut recorded: HashMap<EventId, usize> = HashMap::new();
    for call in &consumer.completions {
        *completed.entry(call.event_id).or_default() += 1;
        *recorded.entry(call.event_id).or_default() += usize::from(call.recorded);
    }
    for event in distinct {
        let before_gap = gaps
            .get(&event.aggregate())
            .is_none_or(|gap| event.aggregate_version.value() < *gap);
        // A reaction decides without waiting on anything in the simulation; one
        // that would wait is expected to act on nothing, so its effects show.
        let reacted = reaction.react(event).now_or_never().and_then(Result::ok);
        let accepted = reaction.subscription().accepts(event) && (!ordered || before_gap);
        let (expected, calls) = match reacted {
            Some(Reacted::Record(_)) if accepted => (1, 0),
            // A call's record, if it has one, is written with its completed mark.
            Some(Reacted::Call(_)) if accepted => {
                let records = recorded.get(&event.event_id).copied().unwrap_or(0).min(1);
                (records, 1)
            }
            _ => (0, 0),
        };
        let completions = completed.remove(&event.event_id).unwrap_or(0);
        if completions != calls {
            violations.push(Violation::CallCount {
                consumer: name.to_owned(),
                event_id: event.event_id,
                expected: calls,
                found: completions,
            });
        }
        let count = found.remove(&event.event_id).unwrap_or(0);
        if count != expected {
            violations.push(Violation::EffectCount {
                consumer: name.to_owned(),
                event_id: event.event_id,
                expected,
                found: count,
            });
        }
    }
    violations.extend(
        found
            .into_iter()
            .map(|(event_id, count)| Violation::EffectCount {
                consumer: name.to_owned(),
                event_id,
                expected: 0,
                found: count,
            }),
    );
    violations.extend(
        completed
            .into_iter()
            .map(|(event_id, count)| Violation::CallCount {
                consumer: name.to_owned(),
                event_id,
                expected: 0,
                found: count,
            }),
    );
    if ordered {
        let versions: HashMap<EventId, &EventEnvelope> =
            distinct.iter().map(|e| (e.event_id, *e)).collect();
        let mut applied: BTreeMap<AggregateRef, Vec<u64>> = BTreeMap::new();
        for effect in &consumer.effects {
            if let Some(event) = versions.get(&effect.event_id) {
                applied
                    .entry(event.aggregate())
                    .or_default()
                    .push(event.aggregate_version.value());
            }
        }
        violations.extend(
            applied
                .into_iter()
                .filter(|(_, versions)| versions.windows(2).any(|pair| pair[0] >= pair[1]))
                .map(|(aggregate, versions)| Violation::AppliedOutOfOrder {
                    consumer: name.to_owned(),
                    aggregate,
                    versions,
                }),
        );
    }
    violations
}

/// Invariant 1 for one aggregate, whichever its type: its outbox numbered
/// `1..=n` with no gap, its stored version `n`, and its stored state what
/// folding the outbox gives.
fn check_aggregate(
    aggregates: &[Arc<dyn DeclaredAggregate>],
    stored: &StoredAggregate,
) -> Vec<Violation> {
    let aggregate = &stored.aggregate;
    let diverges = |detail: String| {
        vec![Violation::StateDiverges {
            aggregate: aggregate.clone(),
            detail,
        }]
    };
    let Some(declared) = aggregates
        .iter()
        .find(|declared| declared.aggregate_type() == aggregate.aggregate_type)
    else {
        return diverges(format!(
            "unknown aggregate type {}",
            aggregate.aggregate_type
        ));
    };
    let versions: Vec<u64> = stored
        .outbox
        .iter()
        .map(|e| e.aggregate_version.value())
        .collect();
    if !versions.iter().copied().eq(1..=versions.len() as u64) {
        return vec![Violation::VersionGap {
            aggregate: aggregate.clone(),
            versions,
        }];
    }
    let Some(record) = &stored.state else {
        return diverges("no stored state".to_owned());
    };
    if record.version.value() != versions.len() as u64 {
        return diverges(format!(
            "stored version {} but {} events",
            record.version,
            versions.len()
        ));
    }
    match declared.check_replay(&record.state, &stored.outbox) {
        Ok(()) => Vec::new(),
        Err(detail) => diverges(detail),
    }
}

#[cfg(test)]
mod tests {
    //! Each violation kind, produced by a history broken in exactly that way.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use outbox_application::envelope::EventContext;
    use outbox_application::ReactionError;
    use outbox_application::{
        AggregateId, IdempotencyKey, IdempotencyRecord, Traceparent, WriteSet,
    };
    use outbox_domain::{decide, Aggregate, Money, Text, Version};
    use outbox_memory::MemoryDocuments;
    use outbox_seeds::reactions::Invoicing;
    use outbox_seeds_domain::repair::{Repair, RepairCommand, RepairEvent};
    use uuid::Uuid;

    fn text(raw: &str) -> Text {
        Text::parse("t", raw).unwrap()
    }

    fn id() -> AggregateId {
        AggregateId::from_uuid(Uuid::from_u128(7))
    }

    /// The write sets of a repair opened, started, billed and completed, keyed `k0..k3`.
    fn history() -> Vec<WriteSet> {
        let commands = [
            RepairCommand::OpenRepair {
                vehicle: text("car"),
                customer: text("Ada"),
                customer_email: outbox_domain::EmailAddress::parse("e", "ada@example.com").unwrap(),
                description: text("brakes"),
            },
            RepairCommand::StartWork,
            RepairCommand::AddLineItem {
                description: text("pads"),
                price_cents: Money::from_cents(500).unwrap(),
            },
            RepairCommand::CompleteRepair,
        ];
        let context = EventContext {
            occurred_at: time::OffsetDateTime::UNIX_EPOCH,
            correlation_id: "c".into(),
            causation_id: "r".into(),
            traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
        };
        let mut state = None;
        let mut version = Version::INITIAL;
        let mut writes = Vec::new();
        for (n, command) in commands.iter().enumerate() {
            let decision = decide::<Repair>(&state, version, command).unwrap();
            let key = IdempotencyKey::parse(&format!("k{n}")).unwrap();
            writes.push(
                WriteSet::from_decision(
                    id(),
                    &decision,
                    &context,
                    Uuid::from_u128(9),
                    Some((key, Uuid::nil())),
                )
                .unwrap(),
            );
            state = decision.state;
            version = decision.version;
        }
        writes
    }

    /// A healthy observation of `history`: stored, published once, invoiced once.
    fn healthy() -> Observation {
        let writes = history();
        let outbox: Vec<EventEnvelope> = writes.iter().flat_map(|w| w.outbox.clone()).collect();
        let completed = outbox.last().unwrap();
        let invoicing = Invoicing::new(Arc::new(MemoryDocuments::new()));
        let Some(Ok(Reacted::Call(call))) = invoicing.react(completed).now_or_never() else {
            panic!("invoicing calls on a completed repair");
        };
        let key = outbox_application::CallKey::new(Invoicing::NAME, completed.event_id);
        let invoice = call
            .call(&key)
            .now_or_never()
            .unwrap()
            .unwrap()
            .record
            .unwrap();
        Observation {
            stored: vec![StoredAggregate {
                aggregate: writes[0].aggregate.clone(),
                state: Some(writes.last().unwrap().state.clone()),
                outbox: outbox.clone(),
            }],
            attempts: writes
                .into_iter()
                .map(|write| CommitAttempt {
                    write,
                    applied: true,
                })
                .collect(),
            published: outbox
                .iter()
                .zip(0..)
                .map(|(event, second)| Acceptance {
                    event: event.clone(),
                    at: time::OffsetDateTime::UNIX_EPOCH + Duration::seconds(second),
                })
                .collect(),
            bus: BusPromise::default(),
            dead_letters: Vec::new(),
            consumers: vec![ConsumerRecord {
                reaction: Arc::new(invoicing),
                effects: vec![invoice],
                completions: vec![CompletedCall {
                    event_id: completed.event_id,
                    recorded: true,
                }],
            }],
            aggregates: outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports())
                .aggregates()
                .to_vec(),
        }
    }

    fn violations(observed: &Observation) -> Vec<Violation> {
        let mut all = audit(observed);
        all.extend(audit_delivery(observed));
        all
    }

    #[test]
    fn a_healthy_history_has_no_violation() {
        assert_eq!(violations(&healthy()), Vec::new());
    }

    #[test]
    fn a_state_that_is_not_the_fold_of_the_outbox_diverges() {
        let mut observed = healthy();
        let other = history()[2].state.clone();
        observed.stored[0].state = Some(StateRecord {
            version: Version::new(4),
            ..other
        });
        assert!(matches!(
            violations(&observed).as_slice(),
            [Violation::StateDiverges { .. }]
        ));
    }

    #[test]
    fn a_missing_version_is_a_gap() {
        let mut observed = healthy();
        observed.stored[0].outbox.remove(1);
        observed.published.remove(1);
        assert_eq!(
            audit(&observed),
            vec![Violation::VersionGap {
                aggregate: observed.stored[0].aggregate.clone(),
                versions: vec![1, 3, 4],
            }]
        );
    }

    #[test]
    fn an_event_of_a_failed_commit_that_was_stored_leaked() {
        let mut observed = healthy();
        observed.attempts[3].applied = false;
        let event_id = observed.attempts[3].write.outbox[0].event_id;
        assert_eq!(
            audit(&observed),
            vec![Violation::FailedCommitLeaked { event_id }]
        );
    }

    #[test]
    fn a_key_committed_twice_is_found() {
        let mut observed = healthy();
        let mut again = observed.attempts[1].clone();
        again.write.request = Some(IdempotencyRecord {
            key: IdempotencyKey::parse("k0").unwrap(),
            ..again.write.request.clone().unwrap()
        });
        observed.attempts[1] = again;
        assert_eq!(
            audit(&observed),
            vec![Violation::KeyCommittedTwice {
                key: "k0".into(),
                commits: 2
            }]
        );
    }

    #[test]
    fn a_lost_event_is_unpublished_unless_it_was_dead_lettered() {
        let mut observed = healthy();
        let lost = observed.published.remove(2);
        assert_eq!(
            audit_delivery(&observed),
            vec![Violation::Unpublished {
                event_id: lost.event.event_id
            }]
        );
        observed.dead_letters.push(DeadLetter::new(
            outbox_application::ports::LetterSource::StreamRecord {
                sequence: outbox_application::SequenceNumber::new("3"),
            },
            "refused",
            1,
            DeadLetterPayload::Event {
                envelope: lost.event,
            },
            outbox_application::RecordIdentity::default(),
        ));
        assert_eq!(audit_delivery(&observed), Vec::new());
    }

    /// An ordered consumer of every repair event.
    struct RepairLog;

    #[outbox_application::async_trait]
    impl Reaction for RepairLog {
        fn description(&self) -> &'static str {
            "Logs every repair event in order."
        }

        fn name(&self) -> &'static str {
            "repair-log"
        }

        fn subscription(&self) -> outbox_application::Subscription {
            outbox_application::Subscription {
                aggregate_type: Repair::TYPE,
                event_types: &RepairEvent::TYPES,
                ordered: Some(&RepairEvent::TYPES),
            }
        }

        async fn react(&self, event: &EventEnvelope) -> Result<Reacted, ReactionError> {
            Ok(Reacted::Record(Effect {
                kind: "Log".into(),
                event_id: event.event_id,
                data: serde_json::Value::Null,
            }))
        }
    }

    fn logged(events: &[EventEnvelope]) -> ConsumerRecord {
        ConsumerRecord {
            reaction: Arc::new(RepairLog),
            effects: events
                .iter()
                .map(|e| {
                    let reacted = RepairLog.react(e).now_or_never().unwrap().unwrap();
                    reacted.into_record().unwrap()
                })
                .collect(),
            completions: Vec::new(),
        }
    }

    #[test]
    fn an_ordered_consumer_applies_in_version_order_and_stops_before_a_version_never_published() {
        let mut observed = healthy();
        let outbox = observed.stored[0].outbox.clone();
        observed.consumers = vec![logged(&outbox)];
        assert_eq!(audit_delivery(&observed), Vec::new());

        let mut swapped = outbox.clone();
        swapped.swap(1, 2);
        observed.consumers = vec![logged(&swapped)];
        assert_eq!(
            audit_delivery(&observed),
            vec![Violation::AppliedOutOfOrder {
                consumer: "repair-log".into(),
                aggregate: observed.stored[0].aggregate.clone(),
                versions: vec![1, 3, 2, 4],
            }]
        );

        let lost = observed.published.remove(1).event;
        observed.dead_letters.push(DeadLetter::new(
            outbox_application::ports::LetterSource::StreamRecord {
                sequence: outbox_application::SequenceNumber::new("2"),
            },
            "refused",
            1,
            DeadLetterPayload::Event {
                envelope: lost.clone(),
            },
            outbox_application::RecordIdentity::default(),
        ));
        observed.consumers = vec![logged(&outbox[..1])];
        assert_eq!(
            audit_delivery(&observed),
            Vec::new(),
            "versions after the lost one wait parked"
        );
        observed.consumers = vec![logged(&[outbox[0].clone(), outbox[2].clone()])];
        assert_eq!(
            audit_delivery(&observed),
            vec![Violation::EffectCount {
                consumer: "repair-log".into(),
                event_id: outbox[2].event_id,
                expected: 0,
                found: 1,
            }]
        );
    }

    /// The custom bus's promise: order per aggregate, repeats dropped for 5 minutes.
    fn custom_bus() -> BusPromise {
        BusPromise {
            order: BusOrder::PerAggregate,
            deduplication_window: Duration::minutes(5),
        }
    }

    #[test]
    fn a_later_version_first_published_before_an_earlier_one_is_out_of_order_on_an_ordered_bus() {
        let mut observed = healthy();
        observed.published.swap(1, 2);
        assert_eq!(
            audit_delivery(&observed),
            Vec::new(),
            "a classic bus promises no order"
        );
        observed.bus = custom_bus();
        assert_eq!(
            audit_delivery(&observed),
            vec![Violation::PublishedOutOfOrder {
                aggregate: observed.stored[0].aggregate.clone(),
                versions: vec![1, 3, 2, 4],
            }]
        );
    }

    #[test]
    fn a_repeat_is_not_a_reorder_but_within_the_window_it_is_accepted_twice() {
        let mut repeated = healthy();
        repeated.bus = custom_bus();
        let mut again = repeated.published[0].clone();
        again.at += Duration::minutes(5);
        repeated.published.push(again.clone());
        assert_eq!(
            audit_delivery(&repeated),
            Vec::new(),
            "after the window a repeat is a new acceptance"
        );
        again.at -= Duration::seconds(1);
        let last = repeated.published.len() - 1;
        repeated.published[last] = again.clone();
        assert_eq!(
            audit_delivery(&repeated),
            vec![Violation::AcceptedTwiceWithinWindow {
                event_id: again.event.event_id
            }]
        );
        repeated.bus = BusPromise::default();
        assert_eq!(
            audit_delivery(&repeated),
            Vec::new(),
            "a classic bus does not deduplicate"
        );
    }

    #[test]
    fn an_effect_applied_twice_or_never_is_counted() {
        let mut observed = healthy();
        let effect = observed.consumers[0].effects[0].clone();
        observed.consumers[0].effects.push(effect.clone());
        assert_eq!(
            audit_delivery(&observed),
            vec![Violation::EffectCount {
                consumer: "invoicing".into(),
                event_id: effect.event_id,
                expected: 1,
                found: 2,
            }]
        );
        observed.consumers[0].effects.clear();
        assert_eq!(
            audit_delivery(&observed),
            vec![Violation::EffectCount {
                consumer: "invoicing".into(),
                event_id: effect.event_id,
                expected: 1,
                found: 0,
            }]
        );
    }

    #[test]
    fn an_event_type_name_that_is_not_a_repair_event_does_not_decode() {
        let mut observed = healthy();
        observed.stored[0].outbox[1].event_type = RepairEvent::REPAIR_COMPLETED.into();
        assert!(matches!(
            audit(&observed).as_slice(),
            [Violation::StateDiverges { detail, .. }] if detail.starts_with("undecodable event")
        ));
    }
}
