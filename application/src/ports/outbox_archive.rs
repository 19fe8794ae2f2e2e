//! The outbox archive port: outbox events still in the store (until their TTL),
//! found by time window or by aggregate, for a replay past the stream's 24 hours.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::envelope::EventEnvelope;
use crate::ids::AggregateRef;
use crate::BoxError;

/// Which outbox events to read: those that occurred in `[from, to)`, of one
/// aggregate or of all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveWindow {
    /// The first instant of the window.
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    /// The first instant after the window.
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    /// Only this aggregate's events, when set.
    pub aggregate: Option<AggregateRef>,
}

/// A position in an archive read: the next page starts after it. Opaque to
/// the application; an adapter reads back only the cursors it wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ArchiveCursor(pub String);

/// One page of an archive read, per aggregate in version order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArchivePage {
    /// The events of the page.
    pub events: Vec<EventEnvelope>,
    /// Where the next page starts; `None` when the window is read to its end.
    pub next: Option<ArchiveCursor>,
}

/// Why the archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The store does not exist or has no time index.
    #[error("the outbox archive is missing: {0}")]
    Missing(#[source] BoxError),
    /// The cursor was not written by this archive.
    #[error("the cursor `{0}` is not a position of this archive")]
    BadCursor(String),
    /// An item is not an outbox event.
    #[error("an outbox item cannot be read: {0}")]
    Corrupt(#[source] BoxError),
    /// Reading failed; retry later.
    #[error("the outbox archive is unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

/// Reads outbox events by time window, page by page.
#[async_trait]
pub trait OutboxArchive: Send + Sync {
    /// The page of `window` that starts after `after` (at its beginning when `None`).
    ///
    /// # Errors
    /// [`ArchiveError`].
    async fn page(
        &self,
        window: &ArchiveWindow,
        after: Option<&ArchiveCursor>,
    ) -> Result<ArchivePage, ArchiveError>;
}
