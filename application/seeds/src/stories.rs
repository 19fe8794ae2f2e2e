//! The seed stories for `outbox-local demo`, as the commands a client sends:
//! repairs opened, started, billed twice and completed (seed `000`: invoicing
//! and customer notification act); orders placed and moved through their
//! statuses, every other one cancelled while preparing (seeds `001`, `002`:
//! shipping, restaurant notification and tracking act). Each step carries its
//! idempotency key.

use outbox_domain::{EmailAddress, Money, Text};
use outbox_seeds_domain::order::{OrderCommand, OrderLine, OrderStatus, Quantity};
use outbox_seeds_domain::repair::RepairCommand;

/// The `n`-th repair: opened, started, billed twice and completed.
pub fn repair(n: usize) -> Vec<(String, RepairCommand)> {
    let text = |raw: String| Text::parse("story", &raw).ok();
    let (Some(vehicle), Some(customer), Ok(customer_email), Some(description)) = (
        text(format!("WS-{n:03}")),
        text(format!("Customer {n}")),
        EmailAddress::parse("story", &format!("customer-{n}@workshop.example")),
        text("brakes squeal".into()),
    ) else {
        return Vec::new();
    };
    let mut steps = vec![
        (
            format!("repair-{n}-open"),
            RepairCommand::OpenRepair {
                vehicle,
                customer,
                customer_email,
                description,
            },
        ),
        (format!("repair-{n}-start"), RepairCommand::StartWork),
    ];
    for (item, cents) in [("pads", 4_999), ("labour", 8_000 + 100 * n as i64)] {
        if let (Some(description), Ok(price_cents)) = (text(item.into()), Money::from_cents(cents))
        {
            steps.push((
                format!("repair-{n}-{item}"),
                RepairCommand::AddLineItem {
                    description,
                    price_cents,
                },
            ));
        }
    }
    steps.push((
        format!("repair-{n}-complete"),
        RepairCommand::CompleteRepair,
    ));
    steps
}

/// The `n`-th order: placed and delivered, or cancelled while preparing.
pub fn order(n: usize) -> Vec<(String, OrderCommand)> {
    let (Ok(customer), Ok(sku), Ok(quantity), Ok(price)) = (
        Text::parse("customer", &format!("Diner {n}")),
        Text::parse("sku", "PIZZA-MARGHERITA"),
        Quantity::new(1 + n as i64 % 3),
        Money::from_cents(1_150),
    ) else {
        return Vec::new();
    };
    let mut steps = vec![(
        format!("order-{n}-place"),
        OrderCommand::PlaceOrder {
            customer,
            items: vec![OrderLine {
                sku,
                quantity,
                unit_price_cents: price,
            }],
        },
    )];
    let delivered = n.is_multiple_of(2);
    let path: &[OrderStatus] = if delivered {
        &[
            OrderStatus::Preparing,
            OrderStatus::ReadyForPickup,
            OrderStatus::PickedUp,
            OrderStatus::Delivered,
        ]
    } else {
        &[OrderStatus::Preparing]
    };
    for to in path {
        steps.push((
            format!("order-{n}-{to:?}"),
            OrderCommand::ChangeStatus { to: *to },
        ));
    }
    if !delivered {
        steps.push((format!("order-{n}-cancel"), OrderCommand::CancelOrder));
    }
    steps
}
