//! Identifiers: aggregates, events, idempotency keys.
//!
//! Aggregates get time-ordered UUID v7 ids. Event ids are *derived*: a name-based
//! UUID v5 of (aggregate type, aggregate id, event version), where the event
//! version is the decision's expected version plus the event's index plus one. One
//! id thus serves every dedupe layer: the transaction's retry token, the bus's
//! deduplication id and the consumer's inbox key.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use outbox_domain::Version;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not a UUID.
    #[error("`{0}` is not a valid id")]
    Malformed(String),
    /// An idempotency key outside 1..=128 printable ASCII characters.
    #[error("an idempotency key must be 1 to 128 printable ASCII characters")]
    BadIdempotencyKey,
}

/// The id of one aggregate instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AggregateId(Uuid);

impl AggregateId {
    /// Wraps a UUID (a v7 for new aggregates).
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// Parses the canonical textual form: lowercase, hyphenated, 36 characters.
    /// Other spellings of the same UUID (uppercase, simple, braced, `urn:uuid:`)
    /// are refused, so one aggregate has one id on every edge.
    ///
    /// # Errors
    /// [`IdError::Malformed`] for anything else.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        Uuid::parse_str(raw)
            .ok()
            .filter(|uuid| uuid.hyphenated().to_string() == raw)
            .map(Self)
            .ok_or_else(|| IdError::Malformed(raw.chars().take(64).collect()))
    }
}

impl std::fmt::Display for AggregateId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An aggregate instance: its persisted type name and its id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregateRef {
    /// The aggregate type, e.g. `Repair`.
    pub aggregate_type: String,
    /// The instance.
    pub aggregate_id: AggregateId,
}

impl AggregateRef {
    /// Names an instance.
    pub fn new(aggregate_type: &str, aggregate_id: AggregateId) -> Self {
        Self {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id,
        }
    }
}

impl std::fmt::Display for AggregateRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}#{}",
            self.aggregate_type.to_uppercase(),
            self.aggregate_id
        )
    }
}

/// The namespace of every name-based id this project derives. Never change it.
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f2c_1a57_93d4_4e0b_a1d2_5c3e_7b90_4f11);

/// Derives a stable name-based UUID from parts joined by `/`.
pub(crate) fn derive_uuid(parts: &[&str]) -> Uuid {
    Uuid::new_v5(&ID_NAMESPACE, parts.join("/").as_bytes())
}

/// The id of one event, derived from its aggregate and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// Derives the id of the event that brings `aggregate` to `version`.
    pub fn derive(aggregate: &AggregateRef, version: Version) -> Self {
        Self(derive_uuid(&[
            &aggregate.aggregate_type,
            &aggregate.aggregate_id.to_string(),
            &version.to_string(),
        ]))
    }

    /// The UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A caller's key that makes a request safe to repeat. It deserializes through
/// [`IdempotencyKey::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl TryFrom<String> for IdempotencyKey {
    type Error = IdError;

    fn try_from(raw: String) -> Result<Self, IdError> {
        Self::parse(&raw)
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> String {
        key.0
    }
}

impl IdempotencyKey {
    /// Parses a key of 1 to 128 printable ASCII characters.
    ///
    /// # Errors
    /// [`IdError::BadIdempotencyKey`] otherwise.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let valid = (1..=128).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdError::BadIdempotencyKey)
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_aggregate_id_has_one_spelling() {
        use super::AggregateId;
        let canonical = "0196a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b";
        assert!(AggregateId::parse(canonical).is_ok());
        for other in [
            "0196A5B2-1C3D-7E4F-8A9B-0C1D2E3F4A5B",
            "0196a5b21c3d7e4f8a9b0c1d2e3f4a5b",
            "urn:uuid:0196a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b",
            "{0196a5b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b}",
        ] {
            assert!(AggregateId::parse(other).is_err(), "{other}");
        }
    }

    #[test]
    fn an_idempotency_key_deserializes_through_its_rules() {
        use super::IdempotencyKey;
        assert!(serde_json::from_str::<IdempotencyKey>(r#""key-1""#).is_ok());
        assert!(serde_json::from_str::<IdempotencyKey>(r#""""#).is_err());
        assert!(serde_json::from_str::<IdempotencyKey>(r#""a key""#).is_err());
    }

    use super::*;

    #[test]
    fn event_ids_are_deterministic_and_distinct_per_version() {
        let aggregate = AggregateRef::new("Repair", AggregateId::from_uuid(Uuid::from_u128(7)));
        let first = EventId::derive(&aggregate, Version::new(1));
        assert_eq!(first, EventId::derive(&aggregate, Version::new(1)));
        assert_ne!(first, EventId::derive(&aggregate, Version::new(2)));
        let other = AggregateRef::new("Order", aggregate.aggregate_id);
        assert_ne!(first, EventId::derive(&other, Version::new(1)));
        assert_eq!(first.as_uuid().get_version_num(), 5);
    }

    #[test]
    fn ids_and_keys_are_parsed_at_the_edge() {
        assert!(matches!(
            AggregateId::parse("nope"),
            Err(IdError::Malformed(_))
        ));
        assert!(IdempotencyKey::parse("retry-1").is_ok());
        assert_eq!(IdempotencyKey::parse(""), Err(IdError::BadIdempotencyKey));
        assert_eq!(
            IdempotencyKey::parse("has space"),
            Err(IdError::BadIdempotencyKey)
        );
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(129)),
            Err(IdError::BadIdempotencyKey)
        );
    }
}
