//! The load on `serve` at full size (numbers in BENCHMARKS.md): 16 concurrent
//! HTTP clients, 500 orders each placed and moved to delivery — 2,500
//! commands, each sent twice with its `Idempotency-Key`, 5,000 requests — on
//! embedded dynoxide over loopback. Then every answered command's events must
//! have reached every subscribed consumer once, no 5xx, no client error, and
//! the relay lag must be back to zero; the run fails otherwise.
//!
//! It also measures the whole pipeline in one process: events per second from
//! command to applied effect, and per command the latency from its answer to
//! the last consumer's effect (each effect item's `appliedAt`). Then `replay`
//! republishes the whole window from the data file to the local bus and its
//! consumers (every event a duplicate by then): its rate is the replay figure.
//!
//! `cargo bench -p outbox-tests --bench serve_load` (`LOAD_ORDERS`, `LOAD_CLIENTS` to resize).

use std::process::ExitCode;

use clap::Parser;
use tokio::sync::oneshot;

use outbox_application::{AggregateId, AggregateRef, EventId};
use outbox_bootstrap::local::serve::{bind, serve};
use outbox_bootstrap::local::status::status;
use outbox_bootstrap::local::{Cli, Command};
use outbox_domain::Version;
use outbox_tests::load;

/// Replays the last hour from the data file to the local bus and consumers.
async fn replay_all(data: &str) -> outbox_bootstrap::local::replay::ReplayReport {
    let now = time::OffsetDateTime::now_utc();
    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .expect("an RFC 3339 instant")
    };
    let position =
        std::env::temp_dir().join(format!("outbox-load-{}.position", uuid::Uuid::now_v7()));
    let Command::Replay(options) = Cli::parse_from([
        "outbox-local",
        "replay",
        "--from",
        &rfc3339(now - time::Duration::hours(1)),
        "--to",
        &rfc3339(now + time::Duration::minutes(1)),
        "--data",
        data,
        "--position-file",
        &position.display().to_string(),
    ])
    .command
    else {
        unreachable!("a replay command line")
    };
    outbox_bootstrap::local::replay::replay(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &options,
    )
    .await
    .expect("the replay runs")
}

/// Per event id, when its last effect was applied, from the inbox table's effect items.
async fn applied_at(
    data: &std::path::Path,
) -> std::collections::HashMap<String, time::OffsetDateTime> {
    let server = outbox_bootstrap::embedded::EmbeddedDynamo::start(Some(data))
        .await
        .expect("the data file opens");
    let clients = outbox_bootstrap::clients::LocalClients::new(&server.endpoint());
    let items: Vec<_> = clients
        .dynamodb
        .scan()
        .table_name("outbox-local-inbox")
        .filter_expression("entityType = :effect")
        .expression_attribute_values(
            ":effect",
            aws_sdk_dynamodb::types::AttributeValue::S("EFFECT".into()),
        )
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("the effects scan");
    let mut last = std::collections::HashMap::new();
    for item in items {
        let event = item["effect"].as_m().expect("an effect")["eventId"]
            .as_s()
            .expect("an event id")
            .clone();
        let at = time::OffsetDateTime::parse(
            item["appliedAt"].as_s().expect("appliedAt"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("an RFC 3339 instant");
        let entry = last.entry(event).or_insert(at);
        if at > *entry {
            *entry = at;
        }
    }
    server.stop().await.expect("the server stops");
    last
}

fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run())
}

async fn run() -> ExitCode {
    let (clients, orders) = (size("LOAD_CLIENTS", 16), size("LOAD_ORDERS", 500));
    let data = std::env::temp_dir().join(format!("outbox-load-{}.db", uuid::Uuid::now_v7()));
    let data_arg = data.display().to_string();
    let Command::Serve(options) =
        Cli::parse_from(["outbox-local", "serve", "--port", "0", "--data", &data_arg]).command
    else {
        unreachable!("a serve command line")
    };
    let listener = bind(0).await.expect("a loopback port");
    let address = listener.local_addr().expect("an address");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve(
            &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
            &options,
            listener,
            async {
                let _ = stopped.await;
            },
        )
        .await
    });
    let report = load::run(address, clients, orders).await;
    let _ = stop.send(());
    let served = server
        .await
        .expect("serve ends")
        .expect("serve stops cleanly");
    let Command::Status(options) =
        Cli::parse_from(["outbox-local", "status", "--data", &data_arg]).command
    else {
        unreachable!("a status command line")
    };
    let after = status(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &options,
    )
    .await
    .expect("status");
    let applied = applied_at(&data).await;
    let replayed = replay_all(&data_arg).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{data_arg}{suffix}"));
    }

    let seconds = report.elapsed.as_secs_f64();
    println!(
        "{clients} clients, {} orders, {} requests in {seconds:.2} s: {:.0} requests/s, p50 {:.1} ms, p99 {:.1} ms; {} replayed, {} 5xx, {} 4xx",
        report.orders,
        report.requests,
        report.requests as f64 / seconds,
        report.quantile(0.5).as_secs_f64() * 1e3,
        report.quantile(0.99).as_secs_f64() * 1e3,
        report.replayed,
        report.server_errors,
        report.client_errors,
    );
    let mut pipeline: Vec<f64> = Vec::new();
    let mut missing = 0;
    for (order, version, answered) in &report.answered {
        let aggregate = AggregateRef::new("Order", AggregateId::parse(order).expect("an order id"));
        let event = EventId::derive(&aggregate, Version::new(*version));
        match applied.get(&event.to_string()) {
            Some(last) => pipeline.push((*last - *answered).as_seconds_f64() * 1e3),
            None => missing += 1,
        }
    }
    pipeline.sort_by(f64::total_cmp);
    let quantile = |q: f64| pipeline[((pipeline.len() - 1) as f64 * q).round() as usize];
    let first_answer = report
        .answered
        .iter()
        .map(|(_, _, at)| *at)
        .min()
        .expect("answers");
    let last_effect = applied.values().max().copied().expect("effects");
    let span = (last_effect - first_answer).as_seconds_f64();
    println!(
        "pipeline: {} events applied by every consumer in {span:.2} s: {:.0} events/s; answer → last consumer's effect p50 {:.1} ms, p99 {:.1} ms ({missing} without an effect)",
        pipeline.len(),
        pipeline.len() as f64 / span,
        quantile(0.5),
        quantile(0.99),
    );
    print!("replay from embedded dynoxide: {replayed}");
    let events = orders * (1 + load::STATUSES.len());
    let tally = |name: &str| {
        after
            .consumers
            .iter()
            .find(|c| c.name == name)
            .map_or(0, |c| c.effects)
    };
    let checks = [
        ("every order answered", report.orders == orders),
        (
            "no 5xx and no client error",
            report.server_errors + report.client_errors == 0,
        ),
        ("one set of events per command", served.published == events),
        (
            "order tracking applied every event once",
            tally("order-tracking") == events as u64,
        ),
        (
            "shipping applied every placement once",
            tally("shipping") == orders as u64,
        ),
        (
            "restaurant notified of every placement once",
            tally("restaurant-notification") == orders as u64,
        ),
        ("relay lag back to zero", !after.lagging()),
        ("every answered command's event has an effect", missing == 0),
        (
            "the replay republished every event, all dropped as repeats",
            replayed.progress.published == events
                && replayed.consumed.is_some_and(|c| c.applied == 0),
        ),
    ];
    let mut failed = false;
    for (check, held) in checks {
        println!("{} {check}", if held { "ok  " } else { "FAIL" });
        failed |= !held;
    }
    if failed {
        println!("{after}");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
