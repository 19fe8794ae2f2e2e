//! Where things live: table names, keys and the attributes every item shares.
//!
//! Single-table by default (seed `000`): an aggregate's state item
//! (`pk = REPAIR#<id>`, `sk = STATE`) and its outbox items
//! (`sk = EVENT#<zero-padded version>`, `entityType = OUTBOX`) share one
//! partition, which is what lets the stream deliver an aggregate's events in
//! order. Optionally the outbox items go to a table of their own (seed `001`);
//! one transaction still spans both. Idempotency records are items of the main
//! table (`pk = REQUEST#<key>`). Stream checkpoints live in a table of their own
//! without a stream, so writing a checkpoint never produces a stream record.

use std::time::Duration;

use application::{AggregateRef, EventSources, IdempotencyKey};
use domain::Version;

/// The partition key attribute.
pub const PK: &str = "pk";
/// The sort key attribute.
pub const SK: &str = "sk";
/// The attribute naming what an item is: [`ENTITY_STATE`], [`ENTITY_OUTBOX`] or [`ENTITY_REQUEST`].
pub const ENTITY_TYPE: &str = "entityType";
/// The TTL attribute (epoch seconds).
pub const EXPIRES_AT: &str = "expiresAt";
/// An outbox item's `source` for the bus (what EventBridge Pipes publishes as `Source`).
pub const EVENT_SOURCE: &str = "eventSource";
/// The version attribute of a state item, the one the commit's condition reads.
pub const VERSION: &str = "version";

/// `entityType` of an aggregate's state item.
pub const ENTITY_STATE: &str = "AGGREGATE";
/// `entityType` of an outbox item: the stream filter (and an EventBridge Pipe) selects these.
pub const ENTITY_OUTBOX: &str = "OUTBOX";
/// `entityType` of an idempotency record.
pub const ENTITY_REQUEST: &str = "REQUEST";

/// The sort key of a state item.
pub const STATE_SK: &str = "STATE";
/// The sort key of an idempotency record.
pub const REQUEST_SK: &str = "REQUEST";

/// Digits of the zero-padded version in an outbox sort key: every `u64` fits.
const VERSION_DIGITS: usize = 20;

/// The tables of one deployment and how long outbox and idempotency items are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLayout {
    /// The main table: state items and idempotency records (and the outbox, single-table).
    pub table: String,
    /// A separate outbox table, if any.
    pub outbox_table: Option<String>,
    /// The table holding stream checkpoints of the self-hosted relay.
    pub checkpoint_table: String,
    /// How long an outbox item is kept before TTL removes it (the stream holds 24 h).
    pub outbox_retention: Duration,
    /// How long a repeated idempotency key returns the first result.
    pub request_retention: Duration,
    /// The `source` each outbox item carries as `eventSource`, so a pipe can
    /// publish it as the Lambda relay would.
    pub sources: EventSources,
}

impl TableLayout {
    /// Outbox items are kept seven days, long enough to replay past the stream's 24 h.
    pub const DEFAULT_OUTBOX_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
    /// Idempotency keys are honoured for a day.
    pub const DEFAULT_REQUEST_RETENTION: Duration = Duration::from_secs(24 * 3600);

    /// The single-table layout on `table`; checkpoints go to `<table>-checkpoints`.
    pub fn single_table(table: impl Into<String>) -> Self {
        let table = table.into();
        Self {
            checkpoint_table: format!("{table}-checkpoints"),
            table,
            outbox_table: None,
            outbox_retention: Self::DEFAULT_OUTBOX_RETENTION,
            request_retention: Self::DEFAULT_REQUEST_RETENTION,
            sources: EventSources::default(),
        }
    }

    /// The same layout with the outbox in `outbox_table`.
    pub fn with_outbox_table(mut self, outbox_table: impl Into<String>) -> Self {
        self.outbox_table = Some(outbox_table.into());
        self
    }

    /// The table the outbox items go to, and whose stream the relay reads.
    pub fn outbox_table(&self) -> &str {
        self.outbox_table.as_deref().unwrap_or(&self.table)
    }
}

/// The partition key of an aggregate's items, e.g. `REPAIR#<id>`.
pub fn aggregate_pk(aggregate: &AggregateRef) -> String {
    aggregate.to_string()
}

/// The sort key of an aggregate's outbox item at `version`, ordered as text.
pub fn outbox_sk(version: Version) -> String {
    format!("EVENT#{:0width$}", version.value(), width = VERSION_DIGITS)
}

/// The partition key of an idempotency record.
pub fn request_pk(key: &IdempotencyKey) -> String {
    format!("REQUEST#{}", key.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_sort_keys_order_by_version_as_text() {
        let keys: Vec<String> = [9, 10, 100, u64::MAX]
            .map(|v| outbox_sk(Version::new(v)))
            .to_vec();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(outbox_sk(Version::new(7)), "EVENT#00000000000000000007");
    }

    #[test]
    fn the_outbox_table_defaults_to_the_main_table() {
        let layout = TableLayout::single_table("workshop");
        assert_eq!(layout.outbox_table(), "workshop");
        assert_eq!(layout.checkpoint_table, "workshop-checkpoints");
        assert_eq!(layout.with_outbox_table("events").outbox_table(), "events");
    }
}
