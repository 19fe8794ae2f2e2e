//! The outbox invariants, checked against the in-memory pipeline.
//!
//! [`audit`] holds after every step: state and outbox never diverge, versions
//! have no gaps, no event of a failed commit is stored or published, and no
//! idempotency key is committed twice. [`audit_at_rest`] adds what holds once the
//! pipeline is at rest: every outbox event was published (or dead-lettered), first
//! publications per aggregate follow version order, and every consumer applied each
//! event's effect exactly once.

use std::collections::{BTreeMap, HashMap, HashSet};

use application::ports::DeadLetterPayload;
use application::{AggregateRef, EventEnvelope, EventId, StateRecord};
use domain::order::Order;
use domain::repair::Repair;
use domain::{fold, Aggregate};

use crate::pipeline::MemoryPipeline;

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
    /// An aggregate's events were first published out of version order.
    PublishedOutOfOrder {
        /// The aggregate.
        aggregate: AggregateRef,
        /// Versions in order of first publication.
        versions: Vec<u64>,
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

/// Invariant 1 for stored aggregates: folding each outbox gives the stored state
/// and version, and versions run `1..=n`.
pub fn audit_stored(aggregates: &[StoredAggregate]) -> Vec<Violation> {
    aggregates.iter().flat_map(check_aggregate).collect()
}

/// The invariants that hold after every step.
pub fn audit(pipeline: &MemoryPipeline) -> Vec<Violation> {
    let stored: Vec<StoredAggregate> = pipeline
        .store
        .aggregates()
        .into_iter()
        .map(|aggregate| StoredAggregate {
            state: pipeline.store.state_of(&aggregate),
            outbox: pipeline.store.outbox_of(&aggregate),
            aggregate,
        })
        .collect();
    let mut violations = audit_stored(&stored);
    let journal = pipeline.store.journal();
    let outbox = pipeline.store.outbox();
    let published = pipeline.bus.accepted();
    for attempt in journal.iter().filter(|attempt| !attempt.applied) {
        for event in &attempt.write.outbox {
            if outbox.contains(event) || published.contains(event) {
                violations.push(Violation::FailedCommitLeaked {
                    event_id: event.event_id,
                });
            }
        }
    }
    let mut commits_per_key: HashMap<&str, usize> = HashMap::new();
    for attempt in journal.iter().filter(|attempt| attempt.applied) {
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

/// The invariants that hold once the pipeline is at rest, plus those of [`audit`].
pub fn audit_at_rest(pipeline: &MemoryPipeline) -> Vec<Violation> {
    let mut violations = audit(pipeline);
    if !pipeline.is_at_rest() {
        violations.push(Violation::Unsettled);
    }
    violations.extend(audit_delivery(&pipeline.store.outbox(), pipeline));
    violations
}

/// The delivery invariants at rest for `outbox`, relayed into `pipeline`'s bus:
/// every event published (or dead-lettered after a permanent refusal), first
/// publications per aggregate in version order, each consumer's effect exactly once.
pub fn audit_delivery(outbox: &[EventEnvelope], pipeline: &MemoryPipeline) -> Vec<Violation> {
    let mut violations = Vec::new();
    let published = pipeline.bus.accepted();
    let mut first_seen = HashSet::new();
    let mut first_order: BTreeMap<AggregateRef, Vec<u64>> = BTreeMap::new();
    for event in &published {
        if first_seen.insert(event.event_id) {
            first_order
                .entry(event.aggregate())
                .or_default()
                .push(event.aggregate_version.value());
        }
    }
    let dead: HashSet<EventId> = pipeline
        .dead_letters
        .letters()
        .into_iter()
        .filter_map(|letter| match letter.payload {
            DeadLetterPayload::Event { envelope } => Some(envelope.event_id),
            DeadLetterPayload::Raw { .. } => None,
        })
        .collect();
    for event in outbox {
        if !first_seen.contains(&event.event_id) && !dead.contains(&event.event_id) {
            violations.push(Violation::Unpublished {
                event_id: event.event_id,
            });
        }
    }
    for (aggregate, versions) in first_order {
        if versions.windows(2).any(|pair| pair[0] >= pair[1]) {
            violations.push(Violation::PublishedOutOfOrder {
                aggregate,
                versions,
            });
        }
    }
    let distinct: Vec<&EventEnvelope> = {
        let mut seen = HashSet::new();
        published
            .iter()
            .filter(|e| seen.insert(e.event_id))
            .collect()
    };
    for subscriber in &pipeline.subscribers {
        let consumer = subscriber.reaction.name();
        let mut found: HashMap<EventId, usize> = HashMap::new();
        for effect in pipeline.inbox.effects_of(consumer) {
            *found.entry(effect.event_id).or_default() += 1;
        }
        for event in &distinct {
            let expected = usize::from(
                subscriber.pattern.matches(event)
                    && matches!(subscriber.reaction.react(event), Ok(Some(_))),
            );
            let count = found.remove(&event.event_id).unwrap_or(0);
            if count != expected {
                violations.push(Violation::EffectCount {
                    consumer: consumer.to_owned(),
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
                    consumer: consumer.to_owned(),
                    event_id,
                    expected: 0,
                    found: count,
                }),
        );
    }
    violations
}

/// Invariant 1 for one aggregate, whichever its type.
fn check_aggregate(stored: &StoredAggregate) -> Vec<Violation> {
    match stored.aggregate.aggregate_type.as_str() {
        Repair::TYPE => check_fold::<Repair>(stored),
        Order::TYPE => check_fold::<Order>(stored),
        other => vec![Violation::StateDiverges {
            aggregate: stored.aggregate.clone(),
            detail: format!("unknown aggregate type {other}"),
        }],
    }
}

/// Folds the outbox of an aggregate and compares it with its stored state.
fn check_fold<A: Aggregate>(stored: &StoredAggregate) -> Vec<Violation> {
    let aggregate = &stored.aggregate;
    let diverges = |detail: String| {
        vec![Violation::StateDiverges {
            aggregate: aggregate.clone(),
            detail,
        }]
    };
    let outbox = &stored.outbox;
    let versions: Vec<u64> = outbox.iter().map(|e| e.aggregate_version.value()).collect();
    if !versions.iter().copied().eq(1..=versions.len() as u64) {
        return vec![Violation::VersionGap {
            aggregate: aggregate.clone(),
            versions,
        }];
    }
    let events = match outbox
        .iter()
        .map(EventEnvelope::decode::<A>)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(events) => events,
        Err(error) => return diverges(format!("undecodable event: {error}")),
    };
    let Some(stored) = stored.state.clone() else {
        return diverges("no stored state".to_owned());
    };
    if stored.version.value() != versions.len() as u64 {
        return diverges(format!(
            "stored version {} but {} events",
            stored.version,
            versions.len()
        ));
    }
    let replayed = fold::<A>(A::State::default(), &events);
    match serde_json::from_value::<A::State>(stored.state) {
        Ok(state) if state == replayed => Vec::new(),
        Ok(state) => diverges(format!("stored {state:?} but replayed {replayed:?}")),
        Err(error) => diverges(format!("undecodable state: {error}")),
    }
}
