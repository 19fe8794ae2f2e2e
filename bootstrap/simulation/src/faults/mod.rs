//! Fault injection as decorators, one per port: each wraps any adapter of its
//! port — in-memory or AWS — and fails its next calls as its [`FaultPlan`] says.

mod dead_letters;
mod inbox;
mod publisher;
mod store;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use dead_letters::{DeadLetterFault, FaultyDeadLetters};
pub use inbox::{FaultyInbox, InboxFault};
pub use publisher::{FaultyPublisher, PublisherFault};
pub use store::{FaultyStore, StoreFault};

/// The error an injected fault surfaces as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("injected fault: {0}")]
pub struct InjectedFault(pub &'static str);

/// A queue of faults; each call of the decorator that owns it takes the next one.
#[derive(Debug)]
pub struct FaultPlan<F> {
    queue: Arc<Mutex<VecDeque<F>>>,
}

impl<F> Clone for FaultPlan<F> {
    fn clone(&self) -> Self {
        Self {
            queue: Arc::clone(&self.queue),
        }
    }
}

impl<F> Default for FaultPlan<F> {
    fn default() -> Self {
        Self {
            queue: Arc::default(),
        }
    }
}

impl<F> FaultPlan<F> {
    /// Queues `fault` for the first call that finds no earlier fault queued.
    pub fn inject(&self, fault: F) {
        self.lock().push_back(fault);
    }

    /// Takes the fault for the current call, if any.
    pub fn take(&self) -> Option<F> {
        self.lock().pop_front()
    }

    /// Drops every queued fault.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<F>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
