//! The command API against the in-memory store, fed API Gateway HTTP API v2
//! events in the shape AWS documents: the seed stories over HTTP, idempotent
//! repeats, and a typed JSON error for every kind of bad input.

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

mod fixtures;

use fixtures::raw_event;
use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::{json, Value};

use outbox_application::{CommandPolicy, CommandService};
use outbox_lambda::CommandApi;
use outbox_memory::{MemoryStore, SequentialIds, StepClock};
use outbox_simulation::faults::{FaultyStore, StoreFault};

/// An API Gateway HTTP API (payload 2.0) event, as AWS documents it.
fn event(
    method: &str,
    path: &str,
    stage: &str,
    headers: Value,
    body: Option<&str>,
) -> lambda_http::Request {
    outbox_lambda::http_event::request_from_event(raw_event(method, path, stage, headers, body))
        .expect("a documented v2 event is read")
}

struct Api {
    api: CommandApi,
    store: MemoryStore,
    faults: FaultyStore,
}

impl Api {
    fn new() -> Self {
        let store = MemoryStore::new();
        let faults = FaultyStore::new(Arc::new(store.clone()));
        let commands = CommandService::new(
            Arc::new(faults.clone()),
            Arc::new(StepClock::default()),
            Arc::new(SequentialIds::default()),
            CommandPolicy::default(),
        );
        Self {
            api: CommandApi::new(
                commands,
                &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
            ),
            store,
            faults,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_with(
            method,
            path,
            json!({"content-type": "application/json"}),
            body.map(|b| b.to_string()).as_deref(),
        )
        .await
    }

    async fn call_with(
        &self,
        method: &str,
        path: &str,
        headers: Value,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let response = self
            .api
            .handle(&event(method, path, "$default", headers, body))
            .await;
        parse(response)
    }
}

fn parse(response: Response<Body>) -> (StatusCode, Value) {
    let status = response.status();
    let body: &[u8] = response.body().as_ref();
    let value =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("a JSON body, not {body:?}: {e}"));
    (status, value)
}

fn error_code(value: &Value) -> &str {
    value["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("an error body: {value}"))
}

#[tokio::test]
async fn a_repair_goes_from_open_to_completed_over_http() {
    let api = Api::new();
    let (status, opened) = api
        .call(
            "POST",
            "/repairs",
            Some(json!({"vehicle": "B-XY 123", "customer": "Ada", "customerEmail": "ada@example.com", "description": "brakes"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    assert_eq!(opened["version"], 1);
    let id = opened["repairId"].as_str().unwrap().to_owned();

    for (path, body, version) in [
        ("start", None, 2),
        (
            "line-items",
            Some(json!({"description": "pads", "priceCents": 4999})),
            3,
        ),
        ("complete", None, 4),
    ] {
        let (status, written) = api
            .call("POST", &format!("/repairs/{id}/{path}"), body)
            .await;
        assert_eq!(
            (status, written["version"].as_u64()),
            (StatusCode::OK, Some(version)),
            "{path}: {written}"
        );
        assert_eq!(written["repairId"], id.as_str());
    }

    let (status, shown) = api.call("GET", &format!("/repairs/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["version"], 4);
    assert!(shown["state"].to_string().contains("4999"), "{shown}");
    assert_eq!(
        shown["state"]["customerEmail"], "ada@example.com",
        "{shown}"
    );
    let types: Vec<String> = api
        .store
        .outbox()
        .iter()
        .map(|e| e.event_type.clone())
        .collect();
    assert_eq!(
        types,
        [
            "RepairOpened",
            "WorkStarted",
            "LineItemAdded",
            "RepairCompleted"
        ]
    );
    let completed = api.store.outbox().pop().unwrap();
    assert_eq!(completed.data["customerEmail"], "ada@example.com");
    assert_eq!(completed.schema_version, 2);
}

#[tokio::test]
async fn an_order_moves_through_its_statuses_and_can_be_cancelled() {
    let api = Api::new();
    let place = json!({"customer": "Ada", "items": [{"sku": "PIZZA", "quantity": 2, "unitPriceCents": 950}]});
    let (status, placed) = api.call("POST", "/orders", Some(place.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let id = placed["orderId"].as_str().unwrap().to_owned();
    let (status, _) = api
        .call(
            "POST",
            &format!("/orders/{id}/status"),
            Some(json!({"status": "PREPARING"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, cancelled) = api
        .call("POST", &format!("/orders/{id}/cancel"), None)
        .await;
    assert_eq!((status, &cancelled["version"]), (StatusCode::OK, &json!(3)));
    let (status, refused) = api
        .call(
            "POST",
            &format!("/orders/{id}/status"),
            Some(json!({"status": "DELIVERED"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&refused)),
        (StatusCode::CONFLICT, "InvalidTransition")
    );
    let (_, shown) = api.call("GET", &format!("/orders/{id}"), None).await;
    assert_eq!(shown["version"], 3);
}

#[tokio::test]
async fn a_repeated_idempotency_key_gets_the_first_answer_and_records_nothing_new() {
    let api = Api::new();
    let headers = json!({"content-type": "application/json", "idempotency-key": "open-1", "x-correlation-id": "corr-7"});
    let body = json!({"vehicle": "B-1", "customer": "Ada", "customerEmail": "ada@example.com", "description": "oil"}).to_string();
    let first = api
        .api
        .handle(&event(
            "POST",
            "/repairs",
            "$default",
            headers.clone(),
            Some(&body),
        ))
        .await;
    let second = api
        .api
        .handle(&event(
            "POST",
            "/repairs",
            "$default",
            headers.clone(),
            Some(&body),
        ))
        .await;
    assert_eq!(
        second
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert!(first.headers().get("idempotent-replayed").is_none());
    assert_eq!(parse(first), parse(second));
    assert_eq!(api.store.outbox().len(), 1);
    assert_eq!(api.store.outbox()[0].correlation_id, "corr-7");

    let other = json!({"vehicle": "B-2", "customer": "Bob", "customerEmail": "bob@example.com", "description": "oil"}).to_string();
    let (status, reused) = api
        .call_with("POST", "/repairs", headers, Some(&other))
        .await;
    assert_eq!(
        (status, error_code(&reused)),
        (StatusCode::UNPROCESSABLE_ENTITY, "IdempotencyKeyReused")
    );
    assert_eq!(api.store.outbox().len(), 1);
}

#[tokio::test]
async fn every_kind_of_bad_input_is_a_typed_json_error() {
    let api = Api::new();
    let unknown = "0190f5a4-0000-7000-8000-000000000000";
    let cases: Vec<(&str, String, Option<&str>, StatusCode, &str)> = vec![
        (
            "POST",
            "/repairs".into(),
            Some("{not json"),
            StatusCode::BAD_REQUEST,
            "MalformedRequest",
        ),
        (
            "POST",
            "/repairs".into(),
            None,
            StatusCode::BAD_REQUEST,
            "MalformedRequest",
        ),
        (
            "POST",
            "/repairs".into(),
            Some(
                r#"{"vehicle":"","customer":"A","customerEmail":"ada@example.com","description":"d"}"#,
            ),
            StatusCode::BAD_REQUEST,
            "InvalidInput",
        ),
        (
            "POST",
            "/orders".into(),
            Some(r#"{"customer":"A","items":[]}"#),
            StatusCode::BAD_REQUEST,
            "InvalidInput",
        ),
        (
            "POST",
            "/repairs/not-a-uuid/start".into(),
            None,
            StatusCode::BAD_REQUEST,
            "InvalidInput",
        ),
        (
            "POST",
            format!("/repairs/{unknown}/start"),
            None,
            StatusCode::NOT_FOUND,
            "NotFound",
        ),
        (
            "GET",
            format!("/orders/{unknown}"),
            None,
            StatusCode::NOT_FOUND,
            "NotFound",
        ),
        (
            "POST",
            format!("/repairs/{unknown}/paint"),
            None,
            StatusCode::NOT_FOUND,
            "RouteNotFound",
        ),
        (
            "GET",
            "/invoices".into(),
            None,
            StatusCode::NOT_FOUND,
            "RouteNotFound",
        ),
        (
            "DELETE",
            "/repairs".into(),
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let headers = json!({"content-type": "application/json"});
        let (got, value) = api.call_with(method, &path, headers, body).await;
        assert_eq!(
            (got, error_code(&value)),
            (status, code),
            "{method} {path}: {value}"
        );
    }

    let (_, opened) = api
        .call(
            "POST",
            "/repairs",
            Some(json!({"vehicle": "B", "customer": "A", "customerEmail": "ada@example.com", "description": "d"})),
        )
        .await;
    let id = opened["repairId"].as_str().unwrap();
    let (status, early) = api
        .call("POST", &format!("/repairs/{id}/complete"), None)
        .await;
    assert_eq!(
        (status, error_code(&early)),
        (StatusCode::CONFLICT, "InvalidTransition")
    );
    let (status, bad_key) = api
        .call_with(
            "POST",
            &format!("/repairs/{id}/start"),
            json!({"idempotency-key": ""}),
            None,
        )
        .await;
    assert_eq!(
        (status, error_code(&bad_key)),
        (StatusCode::BAD_REQUEST, "InvalidInput")
    );
    let huge = "x".repeat(1_999);
    let mut status = StatusCode::OK;
    for _ in 0..250 {
        let body = json!({"description": huge, "priceCents": 1});
        (status, _) = api
            .call("POST", &format!("/repairs/{id}/line-items"), Some(body))
            .await;
        if status != StatusCode::OK {
            break;
        }
    }
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "the state item outgrows 400 KB"
    );
}

#[tokio::test]
async fn throttling_and_outages_ask_the_client_to_retry() {
    let api = Api::new();
    let body = json!({"vehicle": "B", "customer": "A", "customerEmail": "ada@example.com", "description": "d"});
    api.faults.faults().inject(StoreFault::Throttle);
    let response = api
        .api
        .handle(&event(
            "POST",
            "/repairs",
            "$default",
            json!({"content-type": "application/json"}),
            Some(&body.to_string()),
        ))
        .await;
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    let (status, throttled) = parse(response);
    assert_eq!(
        (status, error_code(&throttled)),
        (StatusCode::TOO_MANY_REQUESTS, "Throttled")
    );
    api.faults.faults().inject(StoreFault::FailBeforeCommit);
    let (status, down) = api.call("POST", "/repairs", Some(body)).await;
    assert_eq!(
        (status, error_code(&down)),
        (StatusCode::SERVICE_UNAVAILABLE, "Unavailable")
    );
    assert!(api.store.outbox().is_empty());
}

#[tokio::test]
async fn a_named_stage_in_the_path_is_not_part_of_the_route() {
    let api = Api::new();
    let body = json!({"vehicle": "B", "customer": "A", "customerEmail": "ada@example.com", "description": "d"}).to_string();
    let response = api
        .api
        .handle(&event(
            "POST",
            "/repairs",
            "prod",
            json!({"content-type": "application/json"}),
            Some(&body),
        ))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// The status and JSON body of a response event.
fn parse_event(response: &Value) -> (u64, Value) {
    let status = response["statusCode"].as_u64().expect("a status code");
    let body = response["body"].as_str().expect("a text body");
    (status, serde_json::from_str(body).expect("a JSON body"))
}

#[tokio::test]
async fn a_body_flagged_base64_that_is_not_is_a_400_not_a_panic() {
    let api = Api::new();
    let mut event = raw_event(
        "POST",
        "/repairs",
        "$default",
        json!({"content-type": "application/json"}),
        Some("{not base64!"),
    );
    event["isBase64Encoded"] = json!(true);
    let (status, body) = parse_event(&api.api.handle_event(event).await);
    assert_eq!((status, error_code(&body)), (400, "MalformedRequest"));
    assert!(api.store.outbox().is_empty());

    let encoded = base64_of(
        r#"{"vehicle":"B-1","customer":"Ada","customerEmail":"ada@example.com","description":"brakes"}"#,
    );
    let mut event = raw_event(
        "POST",
        "/repairs",
        "$default",
        json!({"content-type": "application/json"}),
        Some(&encoded),
    );
    event["isBase64Encoded"] = json!(true);
    let (status, _) = parse_event(&api.api.handle_event(event).await);
    assert_eq!(status, 201, "a valid base64 body is decoded");
}

#[tokio::test]
async fn an_event_the_runtime_could_not_read_is_a_400_not_an_invocation_error() {
    let api = Api::new();
    let unreadable = [
        raw_event(
            "POST",
            "/repairs",
            "$default",
            json!({"x-note": "line\nbreak\u{1b}"}),
            Some("{}"),
        ),
        raw_event("GET", "/repairs/has space", "$default", json!({}), None),
        json!({"not": "an http event"}),
    ];
    for event in unreadable {
        let (status, body) = parse_event(&api.api.handle_event(event.clone()).await);
        assert_eq!(
            (status, error_code(&body)),
            (400, "MalformedRequest"),
            "{event}"
        );
    }
    assert!(api.store.outbox().is_empty());
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn a_correlation_id_over_the_limit_or_not_visible_ascii_is_refused_naming_the_limit() {
    let api = Api::new();
    let body = r#"{"vehicle":"B-1","customer":"Ada","customerEmail":"ada@example.com","description":"brakes"}"#;
    for bad in ["x".repeat(129), String::new(), "has space".to_owned()] {
        let headers = json!({"content-type": "application/json", "x-correlation-id": bad});
        let (status, value) = api.call_with("POST", "/repairs", headers, Some(body)).await;
        assert_eq!(
            (status.as_u16(), error_code(&value)),
            (400, "InvalidInput"),
            "{bad:?}"
        );
        assert!(
            value["error"]["message"]
                .as_str()
                .unwrap()
                .contains("1 to 128"),
            "{value}"
        );
    }
    assert!(
        api.store.outbox().is_empty(),
        "a refused request writes nothing"
    );
    let headers = json!({"content-type": "application/json", "x-correlation-id": "c".repeat(128)});
    let (status, _) = api.call_with("POST", "/repairs", headers, Some(body)).await;
    assert_eq!(status.as_u16(), 201);
    assert_eq!(api.store.outbox()[0].correlation_id, "c".repeat(128));
}

#[tokio::test]
async fn a_body_must_be_declared_json_or_it_is_a_415_and_writes_nothing() {
    let api = Api::new();
    let body = r#"{"vehicle":"B-1","customer":"Ada","customerEmail":"ada@example.com","description":"brakes"}"#;
    for content_type in [
        json!("text/plain"),
        json!("application/x-www-form-urlencoded"),
        Value::Null,
    ] {
        let headers = if content_type.is_null() {
            json!({})
        } else {
            json!({ "content-type": content_type })
        };
        let (status, value) = api.call_with("POST", "/repairs", headers, Some(body)).await;
        assert_eq!(
            (status.as_u16(), error_code(&value)),
            (415, "UnsupportedMediaType"),
            "{content_type}"
        );
    }
    assert!(api.store.outbox().is_empty());
    let headers = json!({"content-type": "Application/JSON; charset=utf-8"});
    let (status, _) = api.call_with("POST", "/repairs", headers, Some(body)).await;
    assert_eq!(status.as_u16(), 201, "parameters and case do not matter");
}

#[tokio::test]
async fn dot_segments_route_nowhere_and_ids_have_one_spelling() {
    let api = Api::new();
    let (_, placed) = api
        .call(
            "POST",
            "/orders",
            Some(json!({"customer": "Ada", "items": [{"sku": "A", "quantity": 1, "unitPriceCents": 100}]})),
        )
        .await;
    let id = placed["orderId"].as_str().unwrap().to_owned();
    let (status, _) = api.call("GET", &format!("/orders/{id}"), None).await;
    assert_eq!(status.as_u16(), 200);
    for odd in [
        format!("/repairs/../orders/{id}"),
        format!("/orders/./{id}"),
        format!("/orders//{id}"),
        format!("/orders/{id}/"),
        format!("//orders/{id}"),
    ] {
        let (status, value) = api.call("GET", &odd, None).await;
        assert_eq!(
            (status.as_u16(), error_code(&value)),
            (404, "RouteNotFound"),
            "{odd} names no resource"
        );
    }
    let simple = id.replace('-', "");
    for other in [id.to_uppercase(), simple, format!("urn:uuid:{id}")] {
        let (status, value) = api.call("GET", &format!("/orders/{other}"), None).await;
        assert_eq!(
            (status.as_u16(), error_code(&value)),
            (400, "InvalidInput"),
            "{other}"
        );
    }
}

#[tokio::test]
async fn text_with_control_or_bidi_override_characters_is_refused() {
    let api = Api::new();
    for customer in ["Ada\u{0}", "Ada\u{1b}[2J", "\u{202e}adA"] {
        let body = json!({"vehicle": "B-1", "customer": customer, "customerEmail": "ada@example.com", "description": "brakes"});
        let (status, value) = api.call("POST", "/repairs", Some(body)).await;
        assert_eq!(
            (status.as_u16(), error_code(&value)),
            (400, "InvalidInput"),
            "{customer:?}"
        );
    }
    assert!(api.store.outbox().is_empty());
}

#[tokio::test]
async fn a_missing_or_bad_customer_email_is_refused_naming_the_field_and_writes_nothing() {
    let api = Api::new();
    let (status, missing) = api
        .call(
            "POST",
            "/repairs",
            Some(json!({"vehicle": "B-1", "customer": "Ada", "description": "brakes"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&missing)),
        (StatusCode::BAD_REQUEST, "MalformedRequest")
    );
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("customerEmail"),
        "{missing}"
    );
    for bad in [
        json!(""),
        json!("ada"),
        json!("ada@example"),
        json!("Ada <ada@example.com>"),
        json!("ada@example.com\r\nBcc: eve@example.com"),
        json!("a".repeat(300)),
    ] {
        let body = json!({"vehicle": "B-1", "customer": "Ada", "customerEmail": bad, "description": "brakes"});
        let (status, refused) = api.call("POST", "/repairs", Some(body)).await;
        assert_eq!(
            (status, error_code(&refused)),
            (StatusCode::BAD_REQUEST, "InvalidInput"),
            "{bad}: {refused}"
        );
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("customerEmail is not an email address: "),
            "{bad}: {message}"
        );
    }
    let (status, wrong_type) = api
        .call(
            "POST",
            "/repairs",
            Some(json!({"vehicle": "B-1", "customer": "Ada", "customerEmail": 7, "description": "brakes"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&wrong_type)),
        (StatusCode::BAD_REQUEST, "MalformedRequest")
    );
    assert!(
        api.store.outbox().is_empty(),
        "a refused request writes nothing"
    );
}

/// The contract every aggregate's routes inherit from the shared machinery.
mod shared_contract {
    use super::*;

    async fn opened(api: &Api) -> String {
        let (status, opened) = api
            .call(
                "POST",
                "/repairs",
                Some(json!({"vehicle": "B-1", "customer": "Ada", "customerEmail": "ada@example.com", "description": "oil"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{opened}");
        opened["repairId"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn an_idempotency_key_given_twice_is_refused_and_writes_nothing() {
        let api = Api::new();
        let body = json!({"vehicle": "B-1", "customer": "Ada", "customerEmail": "ada@example.com", "description": "oil"}).to_string();
        // As API Gateway delivers a repeated header: joined with a comma.
        let (status, refused) = api
            .call_with(
                "POST",
                "/repairs",
                json!({"content-type": "application/json", "idempotency-key": "first,second"}),
                Some(&body),
            )
            .await;
        assert_eq!(
            (status, error_code(&refused)),
            (StatusCode::BAD_REQUEST, "InvalidInput")
        );
        // As `serve` delivers it: two values.
        let mut request = event(
            "POST",
            "/repairs",
            "$default",
            json!({"content-type": "application/json"}),
            Some(&body),
        );
        for key in ["first", "second"] {
            request
                .headers_mut()
                .append("idempotency-key", key.parse().unwrap());
        }
        let (status, refused) = parse(api.api.handle(&request).await);
        assert_eq!(
            (status, error_code(&refused)),
            (StatusCode::BAD_REQUEST, "InvalidInput")
        );
        assert!(api.store.outbox().is_empty(), "nothing was written");
    }

    #[tokio::test]
    async fn a_route_that_takes_no_body_refuses_one_whatever_its_content_type() {
        let api = Api::new();
        let id = opened(&api).await;
        for content_type in [
            "application/x-www-form-urlencoded",
            "application/json",
            "text/plain",
        ] {
            let (status, refused) = api
                .call_with(
                    "POST",
                    &format!("/repairs/{id}/start"),
                    json!({"content-type": content_type}),
                    Some("x=1"),
                )
                .await;
            assert_eq!(
                (status, error_code(&refused)),
                (StatusCode::BAD_REQUEST, "MalformedRequest"),
                "{content_type}: {refused}"
            );
        }
        assert_eq!(api.store.outbox().len(), 1, "the repair was not started");
        let (status, started) = api
            .call_with("POST", &format!("/repairs/{id}/start"), json!({}), None)
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "no body and no content type: {started}"
        );
    }

    #[tokio::test]
    async fn a_json_array_or_scalar_in_place_of_the_object_is_refused() {
        let api = Api::new();
        for body in [r#"["V","c","d"]"#, r#""V""#, "7", "null"] {
            let (status, refused) = api
                .call_with(
                    "POST",
                    "/repairs",
                    json!({"content-type": "application/json"}),
                    Some(body),
                )
                .await;
            assert_eq!(
                (status, error_code(&refused)),
                (StatusCode::BAD_REQUEST, "MalformedRequest"),
                "{body}: {refused}"
            );
        }
        assert!(api.store.outbox().is_empty());
    }

    #[tokio::test]
    async fn no_message_names_a_rust_type() {
        let api = Api::new();
        let mut messages = Vec::new();
        for (path, body) in [
            (
                "/repairs",
                json!({"vehicle": 7, "customer": "Ada", "customerEmail": "ada@example.com", "description": "x"}),
            ),
            ("/repairs", json!({"vehicle": "B-1"})),
            ("/orders", json!({"customer": "Ada", "items": [7]})),
            ("/orders", json!({"customer": "Ada", "items": {"sku": "A"}})),
        ] {
            let (_, refused) = api.call("POST", path, Some(body)).await;
            messages.push(refused["error"]["message"].as_str().unwrap().to_owned());
        }
        for description in ["oil", "brakes"] {
            let body = json!({"vehicle": "B-1", "customer": "Ada", "customerEmail": "ada@example.com", "description": description});
            let (_, answer) = api
                .call_with(
                    "POST",
                    "/repairs",
                    json!({"content-type": "application/json", "idempotency-key": "k-1"}),
                    Some(&body.to_string()),
                )
                .await;
            if let Some(message) = answer["error"]["message"].as_str() {
                messages.push(message.to_owned());
            }
        }
        assert_eq!(messages.len(), 5, "{messages:?}");
        for message in &messages {
            for internal in [
                "Body",
                "struct ",
                "IdempotencyKey(",
                "EventId(",
                "AggregateId(",
                "::",
            ] {
                assert!(!message.contains(internal), "{message:?} names {internal}");
            }
        }
        assert!(messages[4].contains("\"k-1\""), "{}", messages[4]);
    }

    #[tokio::test]
    async fn amounts_stay_within_the_business_bound_json_clients_read_exactly() {
        let api = Api::new();
        let id = opened(&api).await;
        let (status, _) = api
            .call("POST", &format!("/repairs/{id}/start"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let item = |cents: u64| json!({"description": "gold", "priceCents": cents});
        let (status, refused) = api
            .call(
                "POST",
                &format!("/repairs/{id}/line-items"),
                Some(item(10_000_000_001)),
            )
            .await;
        assert_eq!(
            (status, error_code(&refused)),
            (StatusCode::BAD_REQUEST, "InvalidInput")
        );
        let (status, _) = api
            .call(
                "POST",
                &format!("/repairs/{id}/line-items"),
                Some(item(10_000_000_000)),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, refused) = api
            .call("POST", &format!("/repairs/{id}/line-items"), Some(item(1)))
            .await;
        assert_eq!(
            (status, error_code(&refused)),
            (StatusCode::BAD_REQUEST, "InvalidInput"),
            "the total would pass the bound: {refused}"
        );
        let (_, shown) = api.call("GET", &format!("/repairs/{id}"), None).await;
        assert_eq!(shown["version"], 3, "{shown}");
        let total: u64 = shown["state"]["lineItems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["priceCents"].as_u64().unwrap())
            .sum();
        assert!(total < 1 << 53, "{total}");
    }
}

#[tokio::test]
async fn without_a_correlation_header_the_answer_and_the_events_carry_one_generated_id() {
    let api = Api::new();
    let body = json!({"vehicle": "B-1", "customer": "Ada", "customerEmail": "ada@example.com", "description": "oil"}).to_string();
    let answer = api
        .api
        .handle(&event(
            "POST",
            "/repairs",
            "$default",
            json!({"content-type": "application/json"}),
            Some(&body),
        ))
        .await;
    let told = answer
        .headers()
        .get("x-correlation-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .expect("the answer names its correlation id");
    assert!(uuid::Uuid::parse_str(&told).is_ok(), "{told}");
    assert_eq!(api.store.outbox()[0].correlation_id, told);
}
