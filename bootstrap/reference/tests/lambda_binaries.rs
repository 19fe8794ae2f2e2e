//! The real Lambda binaries against a small stand-in of the Lambda Runtime API,
//! fed the event JSON AWS documents, with moto (`MOTO_ENDPOINT`) as AWS.

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use outbox_bootstrap::clients::LocalClients;
use outbox_dynamodb::{create_tables, DynamoInbox, TableLayout};

/// What the stand-in saw and what it still has to hand out.
#[derive(Default)]
struct Runtime {
    pending: Mutex<VecDeque<(String, Value)>>,
    responses: Mutex<HashMap<String, Value>>,
    errors: Mutex<HashMap<String, Value>>,
    init_errors: Mutex<Vec<(String, Value)>>,
}

async fn next(State(runtime): State<Arc<Runtime>>) -> Response {
    loop {
        let event = runtime.pending.lock().unwrap().pop_front();
        if let Some((id, body)) = event {
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 60_000;
            return (
                [
                    ("lambda-runtime-aws-request-id", id),
                    ("lambda-runtime-deadline-ms", deadline.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:test".to_owned(),
                    ),
                    (
                        "lambda-runtime-trace-id",
                        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".to_owned(),
                    ),
                ],
                body.to_string(),
            )
                .into_response();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn respond(
    State(runtime): State<Arc<Runtime>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    runtime.responses.lock().unwrap().insert(id, value);
    StatusCode::ACCEPTED
}

async fn fail(
    State(runtime): State<Arc<Runtime>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    runtime.errors.lock().unwrap().insert(id, value);
    StatusCode::ACCEPTED
}

async fn init_error(
    State(runtime): State<Arc<Runtime>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let kind = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    runtime.init_errors.lock().unwrap().push((kind, value));
    StatusCode::ACCEPTED
}

/// Serves the Runtime API on a loopback port; returns its `host:port`.
async fn serve(runtime: Arc<Runtime>) -> String {
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(respond),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(runtime);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address.to_string()
}

fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").expect(
        "MOTO_ENDPOINT is not set: run `bash scripts/test.sh`, which installs and starts moto",
    )
}

/// Starts `binary` as Lambda would, with `env` on top of the runtime's variables.
fn start(binary: &str, api: &str, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "test")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "stream")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "group")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().unwrap()
}

/// Invokes the function with `event` and waits for its answer (response or error).
async fn invoke(runtime: &Runtime, event: Value) -> Result<Value, Value> {
    let id = uuid::Uuid::now_v7().to_string();
    runtime
        .pending
        .lock()
        .unwrap()
        .push_back((id.clone(), event));
    for _ in 0..1500 {
        if let Some(response) = runtime.responses.lock().unwrap().remove(&id) {
            return Ok(response);
        }
        if let Some(error) = runtime.errors.lock().unwrap().remove(&id) {
            return Err(error);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no answer to invocation {id}");
}

fn stop(mut child: Child) -> String {
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn http_event(method: &str, path: &str, body: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": { "content-type": "application/json", "x-correlation-id": "corr-bin" },
        "requestContext": {
            "accountId": "123456789012", "apiId": "api",
            "domainName": "abc.lambda-url.us-east-1.on.aws", "domainPrefix": "abc",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "test" },
            "requestId": "req-1", "routeKey": "$default", "stage": "$default",
            "time": "23/Nov/2026:06:00:00 +0000", "timeEpoch": 1_795_413_600_000_u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_api_binary_answers_http_events_and_logs_json() {
    let clients = LocalClients::new(&moto_endpoint());
    let layout = TableLayout::single_table(
        format!("bin-{}", uuid::Uuid::now_v7().simple()),
        outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
    );
    create_tables(&clients.dynamodb, &layout).await.unwrap();
    let runtime = Arc::new(Runtime::default());
    let api = serve(Arc::clone(&runtime)).await;
    let child = start(
        env!("CARGO_BIN_EXE_command-api"),
        &api,
        &[("TABLE_NAME", layout.table.clone())],
    );

    let body = json!({ "vehicle": "B-1", "customer": "Ada", "customerEmail": "ada@example.com", "description": "oil" }).to_string();
    let created = invoke(&runtime, http_event("POST", "/repairs", &body))
        .await
        .unwrap();
    let malformed = invoke(&runtime, http_event("POST", "/repairs", "{oops"))
        .await
        .unwrap();
    let logs = stop(child);

    assert_eq!(created["statusCode"], 201, "{created}");
    let answer: Value = serde_json::from_str(created["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["version"], 1);
    assert_eq!(
        malformed["statusCode"], 400,
        "a client mistake is an answer, not an invocation error"
    );
    let lines: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!lines.is_empty(), "logs are JSON lines: {logs}");
    assert!(
        logs.contains("requestId"),
        "log lines carry the runtime's request id: {logs}"
    );
    assert!(
        logs.contains("corr-bin"),
        "log lines carry the correlation id: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_setting_is_reported_to_the_init_error_endpoint() {
    let message = refused_with(env!("CARGO_BIN_EXE_outbox-relay"), &[]).await;
    assert!(message.contains("EVENT_BUS_NAME"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_name_the_declaration_does_not_know_is_an_init_error_naming_the_known_ones() {
    let message = refused_with(
        env!("CARGO_BIN_EXE_outbox-consumer"),
        &[
            ("CONSUMER_NAME", "invoiceing".to_owned()),
            ("TABLE_NAME", "inbox".to_owned()),
            (
                "DEAD_LETTER_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/dlq".to_owned(),
            ),
        ],
    )
    .await;
    assert!(
        message.contains("invoiceing") && message.contains("invoicing"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_told_one_source_for_every_event_refuses_to_start() {
    let message = refused_with(
        env!("CARGO_BIN_EXE_outbox-relay"),
        &[
            ("EVENT_BUS_NAME", "bus".to_owned()),
            ("EVENT_SOURCE", "fleetfix.outbox".to_owned()),
            (
                "DEAD_LETTER_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/dlq".to_owned(),
            ),
        ],
    )
    .await;
    assert!(message.contains("EVENT_SOURCE"), "{message}");
}

/// Starts `binary` with `env`, which it must refuse: the one init error it
/// posts to the Runtime API, as `Runtime.ConfigError`; its message.
async fn refused_with(binary: &str, env: &[(&str, String)]) -> String {
    let runtime = Arc::new(Runtime::default());
    let api = serve(Arc::clone(&runtime)).await;
    let mut child = start(binary, &api, env);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success(), "the process ends");
    let init_errors = runtime.init_errors.lock().unwrap().clone();
    assert_eq!(init_errors.len(), 1, "{init_errors:?}");
    let (kind, body) = &init_errors[0];
    assert_eq!(kind, "Runtime.ConfigError");
    assert_eq!(body["errorType"], "Runtime.ConfigError");
    body["errorMessage"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_binary_as_invoicing_consumes_an_sqs_event_once() {
    let clients = LocalClients::new(&moto_endpoint());
    let layout = TableLayout::single_table(
        format!("bin-inbox-{}", uuid::Uuid::now_v7().simple()),
        outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
    );
    create_tables(&clients.dynamodb, &layout).await.unwrap();
    let dlq = clients
        .sqs
        .create_queue()
        .queue_name(format!("bin-dlq-{}", uuid::Uuid::now_v7().simple()))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&outbox_bootstrap::clients::sdk_config(&moto_endpoint()))
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("bin-invoices-{}", uuid::Uuid::now_v7().simple());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let runtime = Arc::new(Runtime::default());
    let api = serve(Arc::clone(&runtime)).await;
    let child = start(
        env!("CARGO_BIN_EXE_outbox-consumer"),
        &api,
        &[
            ("CONSUMER_NAME", "invoicing".to_owned()),
            ("TABLE_NAME", layout.table.clone()),
            ("DEAD_LETTER_QUEUE_URL", dlq),
            ("DOCUMENT_BUCKET", bucket.clone()),
        ],
    );
    let aggregate = uuid::Uuid::now_v7();
    let envelope = json!({
        "eventId": uuid::Uuid::now_v7(), "eventType": "RepairCompleted", "schemaVersion": 2,
        "aggregateType": "Repair", "aggregateId": aggregate, "aggregateVersion": 4,
        "occurredAt": "2026-11-23T06:00:00Z", "correlationId": "corr", "causationId": "req",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "data": { "vehicle": "B-1", "customer": "Ada", "customerEmail": "ada@example.com", "totalCents": 4999 }
    });
    let body = json!({
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "RepairCompleted",
        "source": "carworkshop.outbox", "account": "123456789012", "time": "2026-11-23T06:00:00Z",
        "region": "us-east-1", "resources": [], "detail": envelope
    })
    .to_string();
    let message = |id: &str| {
        json!({
            "messageId": id, "receiptHandle": "handle", "body": body,
            "attributes": { "ApproximateReceiveCount": "1", "SentTimestamp": "1795413600000",
                            "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1795413600001" },
            "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:invoicing", "awsRegion": "us-east-1"
        })
    };
    let first = invoke(
        &runtime,
        json!({ "Records": [message("m1"), message("m2")] }),
    )
    .await
    .unwrap();
    let stdout = stop(child);

    assert_eq!(first, json!({ "batchItemFailures": [] }));
    // CloudWatch Embedded Metric Format: one document per label set.
    let documents: Vec<Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .collect();
    let counters = documents
        .iter()
        .find(|doc| doc["EventType"] == "RepairCompleted")
        .unwrap_or_else(|| panic!("an EMF document of RepairCompleted counts in {stdout}"));
    let directive = &counters["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Outbox");
    assert_eq!(directive["Dimensions"][0], json!(["Function", "EventType"]));
    assert_eq!(
        counters["Function"], "test",
        "the deployed function's own name (AWS_LAMBDA_FUNCTION_NAME), unique per stack"
    );
    assert_eq!(
        (
            counters["CallsCompleted"].clone(),
            counters["DuplicatesSuppressed"].clone()
        ),
        (json!(1), json!(1))
    );
    assert!(
        counters["RequestId"].is_string(),
        "the invocation's request id"
    );
    assert!(
        documents
            .iter()
            .any(|doc| doc.get("DeliveryLagMs").is_some()),
        "the delivery lag is measured: {documents:?}"
    );
    let inbox = DynamoInbox::new(clients.dynamodb.clone(), layout.table);
    let invoices = inbox.effects_of("invoicing").await.unwrap();
    assert_eq!(
        invoices.len(),
        1,
        "two deliveries, one invoice: {invoices:?}"
    );
    assert_eq!(invoices[0].data["amountCents"], 4999);
    let documents = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: Vec<&str> = documents
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .collect();
    assert_eq!(
        keys,
        [invoices[0].data["document"].as_str().unwrap()],
        "one invoice document in the bucket, the one recorded"
    );
}
