//! The stream relay and SQS consumer handlers, fed the event JSON AWS documents
//! for DynamoDB stream and SQS invocations, against in-memory ports.

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

mod fixtures;

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{json, Value};

use fixtures::{
    bridged, completed, envelope, opened_repairs, outbox_image, piped, sqs_event, sqs_message,
    stream_event, stream_record,
};

use outbox_application::ports::{DeadLetterPayload, Inbox, LetterSource};
use outbox_application::{ConsumeService, EventEnvelope, Relay, SequenceNumber};
use outbox_domain::Version;
use outbox_lambda::{
    consume_sqs_batch, handle_consumer_event, relay_stream_batch, ConsumerEvent, ConsumerResponse,
};
use outbox_memory::{MemoryBus, MemoryDeadLetterQueue, MemoryDocuments, MemoryInbox};
use outbox_seeds::reactions::Invoicing;
use outbox_simulation::faults::{
    DeadLetterFault, FaultyDeadLetters, FaultyInbox, FaultyPublisher, InboxFault, PublisherFault,
};

#[tokio::test]
async fn the_stream_handler_relays_outbox_inserts_only_and_dead_letters_poison() {
    let bus = MemoryBus::new(
        outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
    );
    let dead_letters = MemoryDeadLetterQueue::new();
    let relay = Relay::new(Arc::new(bus.clone()), Arc::new(dead_letters.clone()));
    let first = envelope(
        1,
        1,
        "RepairOpened",
        json!({"vehicle": "B", "customer": "A", "customerEmail": "a@example.com", "description": "d"}),
    );
    let second = envelope(
        2,
        1,
        "RepairOpened",
        json!({"vehicle": "C", "customer": "B", "customerEmail": "b@example.com", "description": "d"}),
    );
    let state =
        json!({"pk": {"S": "Repair#1"}, "sk": {"S": "STATE"}, "entityType": {"S": "AGGREGATE"}});
    let poison = json!({"pk": {"S": "Repair#3"}, "sk": {"S": "EVENT#1"}, "entityType": {"S": "OUTBOX"}, "eventId": {"N": "7"}});
    let event = stream_event(vec![
        stream_record(100, "INSERT", state.clone()),
        stream_record(101, "INSERT", outbox_image(&first)),
        stream_record(102, "MODIFY", state),
        stream_record(103, "INSERT", poison),
        stream_record(104, "INSERT", outbox_image(&second)),
        stream_record(105, "REMOVE", outbox_image(&first)),
    ]);

    let response = relay_stream_batch(&relay, &event).await.unwrap();

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(bus.accepted(), vec![first, second]);
    let letters = dead_letters.letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].source,
        LetterSource::StreamRecord {
            sequence: SequenceNumber::new("103")
        }
    );
    assert!(matches!(letters[0].payload, DeadLetterPayload::Raw { .. }));
}

#[tokio::test]
async fn a_record_without_a_sequence_number_is_dead_lettered_and_the_rest_relayed() {
    let bus = MemoryBus::new(
        outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
    );
    let dead_letters = MemoryDeadLetterQueue::new();
    let faulty_letters = FaultyDeadLetters::new(Arc::new(dead_letters.clone()));
    let relay = Relay::new(Arc::new(bus.clone()), Arc::new(faulty_letters.clone()));
    let events: Vec<EventEnvelope> = opened_repairs(3);
    let mut records: Vec<Value> = events
        .iter()
        .zip(300..)
        .map(|(e, sequence)| stream_record(sequence, "INSERT", outbox_image(e)))
        .collect();
    records[1]["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("SequenceNumber");
    let event = stream_event(records);

    let response = relay_stream_batch(&relay, &event).await.unwrap();

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(bus.accepted(), vec![events[0].clone(), events[2].clone()]);
    let letters = dead_letters.letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].source,
        LetterSource::UnpositionedStreamRecord {
            event_id: "id-301".into()
        }
    );
    assert!(letters[0].reason.contains("no sequence number"));
    assert_eq!(
        letters[0].identity.event_id,
        Some(events[1].event_id.to_string())
    );

    faulty_letters.faults().inject(DeadLetterFault::Unavailable);
    assert!(
        relay_stream_batch(&relay, &event).await.is_err(),
        "a record that can be neither named nor dead-lettered fails the whole batch"
    );
}

#[tokio::test]
async fn the_stream_handler_names_the_first_unpublished_record_for_lambda_to_retry_from() {
    let bus = MemoryBus::new(
        outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
    );
    let faulty = FaultyPublisher::new(Arc::new(bus.clone()));
    let relay = Relay::new(
        Arc::new(faulty.clone()),
        Arc::new(MemoryDeadLetterQueue::new()),
    );
    let events: Vec<EventEnvelope> = opened_repairs(3);
    let event = stream_event(
        events
            .iter()
            .zip(200..)
            .map(|(e, sequence)| stream_record(sequence, "INSERT", outbox_image(e)))
            .collect(),
    );
    faulty.faults().inject(PublisherFault::Reject {
        entries: HashSet::from([1]),
        retryable: true,
    });

    let response = relay_stream_batch(&relay, &event).await.unwrap();

    let failures: Vec<Option<String>> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failures, vec![Some("201".to_owned())]);
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(
        json,
        json!({"batchItemFailures": [{"itemIdentifier": "201"}]})
    );
    assert_eq!(bus.accepted(), vec![events[0].clone(), events[2].clone()]);
}

#[tokio::test]
async fn the_consumer_applies_each_event_once_and_reports_only_what_must_come_again() {
    let inbox = MemoryInbox::new();
    let faulty_inbox = FaultyInbox::new(Arc::new(inbox.clone()));
    let dead_letters = MemoryDeadLetterQueue::new();
    let faulty_letters = FaultyDeadLetters::new(Arc::new(dead_letters.clone()));
    let consume = ConsumeService::new(
        Arc::new(faulty_inbox.clone()),
        Arc::new(Invoicing::new(Arc::new(MemoryDocuments::new()))),
        Arc::new(faulty_letters.clone()),
    );
    let one = completed(1);
    let two = completed(2);
    let event = sqs_event(vec![
        sqs_message("m1", &bridged(&one)),
        sqs_message("m2", &bridged(&one)),
        sqs_message("m3", "{\"not\": \"an event\"}"),
        sqs_message("m4", &bridged(&two)),
    ]);

    let response = consume_sqs_batch(&consume, &event).await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let invoices = inbox.effects_of("invoicing");
    assert_eq!(
        invoices.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        vec![one.event_id, two.event_id]
    );
    assert_eq!(invoices[0].data["amountCents"], 4999);
    let letters = dead_letters.letters();
    assert_eq!(
        (
            letters.len(),
            letters[0].source.clone(),
            letters[0].attempts
        ),
        (
            1,
            LetterSource::QueueMessage {
                consumer: "invoicing".into(),
                message_id: "m3".into()
            },
            2
        )
    );

    faulty_inbox.faults().inject(InboxFault::Unavailable);
    let three = completed(3);
    let retry = sqs_event(vec![
        sqs_message("m5", &bridged(&three)),
        sqs_message("m6", &bridged(&two)),
    ]);
    let response = consume_sqs_batch(&consume, &retry).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, vec!["m5"]);
    assert_eq!(inbox.effects_of("invoicing").len(), 2);

    faulty_letters.faults().inject(DeadLetterFault::Unavailable);
    let poison = sqs_event(vec![sqs_message("m7", "garbage")]);
    let response = consume_sqs_batch(&consume, &poison).await;
    assert_eq!(
        response.batch_item_failures.len(),
        1,
        "an undeliverable dead letter is not dropped"
    );
}

#[tokio::test]
async fn a_consumer_trusts_no_envelope_a_rule_breaking_one_is_dead_lettered_without_effect() {
    let (consume, inbox, dead_letters) = fixtures::invoicing();
    let mut blank_customer = completed(1);
    blank_customer.data["customer"] = json!("  ");
    let mut future_schema = completed(2);
    future_schema.schema_version = 99;
    let mut version_zero = completed(3);
    version_zero.aggregate_version = Version::INITIAL;
    let event = sqs_event(vec![
        sqs_message("blank", &bridged(&blank_customer)),
        sqs_message("schema", &bridged(&future_schema)),
        sqs_message("zero", &bridged(&version_zero)),
    ]);

    let response = consume_sqs_batch(&consume, &event).await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert!(inbox.effects_of("invoicing").is_empty(), "no invoice");
    let reasons: Vec<String> = dead_letters
        .letters()
        .into_iter()
        .map(|l| l.reason)
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("must not be empty"), "{reasons:?}");
    assert!(reasons[1].contains("schema version 99"), "{reasons:?}");
    assert!(reasons[2].contains("aggregate version 0"), "{reasons:?}");
}

#[tokio::test]
async fn every_consumer_gets_the_same_effect_from_the_lambda_relay_a_pipe_and_a_custom_event_bus() {
    use outbox_application::envelope::EventContext;
    use outbox_application::AggregateId;
    use outbox_domain::{Money, Text};
    use outbox_seeds_domain::order::{Order, OrderEvent, OrderLine, OrderStatus, Quantity};

    let context = EventContext {
        occurred_at: time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        correlation_id: "corr".into(),
        causation_id: "req".into(),
        traceparent: outbox_application::Traceparent::root(
            uuid::Uuid::from_u128(1),
            uuid::Uuid::from_u128(2),
        ),
    };
    let order = AggregateId::from_uuid(uuid::Uuid::from_u128(40));
    let placed = OrderEvent::OrderPlaced {
        customer: Text::parse("c", "Ada").unwrap(),
        items: vec![OrderLine {
            sku: Text::parse("s", "A").unwrap(),
            quantity: Quantity::new(2).unwrap(),
            unit_price_cents: Money::from_cents(450).unwrap(),
        }],
        total_cents: Money::from_cents(900).unwrap(),
    };
    let moved = OrderEvent::OrderStatusChanged {
        from: OrderStatus::Accepted,
        to: OrderStatus::Preparing,
    };
    let events = [
        completed(30),
        EventEnvelope::wrap::<Order>(order, Version::new(1), &placed, &context).unwrap(),
        EventEnvelope::wrap::<Order>(order, Version::new(2), &moved, &context).unwrap(),
    ];
    for reaction in outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports())
        .consumers()
        .to_vec()
    {
        let mut effects = Vec::new();
        for shape in ["lambda relay", "pipe", "custom event bus"] {
            let inbox = MemoryInbox::new();
            let dead_letters = MemoryDeadLetterQueue::new();
            let consume = ConsumeService::new(
                Arc::new(inbox.clone()),
                Arc::clone(&reaction),
                Arc::new(dead_letters.clone()),
            );
            let messages = events
                .iter()
                .enumerate()
                .map(|(n, event)| {
                    let body = match shape {
                        "pipe" => piped(event, 500 + n as u64),
                        "custom event bus" => serde_json::to_string(event).unwrap(),
                        _ => bridged(event),
                    };
                    sqs_message(&format!("m{n}"), &body)
                })
                .collect();
            let response = consume_sqs_batch(&consume, &sqs_event(messages)).await;
            assert!(response.batch_item_failures.is_empty(), "{response:?}");
            assert!(
                dead_letters.letters().is_empty(),
                "{} ({shape}): {:?}",
                reaction.name(),
                dead_letters.letters()
            );
            let calls: Vec<_> = inbox
                .completions_of(reaction.name())
                .into_iter()
                .map(|(event_id, completion)| (event_id, completion.kind))
                .collect();
            effects.push((inbox.effects_of(reaction.name()), calls));
        }
        assert!(
            !effects[0].0.is_empty() || !effects[0].1.is_empty(),
            "{} has an effect or a call",
            reaction.name()
        );
        assert!(
            effects.iter().all(|e| *e == effects[0]),
            "{}: one effect whichever relay or bus: {effects:?}",
            reaction.name()
        );
    }
}

/// One order's events, versions 1 to 3: placed, then preparing, then ready.
fn order(aggregate: u128) -> Vec<EventEnvelope> {
    vec![
        envelope(
            aggregate,
            1,
            "OrderPlaced",
            json!({"customer": "Ada", "items": [{"sku": "A", "quantity": 1, "unitPriceCents": 100}], "totalCents": 100}),
        ),
        envelope(
            aggregate,
            2,
            "OrderStatusChanged",
            json!({"from": "ACCEPTED", "to": "PREPARING"}),
        ),
        envelope(
            aggregate,
            3,
            "OrderStatusChanged",
            json!({"from": "PREPARING", "to": "READY_FOR_PICKUP"}),
        ),
    ]
    .into_iter()
    .map(|mut event| {
        event.aggregate_type = "Order".into();
        event
    })
    .collect()
}

/// An SQS message received `count` times, first just now.
fn received(id: &str, event: &EventEnvelope, count: u32) -> Value {
    let mut message = sqs_message(id, &bridged(event));
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    message["attributes"]["ApproximateReceiveCount"] = json!(count.to_string());
    message["attributes"]["ApproximateFirstReceiveTimestamp"] = json!(now_ms.to_string());
    message
}

#[tokio::test]
async fn an_ordered_consumer_applies_a_reversed_batch_in_order_and_hands_back_what_waits_for_a_gap()
{
    let inbox = MemoryInbox::new();
    let consume = ConsumeService::new(
        Arc::new(inbox.clone()),
        Arc::new(outbox_seeds::reactions::OrderTracking),
        Arc::new(MemoryDeadLetterQueue::new()),
    );
    let first = order(7);
    let reversed = sqs_event(vec![
        received("m3", &first[2], 1),
        received("m1", &first[0], 1),
        received("m2", &first[1], 1),
    ]);
    let response = consume_sqs_batch(&consume, &reversed).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let statuses: Vec<Value> = inbox
        .history("order-tracking", &first[0].aggregate())
        .iter()
        .map(|effect| effect.data["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        vec![
            json!("ACCEPTED"),
            json!("PREPARING"),
            json!("READY_FOR_PICKUP")
        ]
    );

    // Version 1 of another order is missing: 2 and 3 are handed back, until
    // the fifth delivery parks the order and acknowledges them.
    let second = order(8);
    let waiting = sqs_event(vec![
        received("n2", &second[1], 1),
        received("n3", &second[2], 4),
    ]);
    let response = consume_sqs_batch(&consume, &waiting).await;
    let failures: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failures, vec!["n2".to_owned(), "n3".to_owned()]);
    let parking = sqs_event(vec![
        received("n2", &second[1], 5),
        received("n3", &second[2], 5),
    ]);
    // The schedule's probe before the park: the level is 0.
    assert_eq!(probe(&consume).await, 0);
    let response = consume_sqs_batch(&consume, &parking).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let parked = inbox.parked().await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(probe(&consume).await, 1, "the level stays up while parked");
    assert_eq!(probe(&consume).await, 1);
    assert_eq!(
        (parked[0].sequence.missing(), parked[0].sequence.held),
        (Version::new(1), 2)
    );
    // Version 1 arrives: the order is released in order.
    let late = sqs_event(vec![received("n1", &second[0], 1)]);
    assert!(consume_sqs_batch(&consume, &late)
        .await
        .batch_item_failures
        .is_empty());
    assert_eq!(
        inbox
            .history("order-tracking", &second[0].aggregate())
            .len(),
        3
    );
    assert!(inbox.parked().await.unwrap().is_empty());
    assert_eq!(probe(&consume).await, 0, "released: the level falls");
}

/// The consumer function's answer to its schedule's `{"probe": "parked"}`.
async fn probe(consume: &ConsumeService) -> u64 {
    let event: ConsumerEvent = serde_json::from_value(json!({"probe": "parked"})).unwrap();
    match handle_consumer_event(consume, &event).await.unwrap() {
        ConsumerResponse::Parked { parked } => parked,
        other => panic!("a probe is answered with a count: {other:?}"),
    }
}

/// A consumer function reads its queue's batch as a batch, its schedule's
/// probe as a probe, and refuses anything else by name instead of reading it
/// as an empty batch.
#[tokio::test]
async fn a_consumer_function_tells_a_batch_from_a_probe_and_refuses_anything_else() {
    let batch = sqs_event(vec![received("m1", &order(9)[0], 1)]);
    let event: ConsumerEvent =
        serde_json::from_value(serde_json::to_value(&batch).unwrap()).unwrap();
    assert!(matches!(&event, ConsumerEvent::Queue(read) if read == &batch));
    let consume = ConsumeService::new(
        Arc::new(MemoryInbox::new()),
        Arc::new(outbox_seeds::reactions::OrderTracking),
        Arc::new(MemoryDeadLetterQueue::new()),
    );
    let ConsumerResponse::Queue(response) = handle_consumer_event(&consume, &event).await.unwrap()
    else {
        panic!("a batch is answered with its failures");
    };
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    for other in [
        json!({"probe": "lag"}),
        json!({"probe": "parked", "and": 1}),
        json!({}),
    ] {
        assert!(
            serde_json::from_value::<ConsumerEvent>(other.clone()).is_err(),
            "{other} is refused"
        );
    }
}
