//! The in-memory dead-letter queue: every letter kept in arrival order, read
//! back by position and removed by an operator's redrive.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use outbox_application::ports::{
    DeadLetter, DeadLetterError, DeadLetterQueue, DeadLetterStore, LetterDepth, LetterPage,
    StoredLetter,
};

/// One letter with its place in the queue.
#[derive(Debug, Clone)]
struct Slot {
    letter: DeadLetter,
    removed: bool,
}

/// The in-memory dead-letter queue. Clones share the same letters.
#[derive(Debug, Clone, Default)]
pub struct MemoryDeadLetterQueue {
    slots: Arc<Mutex<Vec<Slot>>>,
}

impl MemoryDeadLetterQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every letter received, oldest first, removed ones included.
    pub fn letters(&self) -> Vec<DeadLetter> {
        self.lock().iter().map(|slot| slot.letter.clone()).collect()
    }

    /// Forgets every letter (a long run audited window by window).
    pub fn forget(&self) {
        self.lock().clear();
    }

    /// The letters still waiting, oldest first.
    pub fn waiting(&self) -> Vec<DeadLetter> {
        self.lock()
            .iter()
            .filter(|slot| !slot.removed)
            .map(|slot| slot.letter.clone())
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl DeadLetterQueue for MemoryDeadLetterQueue {
    async fn send(&self, letter: DeadLetter) -> Result<(), DeadLetterError> {
        self.lock().push(Slot {
            letter,
            removed: false,
        });
        Ok(())
    }
}

#[async_trait]
impl DeadLetterStore for MemoryDeadLetterQueue {
    async fn read(&self, after: Option<&str>, max: usize) -> Result<LetterPage, DeadLetterError> {
        let start = match after {
            None => 0,
            Some(position) => position
                .parse::<usize>()
                .map_err(|_| DeadLetterError(format!("no position `{position}`").into()))?,
        };
        let slots = self.lock();
        let mut letters = Vec::new();
        let mut next = None;
        for (index, slot) in slots.iter().enumerate().skip(start) {
            if letters.len() == max {
                next = Some(index.to_string());
                break;
            }
            if !slot.removed {
                letters.push(StoredLetter {
                    handle: index.to_string(),
                    stored_at: None,
                    content: Ok(slot.letter.clone()),
                });
            }
        }
        Ok(LetterPage { letters, next })
    }

    async fn remove(&self, handle: &str) -> Result<(), DeadLetterError> {
        let index = handle
            .parse::<usize>()
            .map_err(|_| DeadLetterError(format!("no letter `{handle}`").into()))?;
        match self.lock().get_mut(index) {
            Some(slot) => {
                slot.removed = true;
                Ok(())
            }
            None => Err(DeadLetterError(format!("no letter `{handle}`").into())),
        }
    }

    async fn depth(&self) -> Result<LetterDepth, DeadLetterError> {
        let letters = self.lock().iter().filter(|slot| !slot.removed).count();
        Ok(LetterDepth {
            letters: u64::try_from(letters).unwrap_or(u64::MAX),
            oldest: None,
        })
    }
}
