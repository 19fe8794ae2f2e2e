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

/// A queue of faults; each call of the decorator that owns it takes the next
/// one. A [`FaultPlan::pass`] lets one call through clean, so faults can be
/// scheduled by call number.
#[derive(Debug)]
pub struct FaultPlan<F> {
    queue: Arc<Mutex<Plan<F>>>,
}

#[derive(Debug)]
struct Plan<F> {
    next: VecDeque<Option<F>>,
    fired: usize,
}

impl<F> Default for Plan<F> {
    fn default() -> Self {
        Self {
            next: VecDeque::new(),
            fired: 0,
        }
    }
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
    /// Queues `fault` for the first call that finds nothing earlier queued.
    pub fn inject(&self, fault: F) {
        self.lock().next.push_back(Some(fault));
    }

    /// Queues a clean call: the call it reaches suffers no fault.
    pub fn pass(&self) {
        self.lock().next.push_back(None);
    }

    /// Takes the fault for the current call, if any.
    pub fn take(&self) -> Option<F> {
        let mut plan = self.lock();
        let fault = plan.next.pop_front().flatten();
        plan.fired += usize::from(fault.is_some());
        fault
    }

    /// How many faults calls have taken so far.
    pub fn fired(&self) -> usize {
        self.lock().fired
    }

    /// Drops every queued fault and pass.
    pub fn clear(&self) {
        self.lock().next.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Plan<F>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_taken_in_order_passes_run_clean_and_fired_counts_faults_only() {
        let plan = FaultPlan::default();
        plan.pass();
        plan.inject("a");
        plan.inject("b");
        assert_eq!(plan.take(), None);
        assert_eq!(plan.take(), Some("a"));
        assert_eq!(plan.fired(), 1);
        plan.clear();
        assert_eq!(plan.take(), None);
        assert_eq!(plan.fired(), 1);
    }
}
