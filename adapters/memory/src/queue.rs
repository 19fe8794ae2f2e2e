//! The in-memory queue, like an SQS standard queue: at least once. A received
//! message stays in flight until deleted; when its visibility timeout runs out
//! ([`MemoryQueue::expire_in_flight`]) it is delivered again.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use application::EventEnvelope;

use crate::fault::FaultPlan;

/// A fault to inject into the next send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueFault {
    /// Store the message twice, as SQS standard queues occasionally do.
    Duplicate,
}

/// One delivery of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Deletes this delivery's message.
    pub receipt: u64,
    /// The event carried.
    pub envelope: EventEnvelope,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

#[derive(Debug, Default)]
struct Messages {
    visible: VecDeque<(EventEnvelope, u32)>,
    in_flight: BTreeMap<u64, (EventEnvelope, u32)>,
    next_receipt: u64,
}

/// The in-memory queue. Clones share the same messages.
#[derive(Debug, Clone, Default)]
pub struct MemoryQueue {
    messages: Arc<Mutex<Messages>>,
    faults: FaultPlan<QueueFault>,
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// The faults its next sends suffer.
    pub fn faults(&self) -> &FaultPlan<QueueFault> {
        &self.faults
    }

    /// Enqueues `envelope`.
    pub fn send(&self, envelope: EventEnvelope) {
        let copies = if self.faults.take() == Some(QueueFault::Duplicate) {
            2
        } else {
            1
        };
        let mut messages = self.lock();
        for _ in 0..copies {
            messages.visible.push_back((envelope.clone(), 0));
        }
    }

    /// Receives up to `max` visible messages; they stay in flight until deleted.
    pub fn receive(&self, max: usize) -> Vec<Delivery> {
        let mut messages = self.lock();
        let mut deliveries = Vec::new();
        while deliveries.len() < max {
            let Some((envelope, count)) = messages.visible.pop_front() else {
                break;
            };
            let receipt = messages.next_receipt;
            messages.next_receipt += 1;
            messages
                .in_flight
                .insert(receipt, (envelope.clone(), count + 1));
            deliveries.push(Delivery {
                receipt,
                envelope,
                receive_count: count + 1,
            });
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
