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
//!
//! Outbox items also carry a sparse time index ([`OUTBOX_TIME_INDEX`]): keyed by
//! the hour they occurred in and one of [`HOUR_SHARDS`] shards picked by the
//! aggregate (so one hour's writes spread over several index partitions, and an
//! aggregate's events stay in one), sorted by the instant, the aggregate and
//! the version. A replay finds a window's events there without a scan, long
//! after the stream forgot them.

use std::time::Duration;

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use outbox_application::{AggregateRef, EventSources, IdempotencyKey};
use outbox_domain::Version;

/// Items a scan, or a query of a partition that can grow, reads per page.
/// DynamoDB stops a page at 1 MB anyway; the embedded dynoxide reads every
/// remaining row for each page that names no `Limit`, so an unlimited scan cost
/// the table's size per page and held it all in memory (258 MB at the end of a
/// 50,000-event demo).
pub const READ_PAGE_ITEMS: i32 = 1000;

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

/// The sparse index of outbox items by time.
pub const OUTBOX_TIME_INDEX: &str = "outbox-by-hour";
/// The index's partition key: `<hour>#<shard>`, e.g. `2026-11-24T16#3`.
pub const OUTBOX_HOUR: &str = "outboxHour";
/// The index's sort key: `<instant>#<pk>#<sk>`, fixed-width instant first.
pub const OUTBOX_AT: &str = "outboxAt";

/// The sparse index of the inbox's parked sequences by consumer.
pub const PARKED_BY_CONSUMER_INDEX: &str = "parked-by-consumer";
/// Its partition key: the consumer's name, on a sequence only while parked.
pub const PARKED_BY: &str = "parkedBy";
/// Its sort key: when the sequence parked (RFC 3339).
pub const PARKED_SINCE: &str = "parkedSince";
/// Index partitions per hour.
pub const HOUR_SHARDS: u32 = 8;

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
    /// The table holding dead letters where no SQS queue does (the local program).
    pub dead_letter_table: String,
    /// The consumers' inbox: marks, effects and duplicate counters.
    pub inbox_table: String,
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

    /// The single-table layout on `table`, outbox items carrying `sources`
    /// (the service declaration's); checkpoints go to `<table>-checkpoints`,
    /// dead letters to `<table>-dead-letters`, the consumers' inbox to
    /// `<table>-inbox`.
    pub fn single_table(table: impl Into<String>, sources: EventSources) -> Self {
        let table = table.into();
        Self {
            checkpoint_table: format!("{table}-checkpoints"),
            dead_letter_table: format!("{table}-dead-letters"),
            inbox_table: format!("{table}-inbox"),
            table,
            outbox_table: None,
            outbox_retention: Self::DEFAULT_OUTBOX_RETENTION,
            request_retention: Self::DEFAULT_REQUEST_RETENTION,
            sources,
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

/// An hour as the time index spells it.
const HOUR: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]T[hour]");
/// An instant as the time index spells it: fixed width, so text order is time order.
const INSTANT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

/// The time index's partition of `aggregate`'s events in the hour of `at`.
pub fn outbox_hour(at: OffsetDateTime, aggregate: &AggregateRef) -> String {
    hour_bucket(at, hour_shard(aggregate))
}

/// The time index's partition `shard` of the hour of `at`.
pub fn hour_bucket(at: OffsetDateTime, shard: u32) -> String {
    let hour = at
        .to_offset(UtcOffset::UTC)
        .format(HOUR)
        .unwrap_or_default();
    format!("{hour}#{shard}")
}

/// The index shard of `aggregate`: FNV-1a of its key, stable across releases.
pub fn hour_shard(aggregate: &AggregateRef) -> u32 {
    let hash = aggregate_pk(aggregate)
        .bytes()
        .fold(0x811c_9dc5_u32, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        });
    hash % HOUR_SHARDS
}

/// The time index's sort key of `aggregate`'s event at `version`, occurred `at`.
pub fn outbox_at(at: OffsetDateTime, aggregate: &AggregateRef, version: Version) -> String {
    format!(
        "{}#{}#{}",
        instant(at),
        aggregate_pk(aggregate),
        outbox_sk(version)
    )
}

/// `at` as the time index's sort keys begin.
pub fn instant(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(INSTANT)
        .unwrap_or_default()
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
    fn the_time_index_keys_sort_by_time_and_keep_an_aggregate_in_one_shard() {
        let aggregate = AggregateRef::new(
            "REPAIR",
            outbox_application::AggregateId::from_uuid(uuid::Uuid::from_u128(7)),
        );
        let early = time::macros::datetime!(2026-11-24 16:05:07.5 UTC);
        let late = time::macros::datetime!(2026-11-24 16:59:59.25 +01:00);
        assert_eq!(
            outbox_hour(early, &aggregate),
            format!("2026-11-24T16#{}", hour_shard(&aggregate))
        );
        assert_eq!(hour_bucket(late, 2), "2026-11-24T15#2");
        assert!(
            outbox_at(late, &aggregate, Version::new(9))
                < outbox_at(early, &aggregate, Version::new(1))
        );
        assert!(
            outbox_at(early, &aggregate, Version::new(9))
                < outbox_at(early, &aggregate, Version::new(10))
        );
        assert_eq!(instant(early), "2026-11-24T16:05:07.500000000Z");
        let shards: std::collections::HashSet<u32> = (0..64)
            .map(|n| {
                hour_shard(&AggregateRef::new(
                    "ORDER",
                    outbox_application::AggregateId::from_uuid(uuid::Uuid::from_u128(n)),
                ))
            })
            .collect();
        assert_eq!(
            shards.len(),
            HOUR_SHARDS as usize,
            "64 aggregates spread over every shard"
        );
    }

    #[test]
    fn the_outbox_table_defaults_to_the_main_table() {
        let layout = TableLayout::single_table(
            "workshop",
            outbox_seeds::service(&outbox_application::OutsidePorts::not_deployed()).sources(),
        );
        assert_eq!(layout.outbox_table(), "workshop");
        assert_eq!(layout.checkpoint_table, "workshop-checkpoints");
        assert_eq!(layout.with_outbox_table("events").outbox_table(), "events");
    }
}
