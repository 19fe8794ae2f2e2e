//! `outbox-local serve` over real HTTP on a loopback port, on embedded
//! dynoxide with a data file: the seed stories by HTTP with a restart in the
//! middle, then `status` and `replay` on the same data — no effect lost, none
//! doubled, the relay caught up; and a bounded load of concurrent clients with
//! repeated idempotency keys.

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use outbox_bootstrap::local::relay::RelayReport;
use outbox_bootstrap::local::sent::{Sends, SentFolder};
use outbox_bootstrap::local::serve::{bind, serve};
use outbox_bootstrap::local::status::{status, Status};
use outbox_bootstrap::local::{replay, Cli, Command, LocalError};
use outbox_tests::http::{request, Answer};
use outbox_tests::load;

fn data_file() -> PathBuf {
    std::env::temp_dir().join(format!("outbox-serve-{}.db", uuid::Uuid::now_v7()))
}

fn parse(args: &[&str]) -> Command {
    let line = ["outbox-local"].iter().chain(args);
    Cli::parse_from(line).command
}

/// A running server and what stops it.
struct Running {
    address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<RelayReport, LocalError>>,
}

impl Running {
    async fn start(data: &Path) -> Self {
        let Command::Serve(options) = parse(&[
            "serve",
            "--port",
            "0",
            // A killed server's shard lease runs out within 1.2 s for the next.
            "--lease-ms",
            "1000",
            "--data",
            &data.display().to_string(),
        ]) else {
            unreachable!("a serve command line")
        };
        let listener = bind(options.port).await.expect("a loopback port");
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        // What the consumers send goes beside the data, as `outbox-local` does.
        let ports = SentFolder::beside(data).ports();
        let task = tokio::spawn(async move {
            serve(&outbox_seeds::service(&ports), &options, listener, async {
                let _ = stopped.await;
            })
            .await
        });
        Self {
            address,
            stop,
            task,
        }
    }

    async fn stop(self) -> RelayReport {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("serve ends")
            .expect("serve stops cleanly")
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        request(self.address, method, path, body.as_ref(), &[])
            .await
            .expect("the server answers")
    }
}

async fn status_of(data: &Path) -> Status {
    let Command::Status(options) = parse(&["status", "--data", &data.display().to_string()]) else {
        unreachable!("a status command line")
    };
    status(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &options,
    )
    .await
    .expect("status reads the data")
}

fn sent(status: &Status, consumer: &str) -> Sends {
    let found = status
        .consumers
        .iter()
        .find(|c| c.name == consumer)
        .expect("a seed consumer");
    found.sent
}

fn effects(status: &Status, consumer: &str) -> (u64, u64) {
    let found = status
        .consumers
        .iter()
        .find(|c| c.name == consumer)
        .expect("a seed consumer");
    (found.effects, found.duplicates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_stories_by_http_survive_a_restart_without_lost_or_doubled_effects() {
    let data = data_file();
    let first = Running::start(&data).await;
    let opened = first
        .call(
            "POST",
            "/repairs",
            Some(json!({"vehicle": "B-XY 123", "customer": "Ada", "customerEmail": "ada@example.com", "description": "brakes"})),
        )
        .await;
    assert_eq!(opened.status, 201, "{opened:?}");
    let repair = opened.body["repairId"].as_str().unwrap().to_owned();
    assert_eq!(
        first
            .call("POST", &format!("/repairs/{repair}/start"), None)
            .await
            .status,
        200
    );
    let item = json!({"description": "pads", "priceCents": 12_000});
    assert_eq!(
        first
            .call("POST", &format!("/repairs/{repair}/line-items"), Some(item))
            .await
            .status,
        200
    );
    let placed = first
        .call(
            "POST",
            "/orders",
            Some(json!({"customer": "grace", "items": [{"sku": "PIZZA", "quantity": 2, "unitPriceCents": 900}]})),
        )
        .await;
    assert_eq!(placed.status, 201, "{placed:?}");
    let order = placed.body["orderId"].as_str().unwrap().to_owned();
    let bad = first
        .call("POST", &format!("/repairs/{repair}/fly"), None)
        .await;
    assert_eq!(
        bad.status, 404,
        "an unknown action is a client error: {bad:?}"
    );
    let first_report = first.stop().await;
    assert_eq!(first_report.published, 4, "{first_report:?}");

    // The restart: the same data file, the relay resumes from its checkpoint.
    let second = Running::start(&data).await;
    let shown = second
        .call("GET", &format!("/repairs/{repair}"), None)
        .await;
    assert_eq!(shown.body["version"], json!(3), "{shown:?}");
    assert_eq!(
        second
            .call("POST", &format!("/repairs/{repair}/complete"), None)
            .await
            .status,
        200
    );
    for to in ["PREPARING", "READY_FOR_PICKUP", "PICKED_UP", "DELIVERED"] {
        let changed = second
            .call(
                "POST",
                &format!("/orders/{order}/status"),
                Some(json!({"status": to})),
            )
            .await;
        assert_eq!(changed.status, 200, "{to}: {changed:?}");
    }
    let refused = second
        .call("POST", &format!("/orders/{order}/cancel"), None)
        .await;
    assert_eq!(
        refused.status, 409,
        "a delivered order cannot be cancelled: {refused:?}"
    );
    let second_report = second.stop().await;
    assert_eq!(
        second_report.published, 5,
        "only the new events: {second_report:?}"
    );

    let after = status_of(&data).await;
    assert!(
        !after.lagging(),
        "the relay caught up before stopping: {after}"
    );
    assert_eq!(after.dead_letters, 0, "{after}");
    assert_eq!(effects(&after, "invoicing"), (1, 0), "{after}");
    // Customer notification records nothing: it sends, and the folder shows it.
    assert_eq!(effects(&after, "customer-notification"), (0, 0), "{after}");
    assert_eq!(
        sent(&after, "customer-notification"),
        Sends {
            documents: 0,
            emails: 1
        },
        "{after}"
    );
    assert_eq!(
        sent(&after, "invoicing"),
        Sends {
            documents: 1,
            emails: 0
        },
        "{after}"
    );
    assert_eq!(
        effects(&after, "restaurant-notification"),
        (1, 0),
        "{after}"
    );
    assert_eq!(effects(&after, "shipping"), (1, 0), "{after}");
    assert_eq!(effects(&after, "order-tracking"), (5, 0), "{after}");

    // Everything again, from the outbox: every inbox drops what it applied.
    let now = time::OffsetDateTime::now_utc();
    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let (from, to) = (
        rfc3339(now - time::Duration::hours(1)),
        rfc3339(now + time::Duration::hours(1)),
    );
    let Command::Replay(options) = parse(&[
        "replay",
        "--from",
        &from,
        "--to",
        &to,
        "--data",
        &data.display().to_string(),
        "--position-file",
        &data.with_extension("position").display().to_string(),
    ]) else {
        unreachable!("a replay command line")
    };
    let replayed = replay::replay(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &options,
    )
    .await
    .expect("the replay runs");
    assert_eq!(replayed.progress.events, 9, "{replayed}");
    assert_eq!(replayed.progress.published, 9, "{replayed}");
    let consumed = replayed.consumed.expect("the local consumers ran");
    // 13 deliveries of the 9 events: completed repairs to invoicing and
    // customer notification, placed orders to shipping, and every order event
    // to both ordered consumers (restaurant notification acts on some only).
    assert_eq!(
        (consumed.applied, consumed.duplicates),
        (0, 13),
        "{replayed}"
    );
    let again = status_of(&data).await;
    assert_eq!(effects(&again, "order-tracking"), (5, 5), "{again}");
    assert_eq!(effects(&again, "invoicing"), (1, 1), "{again}");
    assert_eq!(
        sent(&again, "customer-notification").emails,
        1,
        "no email twice: {again}"
    );
    let _ = std::fs::remove_file(&data);
    let _ = std::fs::remove_dir_all(SentFolder::beside(&data).root());
}

/// Concurrent clients.
const CLIENTS: usize = 16;
/// Orders the clients place and move to delivery (the bench runs 500).
const ORDERS: usize = 96;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_with_repeated_keys_get_every_event_to_every_consumer_once() {
    let data = data_file();
    let server = Running::start(&data).await;
    let load = load::run(server.address, CLIENTS, ORDERS).await;
    let report = server.stop().await;
    let orders = ORDERS;
    assert_eq!(load.orders, orders, "{load:?}");
    assert_eq!((load.server_errors, load.client_errors), (0, 0), "{load:?}");
    assert_eq!(load.requests, 2 * orders * (1 + load::STATUSES.len()));
    assert_eq!(
        load.replayed,
        load.requests / 2,
        "every repeat got the first answer"
    );
    let events = orders * (1 + load::STATUSES.len());
    assert_eq!(
        report.published, events,
        "one set of events per command: {report:?}"
    );

    let after = status_of(&data).await;
    assert!(!after.lagging(), "{after}");
    assert_eq!(
        effects(&after, "order-tracking").0,
        events as u64,
        "{after}"
    );
    assert_eq!(effects(&after, "shipping").0, orders as u64, "{after}");
    assert_eq!(
        effects(&after, "restaurant-notification").0,
        orders as u64,
        "{after}"
    );
    assert_eq!(after.dead_letters, 0, "{after}");
    let _ = std::fs::remove_file(&data);
}

/// Sends `raw` bytes as they are, while reading the whole answer (the server
/// closes); a server that answers before the request ends may stop reading it.
async fn raw_exchange(address: SocketAddr, raw: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let raw = raw.to_vec();
    let sending = tokio::spawn(async move {
        let _ = writer.write_all(&raw).await;
        writer
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        reader.read_to_end(&mut answer),
    )
    .await
    .expect("the server answers and closes");
    drop(sending.await);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_http_layer_refuses_itself_carries_the_json_error_too() {
    let data = data_file();
    let server = Running::start(&data).await;
    let long_uri = format!(
        "GET /repairs/{} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(9000)
    );
    let many: String = (0..70).map(|n| format!("x-{n}: 1\r\n")).collect();
    let many_headers = format!("GET /repairs HTTP/1.1\r\nhost: x\r\n{many}\r\n");
    let over_a_mebibyte = format!(
        "POST /repairs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        1024 * 1024 + 1
    );
    for (raw, status, code) in [
        (
            b"POST /repairs HTTP/1.1\r\nhost: x\r\ncontent-length: ten\r\n\r\n".to_vec(),
            400,
            "MalformedRequest",
        ),
        (
            b"GET /repairs HTTP/1.1\r\nhost: x\r\nx-note: a\x07b\r\n\r\n".to_vec(),
            400,
            "MalformedRequest",
        ),
        (long_uri.into_bytes(), 414, "UriTooLong"),
        (many_headers.into_bytes(), 431, "HeadersTooLarge"),
        (over_a_mebibyte.into_bytes(), 413, "TooLarge"),
    ] {
        let answer = raw_exchange(server.address, &raw).await;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "{code}: {head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let body: Value =
            serde_json::from_str(body).unwrap_or_else(|_| panic!("a JSON body: {body:?}"));
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    // A chunked body past the limit is refused by the handler, in JSON too.
    let chunk = "x".repeat(64 * 1024);
    let mut chunked = b"POST /repairs HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..17 {
        chunked.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_exchange(server.address, &chunked).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer:.200}");
    assert!(answer.contains(r#""code":"TooLarge""#), "{answer:.400}");
    // Valid requests on one kept-alive connection still pass, one after another.
    let keep_alive = b"GET /repairs/0196a3b0-0000-7000-8000-000000000001 HTTP/1.1\r\nhost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let answer = raw_exchange(server.address, keep_alive).await;
    assert_eq!(answer.matches("HTTP/1.1 404 ").count(), 2, "{answer}");
    assert!(
        answer.contains(r#""code":"NotFound""#) && answer.contains(r#""code":"RouteNotFound""#),
        "{answer}"
    );
    server.stop().await;
    let _ = std::fs::remove_file(&data);
}

/// A server killed at any instant — its task aborted wherever it is, the
/// in-process queues and whatever was in flight gone, as `kill -9` leaves a
/// process — loses no delivery: restarted, with no replay, it brings every
/// committed event to every consumer that subscribes to it, and no effect
/// twice. (A delivery killed inside an external call waits for its claim's
/// lease, 60 s, before it is tried again: hence the rounds.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_at_any_instant_delivers_every_event_once_after_a_restart() {
    let data = data_file();
    let mut dice = fastrand::Rng::with_seed(24);
    for _ in 0..4 {
        let server = Running::start(&data).await;
        let clients = tokio::spawn(load::run(server.address, 4, 12));
        tokio::time::sleep(std::time::Duration::from_millis(dice.u64(100..900))).await;
        server.task.abort();
        let _ = server.task.await;
        clients.abort();
        let _ = clients.await;
    }
    let mut rounds = 0;
    let (events, missing) = loop {
        let server = Running::start(&data).await;
        // Past the killed server's lease (1 s, seen whole by the new one).
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        server.stop().await;
        let (events, missing) = outbox_tests::undelivered(&data).await;
        rounds += 1;
        if missing.is_empty() || rounds == 5 {
            break (events, missing);
        }
        tokio::time::sleep(std::time::Duration::from_secs(20)).await;
    };
    assert!(events > 0, "the clients committed events before the kills");
    assert!(
        missing.is_empty(),
        "{} of {events} deliveries lost: {missing:?}",
        missing.len()
    );
    let after = status_of(&data).await;
    let order_events = events as u64;
    assert_eq!(
        effects(&after, "order-tracking").0,
        order_events,
        "each order event tracked once: {after}"
    );
    assert_eq!(after.dead_letters, 0, "{after}");
    let _ = std::fs::remove_file(&data);
}
