//! The EventBridge adapter of the outbox: [`EventBridgePublisher`] implements the
//! application's `EventPublisher` port with `PutEvents`.
//!
//! Entries go out in requests of at most 10 entries whose summed entry size, as
//! AWS counts it ([`entry_size`]), stays under 256 KiB. When a response reports
//! `FailedEntryCount > 0`, only the failed entries are sent again, after an
//! exponential backoff with full jitter, and only when their error code says a
//! retry may help (throttling, internal errors); other refusals are final and the
//! relay dead-letters them. An entry counts as published only when AWS returned an
//! event id for it.

pub mod publisher;
pub mod retry;
pub mod sources;

pub use publisher::{entry_size, EventBridgePublisher, MAX_ENTRIES, MAX_REQUEST_BYTES};
pub use retry::RetryPolicy;
pub use sources::EventSources;
