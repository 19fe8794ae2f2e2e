//! The in-memory inbox: (consumer, event id) marks and effects, written together.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use application::ports::{Effect, Inbox, InboxError, InboxOutcome};
use application::EventId;

#[derive(Debug, Default)]
struct Records {
    marks: HashSet<(String, EventId)>,
    effects: Vec<(String, Effect)>,
}

/// The in-memory inbox. Clones share the same records.
#[derive(Debug, Clone, Default)]
pub struct MemoryInbox {
    records: Arc<Mutex<Records>>,
}

impl MemoryInbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// The effects `consumer` recorded, oldest first.
    pub fn effects_of(&self, consumer: &str) -> Vec<Effect> {
        self.lock()
            .effects
            .iter()
            .filter(|(owner, _)| owner == consumer)
            .map(|(_, effect)| effect.clone())
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Inbox for MemoryInbox {
    async fn processed(&self, consumer: &str, event_id: EventId) -> Result<bool, InboxError> {
        Ok(self.lock().marks.contains(&(consumer.to_owned(), event_id)))
    }

    async fn apply_once(
        &self,
        consumer: &str,
        event_id: EventId,
        effect: Option<Effect>,
    ) -> Result<InboxOutcome, InboxError> {
        let mut records = self.lock();
        if !records.marks.insert((consumer.to_owned(), event_id)) {
            return Ok(InboxOutcome::AlreadyProcessed);
        }
        if let Some(effect) = effect {
            records.effects.push((consumer.to_owned(), effect));
        }
        Ok(InboxOutcome::Applied)
    }
}
