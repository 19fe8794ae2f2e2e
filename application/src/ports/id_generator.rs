//! The id generator port.

use uuid::Uuid;

/// Hands out fresh ids: new aggregates, request ids, trace ids.
#[cfg_attr(test, mockall::automock)]
pub trait IdGenerator: Send + Sync {
    /// A new, unique, time-ordered id (UUID v7 in production).
    fn new_id(&self) -> Uuid;
}

/// UUID v7 ids from the system clock and randomness.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}
