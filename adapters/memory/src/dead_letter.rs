//! The in-memory dead-letter queue.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use application::ports::{DeadLetter, DeadLetterError, DeadLetterQueue};

use crate::fault::{FaultPlan, InjectedFault};

/// A fault to inject into the next send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterFault {
    /// Refuse the letter.
    Unavailable,
}

/// The in-memory dead-letter queue. Clones share the same letters.
#[derive(Debug, Clone, Default)]
pub struct MemoryDeadLetterQueue {
    letters: Arc<Mutex<Vec<DeadLetter>>>,
    faults: FaultPlan<DeadLetterFault>,
}

impl MemoryDeadLetterQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// The faults its next sends suffer.
    pub fn faults(&self) -> &FaultPlan<DeadLetterFault> {
        &self.faults
    }

    /// Every letter received, oldest first.
    pub fn letters(&self) -> Vec<DeadLetter> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<DeadLetter>> {
        self.letters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl DeadLetterQueue for MemoryDeadLetterQueue {
    async fn send(&self, letter: DeadLetter) -> Result<(), DeadLetterError> {
        if self.faults.take() == Some(DeadLetterFault::Unavailable) {
            return Err(DeadLetterError(Box::new(InjectedFault(
                "dead-letter queue unavailable",
            ))));
        }
        self.lock().push(letter);
        Ok(())
    }
}
