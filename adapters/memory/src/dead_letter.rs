//! The in-memory dead-letter queue.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use application::ports::{DeadLetter, DeadLetterError, DeadLetterQueue};

/// The in-memory dead-letter queue. Clones share the same letters.
#[derive(Debug, Clone, Default)]
pub struct MemoryDeadLetterQueue {
    letters: Arc<Mutex<Vec<DeadLetter>>>,
}

impl MemoryDeadLetterQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
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
        self.lock().push(letter);
        Ok(())
    }
}
