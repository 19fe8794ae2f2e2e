//! The Lambda functions as shipped (release profile): each binary's init time,
//! from exec to its first `next` request against a loopback stand-in of the
//! Runtime API (no network beyond loopback); peak RSS (`VmHWM`) after
//! handling a 10,000-record stream batch (`outbox-relay`, publishing to a
//! loopback `PutEvents` stand-in) and a 10-message SQS batch (`invoicing`,
//! its inbox on embedded dynoxide); and each binary's zip as `cargo lambda`
//! packs it (one file named `bootstrap`, deflated).
//!
//! The reference, built the same way and measured in the same run: an empty
//! `lambda_runtime` echo function — this very binary, started with
//! `LAMBDA_BENCH_ECHO=1`. Targets: init ≤ 2× the echo function, the relay's
//! peak RSS ≤ 12 MB plus twice the payload at Lambda's 6 MB payload limit,
//! every zip ≤ 3 MB. `BENCHMARKS.md` holds the numbers.
//!
//! A consumer whose reaction calls S3 or SES is started with the variable that
//! deploys that port, every such call answered by a loopback stand-in.

// A bench binary: a panic is how it fails.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::VecDeque;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{json, Value};

use outbox_application::{AggregateId, AggregateRef, EventId, OutsidePort};
use outbox_bootstrap::clients::LocalClients;
use outbox_bootstrap::embedded::EmbeddedDynamo;
use outbox_bootstrap::outside;
use outbox_domain::Version;
use outbox_dynamodb::{create_tables, TableLayout};

use support::{stand_in, stream_batch, summary, Shape};

/// Starts of each binary measured for its init time.
const STARTS: usize = 11;

/// The stand-in's view of one function process.
#[derive(Default)]
struct Runtime {
    first_next: Mutex<Option<Instant>>,
    pending: Mutex<VecDeque<(String, Vec<u8>)>>,
    answered: Mutex<Vec<(String, Value)>>,
}

async fn next(State(runtime): State<Arc<Runtime>>) -> Response {
    runtime
        .first_next
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    loop {
        let event = runtime.pending.lock().unwrap().pop_front();
        if let Some((id, body)) = event {
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 600_000;
            return (
                [
                    ("lambda-runtime-aws-request-id", id),
                    ("lambda-runtime-deadline-ms", deadline.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
                    ),
                ],
                body,
            )
                .into_response();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn answer(
    State(runtime): State<Arc<Runtime>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    runtime.answered.lock().unwrap().push((id, value));
    StatusCode::ACCEPTED
}

/// Serves a fresh Runtime API stand-in; its `host:port`.
async fn runtime_api(runtime: Arc<Runtime>) -> String {
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(answer))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(answer))
        .route("/2018-06-01/runtime/init/error", post(answer))
        .with_state(runtime);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address.to_string()
}

/// Answers any S3 or SES call as accepted: `PutObject`'s `ETag`, `SendEmail`'s `MessageId`.
async fn accept_outside_call() -> Response {
    (
        [("etag", "\"bench\"")],
        axum::Json(json!({"MessageId": "bench"})),
    )
        .into_response()
}

/// Serves the stand-in of S3 and SES on a loopback port; its endpoint URL.
async fn outside_api() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(accept_outside_call);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

/// A function binary and the environment it reads.
struct Function {
    name: &'static str,
    binary: String,
    env: Vec<(&'static str, String)>,
}

impl Function {
    fn spawn(&self, api: &str) -> Child {
        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api)
            .env("AWS_LAMBDA_FUNCTION_NAME", self.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "stream")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "group")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command.spawn().unwrap()
    }

    /// Milliseconds from exec to the first `next` request.
    async fn init_ms(&self) -> f64 {
        let runtime = Arc::new(Runtime::default());
        let api = runtime_api(Arc::clone(&runtime)).await;
        let started = Instant::now();
        let mut child = self.spawn(&api);
        let first = loop {
            if let Some(at) = *runtime.first_next.lock().unwrap() {
                break at;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{} never asked for an event",
                self.name
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        child.kill().unwrap();
        child.wait().unwrap();
        (first - started).as_secs_f64() * 1e3
    }

    /// Peak resident memory (MB) after handling `event`; its answer.
    async fn peak_rss_mb(&self, event: Vec<u8>) -> (f64, Value) {
        let runtime = Arc::new(Runtime::default());
        runtime
            .pending
            .lock()
            .unwrap()
            .push_back(("bench-1".into(), event));
        let api = runtime_api(Arc::clone(&runtime)).await;
        let started = Instant::now();
        let mut child = self.spawn(&api);
        let answer = loop {
            if let Some((_, value)) = runtime.answered.lock().unwrap().first() {
                break value.clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{} never answered",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let kb: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .unwrap();
        (kb / 1024.0, answer)
    }
}

/// The size in bytes of `binary` zipped as `bootstrap`, deflated, as `cargo lambda` packs it.
fn zip_bytes(binary: &str) -> u64 {
    let out = std::env::temp_dir().join(format!("lambda-bench-{}.zip", uuid::Uuid::now_v7()));
    let script = "import sys, zipfile\n\
                  with zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED) as z:\n\
                  \x20   z.write(sys.argv[1], 'bootstrap')\n";
    let status = Command::new("python3")
        .args(["-c", script, binary, &out.display().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "python3 zips the binary");
    let size = std::fs::metadata(&out).unwrap().len();
    let _ = std::fs::remove_file(&out);
    size
}

/// Ten SQS messages, each an EventBridge event of a completed repair.
fn sqs_batch() -> Vec<u8> {
    let records: Vec<Value> = (0..10_u128)
        .map(|n| {
            let aggregate_id = AggregateId::from_uuid(uuid::Uuid::from_u128(0xbe9c_0000 + n));
            let envelope = json!({
                "eventId": EventId::derive(&AggregateRef::new("Repair", aggregate_id), Version::new(4)),
                "eventType": "RepairCompleted",
                "schemaVersion": 2,
                "aggregateType": "Repair",
                "aggregateId": aggregate_id,
                "aggregateVersion": 4,
                "occurredAt": "2026-11-24T12:00:00Z",
                "correlationId": "bench",
                "causationId": "bench",
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "data": {"vehicle": "B-XY 123", "customer": "Ada", "customerEmail": "ada@example.com", "totalCents": 12_000}
            });
            let body = json!({
                "version": "0", "id": format!("eb-{n}"), "detail-type": "RepairCompleted",
                "source": "carworkshop.outbox", "account": "123456789012",
                "time": "2026-11-24T12:00:00Z", "region": "us-east-1", "resources": [],
                "detail": envelope
            });
            json!({
                "messageId": format!("m-{n}"),
                "receiptHandle": format!("h-{n}"),
                "body": body.to_string(),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764000000000",
                               "SenderId": "bench", "ApproximateFirstReceiveTimestamp": "1764000000000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:invoicing",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "Records": records })).unwrap()
}

/// The reference: an empty echo function on `lambda_runtime`.
fn echo() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(lambda_runtime::run(lambda_runtime::service_fn(
            |event: lambda_runtime::LambdaEvent<Value>| async move {
                Ok::<Value, lambda_runtime::Error>(event.payload)
            },
        )))
        .unwrap();
}

fn cell(samples: Vec<f64>) -> String {
    let (median, low, high) = summary(samples);
    format!("{median:.1} ({low:.1}–{high:.1})")
}

fn main() {
    if std::env::var_os("LAMBDA_BENCH_ECHO").is_some() {
        return echo();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let dynamo = EmbeddedDynamo::start(None).await.unwrap();
    let clients = LocalClients::new(&dynamo.endpoint());
    let layout = TableLayout::single_table(
        "bench-inbox",
        outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
    );
    create_tables(&clients.dynamodb, &layout).await.unwrap();
    let bus = stand_in().await;
    let outside = outside_api().await;
    let dlq = "http://127.0.0.1:9/000000000000/dlq".to_owned();
    let me = std::env::current_exe().unwrap().display().to_string();
    let consumer_env = vec![
        ("TABLE_NAME", layout.table.clone()),
        ("DEAD_LETTER_QUEUE_URL", dlq.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamo.endpoint()),
    ];
    let echo = Function {
        name: "echo (reference)",
        binary: me.clone(),
        env: vec![("LAMBDA_BENCH_ECHO", "1".to_owned())],
    };
    let relay = Function {
        name: "outbox-relay",
        binary: env!("CARGO_BIN_EXE_outbox-relay").to_owned(),
        env: vec![
            ("EVENT_BUS_NAME", "bench".to_owned()),
            ("DEAD_LETTER_QUEUE_URL", dlq.clone()),
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", bus.clone()),
        ],
    };
    let mut functions = vec![
        Function {
            name: "command-api",
            binary: env!("CARGO_BIN_EXE_command-api").to_owned(),
            env: vec![
                ("TABLE_NAME", layout.table.clone()),
                ("AWS_ENDPOINT_URL_DYNAMODB", dynamo.endpoint()),
            ],
        },
        relay,
    ];
    for reaction in
        outbox_reference::service(&outbox_memory::MemoryOutside::new().ports()).consumers()
    {
        let mut env = consumer_env.clone();
        env.push(("CONSUMER_NAME", reaction.name().to_owned()));
        for port in reaction.calls() {
            let value = match port {
                OutsidePort::Documents => "bench-documents",
                OutsidePort::Mail => "bench@example.com",
            };
            env.push((outside::variable(*port), value.to_owned()));
        }
        if !reaction.calls().is_empty() {
            env.push(("AWS_ENDPOINT_URL", outside.clone()));
        }
        functions.push(Function {
            name: reaction.name(),
            binary: env!("CARGO_BIN_EXE_outbox-consumer").to_owned(),
            env,
        });
    }

    println!("init: exec → first `next`, {STARTS} starts each, median (min–max) ms; ratio to the echo function's median\n");
    println!("| function | init ms | ratio | zip MB |");
    println!("|---|---:|---:|---:|");
    let mut echo_starts = Vec::new();
    for _ in 0..STARTS {
        echo_starts.push(echo.init_ms().await);
    }
    let (echo_median, _, _) = summary(echo_starts.clone());
    println!("| {} | {} | 1.00 | — |", echo.name, cell(echo_starts));
    for function in &functions {
        let mut starts = Vec::new();
        for _ in 0..STARTS {
            starts.push(function.init_ms().await);
        }
        let (median, _, _) = summary(starts.clone());
        let zip = zip_bytes(&function.binary) as f64 / 1e6;
        println!(
            "| {} | {} | {:.2} | {zip:.2} |",
            function.name,
            cell(starts),
            median / echo_median
        );
    }
    std::io::stdout().flush().unwrap();

    println!("\npeak RSS (VmHWM) after one invocation:\n");
    let (echo_rss, _) = echo.peak_rss_mb(b"{\"ping\": 1}".to_vec()).await;
    println!("| echo (reference), a 10-byte event | {echo_rss:.1} MB |");
    let (relay_rss, relay_answer) = functions[1]
        .peak_rss_mb(stream_batch(Shape::Interleaved, 10_000))
        .await;
    assert_eq!(
        relay_answer["batchItemFailures"],
        json!([]),
        "the relay published the whole batch"
    );
    let ten_thousand = stream_batch(Shape::Interleaved, 10_000).len() as f64 / 1e6;
    println!("| outbox-relay, 10,000 stream records (≈ 1.2 KB items, {ten_thousand:.1} MB of JSON) | {relay_rss:.1} MB |");
    // Lambda delivers at most 6 MB per invocation: the largest batch it can hand the relay.
    let per_record = stream_batch(Shape::Interleaved, 1_000).len() / 1_000;
    let fits = (6_000_000 / per_record) / 4 * 4;
    let (capped_rss, capped_answer) = functions[1]
        .peak_rss_mb(stream_batch(Shape::Interleaved, fits))
        .await;
    assert_eq!(capped_answer["batchItemFailures"], json!([]));
    println!("| outbox-relay, {fits} stream records (the 6 MB invocation payload limit) | {capped_rss:.1} MB |");
    let invoicing = functions.iter().find(|f| f.name == "invoicing").unwrap();
    let (consumer_rss, consumer_answer) = invoicing.peak_rss_mb(sqs_batch()).await;
    assert_eq!(
        consumer_answer["batchItemFailures"],
        json!([]),
        "invoicing consumed the whole batch"
    );
    println!("| invoicing, 10 SQS messages | {consumer_rss:.1} MB |");
    dynamo.stop().await.unwrap();
}
