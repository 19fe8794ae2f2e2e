//! The write path: commands per second and latency through `CommandService`,
//! on the in-memory store and on DynamoDB on embedded dynoxide (the real SDK
//! over loopback HTTP), with 1, 4 and 16 concurrent tasks on distinct
//! aggregates and 16 tasks on one aggregate (conflicts, retries).
//!
//! The reference, in the same run and on the same server: a bare `PutItem` of
//! an item the size of the command's state item, one task. The target: a
//! command (one `GetItem` + one `TransactWriteItems`) costs at most 3× that
//! `PutItem`. An SDK interceptor counts the requests each command puts on the
//! wire. Each configuration runs `ROUNDS` times; the figures are the median and
//! the spread (min–max) of the rounds. `BENCHMARKS.md` holds the numbers.
//!
//! `WRITE_BENCH_COMMANDS` sets the commands per round (default 600).

// A bench binary: a panic is how it fails.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;

use outbox_application::ports::{AggregateStore, RandomIds, SystemClock};
use outbox_application::{CommandPolicy, CommandService, RequestMeta, Target};
use outbox_bootstrap::clients::LocalClients;
use outbox_bootstrap::embedded::EmbeddedDynamo;
use outbox_bootstrap::operation_log::OperationLog;
use outbox_domain::{EmailAddress, Money, Text};
use outbox_dynamodb::{create_tables, DynamoStore, TableLayout};
use outbox_memory::MemoryStore;
use outbox_seeds_domain::repair::{Repair, RepairCommand};

use support::summary;

/// Rounds per configuration.
const ROUNDS: usize = 3;
/// Commands per round on one aggregate (its state grows a line item each).
const HOT_COMMANDS: usize = 150;

/// How many requests of each operation `log` holds.
fn counts(log: Vec<String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for operation in log {
        *counts.entry(operation).or_default() += 1;
    }
    counts
}

/// What one round measured.
#[derive(Debug, Clone)]
struct Round {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    failed: usize,
}

fn text(raw: &str) -> Text {
    Text::parse("bench", raw).unwrap()
}

fn add_item() -> RepairCommand {
    RepairCommand::AddLineItem {
        description: text("brake pads, front axle"),
        price_cents: Money::from_cents(8_900).unwrap(),
    }
}

fn service(store: Arc<dyn AggregateStore>) -> CommandService {
    CommandService::new(
        store,
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        CommandPolicy { max_attempts: 20 },
    )
}

/// Opens and starts `n` repairs; their targets.
async fn started_repairs(commands: &CommandService, n: usize) -> Vec<Target> {
    let meta = RequestMeta::default();
    let mut targets = Vec::with_capacity(n);
    for _ in 0..n {
        let open = RepairCommand::OpenRepair {
            vehicle: text("B-XY 123"),
            customer: text("Ada Lovelace"),
            customer_email: EmailAddress::parse("bench", "ada@example.com").unwrap(),
            description: text("brakes squeal when cold"),
        };
        let opened = commands
            .execute::<Repair>(Target::New, &open, &meta)
            .await
            .unwrap();
        let target = Target::Existing(opened.aggregate.aggregate_id);
        commands
            .execute::<Repair>(target, &RepairCommand::StartWork, &meta)
            .await
            .unwrap();
        targets.push(target);
    }
    targets
}

/// `targets.len()` commands by `tasks` tasks, task `t` taking every
/// `tasks`-th target from `t`.
async fn run(commands: &CommandService, targets: &[Target], tasks: usize) -> Round {
    let started = Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|task| {
            let commands = commands.clone();
            let mine: Vec<Target> = targets.iter().skip(task).step_by(tasks).copied().collect();
            tokio::spawn(async move {
                let meta = RequestMeta::default();
                let mut latencies = Vec::with_capacity(mine.len());
                let mut failed = 0;
                for target in mine {
                    let begun = Instant::now();
                    match commands.execute::<Repair>(target, &add_item(), &meta).await {
                        Ok(_) => latencies.push(begun.elapsed()),
                        Err(_) => failed += 1,
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for worker in workers {
        let (mine, lost) = worker.await.unwrap();
        latencies.extend(mine);
        failed += lost;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3
    };
    Round {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        failed,
    }
}

fn cell(samples: Vec<f64>, decimals: usize) -> String {
    let (median, low, high) = summary(samples);
    format!("{median:.decimals$} ({low:.decimals$}–{high:.decimals$})")
}

/// A store being set up.
type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Store> + Send>>;

/// A fresh store for each configuration, so no run pays for an earlier one's data.
type Fresh<'a> = &'a (dyn Fn(usize) -> Pending + Sync);

/// A store under test and, on DynamoDB, what the reference needs.
struct Store {
    commands: CommandService,
    dynamo: Option<(aws_sdk_dynamodb::Client, TableLayout, OperationLog)>,
}

/// Every configuration, each on a fresh store; on DynamoDB each 1-task round
/// is followed at once by as many bare `PutItem`s of the state item, and the
/// ratio of their means is taken per round.
async fn configurations(name: &str, fresh: Fresh<'_>, per_round: usize) -> Vec<f64> {
    let mut ratios = Vec::new();
    let mut config = 0;
    for (tasks, hot) in [(1, false), (4, false), (16, false), (16, true)] {
        config += 1;
        let store = fresh(config).await;
        let commands = &store.commands;
        let mut rounds = Vec::new();
        for _ in 0..ROUNDS {
            let targets = if hot {
                let one = started_repairs(commands, 1).await[0];
                vec![one; HOT_COMMANDS]
            } else {
                started_repairs(commands, per_round).await
            };
            let round = run(commands, &targets, tasks).await;
            if let (1, Some((client, layout, _))) = (tasks, &store.dynamo) {
                let item = state_item(client, layout, targets[0]).await;
                let put_ms = bare_puts(client, &layout.table, &item, per_round).await;
                ratios.push((1e3 / round.per_second) / put_ms);
            }
            rounds.push(round);
        }
        // Requests on the wire per command of the whole row, setup included
        // (an open and a start per distinct aggregate, one GetItem each besides).
        let requests = store
            .dynamo
            .as_ref()
            .map_or_else(String::new, |(_, _, log)| {
                let commands = rounds.len() * if hot { HOT_COMMANDS + 2 } else { per_round * 3 };
                counts(log.take())
                    .iter()
                    .filter(|(operation, _)| operation.as_str() != "PutItem")
                    .map(|(operation, count)| {
                        format!("{operation} {:.2}", *count as f64 / commands as f64)
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            });
        println!(
            "| {name} | {tasks}{} | {} | {} | {} | {} | {requests} |",
            if hot { " on one aggregate" } else { "" },
            cell(rounds.iter().map(|r| r.per_second).collect(), 0),
            cell(rounds.iter().map(|r| r.p50_ms).collect(), 2),
            cell(rounds.iter().map(|r| r.p99_ms).collect(), 2),
            rounds.iter().map(|r| r.failed).sum::<usize>(),
        );
    }
    ratios
}

/// The state item of `target`, as stored.
async fn state_item(
    client: &aws_sdk_dynamodb::Client,
    layout: &TableLayout,
    target: Target,
) -> BTreeMap<String, AttributeValue> {
    let Target::Existing(id) = target else {
        unreachable!("started repairs exist")
    };
    client
        .get_item()
        .table_name(&layout.table)
        .key("pk", AttributeValue::S(format!("REPAIR#{id}")))
        .key("sk", AttributeValue::S("STATE".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
        .into_iter()
        .collect()
}

/// Bare `PutItem`s of `item` (under fresh keys), one at a time; the mean (ms).
async fn bare_puts(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    item: &BTreeMap<String, AttributeValue>,
    n: usize,
) -> f64 {
    let started = Instant::now();
    for i in 0..n {
        let mut copy: std::collections::HashMap<String, AttributeValue> =
            item.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        copy.insert(
            "pk".into(),
            AttributeValue::S(format!("BENCH#{i}#{}", uuid::Uuid::now_v7())),
        );
        client
            .put_item()
            .table_name(table)
            .set_item(Some(copy))
            .send()
            .await
            .unwrap();
    }
    started.elapsed().as_secs_f64() * 1e3 / n as f64
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let per_round: usize = std::env::var("WRITE_BENCH_COMMANDS")
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(600);
    println!("write path: {per_round} commands per round ({HOT_COMMANDS} on one aggregate), {ROUNDS} rounds, a fresh store per row; median (min–max)\n");
    println!("| store | tasks | commands/s | p50 ms | p99 ms | failed | requests per command |");
    println!("|---|---|---:|---:|---:|---:|---|");

    let memory = |_: usize| -> Pending {
        Box::pin(async {
            Store {
                commands: service(Arc::new(MemoryStore::new())),
                dynamo: None,
            }
        })
    };
    configurations("memory", &memory, per_round * 10).await;

    let server = EmbeddedDynamo::start(None).await.unwrap();
    let endpoint = server.endpoint();
    let dynamo = move |n: usize| -> Pending {
        let endpoint = endpoint.clone();
        Box::pin(async move {
            let clients = LocalClients::new(&endpoint);
            let layout = TableLayout::single_table(
                format!("bench-{n}"),
                outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
            );
            create_tables(&clients.dynamodb, &layout).await.unwrap();
            let log = OperationLog::default();
            let logged = log.attach(&clients.dynamodb);
            let store = DynamoStore::new(logged.clone(), layout.clone());
            Store {
                commands: service(Arc::new(store)),
                dynamo: Some((logged, layout, log)),
            }
        })
    };
    let ratios = configurations("dynoxide", &dynamo, per_round).await;

    // Requests per command, counted on the wire.
    let store = dynamo(99).await;
    let targets = started_repairs(&store.commands, 100).await;
    let (_, _, log) = store.dynamo.as_ref().unwrap();
    log.take();
    let round = run(&store.commands, &targets, 1).await;
    assert_eq!(round.failed, 0);
    println!("\nrequests per command (100 commands, one task):");
    for (operation, count) in counts(log.take()) {
        println!("  {operation}: {:.2}", count as f64 / 100.0);
    }
    println!(
        "\na command (GetItem + TransactWriteItems) / a bare PutItem of its state item, one task, per round: {} (target ≤ 3)",
        cell(ratios, 2)
    );
    server.stop().await.unwrap();
}
