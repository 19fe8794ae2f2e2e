//! The whole pipeline on moto, through the real handlers and adapters:
//! command API → one DynamoDB transaction → the table's stream, fed to the relay
//! handler as Lambda would (batches, retried from the reported record) →
//! EventBridge → a rule per consumer → SQS → the consumer handlers → effects
//! behind the DynamoDB inbox. Faults are injected at every hop, and every effect
//! must happen exactly once with no event lost.

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::{json, Value};

use outbox_application::consume::Reaction;
use outbox_application::ports::{
    DeadLetterPayload, DeadLetterStore, Effect, EventPublisher, Inbox, RandomIds, SystemClock,
};
use outbox_application::{CallKey, CommandPolicy, CommandService, ConsumeService, Reacted, Relay};
use outbox_bootstrap::clients::LocalClients;
use outbox_dynamodb::{
    create_tables, leading_keys, stream_arn, DynamoInbox, DynamoStore, TableLayout,
};
use outbox_eventbridge::EventBridgePublisher;
use outbox_lambda::{consume_sqs_batch, relay_stream_batch, CommandApi};
use outbox_seeds::reactions;
use outbox_simulation::faults::{FaultyInbox, FaultyPublisher, InboxFault, PublisherFault};
use outbox_sqs::SqsDeadLetterQueue;
use outbox_tests::{moto, put_foreign_outbox_item};

/// Records a Lambda event source mapping hands the relay at once.
const STREAM_BATCH: usize = 10;

/// One consumer: its queue, its handler's use case, and what it went through.
struct Consumer {
    reaction: Arc<dyn Reaction>,
    /// The consumer's inbox, read directly.
    marks: DynamoInbox,
    queue_url: String,
    consume: ConsumeService,
    /// The inbox as the consumer sees it: it dies once right after its first effect.
    inbox: FaultyInbox,
    deliveries: usize,
    redelivered: usize,
}

/// The AWS side of the test: tables, bus, rules, queues, dead-letter queue.
struct World {
    clients: LocalClients,
    layout: TableLayout,
    inbox_table: String,
    bus: String,
    dlq_url: String,
}

impl World {
    async fn create() -> Self {
        let clients = moto::clients();
        let layout = TableLayout::single_table(
            moto::unique("e2e"),
            outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
        );
        create_tables(&clients.dynamodb, &layout).await.unwrap();
        let inbox_layout = TableLayout::single_table(
            moto::unique("e2e-consumers"),
            outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
        );
        create_tables(&clients.dynamodb, &inbox_layout)
            .await
            .unwrap();
        let bus = moto::bus(&clients, "e2e-bus").await;
        let dlq_url = moto::queue(&clients, "e2e-dlq").await;
        Self {
            clients,
            layout,
            inbox_table: inbox_layout.table,
            bus,
            dlq_url,
        }
    }

    /// A queue subscribed by a rule with the event `pattern`.
    async fn subscribe(&self, name: &str, pattern: &Value) -> String {
        moto::subscribed_queue(&self.clients, &self.bus, name, pattern).await
    }

    /// `reaction` behind its queue, subscribed with its declared pattern, and
    /// the DynamoDB inbox (through a fault decorator with no fault yet).
    async fn consumer(&self, reaction: Arc<dyn Reaction>) -> Consumer {
        let pattern = reaction.subscription().event_pattern(
            &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
        );
        let queue_url = self.subscribe(reaction.name(), &pattern).await;
        let marks = DynamoInbox::new(self.clients.dynamodb.clone(), &self.inbox_table);
        let inbox = FaultyInbox::new(Arc::new(marks.clone()));
        Consumer {
            consume: ConsumeService::new(
                Arc::new(inbox.clone()),
                Arc::clone(&reaction),
                Arc::new(self.dead_letters()),
            ),
            reaction,
            marks,
            queue_url,
            inbox,
            deliveries: 0,
            redelivered: 0,
        }
    }

    fn dead_letters(&self) -> SqsDeadLetterQueue {
        SqsDeadLetterQueue::new(self.clients.sqs.clone(), &self.dlq_url)
    }

    fn store(&self) -> DynamoStore {
        DynamoStore::new(self.clients.dynamodb.clone(), self.layout.clone())
    }
}

/// An API Gateway HTTP API (payload 2.0) request, as AWS documents it.
fn http(method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> lambda_http::Request {
    let mut headers = json!({ "content-type": "application/json" });
    if let Some(key) = key {
        headers["idempotency-key"] = json!(key);
    }
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "api",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "e2e" },
            "requestId": uuid::Uuid::now_v7().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:06:00:00 +0000",
            "timeEpoch": 1_795_413_600_000_u64
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

async fn call(
    api: &CommandApi,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Value {
    let response = api.handle(&http(method, path, key, body)).await;
    let status = response.status();
    let body: &[u8] = response.body().as_ref();
    let value: Value = serde_json::from_slice(body).unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {value}");
    value
}

/// Runs the seed stories through the command API, interleaving aggregates so
/// stream batches carry several of them.
async fn run_commands(api: &CommandApi) {
    let mut repairs = Vec::new();
    for n in 0..4 {
        let body = json!({ "vehicle": format!("B-{n}"), "customer": format!("C{n}"), "customerEmail": format!("c{n}@example.com"), "description": "brakes" });
        let key = format!("open-repair-{n}");
        let opened = call(api, "POST", "/repairs", Some(&key), Some(body.clone())).await;
        let repeated = call(api, "POST", "/repairs", Some(&key), Some(body)).await;
        assert_eq!(
            opened, repeated,
            "a repeated key is answered from the first result"
        );
        repairs.push(opened["repairId"].as_str().unwrap().to_owned());
    }
    let mut orders = Vec::new();
    for n in 0..4 {
        let body = json!({ "customer": format!("D{n}"), "items": [{ "sku": "PIZZA", "quantity": n + 1, "unitPriceCents": 950 }] });
        let placed = call(api, "POST", "/orders", None, Some(body)).await;
        orders.push(placed["orderId"].as_str().unwrap().to_owned());
    }
    for id in &repairs {
        call(api, "POST", &format!("/repairs/{id}/start"), None, None).await;
    }
    for (n, id) in repairs.iter().enumerate() {
        let body = json!({ "description": "pads", "priceCents": 1_000 * (n + 1) });
        call(
            api,
            "POST",
            &format!("/repairs/{id}/line-items"),
            None,
            Some(body),
        )
        .await;
    }
    for id in &repairs {
        call(api, "POST", &format!("/repairs/{id}/complete"), None, None).await;
    }
    for status in ["PREPARING", "READY_FOR_PICKUP"] {
        for id in &orders {
            let body = json!({ "status": status });
            call(
                api,
                "POST",
                &format!("/orders/{id}/status"),
                None,
                Some(body),
            )
            .await;
        }
    }
    call(
        api,
        "POST",
        &format!("/orders/{}/cancel", orders[3]),
        None,
        None,
    )
    .await;
}

/// Every record of the table's stream, as Lambda puts them in a DynamoDB event.
async fn stream_records(world: &World) -> Vec<Value> {
    let arn = stream_arn(&world.clients.dynamodb, &world.layout.table)
        .await
        .unwrap();
    let description = world
        .clients
        .streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    let shards = description
        .stream_description()
        .map(|d| d.shards().to_vec())
        .unwrap_or_default();
    let mut records = Vec::new();
    for shard in shards {
        let mut iterator = world
            .clients
            .streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        loop {
            let page = world
                .clients
                .streams
                .get_records()
                .shard_iterator(&iterator)
                .send()
                .await
                .unwrap();
            if page.records().is_empty() {
                break;
            }
            for record in page.records() {
                records.push(lambda_record(record, &arn));
            }
            match page.next_shard_iterator {
                Some(next) => iterator = next,
                None => break,
            }
        }
    }
    records
}

/// A Streams API record in the shape of a Lambda DynamoDB stream event record.
fn lambda_record(record: &aws_sdk_dynamodbstreams::types::Record, arn: &str) -> Value {
    let change = record.dynamodb().unwrap();
    let keys: serde_dynamo::Item = change.keys.clone().unwrap_or_default().into();
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": 1_795_413_600,
        "Keys": keys,
        "SequenceNumber": change.sequence_number().unwrap(),
        "SizeBytes": change.size_bytes().unwrap_or_default(),
        "StreamViewType": "NEW_IMAGE"
    });
    if let Some(image) = change.new_image.clone() {
        dynamodb["NewImage"] = serde_json::to_value(serde_dynamo::Item::from(image)).unwrap();
    }
    json!({
        "eventID": record.event_id().unwrap_or("?"),
        "eventName": record.event_name().map(|n| n.as_str()).unwrap_or("INSERT"),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventSourceARN": arn
    })
}

/// Feeds `records` to the relay handler the way an event source mapping does:
/// batches in order; after a reported failure, the next batch starts at that
/// record; after a failed invocation, the same batch comes again.
async fn drain_stream(relay: &Relay, records: &[Value]) -> usize {
    let mut position = 0;
    let mut invocations = 0;
    while position < records.len() {
        invocations += 1;
        assert!(
            invocations < 200,
            "the relay made no progress at {position}"
        );
        let batch = &records[position..(position + STREAM_BATCH).min(records.len())];
        let event: Event = serde_json::from_value(json!({ "Records": batch })).unwrap();
        let response = relay_stream_batch(relay, &event).await.unwrap();
        match response.batch_item_failures.first() {
            None => position += batch.len(),
            Some(failure) => {
                let sequence = failure.item_identifier.clone().unwrap();
                let offset = batch
                    .iter()
                    .position(|r| r["dynamodb"]["SequenceNumber"] == sequence.as_str())
                    .expect("the failure names a record of the batch");
                position += offset;
            }
        }
    }
    invocations
}

/// Receives, hands to the consumer handler and deletes what it handled, until
/// every queue stays empty. The first batch each consumer gets is delivered twice.
/// Up to 10 messages of `queue_url` with their attributes, waiting up to `wait` seconds.
async fn receive(
    world: &World,
    queue_url: &str,
    wait: i32,
) -> aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput {
    world
        .clients
        .sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .wait_time_seconds(wait)
        .send()
        .await
        .unwrap()
}

/// SQS messages as the Lambda event that delivers them.
fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> SqsEvent {
    let attribute = |m: &aws_sdk_sqs::types::Message, name: MessageSystemAttributeName| {
        m.attributes().and_then(|a| a.get(&name)).cloned()
    };
    serde_json::from_value(json!({
        "Records": messages.iter().map(|m| json!({
            "messageId": m.message_id(),
            "receiptHandle": m.receipt_handle(),
            "body": m.body(),
            "attributes": {
                "ApproximateReceiveCount": attribute(m, MessageSystemAttributeName::ApproximateReceiveCount)
                    .unwrap_or_else(|| "1".into()),
                "ApproximateFirstReceiveTimestamp": attribute(m, MessageSystemAttributeName::ApproximateFirstReceiveTimestamp)
                    .unwrap_or_else(|| "0".into())
            },
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:queue",
            "awsRegion": "us-east-1"
        })).collect::<Vec<_>>()
    }))
    .unwrap()
}

async fn drain_queues(world: &World, consumers: &mut [Consumer]) {
    let mut quiet_rounds = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while quiet_rounds < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queues did not drain"
        );
        let mut received_any = false;
        for consumer in consumers.iter_mut() {
            let output = receive(world, &consumer.queue_url, 0).await;
            let messages = output.messages();
            if messages.is_empty() {
                continue;
            }
            received_any = true;
            let event = sqs_event(messages);
            let deliveries = if consumer.deliveries == 0 { 2 } else { 1 };
            let mut failed = HashSet::new();
            for _ in 0..deliveries {
                let response = consume_sqs_batch(&consumer.consume, &event).await;
                failed.extend(
                    response
                        .batch_item_failures
                        .into_iter()
                        .map(|f| f.item_identifier),
                );
            }
            consumer.deliveries += 1;
            consumer.redelivered += deliveries - 1 + failed.len();
            for message in messages {
                if !failed.contains(message.message_id().unwrap_or_default()) {
                    world
                        .clients
                        .sqs
                        .delete_message()
                        .queue_url(&consumer.queue_url)
                        .receipt_handle(message.receipt_handle().unwrap())
                        .send()
                        .await
                        .unwrap();
                }
            }
        }
        if received_any {
            quiet_rounds = 0;
        } else {
            quiet_rounds += 1;
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_effect_happens_once_and_no_event_is_lost_under_faults_at_every_hop() {
    let world = World::create().await;
    let store = world.store();
    let commands = CommandService::new(
        Arc::new(store.clone()),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        CommandPolicy::default(),
    );
    let api = CommandApi::new(
        commands,
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
    );
    run_commands(&api).await;
    let outbox = store.outbox().await.unwrap();
    assert_eq!(
        outbox.len(),
        4 * 4 + 4 + 4 * 2 + 1,
        "every command recorded its events once"
    );
    // A foreign writer's outbox item that no relay can decode.
    put_foreign_outbox_item(&world.clients.dynamodb, &world.layout.table).await;

    let mut consumers = Vec::new();
    for reaction in outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports())
        .consumers()
        .to_vec()
    {
        // The rule's pattern is the reaction's declared subscription, as in
        // the in-memory bus and the deployment template.
        let consumer = world.consumer(reaction).await;
        consumer.inbox.faults().inject(InboxFault::CrashAfterApply);
        consumers.push(consumer);
    }
    world
        .clients
        .sqs
        .send_message()
        .queue_url(&consumers[0].queue_url)
        .message_body("{\"this is\": \"neither an EventBridge event nor an envelope\"}")
        .send()
        .await
        .unwrap();

    // Call 1 has an entry refused (retryable), call 3 dies after publishing
    // half its batch, call 5 has two entries refused.
    let publisher = FaultyPublisher::new(Arc::new(EventBridgePublisher::new(
        world.clients.eventbridge.clone(),
        &world.bus,
        outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
    )));
    let reject = |entries: &[usize]| PublisherFault::Reject {
        entries: entries.iter().copied().collect(),
        retryable: true,
    };
    for fault in [
        None,
        Some(reject(&[1])),
        None,
        Some(PublisherFault::CrashMidBatch),
        None,
        Some(reject(&[0, 2])),
    ] {
        match fault {
            Some(fault) => publisher.faults().inject(fault),
            None => publisher.faults().pass(),
        }
    }
    let relay = Relay::new(Arc::new(publisher.clone()), Arc::new(world.dead_letters()));
    let records = stream_records(&world).await;
    let invocations = drain_stream(&relay, &records).await;
    drain_queues(&world, &mut consumers).await;

    let mut report = BTreeMap::new();
    for consumer in &consumers {
        let name = consumer.reaction.name();
        // What each event calls for: a record, or a call (made here again,
        // on the memory doubles, for the record it writes with its mark).
        let mut expected: Vec<Effect> = Vec::new();
        let mut calls = 0;
        for event in &outbox {
            match consumer.reaction.react(event).await.unwrap() {
                Reacted::Record(effect) => expected.push(effect),
                Reacted::Call(call) => {
                    calls += 1;
                    let key = CallKey::new(name, event.event_id);
                    expected.extend(call.call(&key).await.unwrap().record);
                }
                Reacted::Ignored => {}
            }
        }
        let mut recorded = consumer.marks.effects_of(name).await.unwrap();
        expected.sort_by_key(|e| e.event_id.to_string());
        recorded.sort_by_key(|e| e.event_id.to_string());
        assert!(
            !expected.is_empty() || calls > 0,
            "{name} has work in the stories"
        );
        assert_eq!(
            recorded, expected,
            "{name}: each effect exactly once, none missing"
        );
        let subscription = consumer.reaction.subscription();
        for event in &outbox {
            if subscription.is_ordered() {
                // An ordered consumer's mark is its position per aggregate.
                let last = outbox
                    .iter()
                    .filter(|e| e.aggregate_id == event.aggregate_id)
                    .map(|e| e.aggregate_version)
                    .max();
                let sequence = consumer
                    .marks
                    .sequence(name, &event.aggregate())
                    .await
                    .unwrap();
                let routed = event.aggregate_type == subscription.aggregate_type;
                assert_eq!(
                    Some(sequence.applied).filter(|_| routed),
                    last.filter(|_| routed),
                    "{name}: every version of the routed aggregates handled, in order"
                );
                assert!(sequence.parking.is_none(), "{name}: nothing parked");
                continue;
            }
            assert_eq!(
                consumer
                    .marks
                    .processed(name, event.event_id)
                    .await
                    .unwrap(),
                subscription.accepts(event),
                "{name}: the inbox let exactly the routed events through ({})",
                event.event_type
            );
        }
        assert_eq!(
            consumer.inbox.faults().fired(),
            1,
            "{name} died once after an effect"
        );
        report.insert(name, (expected.len(), consumer.redelivered));
    }
    let mut letters = Vec::new();
    while let Ok(page) = world.dead_letters().read(None, 10).await {
        if page.letters.is_empty() {
            break;
        }
        for stored in page.letters {
            world.dead_letters().remove(&stored.handle).await.unwrap();
            letters.push(stored.content.expect("every message is a dead letter"));
        }
    }
    // Dead-lettering is at least once (the foreign message was delivered twice);
    // a letter's source (stream position or SQS message id) identifies it.
    let distinct: HashSet<String> = letters.iter().map(|l| l.source.to_string()).collect();
    assert_eq!(
        distinct.len(),
        2,
        "the poison record and the foreign message: {letters:?}"
    );
    assert!(letters
        .iter()
        .any(|l| l.reason.starts_with("undecodable outbox item")
            && matches!(l.payload, DeadLetterPayload::Raw { .. })));
    assert!(letters.iter().any(|l| l
        .reason
        .starts_with("neither an EventBridge event of an outbox envelope nor an envelope")));
    assert_eq!(
        publisher.faults().fired(),
        3,
        "entries refused by the bus twice, and the relay died after half a batch"
    );
    let names: Vec<&str> = consumers.iter().map(|c| c.reaction.name()).collect();
    assert_inbox_keys_are_granted(&world, &names).await;
    println!(
        "end to end: {} outbox events, {} stream records in {invocations} relay invocations, \
         {} dead letters; (effects, redeliveries) per consumer: {report:?}",
        outbox.len(),
        records.len(),
        letters.len(),
    );
}

/// Out-of-order delivery into the order-tracking queue: an order's later
/// events reach the queue first and are handed back until their predecessors
/// arrive; the tracking history ends in version order, each status once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_delivery_into_order_tracking_ends_in_the_right_history() {
    let world = World::create().await;
    let mut consumer = world.consumer(Arc::new(reactions::OrderTracking)).await;
    // Its first batch is not delivered twice: the handing back is what is checked.
    consumer.deliveries = 1;
    let events = outbox_tests::order_events(uuid::Uuid::now_v7().as_u128(), 6, true);
    let aggregate = events[0].aggregate();
    let publisher = EventBridgePublisher::new(
        world.clients.eventbridge.clone(),
        &world.bus,
        outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
    );
    // Versions 6, 5, 4 first: none can be applied, each is handed back.
    for index in [5, 4, 3] {
        publisher.publish(&events[index..=index]).await.unwrap();
    }
    let mut early = Vec::new();
    while early.len() < 3 {
        let output = receive(&world, &consumer.queue_url, 1).await;
        early.extend(output.messages().iter().cloned());
    }
    let response = consume_sqs_batch(&consumer.consume, &sqs_event(&early)).await;
    assert_eq!(
        response.batch_item_failures.len(),
        3,
        "versions ahead of a gap are handed back for redelivery"
    );
    // Then 3, 1, 2: the gap closes and everything applies in order.
    for index in [2, 0, 1] {
        publisher.publish(&events[index..=index]).await.unwrap();
    }
    drain_queues(&world, std::slice::from_mut(&mut consumer)).await;

    let history = consumer
        .marks
        .history("order-tracking", &aggregate)
        .await
        .unwrap();
    let tracked: Vec<(u64, Value)> = history
        .iter()
        .map(|(_, effect)| {
            (
                effect.data["version"].as_u64().unwrap(),
                effect.data["status"].clone(),
            )
        })
        .collect();
    let mut expected: Vec<(u64, Value)> = Vec::new();
    for event in &events {
        let reacted = reactions::OrderTracking.react(event).await.unwrap();
        let effect = reacted.into_record().unwrap();
        expected.push((
            event.aggregate_version.value(),
            effect.data["status"].clone(),
        ));
    }
    assert_eq!(tracked, expected, "the tracking history, in version order");
    assert_eq!(tracked.last().unwrap().1, json!("CANCELLED"));
    let sequence = consumer
        .marks
        .sequence("order-tracking", &aggregate)
        .await
        .unwrap();
    assert_eq!(sequence.applied.value(), 6);
    assert!(sequence.parking.is_none(), "nothing parked: {sequence:?}");
    assert_inbox_keys_are_granted(&world, &["order-tracking"]).await;
}

/// Every item the consumers wrote to the inbox table lies under a partition
/// key its own consumer's [`leading_keys`] match, and no other's: the
/// `dynamodb:LeadingKeys` the deployment grants each consumer (an item outside
/// them would be refused in AWS, an item inside another's would be exposed).
async fn assert_inbox_keys_are_granted(world: &World, consumers: &[&str]) {
    let items: Vec<_> = world
        .clients
        .dynamodb
        .scan()
        .table_name(&world.inbox_table)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .unwrap();
    assert!(!items.is_empty(), "the consumers wrote their inbox");
    let like = |pattern: &str, key: &str| match pattern.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => key == pattern,
    };
    for item in &items {
        let key = item["pk"].as_s().unwrap();
        let owners: Vec<&&str> = consumers
            .iter()
            .filter(|consumer| leading_keys(consumer).iter().any(|p| like(p, key)))
            .collect();
        assert_eq!(
            owners.len(),
            1,
            "{key}: granted to one consumer: {owners:?}"
        );
        assert!(
            key.contains(&format!("#{}", owners[0])),
            "{key}: the key names its consumer"
        );
    }
}
