//! Helpers shared by the system tests: building commands from plain values, and
//! the backends of the store contract suite.

pub mod backends;
pub mod http;
pub mod load;
pub mod moto;

use outbox_application::{IdempotencyKey, RequestMeta};
use outbox_domain::{EmailAddress, Money, Text};
use outbox_seeds_domain::order::{OrderCommand, OrderLine, Quantity};
use outbox_seeds_domain::repair::RepairCommand;

/// Text for tests; panics on blank input, which tests never pass.
pub fn text(raw: &str) -> Text {
    Text::parse("test", raw).expect("test text is valid")
}

/// Money for tests; panics on negative input, which tests never pass.
pub fn cents(amount: i64) -> Money {
    Money::from_cents(amount).expect("test amounts are not negative")
}

/// An address made of `name`'s letters and digits, lowercased, at `example.com`
/// (`Ada` → `ada@example.com`; a name with neither → `customer@example.com`).
pub fn email_of(name: &str) -> EmailAddress {
    let local: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(EmailAddress::MAX_LOCAL_CHARS)
        .collect::<String>()
        .to_ascii_lowercase();
    let local = if local.is_empty() { "customer" } else { &local };
    EmailAddress::parse("test", &format!("{local}@example.com"))
        .expect("letters and digits at example.com are an address")
}

/// Opens a repair of a fixed vehicle for `customer`, at the address [`email_of`] it.
pub fn open_repair(customer: &str) -> RepairCommand {
    RepairCommand::OpenRepair {
        vehicle: text("B-XY 123"),
        customer: text(customer),
        customer_email: email_of(customer),
        description: text("brakes squeal"),
    }
}

/// Bills an item of `price` cents.
pub fn line_item(price: i64) -> RepairCommand {
    RepairCommand::AddLineItem {
        description: text("part"),
        price_cents: cents(price),
    }
}

/// Places an order of `lines` lines, each 2 units of 450 cents.
pub fn place_order(customer: &str, lines: usize) -> OrderCommand {
    OrderCommand::PlaceOrder {
        customer: text(customer),
        items: (0..lines)
            .map(|i| OrderLine {
                sku: text(&format!("SKU-{i}")),
                quantity: Quantity::new(2).expect("2 is a valid quantity"),
                unit_price_cents: cents(450),
            })
            .collect(),
    }
}

/// Request metadata carrying idempotency key `key`.
pub fn keyed(key: &str) -> RequestMeta {
    RequestMeta {
        idempotency_key: Some(IdempotencyKey::parse(key).expect("test keys are valid")),
        ..RequestMeta::default()
    }
}

/// Writes an outbox item no relay can decode (`eventType` a number), as a
/// foreign writer might.
pub async fn put_foreign_outbox_item(client: &aws_sdk_dynamodb::Client, table: &str) {
    use aws_sdk_dynamodb::types::AttributeValue;
    client
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S("FOREIGN#1".into()))
        .item("sk", AttributeValue::S("EVENT#1".into()))
        .item("entityType", AttributeValue::S("OUTBOX".into()))
        .item("eventType", AttributeValue::N("42".into()))
        .send()
        .await
        .expect("the foreign outbox item is written");
}

/// A current-thread runtime with timers, for driving the async use cases from tests.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime starts")
}

/// A simulated pipeline on the in-memory store, with that store and the
/// memory doubles its consumers call.
pub fn memory_pipeline(
    batch_size: usize,
) -> (
    outbox_simulation::Pipeline,
    outbox_memory::MemoryStore,
    outbox_memory::MemoryOutside,
) {
    let backend = outbox_simulation::MemoryBackend::default();
    let store = backend.store.clone();
    let outside = outbox_memory::MemoryOutside::new();
    let pipeline = outbox_simulation::Pipeline::new(
        &outbox_seeds::service(&outside.ports()),
        std::sync::Arc::new(backend),
        batch_size,
        false,
    )
    .expect("the seed subscriptions are valid event patterns");
    (pipeline, store, outside)
}

/// Relays and consumes until everything stored was handled; whether it came to rest.
pub async fn settle_all(pipeline: &outbox_simulation::Pipeline) -> bool {
    let aggregates = pipeline.backend.aggregates().await.expect("aggregates");
    pipeline
        .settle(&aggregates, 10_000, std::time::Duration::from_secs(60))
        .await
}

/// Every invariant, after every step and at rest, over every stored aggregate.
pub async fn audit_at_rest(
    pipeline: &outbox_simulation::Pipeline,
) -> Vec<outbox_simulation::Violation> {
    let aggregates = pipeline.backend.aggregates().await.expect("aggregates");
    let observed = pipeline.observe(&aggregates).await.expect("observation");
    let mut violations = outbox_simulation::audit(&observed);
    if !pipeline.queues_empty() {
        violations.push(outbox_simulation::Violation::Unsettled);
    }
    violations.extend(outbox_simulation::audit_delivery(&observed));
    violations
}

/// A first delivery of `event` from a queue.
pub fn delivery(event: &outbox_application::EventEnvelope) -> outbox_application::Delivery {
    outbox_application::Delivery {
        message_id: format!("msg-{}", event.event_id),
        receive_count: 1,
        first_received_at: None,
        content: outbox_application::DeliveryContent::Event(event.clone()),
    }
}

/// One event of every type of both aggregates, as the command use case
/// records them: a repair completed, a repair cancelled, an order moved on and
/// cancelled.
pub async fn one_event_of_each_type() -> Vec<outbox_application::EventEnvelope> {
    use std::sync::Arc;

    use outbox_application::{CommandPolicy, CommandService, Target};
    use outbox_memory::{MemoryStore, SequentialIds, StepClock};
    use outbox_seeds_domain::order::{Order, OrderCommand, OrderStatus};
    use outbox_seeds_domain::repair::Repair;

    let store = MemoryStore::new();
    let service = CommandService::new(
        Arc::new(store.clone()),
        Arc::new(StepClock::default()),
        Arc::new(SequentialIds::default()),
        CommandPolicy::default(),
    );
    let meta = RequestMeta::default();
    let run = |commands: Vec<RepairCommand>| {
        let service = service.clone();
        let meta = meta.clone();
        async move {
            let mut target = Target::New;
            for command in commands {
                let outcome = service
                    .execute::<Repair>(target, &command, &meta)
                    .await
                    .expect("the story is valid");
                target = Target::Existing(outcome.aggregate.aggregate_id);
            }
        }
    };
    run(vec![
        open_repair("Ada"),
        RepairCommand::StartWork,
        line_item(1_000),
        RepairCommand::CompleteRepair,
    ])
    .await;
    run(vec![
        open_repair("Bob"),
        RepairCommand::CancelRepair {
            reason: text("no parts"),
        },
    ])
    .await;
    let placed = service
        .execute::<Order>(Target::New, &place_order("Grace", 1), &meta)
        .await
        .expect("the order is valid");
    let order = Target::Existing(placed.aggregate.aggregate_id);
    for command in [
        OrderCommand::ChangeStatus {
            to: OrderStatus::Preparing,
        },
        OrderCommand::CancelOrder,
    ] {
        service
            .execute::<Order>(order, &command, &meta)
            .await
            .expect("the order moves on");
    }
    let mut seen = std::collections::HashSet::new();
    store
        .outbox()
        .into_iter()
        .filter(|event| seen.insert(event.event_type.clone()))
        .collect()
}

/// The events of one order, versions `1..=n` (`n ≥ 1`): placed, moved on
/// through the statuses, and cancelled at the end if `cancelled`, as its
/// outbox would hold them.
pub fn order_events(
    order: u128,
    n: u64,
    cancelled: bool,
) -> Vec<outbox_application::EventEnvelope> {
    use outbox_application::envelope::EventContext;
    use outbox_application::{AggregateId, EventEnvelope, Traceparent};
    use outbox_domain::Version;
    use outbox_seeds_domain::order::{Order, OrderEvent, OrderStatus};

    let id = AggregateId::from_uuid(uuid::Uuid::from_u128(order));
    let statuses = [
        OrderStatus::Accepted,
        OrderStatus::Preparing,
        OrderStatus::ReadyForPickup,
        OrderStatus::PickedUp,
    ];
    (1..=n)
        .map(|version| {
            let event = if version == 1 {
                OrderEvent::OrderPlaced {
                    customer: text("Ada"),
                    total_cents: cents(900),
                    items: vec![OrderLine {
                        sku: text("SKU-0"),
                        quantity: Quantity::new(2).expect("2 is a valid quantity"),
                        unit_price_cents: cents(450),
                    }],
                }
            } else if version == n && cancelled {
                OrderEvent::OrderCancelled {
                    from: OrderStatus::Preparing,
                }
            } else {
                let step = usize::try_from(version).unwrap_or(0) % statuses.len();
                OrderEvent::OrderStatusChanged {
                    from: statuses[step],
                    to: statuses[(step + 1) % statuses.len()],
                }
            };
            let context = EventContext {
                occurred_at: time::OffsetDateTime::UNIX_EPOCH
                    + time::Duration::seconds(i64::try_from(version).unwrap_or(0)),
                correlation_id: format!("order-{order}"),
                causation_id: format!("command-{version}"),
                traceparent: Traceparent::root(
                    uuid::Uuid::from_u128(order),
                    uuid::Uuid::from_u128(u128::from(version)),
                ),
            };
            EventEnvelope::wrap::<Order>(id, Version::new(version), &event, &context)
                .expect("an order event encodes")
        })
        .collect()
}

/// How many outbox events the `outbox-local` data file at `data` holds, and
/// each delivery missing from an inbox: a seed consumer's, of an event it
/// subscribes to (an ordered consumer has it once its sequence is past it).
///
/// # Panics
/// When the data file cannot be read: a test fails.
pub async fn undelivered(data: &std::path::Path) -> (usize, Vec<String>) {
    let server = outbox_bootstrap::embedded::EmbeddedDynamo::start(Some(data))
        .await
        .expect("the data file opens");
    let found = undelivered_at(&server.endpoint()).await;
    server.stop().await.expect("the data file closes");
    found
}

/// [`undelivered`] on the tables behind a running DynamoDB `endpoint`.
///
/// # Panics
/// When the tables cannot be read: a test fails.
pub async fn undelivered_at(endpoint: &str) -> (usize, Vec<String>) {
    use outbox_application::ports::Inbox;
    let clients = outbox_bootstrap::clients::LocalClients::new(endpoint);
    let service = outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports());
    let layout = outbox_dynamodb::TableLayout::single_table("outbox-local", service.sources());
    let store = outbox_dynamodb::DynamoStore::new(clients.dynamodb.clone(), layout.clone());
    let inbox = outbox_dynamodb::DynamoInbox::new(clients.dynamodb.clone(), &layout.inbox_table);
    let events = store.outbox().await.expect("the outbox reads");
    let mut missing = Vec::new();
    for reaction in service.consumers().iter() {
        let subscription = reaction.subscription();
        for event in events.iter().filter(|e| subscription.accepts(e)) {
            let had = if subscription.is_ordered() {
                let sequence = inbox
                    .sequence(reaction.name(), &event.aggregate())
                    .await
                    .expect("the inbox reads");
                sequence.applied >= event.aggregate_version
            } else {
                inbox
                    .processed(reaction.name(), event.event_id)
                    .await
                    .expect("the inbox reads")
            };
            if !had {
                missing.push(format!("{} {}", reaction.name(), event.event_type));
            }
        }
    }
    (events.len(), missing)
}
