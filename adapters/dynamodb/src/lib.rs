//! DynamoDB adapters of the outbox.
//!
//! - [`DynamoStore`]: the aggregate store. A load is one consistent `GetItem`; a
//!   commit is exactly one `TransactWriteItems` — the state put under a version
//!   condition, one new outbox item per event in the aggregate's partition, a new
//!   idempotency record — sent with the write set's `ClientRequestToken`, its
//!   `CancellationReasons` mapped to typed errors.
//! - [`stream_decode`]: stream records (Lambda events or the Streams API) → the
//!   relay's change records; outbox inserts only, poison for undecodable items.
//! - [`StreamRelay`]: a change feed that reads a stream shard by shard, relays,
//!   and checkpoints in DynamoDB, for runtimes without Lambda.
//! - [`DynamoError`]: every SDK error classified once, turned into the ports'
//!   errors at the edge.
//! - [`DynamoInbox`]: a consumer's effect and its (consumer, event id) mark in
//!   one transaction, so a redelivery writes nothing; for an ordered consumer,
//!   the effect and its aggregate's new position, conditioned on the old one,
//!   and the parked list ([`sequence`]).
//! - [`DynamoArchive`]: the outbox by time window, from the sparse time index,
//!   for a replay past the stream's 24 hours.
//! - [`DynamoDeadLetterQueue`]: dead letters as an item collection, read back
//!   for redrive, where no SQS queue is at hand.
//! - [`stream_lag`]: per shard, the self-hosted relay's position and the oldest
//!   record it has not relayed yet.
//! - [`create_tables`]: the tables of a [`TableLayout`], for local use and tests.

pub mod archive;
pub mod dead_letters;
pub mod errors;
pub mod inbox;
pub mod items;
pub mod layout;
pub mod lease_table;
pub mod sequence;
pub mod store;
pub mod stream_decode;
pub mod stream_lag;
pub mod stream_relay;
pub mod tables;

pub use archive::DynamoArchive;
pub use dead_letters::DynamoDeadLetterQueue;
pub use errors::DynamoError;
pub use inbox::{leading_keys, ConsumerTally, DynamoInbox};
pub use layout::TableLayout;
pub use lease_table::{LeaseError, LeaseTable, ShardLease};
pub use store::DynamoStore;
pub use stream_decode::{
    decode_lambda_record, decode_raw_item, decode_streams_record, Decoded, MissingSequenceNumber,
};
pub use stream_lag::{stream_lag, ShardLag};
pub use stream_relay::{StreamRelay, StreamRelayError, StreamRelayOptions};
pub use tables::{create_tables, stream_arn, TableError};
