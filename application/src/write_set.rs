//! The write set: a decision turned into storage-agnostic writes.
//!
//! One write set is one atomic commit: put the new state if the stored version is
//! still the expected one, append one outbox record per event (each must be new),
//! and record the request's idempotency key (which must be new). A store turns it
//! into exactly one transaction. Limits are checked here, before any call, so an
//! oversized or overlong commit fails early with a typed error.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use outbox_domain::{Aggregate, Decision, Version};

use crate::envelope::{EncodeError, EventContext, EventEnvelope};
use crate::ids::{derive_uuid, AggregateId, AggregateRef, EventId, IdempotencyKey};

/// The serialized state of an aggregate at a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateRecord {
    /// The version the state is at.
    pub version: Version,
    /// The serialized state.
    pub state: Value,
}

/// What a request with an idempotency key produced, kept so a repeat returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyRecord {
    /// The caller's key.
    pub key: IdempotencyKey,
    /// A digest of the request, so a key reused for another request is caught.
    pub fingerprint: Uuid,
    /// The aggregate the request changed.
    pub aggregate: AggregateRef,
    /// The version it reached.
    pub version: Version,
    /// The events it recorded.
    pub event_ids: Vec<EventId>,
}

/// One atomic commit, in storage-agnostic terms.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteSet {
    /// The aggregate being changed.
    pub aggregate: AggregateRef,
    /// The version the store must still hold (`0`: the aggregate must not exist).
    pub expected_version: Version,
    /// The new state.
    pub state: StateRecord,
    /// One record per event, in version order.
    pub outbox: Vec<EventEnvelope>,
    /// The idempotency record, when the request carried a key.
    pub request: Option<IdempotencyRecord>,
    /// A token that makes a retry of this exact write safe (DynamoDB's `ClientRequestToken`).
    pub request_token: String,
}

/// The limits of one atomic commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteLimits {
    /// The most actions in one transaction.
    pub max_actions: usize,
    /// The largest item, in bytes.
    pub max_item_bytes: usize,
}

impl Default for WriteLimits {
    /// DynamoDB's: 100 actions per `TransactWriteItems`, 400 KB per item.
    fn default() -> Self {
        Self {
            max_actions: 100,
            max_item_bytes: 400 * 1024,
        }
    }
}

/// Why a write set exceeds the store's limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// More actions than one transaction takes.
    #[error("the commit needs {actions} actions, the limit is {max}")]
    TooManyActions {
        /// Actions needed.
        actions: usize,
        /// The limit.
        max: usize,
    },
    /// An item larger than the store takes.
    #[error("item {item} is about {bytes} bytes, the limit is {max}")]
    ItemTooLarge {
        /// Which item.
        item: String,
        /// Its estimated size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The store itself refused the write as too large, past the estimate here.
    #[error("the store refused the write as too large: {reason}")]
    RefusedByStore {
        /// What the store said.
        reason: String,
    },
}

/// Room left in every item estimate for keys and attribute names the store adds.
const ITEM_OVERHEAD_BYTES: usize = 256;

impl WriteSet {
    /// Builds the write set of `decision` for aggregate `aggregate_id`, taken while
    /// serving the request `request_id` (unique per request; it seeds the retry token).
    ///
    /// # Errors
    /// [`EncodeError`] when the state or an event does not serialize.
    pub fn from_decision<A: Aggregate>(
        aggregate_id: AggregateId,
        decision: &Decision<A>,
        context: &EventContext,
        request_id: Uuid,
        request: Option<(IdempotencyKey, Uuid)>,
    ) -> Result<Self, EncodeError> {
        let aggregate = AggregateRef::new(A::TYPE, aggregate_id);
        let outbox = decision
            .events
            .iter()
            .enumerate()
            .map(|(index, event)| {
                let version = decision.expected_version.advanced_by(index + 1);
                EventEnvelope::wrap::<A>(aggregate_id, version, event, context)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let state = serde_json::to_value(&decision.state).map_err(EncodeError::of("state"))?;
        let request = request.map(|(key, fingerprint)| IdempotencyRecord {
            key,
            fingerprint,
            aggregate: aggregate.clone(),
            version: decision.version,
            event_ids: outbox.iter().map(|e| e.event_id).collect(),
        });
        let request_token = derive_uuid(&[
            "write",
            &aggregate.to_string(),
            &decision.expected_version.to_string(),
            &request_id.to_string(),
        ])
        .to_string();
        Ok(Self {
            aggregate,
            expected_version: decision.expected_version,
            state: StateRecord {
                version: decision.version,
                state,
            },
            outbox,
            request,
            request_token,
        })
    }

    /// The number of actions one transaction needs for this write set.
    pub fn action_count(&self) -> usize {
        1 + self.outbox.len() + usize::from(self.request.is_some())
    }

    /// Checks the write set against `limits`.
    ///
    /// # Errors
    /// [`LimitError`] naming the first limit exceeded.
    pub fn check(&self, limits: &WriteLimits) -> Result<(), LimitError> {
        let actions = self.action_count();
        if actions > limits.max_actions {
            return Err(LimitError::TooManyActions {
                actions,
                max: limits.max_actions,
            });
        }
        let too_large = |item: String, bytes: usize| {
            (bytes > limits.max_item_bytes).then_some(LimitError::ItemTooLarge {
                item,
                bytes,
                max: limits.max_item_bytes,
            })
        };
        if let Some(error) = too_large(format!("{} state", self.aggregate), estimate(&self.state)) {
            return Err(error);
        }
        for envelope in &self.outbox {
            if let Some(error) = too_large(
                format!("{} event {}", envelope.event_type, envelope.event_id),
                estimate(envelope),
            ) {
                return Err(error);
            }
        }
        Ok(())
    }
}

/// An item's size: its JSON encoding plus room for keys. DynamoDB's own measure
/// (attribute names plus values) stays below this for these items.
fn estimate<T: Serialize>(item: &T) -> usize {
    serde_json::to_vec(item).map_or(usize::MAX, |bytes| bytes.len()) + ITEM_OVERHEAD_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Traceparent;
    use outbox_domain::{decide, EmailAddress, Text};
    use outbox_seeds_domain::repair::{Repair, RepairCommand};
    use time::OffsetDateTime;

    fn context() -> EventContext {
        EventContext {
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            correlation_id: "c".into(),
            causation_id: "r".into(),
            traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
        }
    }

    fn opened_write(description: &str) -> WriteSet {
        let text = |raw: &str| Text::parse("t", raw).unwrap();
        let decision = decide::<Repair>(
            &None,
            Version::INITIAL,
            &RepairCommand::OpenRepair {
                vehicle: text("car"),
                customer: text("Ada"),
                customer_email: EmailAddress::parse("t", "ada@example.com").unwrap(),
                description: text(description),
            },
        )
        .unwrap();
        let key = IdempotencyKey::parse("k1").unwrap();
        WriteSet::from_decision(
            AggregateId::from_uuid(Uuid::from_u128(5)),
            &decision,
            &context(),
            Uuid::from_u128(4),
            Some((key, Uuid::from_u128(3))),
        )
        .unwrap()
    }

    #[test]
    fn a_decision_becomes_state_outbox_and_request_record() {
        let write = opened_write("brakes");
        assert_eq!(write.expected_version, Version::INITIAL);
        assert_eq!(write.state.version, Version::new(1));
        assert_eq!(write.outbox.len(), 1);
        assert_eq!(write.outbox[0].aggregate_version, Version::new(1));
        assert_eq!(write.action_count(), 3);
        let request = write.request.as_ref().unwrap();
        assert_eq!(request.event_ids, vec![write.outbox[0].event_id]);
        assert_eq!(write.request_token.len(), 36);
        assert_eq!(write.check(&WriteLimits::default()), Ok(()));
    }

    #[test]
    fn too_many_actions_are_refused_before_any_call() {
        let mut write = opened_write("brakes");
        let event = write.outbox[0].clone();
        write.outbox = vec![event; 99];
        assert_eq!(write.action_count(), 101);
        assert_eq!(
            write.check(&WriteLimits::default()),
            Err(LimitError::TooManyActions {
                actions: 101,
                max: 100
            })
        );
    }

    #[test]
    fn an_item_over_400_kb_is_refused_before_any_call() {
        let mut write = opened_write("brakes");
        write.state.state = Value::String("x".repeat(400 * 1024));
        assert!(matches!(
            write.check(&WriteLimits::default()),
            Err(LimitError::ItemTooLarge { bytes, max: 409_600, .. }) if bytes > 409_600
        ));
    }
}
