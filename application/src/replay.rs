//! Replaying the outbox past the stream's 24 hours: the outbox events of a
//! time window, read from the store page by page, go through the relay again,
//! with their own event ids, so every consumer's inbox drops what it applied.
//!
//! Pages come per aggregate in version order, and the relay keeps the bus's
//! order rules, so a Custom Event Bus sees each aggregate's events in version
//! order again. After each page is handled the caller learns the position, so
//! an interrupted replay resumes from the last page done: at most that one page
//! is published twice, which deduplication absorbs.

use std::sync::Arc;

use tracing::warn;

use crate::change::{ChangeContent, ChangeRecord, SequenceNumber};
use crate::ports::{ArchiveCursor, ArchiveError, ArchiveWindow, OutboxArchive};
use crate::relay::{BusRefused, Relay};

/// How often the relay is given the rest of a page before the replay stops
/// (the publisher backs off between its own tries of an entry).
pub const PAGE_ATTEMPTS: u32 = 5;

/// How far a replay got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayProgress {
    /// Events read from the archive.
    pub events: usize,
    /// Entries the bus accepted.
    pub published: usize,
    /// Events the bus refused for good, sent to the dead-letter queue.
    pub dead_lettered: usize,
    /// Pages handled.
    pub pages: usize,
    /// Where the next page starts; `None` when the window is done (or not begun).
    pub position: Option<ArchiveCursor>,
}

/// Why a replay stopped before the end of its window.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The archive could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The bus refuses the relay.
    #[error(transparent)]
    BusRefused(#[from] BusRefused),
    /// A page could not be published after [`PAGE_ATTEMPTS`] tries; resume later.
    #[error(
        "the bus did not take a page after {PAGE_ATTEMPTS} tries; resume from the last position"
    )]
    Stalled,
}

/// The replay use case.
#[derive(Clone)]
pub struct ReplayService {
    archive: Arc<dyn OutboxArchive>,
    relay: Relay,
}

impl ReplayService {
    /// A replay reading `archive` and publishing through `relay`.
    pub fn new(archive: Arc<dyn OutboxArchive>, relay: Relay) -> Self {
        Self { archive, relay }
    }

    /// Replays `window` from `resume` (its beginning when `None`); counts only
    /// when `dry_run`. `on_page` sees the progress after every page handled,
    /// its position the one to resume from.
    ///
    /// # Errors
    /// [`ReplayError`]; every page reported to `on_page` before it was handled.
    pub async fn run(
        &self,
        window: &ArchiveWindow,
        resume: Option<ArchiveCursor>,
        dry_run: bool,
        mut on_page: impl FnMut(&ReplayProgress),
    ) -> Result<ReplayProgress, ReplayError> {
        let mut progress = ReplayProgress {
            position: resume,
            ..ReplayProgress::default()
        };
        loop {
            let page = self
                .archive
                .page(window, progress.position.as_ref())
                .await?;
            progress.events += page.events.len();
            if !dry_run && !page.events.is_empty() {
                self.publish_page(page.events, &mut progress).await?;
            }
            progress.pages += 1;
            progress.position = page.next;
            on_page(&progress);
            if progress.position.is_none() {
                return Ok(progress);
            }
        }
    }

    /// Relays one page until every event of it is handled.
    async fn publish_page(
        &self,
        events: Vec<crate::envelope::EventEnvelope>,
        progress: &mut ReplayProgress,
    ) -> Result<(), ReplayError> {
        let mut records: Vec<ChangeRecord> = events
            .into_iter()
            .enumerate()
            .map(|(index, envelope)| ChangeRecord {
                sequence: SequenceNumber::new((index + 1).to_string()),
                content: ChangeContent::Outbox(envelope),
            })
            .collect();
        for attempt in 1..=PAGE_ATTEMPTS {
            let report = self.relay.relay(&records).await?;
            progress.published += report.published;
            progress.dead_lettered += report.dead_lettered;
            let Some(first) = report.retry_from else {
                return Ok(());
            };
            records.retain(|record| record.sequence >= first);
            warn!(
                attempt,
                left = records.len(),
                "part of a replayed page is not published yet"
            );
        }
        Err(ReplayError::Stalled)
    }
}
