//! The pure core's costs (criterion): one command decided and its events
//! evolved, one aggregate rehydrated from 10,000 events, and the event
//! envelope encoded and decoded. The reference in the same run is
//! `serde_json` parsing the same envelope's bytes into a `Value`, so every
//! figure can be stated as a ratio on this noisy machine (BENCHMARKS.md).

// A bench binary: criterion's macros define undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use time::OffsetDateTime;
use uuid::Uuid;

use outbox_application::envelope::EventContext;
use outbox_application::{AggregateId, EventEnvelope, Traceparent};
use outbox_domain::{decide, fold, Aggregate, EmailAddress, Money, Text, Version};
use outbox_seeds_domain::order::{Order, OrderCommand, OrderLine, Quantity};
use outbox_seeds_domain::repair::{Repair, RepairCommand, RepairEvent};

fn text(raw: &str) -> Text {
    Text::parse("bench", raw).expect("bench text is valid")
}

fn money(cents: i64) -> Money {
    Money::from_cents(cents).expect("bench amounts are valid")
}

/// A repair opened, started and billed `items` line items.
fn repair_history(items: usize) -> Vec<RepairEvent> {
    let mut events = vec![
        RepairEvent::RepairOpened {
            vehicle: text("B-XY 123"),
            customer: text("Ada Lovelace"),
            customer_email: EmailAddress::parse("bench", "ada@example.com")
                .expect("the bench address is valid"),
            description: text("brakes squeal when cold"),
        },
        RepairEvent::WorkStarted {},
    ];
    events.extend((0..items).map(|i| RepairEvent::LineItemAdded {
        description: text(&format!("part {i}")),
        price_cents: money(1_250),
    }));
    events
}

fn envelope() -> EventEnvelope {
    let context = EventContext {
        occurred_at: OffsetDateTime::UNIX_EPOCH,
        correlation_id: "corr-0196".into(),
        causation_id: "req-0196".into(),
        traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
    };
    let event = outbox_seeds_domain::order::OrderEvent::OrderPlaced {
        customer: text("Ada Lovelace"),
        items: (0..3)
            .map(|i| OrderLine {
                sku: text(&format!("SKU-{i}")),
                quantity: Quantity::new(2).expect("2 is a quantity"),
                unit_price_cents: money(450),
            })
            .collect(),
        total_cents: money(2_700),
    };
    EventEnvelope::wrap::<Order>(
        AggregateId::from_uuid(Uuid::from_u128(3)),
        Version::new(1),
        &event,
        &context,
    )
    .expect("the envelope encodes")
}

fn domain_costs(c: &mut Criterion) {
    let started = fold::<Repair>(Default::default(), &repair_history(3));
    let add = RepairCommand::AddLineItem {
        description: text("brake pads"),
        price_cents: money(8_900),
    };
    c.bench_function("decide+evolve: add a line item to a started repair", |b| {
        b.iter(|| decide::<Repair>(black_box(&started), Version::new(5), black_box(&add)))
    });
    let place = OrderCommand::PlaceOrder {
        customer: text("Ada Lovelace"),
        items: vec![OrderLine {
            sku: text("SKU-1"),
            quantity: Quantity::new(2).expect("2 is a quantity"),
            unit_price_cents: money(450),
        }],
    };
    c.bench_function("decide+evolve: place an order", |b| {
        b.iter(|| {
            decide::<Order>(
                black_box(&<Order as Aggregate>::State::default()),
                Version::INITIAL,
                black_box(&place),
            )
        })
    });
    let history = repair_history(9_998);
    assert_eq!(history.len(), 10_000);
    c.bench_function("rehydrate: one repair from 10,000 events", |b| {
        b.iter(|| fold::<Repair>(Default::default(), black_box(&history)))
    });
}

fn envelope_costs(c: &mut Criterion) {
    let event = envelope();
    let bytes = serde_json::to_vec(&event).expect("the envelope encodes");
    c.bench_function(
        "reference: serde_json bytes -> Value (same envelope)",
        |b| b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&bytes))),
    );
    c.bench_function("envelope: encode to JSON", |b| {
        b.iter(|| serde_json::to_vec(black_box(&event)))
    });
    c.bench_function("envelope: decode from JSON", |b| {
        b.iter(|| serde_json::from_slice::<EventEnvelope>(black_box(&bytes)))
    });
    c.bench_function("envelope: decode its data to the domain event", |b| {
        b.iter(|| black_box(&event).decode::<Order>())
    });
}

criterion_group!(benches, domain_costs, envelope_costs);
criterion_main!(benches);
