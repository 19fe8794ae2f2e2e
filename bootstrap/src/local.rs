//! The local program: the seed stories on the in-memory pipeline, with faults.
//!
//! Repairs are opened, worked on, billed and completed (invoicing and customer
//! notification act); orders are placed and moved through their statuses, every
//! other one cancelled (shipping, restaurant and tracking act). With a fault rate,
//! every hop fails at random — lost replies, throttling, rejected entries, crashed
//! relays and consumers, duplicate deliveries, a malformed outbox record — and
//! the clients retry with their idempotency keys, as real ones would.

use std::fmt;

use clap::Parser;

use application::{IdempotencyKey, RequestMeta, Target};
use domain::order::{Order, OrderCommand, OrderLine, OrderStatus, Quantity};
use domain::repair::{Repair, RepairCommand};
use domain::{Aggregate, Money, Text};
use memory_adapter::{
    audit_at_rest, BusFault, ConsumerFault, MemoryPipeline, PipelineStats, QueueFault, StoreFault,
    StreamFault, Violation,
};

/// Command-line options of `outbox-local`.
#[derive(Debug, Clone, Parser)]
#[command(
    version,
    about = "Runs the outbox pipeline's seed stories in one process"
)]
pub struct LocalOptions {
    /// Probability (0 to 1) that any one hop suffers a fault.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub fault_rate: f64,
    /// Seed of the fault dice, to repeat a run.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// How many repairs to run through the workshop story.
    #[arg(long, default_value_t = 3)]
    pub repairs: usize,
    /// How many orders to run through the food ordering story.
    #[arg(long, default_value_t = 4)]
    pub orders: usize,
    /// Stream records per relay invocation.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
}

fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("`{raw}` is not a probability between 0 and 1")),
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct LocalReport {
    /// Commands accepted (replays of a repeated key included once).
    pub commands_committed: usize,
    /// Commands that failed after the client's retries.
    pub commands_failed: usize,
    /// Events in the outbox.
    pub events_committed: usize,
    /// What the pipeline counted.
    pub stats: PipelineStats,
    /// Effects per consumer.
    pub effects: Vec<(&'static str, usize)>,
    /// Faults injected.
    pub faults_injected: usize,
    /// Broken invariants; empty when all held.
    pub violations: Vec<Violation>,
}

impl fmt::Display for LocalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        writeln!(f, "commands committed     {}", self.commands_committed)?;
        writeln!(f, "commands failed        {}", self.commands_failed)?;
        writeln!(f, "faults injected        {}", self.faults_injected)?;
        writeln!(f, "events committed       {}", self.events_committed)?;
        writeln!(
            f,
            "events published       {} (repeats included)",
            s.published
        )?;
        writeln!(
            f,
            "relay runs / retries   {} / {}",
            s.relay_runs, s.relay_retries
        )?;
        writeln!(f, "dead-lettered          {}", s.dead_lettered)?;
        writeln!(f, "effects applied        {}", s.effects_applied)?;
        writeln!(f, "duplicates suppressed  {}", s.duplicates_suppressed)?;
        for (consumer, count) in &self.effects {
            writeln!(f, "  {consumer:<24} {count}")?;
        }
        if self.violations.is_empty() {
            writeln!(f, "invariants             all held")
        } else {
            writeln!(f, "invariants             {} broken", self.violations.len())?;
            for violation in &self.violations {
                writeln!(f, "  {violation:?}")?;
            }
            Ok(())
        }
    }
}

/// Injects faults with a fixed probability from a seeded die.
struct Dice {
    rng: fastrand::Rng,
    rate: f64,
    injected: usize,
}

impl Dice {
    fn hit(&mut self) -> bool {
        let hit = self.rate > 0.0 && self.rng.f64() < self.rate;
        self.injected += usize::from(hit);
        hit
    }

    /// Arms random faults on every hop of `pipeline` for its next calls.
    fn arm(&mut self, pipeline: &MemoryPipeline) {
        if self.hit() {
            let fault = [
                StoreFault::FailBeforeCommit,
                StoreFault::FailAfterCommit,
                StoreFault::Throttle,
            ][self.rng.usize(0..3)];
            pipeline.store.faults().inject(fault);
        }
        if self.hit() {
            let fault = match self.rng.usize(0..4) {
                0 => BusFault::Throttle,
                1 if self.rng.bool() => BusFault::Reject {
                    entries: [0].into(),
                    retryable: false,
                },
                _ => BusFault::Reject {
                    entries: [self.rng.usize(0..3)].into(),
                    retryable: true,
                },
            };
            pipeline.bus.faults().inject(fault);
        }
        if self.hit() {
            pipeline
                .stream
                .faults()
                .inject(StreamFault::CrashAfterRelay);
        }
        for subscriber in &pipeline.subscribers {
            if self.hit() {
                subscriber.faults.inject(ConsumerFault::CrashAfterEffect);
            }
            if self.hit() {
                subscriber.queue.faults().inject(QueueFault::Duplicate);
            }
        }
    }
}

/// A client of the pipeline that counts its results and lets the pipeline move on between commands.
struct Client<'p> {
    pipeline: &'p MemoryPipeline,
    dice: Dice,
    report: LocalReport,
}

impl Client<'_> {
    async fn send<A: Aggregate>(
        &mut self,
        target: Target,
        command: A::Command,
        key: String,
    ) -> Option<Target> {
        self.dice.arm(self.pipeline);
        let meta = RequestMeta {
            idempotency_key: IdempotencyKey::parse(&key).ok(),
            ..RequestMeta::default()
        };
        let result = self.pipeline.submit::<A>(target, &command, &meta, 5).await;
        self.pipeline.relay_step().await;
        self.pipeline.consume_step().await;
        match result {
            Ok(outcome) => {
                self.report.commands_committed += 1;
                Some(Target::Existing(outcome.aggregate.aggregate_id))
            }
            Err(error) => {
                self.report.commands_failed += 1;
                tracing::warn!(%key, %error, "command failed");
                None
            }
        }
    }
}

/// Runs the seed stories and audits the result.
pub async fn run(options: &LocalOptions) -> LocalReport {
    let pipeline = MemoryPipeline::new(usize::from(options.batch_size));
    let mut client = Client {
        pipeline: &pipeline,
        dice: Dice {
            rng: fastrand::Rng::with_seed(options.seed),
            rate: options.fault_rate,
            injected: 0,
        },
        report: LocalReport::default(),
    };
    if options.fault_rate > 0.0 {
        // A foreign writer's malformed outbox item: it must be dead-lettered, not block the stream.
        pipeline
            .store
            .append_raw_change(serde_json::json!({"entityType": "OUTBOX", "eventType": 42}));
        client.dice.injected += 1;
    }
    for n in 0..options.repairs {
        repair_story(&mut client, n).await;
    }
    for n in 0..options.orders {
        order_story(&mut client, n).await;
    }
    pipeline.store.faults().clear();
    // An unsettled pipeline shows up in the audit as `Violation::Unsettled`.
    pipeline.settle(1_000_000).await;
    let mut report = client.report;
    report.faults_injected = client.dice.injected;
    report.events_committed = pipeline.store.outbox().len();
    report.stats = pipeline.stats();
    report.effects = pipeline
        .subscribers
        .iter()
        .map(|s| {
            (
                s.service.name(),
                pipeline.inbox.effects_of(s.service.name()).len(),
            )
        })
        .collect();
    report.violations = audit_at_rest(&pipeline);
    report
}

/// A repair opened, started, billed twice and completed (seed `000`).
async fn repair_story(client: &mut Client<'_>, n: usize) {
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
    let Some(repair) = client
        .send::<Repair>(Target::New, open, format!("repair-{n}-open"))
        .await
    else {
        return;
    };
    let mut steps = vec![("start", RepairCommand::StartWork)];
    for (item, cents) in [("pads", 4_999), ("labour", 8_000 + 100 * n as i64)] {
        if let (Some(description), Ok(price_cents)) = (text(item.into()), Money::from_cents(cents))
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
        client
            .send::<Repair>(repair, command, format!("repair-{n}-{step}"))
            .await;
    }
}

/// An order placed and delivered, or cancelled while preparing (seeds `001`, `002`).
async fn order_story(client: &mut Client<'_>, n: usize) {
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
    let Some(order) = client
        .send::<Order>(Target::New, place, format!("order-{n}-place"))
        .await
    else {
        return;
    };
    let path: &[OrderStatus] = if n % 2 == 0 {
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
        client
            .send::<Order>(
                order,
                OrderCommand::ChangeStatus { to: *to },
                format!("order-{n}-{to:?}"),
            )
            .await;
    }
    if n % 2 == 1 {
        client
            .send::<Order>(
                order,
                OrderCommand::CancelOrder,
                format!("order-{n}-cancel"),
            )
            .await;
    }
}
