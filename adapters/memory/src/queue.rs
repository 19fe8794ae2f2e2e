//! The in-memory queue, like an SQS standard queue: at least once. Every message
//! has an id; a received message stays in flight until deleted; when its
//! visibility timeout runs out ([`MemoryQueue::expire_in_flight`]) it is
//! delivered again.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use time::OffsetDateTime;

use outbox_application::EventEnvelope;

/// One delivery of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedMessage {
    /// The message's id, the same on every delivery.
    pub message_id: String,
    /// Deletes this delivery's message.
    pub receipt: u64,
    /// The event carried.
    pub envelope: EventEnvelope,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
    /// When the message was first received.
    pub first_received_at: OffsetDateTime,
}

#[derive(Debug, Default)]
struct Messages {
    visible: VecDeque<Stored>,
    in_flight: BTreeMap<u64, Stored>,
    next_receipt: u64,
    next_id: u64,
}

/// A message with its id and how often it was received.
#[derive(Debug)]
struct Stored {
    id: u64,
    envelope: EventEnvelope,
    received: u32,
    first_received_at: Option<OffsetDateTime>,
}

/// The in-memory queue. Clones share the same messages.
#[derive(Debug, Clone, Default)]
pub struct MemoryQueue {
    messages: Arc<Mutex<Messages>>,
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enqueues `envelope`.
    pub fn send(&self, envelope: EventEnvelope) {
        let mut messages = self.lock();
        let id = messages.next_id;
        messages.next_id += 1;
        messages.visible.push_back(Stored {
            id,
            envelope,
            received: 0,
            first_received_at: None,
        });
    }

    /// Receives up to `max` visible messages; they stay in flight until deleted.
    pub fn receive(&self, max: usize) -> Vec<QueuedMessage> {
        let mut messages = self.lock();
        let mut deliveries = Vec::new();
        while deliveries.len() < max {
            let Some(mut stored) = messages.visible.pop_front() else {
                break;
            };
            stored.received += 1;
            let first_received_at = *stored
                .first_received_at
                .get_or_insert_with(OffsetDateTime::now_utc);
            let receipt = messages.next_receipt;
            messages.next_receipt += 1;
            deliveries.push(QueuedMessage {
                message_id: format!("msg-{}", stored.id),
                receipt,
                envelope: stored.envelope.clone(),
                receive_count: stored.received,
                first_received_at,
            });
            messages.in_flight.insert(receipt, stored);
        }
        deliveries
    }

    /// Deletes a received message.
    pub fn delete(&self, receipt: u64) {
        self.lock().in_flight.remove(&receipt);
    }

    /// Makes every undeleted in-flight message visible again.
    pub fn expire_in_flight(&self) {
        let mut messages = self.lock();
        let returned = std::mem::take(&mut messages.in_flight);
        messages.visible.extend(returned.into_values());
    }

    /// Whether no message is visible or in flight.
    pub fn is_empty(&self) -> bool {
        let messages = self.lock();
        messages.visible.is_empty() && messages.in_flight.is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, Messages> {
        self.messages.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
