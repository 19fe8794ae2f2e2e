//! Fault plans: faults queued up for an adapter's next calls.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// The error an injected fault surfaces as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("injected fault: {0}")]
pub struct InjectedFault(pub &'static str);

/// A queue of faults; each call of the adapter that owns it takes the next one.
#[derive(Debug)]
pub struct FaultPlan<F> {
    queue: Arc<Mutex<VecDeque<Option<F>>>>,
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
    /// Makes the next call that has no fault queued suffer `fault`.
    pub fn inject(&self, fault: F) {
        self.lock().push_back(Some(fault));
    }

    /// Lets the next call pass unharmed, so a later fault hits a later call.
    pub fn pass(&self) {
        self.lock().push_back(None);
    }

    /// Takes the fault for the current call, if any.
    pub fn take(&self) -> Option<F> {
        self.lock().pop_front().flatten()
    }

    /// Whether faults are still queued.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Drops every queued fault.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Option<F>>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
