//! Executing a command: load → decide → write set → one atomic commit.
//!
//! On a version conflict the use case reloads and decides again, a bounded number
//! of times; that is safe because a conflicting commit wrote nothing. It never
//! retries an infrastructure failure itself: after a timeout the write may have
//! happened, and only the caller's idempotency key makes a repeat safe. A repeated
//! key returns the first result and writes no new events.

use std::sync::Arc;

use serde::Serialize;
use tracing::{debug, info, warn};
use uuid::Uuid;

use outbox_domain::{Aggregate, Version};

use crate::envelope::{EncodeError, EventContext};
use crate::ids::{derive_uuid, AggregateId, AggregateRef, EventId, IdempotencyKey};
use crate::ports::{AggregateStore, Clock, IdGenerator, StoreError};
use crate::trace::Traceparent;
use crate::write_set::{IdempotencyRecord, LimitError, StateRecord, WriteSet};

/// Which aggregate a command is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Target {
    /// A new aggregate; the use case picks its id.
    New,
    /// An existing aggregate.
    Existing(AggregateId),
}

/// The request-level metadata of a command.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestMeta {
    /// Makes the request safe to repeat.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The business request's correlation id; a new one when absent.
    pub correlation_id: Option<String>,
    /// What caused this request (e.g. an event id); the request's own id when absent.
    pub causation_id: Option<String>,
    /// The caller's trace; a new root trace when absent.
    pub traceparent: Option<Traceparent>,
}

/// What a command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The aggregate.
    pub aggregate: AggregateRef,
    /// Its version after the command.
    pub version: Version,
    /// The events recorded, in order.
    pub event_ids: Vec<EventId>,
    /// True when an earlier request with the same key produced this result.
    pub replayed: bool,
}

/// Why a command did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error + 'static> {
    /// The domain refused the command.
    #[error("rejected: {0}")]
    Rejected(#[source] E),
    /// Other writers kept winning; nothing was written.
    #[error("gave up after {attempts} version conflicts, the last expecting version {expected} (stored: {})", actual.map_or_else(|| "unknown".to_owned(), |v| v.to_string()))]
    Conflict {
        /// How many decisions were tried.
        attempts: u32,
        /// The version the last attempt expected.
        expected: Version,
        /// The version stored instead, when the store told it.
        actual: Option<Version>,
    },
    /// The idempotency key was used before for a different request.
    #[error("idempotency key \"{}\" was used for a different request", .0.as_str())]
    IdempotencyKeyReused(IdempotencyKey),
    /// The write would exceed the store's limits; nothing was written.
    #[error("too large: {0}")]
    TooLarge(#[from] LimitError),
    /// Throttled or unavailable; retry with the same idempotency key.
    #[error("temporarily unavailable: {0}")]
    Unavailable(#[source] StoreError),
    /// A failure retrying will not fix.
    #[error("failed: {0}")]
    Failed(#[source] StoreError),
    /// The command, the state or an event could not be encoded: a defect, not retryable.
    #[error(transparent)]
    Encoding(#[from] EncodeError),
}

impl<E: std::error::Error + 'static> CommandError<E> {
    /// The same error with the domain's refusal turned into `F` by `map`.
    pub fn map_rejection<F: std::error::Error + 'static>(
        self,
        map: impl FnOnce(E) -> F,
    ) -> CommandError<F> {
        match self {
            CommandError::Rejected(rejection) => CommandError::Rejected(map(rejection)),
            CommandError::Conflict {
                attempts,
                expected,
                actual,
            } => CommandError::Conflict {
                attempts,
                expected,
                actual,
            },
            CommandError::IdempotencyKeyReused(key) => CommandError::IdempotencyKeyReused(key),
            CommandError::TooLarge(limit) => CommandError::TooLarge(limit),
            CommandError::Unavailable(error) => CommandError::Unavailable(error),
            CommandError::Failed(error) => CommandError::Failed(error),
            CommandError::Encoding(error) => CommandError::Encoding(error),
        }
    }
}

impl<E: std::error::Error + 'static> From<StoreError> for CommandError<E> {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Limit(limit) => CommandError::TooLarge(limit),
            error if error.is_retryable() => CommandError::Unavailable(error),
            error => CommandError::Failed(error),
        }
    }
}

/// How the use case treats conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandPolicy {
    /// How many times to decide before giving up on version conflicts.
    pub max_attempts: u32,
}

impl Default for CommandPolicy {
    fn default() -> Self {
        Self { max_attempts: 5 }
    }
}

/// Runs commands against aggregates through the store port.
#[derive(Clone)]
pub struct CommandService {
    store: Arc<dyn AggregateStore>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    policy: CommandPolicy,
}

impl CommandService {
    /// Wires the use case to its ports.
    pub fn new(
        store: Arc<dyn AggregateStore>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        policy: CommandPolicy,
    ) -> Self {
        Self {
            store,
            clock,
            ids,
            policy,
        }
    }

    /// Loads the current state and version of an aggregate; `None` if it does not exist.
    ///
    /// # Errors
    /// The store's errors; a stored state that does not decode is [`StoreError::Corrupt`].
    pub async fn load<A: Aggregate>(
        &self,
        id: AggregateId,
    ) -> Result<Option<(A::State, Version)>, CommandError<A::Error>> {
        let aggregate = AggregateRef::new(A::TYPE, id);
        match self.store.load(&aggregate).await? {
            None => Ok(None),
            Some(record) => Ok(Some((decode_state::<A>(&record)?, record.version))),
        }
    }

    /// Executes `command` against `target`.
    ///
    /// # Errors
    /// [`CommandError`]: the domain's refusal, conflicts after the last attempt, a
    /// reused idempotency key, limits, or store failures.
    pub async fn execute<A: Aggregate>(
        &self,
        target: Target,
        command: &A::Command,
        meta: &RequestMeta,
    ) -> Result<CommandOutcome, CommandError<A::Error>> {
        let fingerprint = fingerprint::<A>(target, command)?;
        if let Some(key) = &meta.idempotency_key {
            if let Some(record) = self.store.find_request(key).await? {
                return replay(record, fingerprint);
            }
        }
        let result = self
            .decide_and_commit::<A>(target, command, meta, fingerprint)
            .await;
        // A repeat of a request still in flight reads no record at first; when it is
        // then refused or loses the race, the first may have committed meanwhile:
        // its result, not the refusal, is the answer to the key.
        if let (Err(CommandError::Rejected(_) | CommandError::Conflict { .. }), Some(key)) =
            (&result, &meta.idempotency_key)
        {
            if let Some(record) = self.store.find_request(key).await? {
                return replay(record, fingerprint);
            }
        }
        result
    }

    /// Decides and commits, deciding again on a version conflict.
    async fn decide_and_commit<A: Aggregate>(
        &self,
        target: Target,
        command: &A::Command,
        meta: &RequestMeta,
        fingerprint: Uuid,
    ) -> Result<CommandOutcome, CommandError<A::Error>> {
        let id = match target {
            Target::New => AggregateId::from_uuid(self.ids.new_id()),
            Target::Existing(id) => id,
        };
        let aggregate = AggregateRef::new(A::TYPE, id);
        let request_id = self.ids.new_id();
        let context = self.context(request_id, meta);
        let limits = self.store.limits();
        let mut conflict = (Version::INITIAL, None);
        for attempt in 1..=self.policy.max_attempts {
            let (state, version) = match self.store.load(&aggregate).await? {
                None => (A::State::default(), Version::INITIAL),
                Some(record) => (decode_state::<A>(&record)?, record.version),
            };
            let decision = outbox_domain::decide::<A>(&state, version, command)
                .map_err(CommandError::Rejected)?;
            let request = meta.idempotency_key.clone().map(|key| (key, fingerprint));
            let write = WriteSet::from_decision(id, &decision, &context, request_id, request)?;
            write.check(&limits)?;
            match self.store.commit(&write).await {
                Ok(()) => {
                    info!(%aggregate, version = %decision.version, events = write.outbox.len(), "committed");
                    return Ok(CommandOutcome {
                        aggregate,
                        version: decision.version,
                        event_ids: write.outbox.iter().map(|e| e.event_id).collect(),
                        replayed: false,
                    });
                }
                // An outbox record at a version this write wanted means the aggregate
                // moved on too (a store may report only that condition): decide again.
                Err(StoreError::VersionConflict { actual, .. }) => {
                    conflict = (write.expected_version, actual);
                    debug!(%aggregate, attempt, "version conflict, deciding again");
                }
                Err(StoreError::DuplicateEvent(_)) => {
                    conflict = (write.expected_version, None);
                    debug!(%aggregate, attempt, "version conflict, deciding again");
                }
                Err(StoreError::DuplicateRequest(key)) => {
                    return match self.store.find_request(&key).await? {
                        Some(record) => replay(record, fingerprint),
                        None => Err(CommandError::Conflict {
                            attempts: attempt,
                            expected: write.expected_version,
                            actual: None,
                        }),
                    };
                }
                Err(error) => {
                    warn!(%aggregate, %error, "commit failed");
                    return Err(error.into());
                }
            }
        }
        Err(CommandError::Conflict {
            attempts: self.policy.max_attempts,
            expected: conflict.0,
            actual: conflict.1,
        })
    }

    /// The metadata every event of this request shares.
    fn context(&self, request_id: Uuid, meta: &RequestMeta) -> EventContext {
        EventContext {
            occurred_at: self.clock.now().to_offset(time::UtcOffset::UTC),
            correlation_id: meta
                .correlation_id
                .clone()
                .unwrap_or_else(|| request_id.to_string()),
            causation_id: meta
                .causation_id
                .clone()
                .unwrap_or_else(|| request_id.to_string()),
            traceparent: meta
                .traceparent
                .clone()
                .unwrap_or_else(|| Traceparent::root(request_id, self.ids.new_id())),
        }
    }
}

/// Decodes a stored state; one that does not decode is a corrupt item.
fn decode_state<A: Aggregate>(record: &StateRecord) -> Result<A::State, StoreError> {
    serde_json::from_value(record.state.clone())
        .map_err(|source| StoreError::Corrupt(Box::new(source)))
}

/// A digest of the request: aggregate type, target and command.
fn fingerprint<A: Aggregate>(target: Target, command: &A::Command) -> Result<Uuid, EncodeError> {
    let encoded = serde_json::to_string(&(target, command)).map_err(EncodeError::of("command"))?;
    Ok(derive_uuid(&["request", A::TYPE, &encoded]))
}

/// The first result of a repeated request, or an error if the key served another request.
fn replay<E: std::error::Error + 'static>(
    record: IdempotencyRecord,
    fingerprint: Uuid,
) -> Result<CommandOutcome, CommandError<E>> {
    if record.fingerprint != fingerprint {
        return Err(CommandError::IdempotencyKeyReused(record.key));
    }
    info!(
        key = record.key.as_str(),
        "replaying the first result of a repeated request"
    );
    Ok(CommandOutcome {
        aggregate: record.aggregate,
        version: record.version,
        event_ids: record.event_ids,
        replayed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::store::MockAggregateStore;
    use crate::ports::{RandomIds, SystemClock};
    use mockall::predicate::always;
    use outbox_domain::{EmailAddress, Text};
    use outbox_seeds_domain::repair::{
        Repair, RepairCommand, RepairError, RepairSheet, RepairStatus,
    };

    fn text(raw: &str) -> Text {
        Text::parse("t", raw).unwrap()
    }

    fn open() -> RepairCommand {
        RepairCommand::OpenRepair {
            vehicle: text("car"),
            customer: text("Ada"),
            customer_email: EmailAddress::parse("t", "ada@example.com").unwrap(),
            description: text("brakes"),
        }
    }

    fn started_repair() -> StateRecord {
        let sheet = RepairSheet {
            vehicle: text("car"),
            customer: text("Ada"),
            customer_email: EmailAddress::parse("t", "ada@example.com").unwrap(),
            description: text("brakes"),
            status: RepairStatus::InProgress,
            line_items: vec![],
            total_cents: None,
            cancellation_reason: None,
        };
        StateRecord {
            version: Version::new(2),
            state: serde_json::to_value(Some(sheet)).unwrap(),
        }
    }

    fn service(mut store: MockAggregateStore, policy: CommandPolicy) -> CommandService {
        store
            .expect_limits()
            .return_const(crate::write_set::WriteLimits::default());
        CommandService::new(
            Arc::new(store),
            Arc::new(SystemClock),
            Arc::new(RandomIds),
            policy,
        )
    }

    fn keyed(key: &str) -> RequestMeta {
        RequestMeta {
            idempotency_key: Some(IdempotencyKey::parse(key).unwrap()),
            ..RequestMeta::default()
        }
    }

    fn id() -> AggregateId {
        AggregateId::from_uuid(Uuid::from_u128(77))
    }

    #[tokio::test]
    async fn a_version_conflict_or_a_taken_event_version_is_decided_again() {
        let mut store = MockAggregateStore::new();
        store
            .expect_load()
            .times(3)
            .returning(|_| Ok(Some(started_repair())));
        let mut attempt = 0;
        store.expect_commit().times(3).returning(move |write| {
            assert_eq!(write.expected_version, Version::new(2));
            attempt += 1;
            match attempt {
                1 => Err(StoreError::VersionConflict {
                    aggregate: write.aggregate.clone(),
                    expected: write.expected_version,
                    actual: Some(Version::new(3)),
                }),
                2 => Err(StoreError::DuplicateEvent(write.aggregate.clone())),
                _ => Ok(()),
            }
        });
        let outcome = service(store, CommandPolicy::default())
            .execute::<Repair>(
                Target::Existing(id()),
                &RepairCommand::CompleteRepair,
                &RequestMeta::default(),
            )
            .await
            .unwrap();
        assert_eq!(outcome.version, Version::new(3));
        assert_eq!(outcome.event_ids.len(), 1);
        assert!(!outcome.replayed);
    }

    #[tokio::test]
    async fn conflicts_give_up_after_the_last_attempt() {
        let mut store = MockAggregateStore::new();
        store
            .expect_load()
            .times(3)
            .returning(|_| Ok(Some(started_repair())));
        store.expect_commit().times(3).returning(|write| {
            Err(StoreError::VersionConflict {
                aggregate: write.aggregate.clone(),
                expected: write.expected_version,
                actual: Some(Version::new(4)),
            })
        });
        let policy = CommandPolicy { max_attempts: 3 };
        let result = service(store, policy)
            .execute::<Repair>(
                Target::Existing(id()),
                &RepairCommand::CompleteRepair,
                &RequestMeta::default(),
            )
            .await;
        assert!(matches!(
            result,
            Err(CommandError::Conflict { attempts: 3, expected, actual: Some(actual) })
                if expected == Version::new(2) && actual == Version::new(4)
        ));
    }

    #[tokio::test]
    async fn a_repeated_key_returns_the_first_result_without_writing() {
        let fingerprint = fingerprint::<Repair>(Target::New, &open()).unwrap();
        let first = IdempotencyRecord {
            key: IdempotencyKey::parse("k").unwrap(),
            fingerprint,
            aggregate: AggregateRef::new("Repair", id()),
            version: Version::new(1),
            event_ids: vec![EventId::derive(
                &AggregateRef::new("Repair", id()),
                Version::new(1),
            )],
        };
        let mut store = MockAggregateStore::new();
        let record = first.clone();
        store
            .expect_find_request()
            .times(1)
            .returning(move |_| Ok(Some(record.clone())));
        store.expect_load().never();
        store.expect_commit().never();
        let outcome = service(store, CommandPolicy::default())
            .execute::<Repair>(Target::New, &open(), &keyed("k"))
            .await
            .unwrap();
        assert!(outcome.replayed);
        assert_eq!(outcome.event_ids, first.event_ids);
        assert_eq!(outcome.aggregate, first.aggregate);
    }

    #[tokio::test]
    async fn a_repeat_refused_because_its_first_request_committed_meanwhile_gets_the_first_result()
    {
        let command = RepairCommand::CompleteRepair;
        let fingerprint = fingerprint::<Repair>(Target::Existing(id()), &command).unwrap();
        let first = IdempotencyRecord {
            key: IdempotencyKey::parse("k").unwrap(),
            fingerprint,
            aggregate: AggregateRef::new("Repair", id()),
            version: Version::new(3),
            event_ids: vec![EventId::derive(
                &AggregateRef::new("Repair", id()),
                Version::new(3),
            )],
        };
        let mut completed = started_repair();
        completed.version = Version::new(3);
        completed.state["status"] = serde_json::json!("COMPLETED");
        let mut store = MockAggregateStore::new();
        let mut lookups = 0;
        let record = first.clone();
        store.expect_find_request().times(2).returning(move |_| {
            lookups += 1;
            Ok((lookups == 2).then(|| record.clone()))
        });
        store
            .expect_load()
            .times(1)
            .returning(move |_| Ok(Some(completed.clone())));
        store.expect_commit().never();
        let outcome = service(store, CommandPolicy::default())
            .execute::<Repair>(Target::Existing(id()), &command, &keyed("k"))
            .await
            .unwrap();
        assert!(outcome.replayed);
        assert_eq!(outcome.event_ids, first.event_ids);
    }

    #[tokio::test]
    async fn a_refusal_without_a_key_or_without_a_committed_key_stays_a_refusal() {
        let mut store = MockAggregateStore::new();
        store.expect_find_request().times(2).returning(|_| Ok(None));
        store.expect_load().returning(|_| Ok(None));
        store.expect_commit().never();
        let service = service(store, CommandPolicy::default());
        for meta in [keyed("k"), RequestMeta::default()] {
            let result = service
                .execute::<Repair>(Target::Existing(id()), &RepairCommand::StartWork, &meta)
                .await;
            assert!(matches!(
                result,
                Err(CommandError::Rejected(RepairError::NotOpened))
            ));
        }
    }

    #[tokio::test]
    async fn a_key_reused_for_another_request_is_refused() {
        let mut store = MockAggregateStore::new();
        store.expect_find_request().returning(|key| {
            Ok(Some(IdempotencyRecord {
                key: key.clone(),
                fingerprint: Uuid::from_u128(1),
                aggregate: AggregateRef::new("Repair", id()),
                version: Version::new(1),
                event_ids: vec![],
            }))
        });
        store.expect_commit().never();
        let result = service(store, CommandPolicy::default())
            .execute::<Repair>(Target::New, &open(), &keyed("k"))
            .await;
        assert!(matches!(result, Err(CommandError::IdempotencyKeyReused(_))));
    }

    #[tokio::test]
    async fn a_lost_race_on_the_key_replays_the_winner() {
        let fingerprint = fingerprint::<Repair>(Target::New, &open()).unwrap();
        let mut store = MockAggregateStore::new();
        let mut lookups = 0;
        store.expect_find_request().times(2).returning(move |key| {
            lookups += 1;
            Ok((lookups > 1).then(|| IdempotencyRecord {
                key: key.clone(),
                fingerprint,
                aggregate: AggregateRef::new("Repair", id()),
                version: Version::new(1),
                event_ids: vec![],
            }))
        });
        store.expect_load().returning(|_| Ok(None));
        store.expect_commit().times(1).returning(|write| {
            Err(StoreError::DuplicateRequest(
                write.request.clone().unwrap().key,
            ))
        });
        let outcome = service(store, CommandPolicy::default())
            .execute::<Repair>(Target::New, &open(), &keyed("k"))
            .await
            .unwrap();
        assert!(outcome.replayed);
        assert_eq!(outcome.aggregate.aggregate_id, id());
    }

    #[tokio::test]
    async fn a_write_over_the_store_s_own_limits_is_refused_before_the_commit() {
        let mut store = MockAggregateStore::new();
        store.expect_load().returning(|_| Ok(None));
        store.expect_commit().never();
        store
            .expect_limits()
            .return_const(crate::write_set::WriteLimits {
                max_actions: 100,
                max_item_bytes: 300,
            });
        let service = CommandService::new(
            Arc::new(store),
            Arc::new(SystemClock),
            Arc::new(RandomIds),
            CommandPolicy::default(),
        );
        let result = service
            .execute::<Repair>(Target::New, &open(), &RequestMeta::default())
            .await;
        assert!(matches!(
            result,
            Err(CommandError::TooLarge(LimitError::ItemTooLarge { .. }))
        ));
    }

    #[tokio::test]
    async fn a_refusal_of_the_domain_writes_nothing() {
        let mut store = MockAggregateStore::new();
        store.expect_load().with(always()).returning(|_| Ok(None));
        store.expect_commit().never();
        let result = service(store, CommandPolicy::default())
            .execute::<Repair>(
                Target::Existing(id()),
                &RepairCommand::StartWork,
                &RequestMeta::default(),
            )
            .await;
        assert!(matches!(
            result,
            Err(CommandError::Rejected(RepairError::NotOpened))
        ));
    }

    #[tokio::test]
    async fn an_unknown_outcome_is_not_retried_blindly() {
        let mut store = MockAggregateStore::new();
        store
            .expect_load()
            .returning(|_| Ok(Some(started_repair())));
        store
            .expect_commit()
            .times(1)
            .returning(|_| Err(StoreError::Unavailable("timed out".into())));
        let result = service(store, CommandPolicy::default())
            .execute::<Repair>(
                Target::Existing(id()),
                &RepairCommand::CompleteRepair,
                &RequestMeta::default(),
            )
            .await;
        assert!(matches!(
            result,
            Err(CommandError::Unavailable(StoreError::Unavailable(_)))
        ));
    }

    #[tokio::test]
    async fn events_carry_the_request_context() {
        let mut store = MockAggregateStore::new();
        store.expect_load().returning(|_| Ok(None));
        let trace =
            Traceparent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let expected_trace = trace.clone();
        store.expect_commit().times(1).returning(move |write| {
            let event = &write.outbox[0];
            assert_eq!(event.correlation_id, "corr-7");
            assert_eq!(event.traceparent, expected_trace);
            assert_eq!(event.occurred_at.offset(), time::UtcOffset::UTC);
            Ok(())
        });
        let meta = RequestMeta {
            correlation_id: Some("corr-7".into()),
            traceparent: Some(trace),
            ..RequestMeta::default()
        };
        service(store, CommandPolicy::default())
            .execute::<Repair>(Target::New, &open(), &meta)
            .await
            .unwrap();
    }
}
