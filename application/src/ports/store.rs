//! The aggregate store port: load state with its version, commit a write set atomically.

use async_trait::async_trait;

use outbox_domain::Version;

use crate::ids::{AggregateRef, IdempotencyKey};
use crate::write_set::{IdempotencyRecord, LimitError, StateRecord, WriteLimits, WriteSet};
use crate::BoxError;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stored version is not the expected one; nothing was written.
    #[error("{aggregate} is no longer at version {expected} (stored: {})", actual.map_or_else(|| "unknown".to_owned(), |v| v.to_string()))]
    VersionConflict {
        /// The aggregate.
        aggregate: AggregateRef,
        /// The version the write expected.
        expected: Version,
        /// The version stored, when the store told it.
        actual: Option<Version>,
    },
    /// The idempotency key was recorded already; nothing was written.
    #[error("request \"{}\" was committed already", .0.as_str())]
    DuplicateRequest(IdempotencyKey),
    /// An event id exists already; nothing was written.
    #[error("an outbox record of {0} exists already")]
    DuplicateEvent(AggregateRef),
    /// The store refused the write as too large or too long; nothing was written.
    #[error("the store refused the write: {0}")]
    Limit(#[from] LimitError),
    /// Throttled, or a transaction collided with another; retry later.
    #[error("the store is throttling: {0}")]
    Throttled(#[source] BoxError),
    /// The store could not be reached or timed out; the write may or may not have happened.
    #[error("the store is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// A stored item could not be read back.
    #[error("a stored item is corrupt: {0}")]
    Corrupt(#[source] BoxError),
    /// Any other failure that retrying will not fix.
    #[error("the store failed: {0}")]
    Failed(#[source] BoxError),
}

impl StoreError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Throttled(_) | StoreError::Unavailable(_))
    }
}

/// Where aggregates, their outbox and the idempotency records live.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait AggregateStore: Send + Sync {
    /// The limits of one commit; the command use case checks every write set
    /// against them before committing, so a store never sees one that exceeds them.
    fn limits(&self) -> WriteLimits;

    /// Loads the state of `aggregate` with one consistent read; `None` if it does not exist.
    ///
    /// # Errors
    /// [`StoreError::Throttled`], [`StoreError::Unavailable`] (retryable),
    /// [`StoreError::Corrupt`] or [`StoreError::Failed`].
    async fn load(&self, aggregate: &AggregateRef) -> Result<Option<StateRecord>, StoreError>;

    /// Finds what an earlier request with `key` produced.
    ///
    /// # Errors
    /// As [`AggregateStore::load`].
    async fn find_request(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Commits `write` atomically: all of it or nothing.
    ///
    /// # Errors
    /// [`StoreError::VersionConflict`], [`StoreError::DuplicateRequest`] or
    /// [`StoreError::DuplicateEvent`] when a condition fails (nothing written);
    /// [`StoreError::Limit`] when the store refuses its size; the retryable
    /// [`StoreError::Throttled`] and [`StoreError::Unavailable`] (after which the
    /// outcome of the write is unknown); [`StoreError::Failed`].
    async fn commit(&self, write: &WriteSet) -> Result<(), StoreError>;
}
