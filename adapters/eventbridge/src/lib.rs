//! The EventBridge adapter of the outbox: [`EventBridgePublisher`] implements the
//! application's `EventPublisher` port with `PutEvents` on a classic bus, and
//! [`CustomBusPublisher`] with `PutEvents` on a Custom Event Bus
//! (`eventbridgev2`), which keeps order per aggregate and drops repeats of an
//! event id for 5 minutes.
//!
//! Each publisher reports its bus's `PutEvents` limits (the application's
//! `BatchLimits::CLASSIC_EVENT_BUS` and `BatchLimits::CUSTOM_EVENT_BUS`, which
//! cite AWS) and each entry's size as AWS counts it ([`entry_size`]); the relay
//! packs each batch within them, and a batch goes out as one request. When a
//! response reports `FailedEntryCount > 0`, only the failed entries are sent
//! again, after an exponential backoff with full jitter, and only when their
//! error code says a retry may help (throttling, internal errors); other
//! refusals are final and the relay dead-letters them. A bus that does not exist or denies access refuses
//! the whole call, which stops the relay. An entry counts as published only when
//! AWS returned an event id for it. Each event's `Source` comes from the
//! application's `EventSources`.

mod attempts;
pub mod custom_bus;
pub mod publisher;
pub mod retry;

pub use custom_bus::{custom_bus_entry_size, CustomBusPublisher};
pub use publisher::{entry_size, EventBridgePublisher};
pub use retry::RetryPolicy;
