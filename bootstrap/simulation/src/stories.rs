//! The seed stories, told by a client that retries with its idempotency keys as
//! a real one would, letting the pipeline move on between commands.
//!
//! Repairs are opened, started, billed twice and completed (seed `000`:
//! invoicing and customer notification act); orders are placed and moved
//! through their statuses, every other one cancelled while preparing (seeds
//! `001`, `002`: shipping, restaurant notification and tracking act).

use std::collections::BTreeSet;

use outbox_application::{AggregateRef, IdempotencyKey, RequestMeta, Target};
use outbox_domain::order::{Order, OrderCommand, OrderLine, OrderStatus, Quantity};
use outbox_domain::repair::{Repair, RepairCommand};
use outbox_domain::{Aggregate, Money, Text};

use crate::dice::Dice;
use crate::pipeline::Pipeline;

/// What the client saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTally {
    /// Commands accepted (replays of a repeated key included once).
    pub committed: usize,
    /// Commands that failed after the client's retries.
    pub failed: usize,
    /// The aggregates the stories touched.
    pub touched: BTreeSet<AggregateRef>,
}

/// A client of the pipeline.
pub struct Client<'p> {
    pipeline: &'p Pipeline,
    dice: &'p mut Dice,
    key_prefix: String,
    /// What it saw so far.
    pub tally: ClientTally,
}

impl<'p> Client<'p> {
    /// A client whose idempotency keys start with `key_prefix` (so a new run's
    /// requests are new requests when data outlives a run).
    pub fn new(pipeline: &'p Pipeline, dice: &'p mut Dice, key_prefix: impl Into<String>) -> Self {
        Self {
            pipeline,
            dice,
            key_prefix: key_prefix.into(),
            tally: ClientTally::default(),
        }
    }

    /// Sends one command with faults armed, then lets the pipeline take a step.
    async fn send<A: Aggregate>(
        &mut self,
        target: Target,
        command: A::Command,
        key: &str,
    ) -> Option<Target> {
        self.dice.arm(self.pipeline);
        let key = format!("{}{key}", self.key_prefix);
        let meta = RequestMeta {
            idempotency_key: IdempotencyKey::parse(&key).ok(),
            ..RequestMeta::default()
        };
        let result = self.pipeline.submit::<A>(target, &command, &meta, 5).await;
        self.pipeline.relay_step().await;
        self.pipeline.consume_step().await;
        match result {
            Ok(outcome) => {
                self.tally.committed += 1;
                let id = outcome.aggregate.aggregate_id;
                self.tally.touched.insert(outcome.aggregate);
                Some(Target::Existing(id))
            }
            Err(error) => {
                self.tally.failed += 1;
                tracing::warn!(%key, %error, "command failed");
                None
            }
        }
    }

    /// A repair opened, started, billed twice and completed (seed `000`).
    pub async fn repair_story(&mut self, n: usize) {
        let text = |raw: String| Text::parse("story", &raw).ok();
        let (Some(vehicle), Some(customer), Some(description)) = (
            text(format!("WS-{n:03}")),
            text(format!("Customer {n}")),
            text("brakes squeal".into()),
        ) else {
            return;
        };
        let open = RepairCommand::OpenRepair {
            vehicle,
            customer,
            description,
        };
        let Some(repair) = self
            .send::<Repair>(Target::New, open, &format!("repair-{n}-open"))
            .await
        else {
            return;
        };
        let mut steps = vec![("start", RepairCommand::StartWork)];
        for (item, cents) in [("pads", 4_999), ("labour", 8_000 + 100 * n as i64)] {
            if let (Some(description), Ok(price_cents)) =
                (text(item.into()), Money::from_cents(cents))
            {
                steps.push((
                    item,
                    RepairCommand::AddLineItem {
                        description,
                        price_cents,
                    },
                ));
            }
        }
        steps.push(("complete", RepairCommand::CompleteRepair));
        for (step, command) in steps {
            self.send::<Repair>(repair, command, &format!("repair-{n}-{step}"))
                .await;
        }
    }

    /// An order placed and delivered, or cancelled while preparing (seeds `001`, `002`).
    pub async fn order_story(&mut self, n: usize) {
        let (Ok(customer), Ok(sku), Ok(quantity), Ok(price)) = (
            Text::parse("customer", &format!("Diner {n}")),
            Text::parse("sku", "PIZZA-MARGHERITA"),
            Quantity::new(1 + n as i64 % 3),
            Money::from_cents(1_150),
        ) else {
            return;
        };
        let place = OrderCommand::PlaceOrder {
            customer,
            items: vec![OrderLine {
                sku,
                quantity,
                unit_price_cents: price,
            }],
        };
        let Some(order) = self
            .send::<Order>(Target::New, place, &format!("order-{n}-place"))
            .await
        else {
            return;
        };
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
            self.send::<Order>(
                order,
                OrderCommand::ChangeStatus { to: *to },
                &format!("order-{n}-{to:?}"),
            )
            .await;
        }
        if !delivered {
            self.send::<Order>(
                order,
                OrderCommand::CancelOrder,
                &format!("order-{n}-cancel"),
            )
            .await;
        }
    }
}
