//! The in-memory store as an outbox archive: its outbox events by time window,
//! in the order a replay needs (time, then aggregate and version).

use async_trait::async_trait;

use outbox_application::ports::{
    ArchiveCursor, ArchiveError, ArchivePage, ArchiveWindow, OutboxArchive,
};

use crate::store::MemoryStore;

/// Events per page.
pub const ARCHIVE_PAGE: usize = 100;

#[async_trait]
impl OutboxArchive for MemoryStore {
    async fn page(
        &self,
        window: &ArchiveWindow,
        after: Option<&ArchiveCursor>,
    ) -> Result<ArchivePage, ArchiveError> {
        let start = match after {
            None => 0,
            Some(cursor) => cursor
                .0
                .parse::<usize>()
                .map_err(|_| ArchiveError::BadCursor(cursor.0.clone()))?,
        };
        let mut events: Vec<_> = self
            .outbox()
            .into_iter()
            .filter(|event| event.occurred_at >= window.from && event.occurred_at < window.to)
            .filter(|event| {
                window
                    .aggregate
                    .as_ref()
                    .is_none_or(|wanted| event.aggregate() == *wanted)
            })
            .collect();
        events.sort_by(|a, b| {
            (a.occurred_at, a.aggregate(), a.aggregate_version).cmp(&(
                b.occurred_at,
                b.aggregate(),
                b.aggregate_version,
            ))
        });
        let total = events.len();
        let start = start.min(total);
        let end = (start + ARCHIVE_PAGE).min(total);
        Ok(ArchivePage {
            events: events
                .get(start..end)
                .map(<[_]>::to_vec)
                .unwrap_or_default(),
            next: (end < total).then(|| ArchiveCursor(end.to_string())),
        })
    }
}
