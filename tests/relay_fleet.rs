//! A fleet of self-hosted relays (`outbox-local relay`) on one embedded
//! dynoxide stream. Three relays share the stream through leases (dynoxide
//! gives a table one shard: one relay reads, two stand by); the reading one is
//! killed mid-load, its task aborted wherever it is, as `kill -9` leaves a
//! process; another takes the shard over once the lease runs out, and every
//! event reaches every consumer exactly once, the ordered consumer in version
//! order (nothing parked, each aggregate applied to its last version).
//!
//! And a relay that comes back after the stream trimmed records it never read
//! republishes the gap from the outbox's time index instead of reading on past
//! it in silence.

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use clap::Parser;
use tokio::sync::oneshot;

use outbox_application::ports::{RandomIds, SystemClock};
use outbox_application::{CommandPolicy, CommandService, RequestMeta, Target};
use outbox_bootstrap::embedded::EmbeddedDynamo;
use outbox_bootstrap::local::relay::{LocalRelay, RelayReport};
use outbox_bootstrap::local::sent::SentFolder;
use outbox_bootstrap::local::stack::Stack;
use outbox_bootstrap::local::status::status;
use outbox_bootstrap::local::{Cli, Command};
use outbox_dynamodb::{DynamoStore, LeaseTable};
use outbox_seeds_domain::order::{Order, OrderCommand, OrderStatus};
use outbox_tests::place_order;

const ORDERS: usize = 30;

fn parse(args: &[&str]) -> Command {
    let line = ["outbox-local"].iter().chain(args);
    Cli::parse_from(line).command
}

/// Who holds the stream's one shard, and at which revision.
async fn holder(leases: &LeaseTable) -> Option<(String, u64)> {
    let listed = leases.list().await.unwrap();
    let lease = listed.into_iter().find(|lease| !lease.finished)?;
    lease.owner.map(|owner| (owner, lease.revision))
}

/// Places `orders` orders, each then moved through two statuses.
async fn write_some_orders(commands: &CommandService, orders: usize) {
    let meta = RequestMeta::default();
    for n in 0..orders {
        let placed = commands
            .execute::<Order>(Target::New, &place_order(&format!("T{n}"), 1), &meta)
            .await
            .unwrap();
        for to in [OrderStatus::Preparing, OrderStatus::ReadyForPickup] {
            commands
                .execute::<Order>(
                    Target::Existing(placed.aggregate.aggregate_id),
                    &OrderCommand::ChangeStatus { to },
                    &meta,
                )
                .await
                .unwrap();
        }
    }
}

fn commands_of(stack: &Stack) -> CommandService {
    CommandService::new(
        Arc::new(DynamoStore::new(
            stack.dynamodb.clone(),
            stack.layout.clone(),
        )),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        CommandPolicy::default(),
    )
}

/// Waits until every committed event reached every consumer subscribed to it.
async fn until_delivered(endpoint: &str, events: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (committed, missing) = outbox_tests::undelivered_at(endpoint).await;
        if committed == events && missing.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {committed} deliveries missing: {missing:?}",
            missing.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Places the orders, then moves each through two statuses: three events an
/// order, two of them for the ordered order-tracking consumer to apply in turn.
async fn write_orders(commands: CommandService) -> usize {
    let meta = RequestMeta::default();
    let mut ids = Vec::new();
    for n in 0..ORDERS {
        let placed = commands
            .execute::<Order>(Target::New, &place_order(&format!("C{n}"), 2), &meta)
            .await
            .unwrap();
        ids.push(placed.aggregate.aggregate_id);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for to in [OrderStatus::Preparing, OrderStatus::ReadyForPickup] {
        for id in &ids {
            commands
                .execute::<Order>(
                    Target::Existing(*id),
                    &OrderCommand::ChangeStatus { to },
                    &meta,
                )
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    ORDERS * 3
}

struct Member {
    owner: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<RelayReport>,
    stack: Stack,
}

async fn start_member(data: &Path, endpoint: &str) -> Member {
    let Command::Relay(options) =
        parse(&["relay", "--endpoint-url", endpoint, "--lease-ms", "1000"])
    else {
        unreachable!("a relay command line")
    };
    let service = outbox_seeds::service(&SentFolder::beside(data).ports());
    let stack = Stack::open(&service, &options.stack, true).await.unwrap();
    let relay = LocalRelay::new(&service, &stack, options.bus, options.lease.timings())
        .await
        .unwrap();
    let owner = relay.owner().to_owned();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    Member {
        owner,
        stop,
        task,
        stack,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_relays_shard_is_taken_over_and_every_event_reaches_every_consumer_once() {
    let data = std::env::temp_dir().join(format!("outbox-fleet-{}.db", uuid::Uuid::now_v7()));
    let server = EmbeddedDynamo::start(Some(&data)).await.unwrap();
    let endpoint = server.endpoint();
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(start_member(&data, &endpoint).await);
    }
    let stack = &members[0].stack;
    let stream_arn = stack.stream_arn().await.unwrap();
    let leases = stack.leases(&stream_arn);
    let commands = CommandService::new(
        Arc::new(DynamoStore::new(
            stack.dynamodb.clone(),
            stack.layout.clone(),
        )),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        CommandPolicy::default(),
    );
    let writer = tokio::spawn(write_orders(commands));

    // Once the holder has checkpointed a few batches, it dies mid-load.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let killed = loop {
        if let Some((owner, revision)) = holder(&leases).await {
            if revision >= 4 {
                break owner;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no relay took the shard"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        !writer.is_finished(),
        "the kill comes while events are still committed"
    );
    let position = members.iter().position(|m| m.owner == killed).unwrap();
    let victim = members.remove(position);
    victim.task.abort();
    let _ = victim.task.await;
    let killed_at = tokio::time::Instant::now();
    let events = writer.await.unwrap();

    // Another member takes the shard over and catches up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (successor, took) = loop {
        if let Some((owner, _)) = holder(&leases).await {
            if owner != killed {
                break (owner, killed_at.elapsed());
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nobody took the killed relay's shard over"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(members.iter().any(|m| m.owner == successor), "{successor}");
    eprintln!("the shard was taken over {took:?} after the kill (lease 1 s)");
    until_delivered(&endpoint, events).await;
    for member in members {
        let _ = member.stop.send(());
        member.task.await.unwrap();
        member.stack.close().await.unwrap();
    }
    server.stop().await.unwrap();

    let Command::Status(options) = parse(&["status", "--data", &data.display().to_string()]) else {
        unreachable!("a status command line")
    };
    let service = outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports());
    let after = status(&service, &options).await.unwrap();
    assert!(after.parked.is_empty(), "{after}");
    assert_eq!(after.dead_letters, 0, "{after}");
    let consumer = |name: &str| after.consumers.iter().find(|c| c.name == name).unwrap();
    assert_eq!(
        consumer("order-tracking").effects,
        events as u64,
        "each order event tracked once, in order: {after}"
    );
    for name in ["restaurant-notification", "shipping"] {
        assert_eq!(
            consumer(name).effects,
            ORDERS as u64,
            "{name}: one effect an order, none twice: {after}"
        );
    }
    let _ = std::fs::remove_file(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_behind_the_trim_horizon_makes_the_relay_republish_the_gap() {
    let data = std::env::temp_dir().join(format!("outbox-trim-{}.db", uuid::Uuid::now_v7()));
    let server = EmbeddedDynamo::start(Some(&data)).await.unwrap();
    let endpoint = server.endpoint();
    // One order relayed and checkpointed; the relay stops.
    let first = start_member(&data, &endpoint).await;
    write_some_orders(&commands_of(&first.stack), 1).await;
    until_delivered(&endpoint, 3).await;
    let _ = first.stop.send(());
    first.task.await.unwrap();
    // Four more while no relay runs; then a day passes: the stream trims
    // every record after the checkpoint.
    let stack = &first.stack;
    let last_read: i64 = rusqlite::Connection::open(&data)
        .unwrap()
        .query_row(
            "SELECT MAX(CAST(sequence_number AS INTEGER)) FROM _stream_records",
            [],
            |row| row.get(0),
        )
        .unwrap();
    write_some_orders(&commands_of(stack), 4).await;
    let stream_arn = stack.stream_arn().await.unwrap();
    let lease = stack.leases(&stream_arn).list().await.unwrap().remove(0);
    let a_day_ago = (time::OffsetDateTime::now_utc() - time::Duration::hours(25))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.layout.checkpoint_table)
        .key("pk", AttributeValue::S(stream_arn.clone()))
        .key("sk", AttributeValue::S(lease.shard.clone()))
        .update_expression("SET sequenceAt = :at")
        .expression_attribute_values(":at", AttributeValue::S(a_day_ago))
        .send()
        .await
        .unwrap();
    first.stack.close().await.unwrap();
    server.stop().await.unwrap();
    let trimmed = rusqlite::Connection::open(&data)
        .unwrap()
        .execute(
            "DELETE FROM _stream_records WHERE CAST(sequence_number AS INTEGER) > ?1",
            [last_read],
        )
        .unwrap();
    assert!(
        trimmed >= 12,
        "the four orders' stream records are gone: {trimmed}"
    );

    let server = EmbeddedDynamo::start(Some(&data)).await.unwrap();
    let endpoint = server.endpoint();
    let second = start_member(&data, &endpoint).await;
    until_delivered(&endpoint, 15).await;
    let _ = second.stop.send(());
    let report = second.task.await.unwrap();
    assert!(
        report.republished >= 12,
        "the gap republished and counted: {report:?}"
    );
    second.stack.close().await.unwrap();
    server.stop().await.unwrap();
    let _ = std::fs::remove_file(&data);
}

/// `demo` pointed at a table another program relays (here a `relay`; the
/// README offers `serve`'s endpoint) is refused by name: its consumers are
/// its own, and sharing the stream would hand its events to the other
/// program's consumers (the broken invariants this used to report).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_on_a_stream_another_relay_holds_is_refused_by_name() {
    let data = std::env::temp_dir().join(format!("outbox-shared-{}.db", uuid::Uuid::now_v7()));
    let server = EmbeddedDynamo::start(Some(&data)).await.unwrap();
    let endpoint = server.endpoint();
    let member = start_member(&data, &endpoint).await;
    let stream_arn = member.stack.stream_arn().await.unwrap();
    let leases = member.stack.leases(&stream_arn);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while holder(&leases).await.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay took no lease"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Command::Demo(options) = parse(&["demo", "--stories", "1", "--endpoint-url", &endpoint])
    else {
        unreachable!("a demo command line")
    };
    let service = outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports());
    let refused = outbox_bootstrap::local::run(&service, &options)
        .await
        .map(|report| report.to_string())
        .unwrap_err()
        .to_string();
    assert!(refused.contains("is relayed by relay-"), "{refused}");
    let _ = member.stop.send(());
    member.task.await.unwrap();
    member.stack.close().await.unwrap();
    server.stop().await.unwrap();
    let _ = std::fs::remove_file(&data);
}
