//! The publisher and dead-letter queue contracts, run on the in-memory adapters
//! and on the AWS ones against moto (`MOTO_ENDPOINT`, started by
//! `scripts/test.sh`; a missing server fails the test).
//!
//! The routing rule is also the proof that routing is declared once: every
//! consumer's queue, subscribed with its reaction's event pattern, receives
//! exactly the events the reaction's subscription accepts — on the in-memory
//! bus (quamina) and on EventBridge rules alike.

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use outbox_application::ports::{
    BatchLimits, BusOrder, DeadLetter, DeadLetterPayload, DeadLetterQueue, DeadLetterStore,
    EventPublisher, LetterSource, PublishOutcome,
};
use outbox_application::{EventEnvelope, EventId, RecordIdentity, SequenceNumber};
use outbox_bootstrap::clients::LocalClients;
use outbox_eventbridge::EventBridgePublisher;
use outbox_memory::{MemoryBus, MemoryDeadLetterQueue, MemoryQueue};
use outbox_sqs::SqsDeadLetterQueue;
use outbox_tests::{moto, one_event_of_each_type};

/// A bus under test, with a way to subscribe queues and read them.
enum Bus {
    Memory {
        bus: MemoryBus,
        queues: Vec<MemoryQueue>,
    },
    EventBridge {
        clients: LocalClients,
        bus: String,
        queues: Vec<String>,
    },
}

impl Bus {
    fn memory() -> Self {
        Self::Memory {
            bus: MemoryBus::new(
                outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
            ),
            queues: Vec::new(),
        }
    }

    async fn eventbridge() -> Self {
        let clients = moto::clients();
        let bus = moto::bus(&clients, "contract-bus").await;
        Self::EventBridge {
            clients,
            bus,
            queues: Vec::new(),
        }
    }

    fn publisher(&self) -> Arc<dyn EventPublisher> {
        match self {
            Self::Memory { bus, .. } => Arc::new(bus.clone()),
            Self::EventBridge { clients, bus, .. } => Arc::new(EventBridgePublisher::new(
                clients.eventbridge.clone(),
                bus,
                outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
            )),
        }
    }

    /// Subscribes a new queue with the event `pattern`; returns its index.
    async fn subscribe(&mut self, pattern: &Value) -> usize {
        match self {
            Self::Memory { bus, queues } => {
                let queue = MemoryQueue::new();
                bus.subscribe(pattern, queue.clone()).unwrap();
                queues.push(queue);
                queues.len() - 1
            }
            Self::EventBridge {
                clients,
                bus,
                queues,
            } => {
                let url = moto::subscribed_queue(clients, bus, "contract", pattern).await;
                queues.push(url);
                queues.len() - 1
            }
        }
    }

    /// The event ids queue `index` received, read until it stays empty.
    async fn received(&self, index: usize) -> BTreeSet<EventId> {
        match self {
            Self::Memory { queues, .. } => queues[index]
                .receive(usize::MAX)
                .into_iter()
                .map(|m| m.envelope.event_id)
                .collect(),
            Self::EventBridge {
                clients, queues, ..
            } => {
                let mut ids = BTreeSet::new();
                loop {
                    let output = clients
                        .sqs
                        .receive_message()
                        .queue_url(&queues[index])
                        .max_number_of_messages(10)
                        .send()
                        .await
                        .unwrap();
                    if output.messages().is_empty() {
                        return ids;
                    }
                    for message in output.messages() {
                        let event: Value =
                            serde_json::from_str(message.body().unwrap_or_default()).unwrap();
                        let envelope: EventEnvelope =
                            serde_json::from_value(event["detail"].clone()).unwrap();
                        ids.insert(envelope.event_id);
                    }
                }
            }
        }
    }
}

async fn each_subscription_receives_exactly_the_events_routed_to_it(mut bus: Bus) {
    let sources = outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources();
    let mut queues = Vec::new();
    for reaction in outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports())
        .consumers()
        .to_vec()
    {
        let index = bus
            .subscribe(&reaction.subscription().event_pattern(&sources))
            .await;
        queues.push((reaction, index));
    }
    let events = one_event_of_each_type().await;
    assert_eq!(events.len(), 8, "one event of each of the 8 types");
    let outcomes = bus.publisher().publish(&events).await.unwrap();
    assert_eq!(outcomes, vec![PublishOutcome::Published; events.len()]);
    for (reaction, index) in queues {
        let expected: BTreeSet<EventId> = events
            .iter()
            .filter(|e| reaction.subscription().delivers(e))
            .map(|e| e.event_id)
            .collect();
        assert!(!expected.is_empty(), "{} has events", reaction.name());
        assert_eq!(
            bus.received(index).await,
            expected,
            "{} receives exactly what its subscription delivers",
            reaction.name()
        );
    }
}

async fn limits_and_entry_sizes_are_eventbridge_s(bus: Bus) {
    let publisher = bus.publisher();
    assert_eq!(
        publisher.limits(),
        BatchLimits {
            max_entries: 10,
            max_batch_bytes: 256 * 1024,
            order: BusOrder::Unordered,
        }
    );
    let sources = outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources();
    for event in one_event_of_each_type().await {
        let detail = serde_json::to_string(&event).unwrap();
        assert_eq!(
            publisher.entry_size(&event),
            14 + sources.source_of(&event.aggregate_type).len()
                + event.event_type.len()
                + detail.len(),
            "Time, Source, DetailType and Detail, as AWS counts them"
        );
    }
}

/// A dead-letter queue under test, with a way to read it back.
enum Letters {
    Memory(MemoryDeadLetterQueue),
    Sqs(SqsDeadLetterQueue),
}

impl Letters {
    async fn sqs() -> Self {
        let clients = moto::clients();
        let url = moto::queue(&clients, "contract-dlq").await;
        Self::Sqs(SqsDeadLetterQueue::new(clients.sqs, url))
    }

    fn port(&self) -> Arc<dyn DeadLetterQueue> {
        match self {
            Self::Memory(queue) => Arc::new(queue.clone()),
            Self::Sqs(queue) => Arc::new(queue.clone()),
        }
    }

    /// Every letter, by source.
    async fn read_back(&self) -> BTreeMap<String, DeadLetter> {
        match self {
            Self::Memory(queue) => queue
                .letters()
                .into_iter()
                .map(|l| (l.source.to_string(), l))
                .collect(),
            Self::Sqs(queue) => {
                let mut letters = BTreeMap::new();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                while tokio::time::Instant::now() < deadline {
                    let page = queue.read(None, 10).await.unwrap();
                    if page.letters.is_empty() {
                        break;
                    }
                    for stored in page.letters {
                        queue.remove(&stored.handle).await.unwrap();
                        let letter = stored.content.expect("every message is a dead letter");
                        letters.insert(letter.source.to_string(), letter);
                    }
                }
                letters
            }
        }
    }
}

async fn a_letter_is_read_back_as_sent_with_its_source(letters: Letters) {
    let event = one_event_of_each_type().await.remove(0);
    let sent = [
        DeadLetter::new(
            LetterSource::StreamRecord {
                sequence: SequenceNumber::new("4100000000001234567890"),
            },
            "not an outbox event: missing field `eventId`",
            1,
            DeadLetterPayload::Raw {
                raw: r#"{"entityType":"OUTBOX","eventType":42}"#.into(),
            },
            RecordIdentity {
                pk: Some("FOREIGN#1".into()),
                sk: Some("EVENT#1".into()),
                ..RecordIdentity::default()
            },
        ),
        DeadLetter::new(
            LetterSource::QueueMessage {
                consumer: "invoicing".into(),
                message_id: "5fea7756-0ea4-451a-a703-a558b933e274".into(),
            },
            "invoicing: customer must not be empty",
            3,
            DeadLetterPayload::Event { envelope: event },
            RecordIdentity::default(),
        ),
        DeadLetter::new(
            LetterSource::UnpositionedStreamRecord {
                event_id: "c81e728d9d4c2f636f067f89cc14862c".into(),
            },
            "stream record c81e728d9d4c2f636f067f89cc14862c has no sequence number",
            1,
            DeadLetterPayload::Raw { raw: "{}".into() },
            RecordIdentity::default(),
        ),
    ];
    for letter in &sent {
        letters.port().send(letter.clone()).await.unwrap();
    }
    let read = letters.read_back().await;
    let expected: BTreeMap<String, DeadLetter> = sent
        .into_iter()
        .map(|l| (l.source.to_string(), l))
        .collect();
    assert_eq!(read, expected);
}

mod on_memory {
    #[tokio::test]
    async fn each_subscription_receives_exactly_the_events_routed_to_it() {
        super::each_subscription_receives_exactly_the_events_routed_to_it(super::Bus::memory())
            .await;
    }

    #[tokio::test]
    async fn limits_and_entry_sizes_are_eventbridge_s() {
        super::limits_and_entry_sizes_are_eventbridge_s(super::Bus::memory()).await;
    }

    #[tokio::test]
    async fn a_letter_is_read_back_as_sent_with_its_source() {
        super::a_letter_is_read_back_as_sent_with_its_source(super::Letters::Memory(
            outbox_memory::MemoryDeadLetterQueue::new(),
        ))
        .await;
    }
}

mod on_moto {
    #[tokio::test]
    async fn each_subscription_receives_exactly_the_events_routed_to_it() {
        super::each_subscription_receives_exactly_the_events_routed_to_it(
            super::Bus::eventbridge().await,
        )
        .await;
    }

    #[tokio::test]
    async fn limits_and_entry_sizes_are_eventbridge_s() {
        super::limits_and_entry_sizes_are_eventbridge_s(super::Bus::eventbridge().await).await;
    }

    #[tokio::test]
    async fn a_letter_is_read_back_as_sent_with_its_source() {
        super::a_letter_is_read_back_as_sent_with_its_source(super::Letters::sqs().await).await;
    }
}
