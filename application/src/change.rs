//! Records of the change feed (a DynamoDB stream shard, or its in-memory twin) as
//! the relay sees them: outbox events, or poison records that could not be decoded.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::envelope::EventEnvelope;

/// A stream record's position. DynamoDB sequence numbers are decimal strings of
/// varying length, so they order by length first, then digit by digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SequenceNumber(String);

impl SequenceNumber {
    /// Wraps a sequence number.
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The sequence number as the stream spelled it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        let digits = |s: &str| s.trim_start_matches('0').len();
        digits(&self.0).cmp(&digits(&other.0)).then_with(|| {
            self.0
                .trim_start_matches('0')
                .cmp(other.0.trim_start_matches('0'))
        })
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What identifies a record, read from it where it could be read: the item's
/// keys and the event id and type. A dead letter keeps it whatever else is cut.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordIdentity {
    /// The item's partition key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pk: Option<String>,
    /// The item's sort key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sk: Option<String>,
    /// The event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
}

impl RecordIdentity {
    /// The longest value kept of each field, in characters.
    pub const MAX_CHARS: usize = 1_024;

    /// `value` cut to [`RecordIdentity::MAX_CHARS`].
    pub fn bounded(value: &str) -> String {
        value.chars().take(Self::MAX_CHARS).collect()
    }
}

/// What a change record carries.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every value is the event variant; boxing it would only add an allocation"
)]
pub enum ChangeContent {
    /// A newly inserted outbox event.
    Outbox(EventEnvelope),
    /// An outbox item that could not be decoded; it goes to the dead-letter queue.
    Poison {
        /// Why it could not be decoded.
        reason: String,
        /// The raw record, for inspection and redrive.
        raw: String,
        /// What identifies it.
        identity: RecordIdentity,
    },
}

/// One record of the change feed, in stream order.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// Its position in the shard.
    pub sequence: SequenceNumber,
    /// What it carries.
    pub content: ChangeContent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_order_numerically() {
        let seq = SequenceNumber::new;
        assert!(seq("9") < seq("10"));
        assert!(seq("000123") < seq("124"));
        assert!(seq("4000000000000000000001") > seq("399999999999999999999"));
        assert_eq!(seq("007").cmp(&seq("7")), Ordering::Equal);
    }
}
