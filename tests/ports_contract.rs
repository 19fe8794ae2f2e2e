//! The publisher and dead-letter queue contracts, run on the in-memory adapters
//! and on the AWS ones against moto (`MOTO_ENDPOINT`, started by
//! `scripts/test.sh`; a missing server fails the test): routing, limits, an
//! event over 256 KiB relayed whole, letters read back as sent, one near SQS's
//! size limit included.
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
    BatchLimits, DeadLetter, DeadLetterPayload, DeadLetterQueue, DeadLetterStore, EventPublisher,
    LetterSource, PublishOutcome,
};
use outbox_application::{
    ChangeContent, ChangeRecord, EventEnvelope, EventId, RecordIdentity, Relay, RelayReport,
    SequenceNumber,
};
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
        self.received_events(index)
            .await
            .into_iter()
            .map(|e| e.event_id)
            .collect()
    }

    /// The events queue `index` received, read until it stays empty.
    async fn received_events(&self, index: usize) -> Vec<EventEnvelope> {
        match self {
            Self::Memory { queues, .. } => queues[index]
                .receive(usize::MAX)
                .into_iter()
                .map(|m| m.envelope)
                .collect(),
            Self::EventBridge {
                clients, queues, ..
            } => {
                let mut events = Vec::new();
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
                        return events;
                    }
                    for message in output.messages() {
                        let event: Value =
                            serde_json::from_str(message.body().unwrap_or_default()).unwrap();
                        events.push(serde_json::from_value(event["detail"].clone()).unwrap());
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
    assert_eq!(publisher.limits(), BatchLimits::CLASSIC_EVENT_BUS);
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

/// The data of an event larger than the 256 KiB EventBridge took until 29
/// January 2026, and smaller than DynamoDB's 400 KB item, so one a commit
/// writes and the relay must publish.
const DATA_OVER_256_KIB: usize = 300 * 1024;

async fn an_event_over_256_kib_is_relayed_whole_not_dead_lettered(mut bus: Bus) {
    let sources = outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources();
    let mut event = one_event_of_each_type().await.remove(0);
    event.data = serde_json::json!({ "note": "x".repeat(DATA_OVER_256_KIB) });
    let publisher = bus.publisher();
    assert!(publisher.entry_size(&event) > 256 * 1024);
    let queue = bus
        .subscribe(&serde_json::json!({ "source": [sources.source_of(&event.aggregate_type)] }))
        .await;
    let letters = MemoryDeadLetterQueue::new();
    let record = ChangeRecord {
        sequence: SequenceNumber::new("1"),
        content: ChangeContent::Outbox(event.clone()),
    };

    let report = Relay::new(publisher, Arc::new(letters.clone()))
        .relay(&[record])
        .await
        .unwrap();

    assert_eq!(
        report,
        RelayReport {
            published: 1,
            dead_lettered: 0,
            publish_calls: 1,
            retry_from: None,
        },
        "{:?}",
        letters.letters()
    );
    assert_eq!(bus.received_events(queue).await, vec![event]);
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

async fn a_letter_near_the_largest_message_sqs_takes_is_read_back_whole(letters: Letters) {
    let letter = |raw: String| {
        DeadLetter::new(
            LetterSource::StreamRecord {
                sequence: SequenceNumber::new("4100000000001234567891"),
            },
            "not an outbox event: missing field `eventId`",
            1,
            DeadLetterPayload::Raw { raw },
            RecordIdentity::default(),
        )
    };
    // "1 MiB or 1,048,576 bytes", body and attributes, as SQS's API reference
    // states it; a KiB below leaves room for the letter's attributes.
    let sqs_takes = 1_048_576;
    let room = sqs_takes - 1024 - serde_json::to_string(&letter(String::new())).unwrap().len();
    let large = letter("x".repeat(room));
    letters.port().send(large.clone()).await.unwrap();
    let read = letters.read_back().await;
    assert_eq!(read.into_values().collect::<Vec<_>>(), vec![large]);
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
    async fn an_event_over_256_kib_is_relayed_whole_not_dead_lettered() {
        super::an_event_over_256_kib_is_relayed_whole_not_dead_lettered(super::Bus::memory()).await;
    }

    #[tokio::test]
    async fn a_letter_near_the_largest_message_sqs_takes_is_read_back_whole() {
        super::a_letter_near_the_largest_message_sqs_takes_is_read_back_whole(
            super::Letters::Memory(outbox_memory::MemoryDeadLetterQueue::new()),
        )
        .await;
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
    async fn an_event_over_256_kib_is_relayed_whole_not_dead_lettered() {
        super::an_event_over_256_kib_is_relayed_whole_not_dead_lettered(
            super::Bus::eventbridge().await,
        )
        .await;
    }

    #[tokio::test]
    async fn a_letter_near_the_largest_message_sqs_takes_is_read_back_whole() {
        super::a_letter_near_the_largest_message_sqs_takes_is_read_back_whole(
            super::Letters::sqs().await,
        )
        .await;
    }

    #[tokio::test]
    async fn a_letter_is_read_back_as_sent_with_its_source() {
        super::a_letter_is_read_back_as_sent_with_its_source(super::Letters::sqs().await).await;
    }
}
