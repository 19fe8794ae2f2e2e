//! Generated inputs at every edge that parses outside input, so the next
//! mistake is found by the suite rather than by a caller:
//!
//! - the command API: arbitrary methods, paths, headers and bodies (arbitrary
//!   JSON, arbitrary text, base64 or not, valid requests with one field
//!   mutated) — always a response below 500, every error the
//!   `{"error":{"code","message"}}` body, nothing written on a refusal;
//! - the stream relay handler: arbitrary stream records (valid outbox images,
//!   mutated ones, foreign items, keys only, with and without a sequence
//!   number) — never a panic, every outbox insert published or dead-lettered
//!   with a reason;
//! - an SQS consumer: arbitrary message bodies (text, JSON, EventBridge events
//!   whose envelope has one field mutated, Pipe-shaped events whose outbox image
//!   has one attribute changed) — never a panic, never an effect for
//!   an event the domain would not accept, each valid event's effect once.
//!
//! Cases per property: `GENERATED_CASES` (default 2000).

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

mod fixtures;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use base64::Engine;
use proptest::prelude::*;
use serde_json::{json, Value};

use fixtures::{
    bridged, completed, envelope, outbox_image, piped, raw_event, sqs_event, sqs_message,
    stream_event, stream_record,
};
use outbox_application::ports::{RandomIds, SystemClock};
use outbox_application::{CommandPolicy, CommandService, EventEnvelope, Relay};
use outbox_lambda::{consume_sqs_batch, relay_stream_batch, CommandApi};
use outbox_memory::{MemoryBus, MemoryDeadLetterQueue, MemoryStore};
use outbox_seeds_domain::repair::{Repair, RepairEvent};

fn cases() -> u32 {
    std::env::var("GENERATED_CASES")
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(2_000)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Field names of the API's bodies and the envelope, and a few others.
const FIELDS: [&str; 17] = [
    "vehicle",
    "customer",
    "customerEmail",
    "description",
    "priceCents",
    "reason",
    "items",
    "sku",
    "quantity",
    "unitPriceCents",
    "status",
    "eventId",
    "eventType",
    "schemaVersion",
    "aggregateVersion",
    "data",
    "unknown",
];

/// Arbitrary JSON, its object keys mostly real field names.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        Just(Value::from("")),
        Just(Value::from("   ")),
        Just(Value::from("\u{0}\u{1b}\u{202e}")),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        let key = prop_oneof![
            3 => proptest::sample::select(FIELDS.to_vec()).prop_map(str::to_owned),
            1 => ".{0,8}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(key, inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// One change to a JSON object: a field removed, replaced, or added.
#[derive(Debug, Clone)]
enum Mutation {
    Remove(usize),
    Replace(usize, Value),
    Add(String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), json_value()).prop_map(|(at, value)| Mutation::Replace(at, value)),
        (proptest::sample::select(FIELDS.to_vec()), json_value())
            .prop_map(|(key, value)| Mutation::Add(key.to_owned(), value)),
    ]
}

/// Applies `mutation` to `value` if it is an object; the result differs from it.
fn mutate(value: &mut Value, mutation: &Mutation) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    let keys: Vec<String> = object.keys().cloned().collect();
    match mutation {
        Mutation::Remove(at) if !keys.is_empty() => {
            object.remove(&keys[at % keys.len()]);
        }
        Mutation::Replace(at, replacement) if !keys.is_empty() => {
            object.insert(keys[at % keys.len()].clone(), replacement.clone());
        }
        Mutation::Add(key, added) => {
            object.insert(key.clone(), added.clone());
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- command API

/// A valid body of one of the API's routes.
fn valid_body() -> impl Strategy<Value = Value> {
    proptest::sample::select(vec![
        json!({"vehicle": "B-1", "customer": "Ada", "customerEmail": "ada@example.com", "description": "brakes"}),
        json!({"description": "pads", "priceCents": 4999}),
        json!({"reason": "no parts"}),
        json!({"customer": "Ada", "items": [{"sku": "A", "quantity": 2, "unitPriceCents": 450}]}),
        json!({"status": "PREPARING"}),
    ])
}

#[derive(Debug, Clone)]
enum RequestBody {
    None,
    Json(Value),
    Text(String),
    Mutated(Value, Mutation),
}

fn request_body() -> impl Strategy<Value = RequestBody> {
    prop_oneof![
        1 => Just(RequestBody::None),
        2 => json_value().prop_map(RequestBody::Json),
        1 => ".{0,40}".prop_map(RequestBody::Text),
        2 => valid_body().prop_map(RequestBody::Json),
        3 => (valid_body(), mutation()).prop_map(|(body, m)| RequestBody::Mutated(body, m)),
    ]
}

/// A path segment; `{repair}` and `{order}` become real ids of the case.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(vec![
            "repairs", "orders", "start", "line-items", "complete", "cancel", "status",
            "{repair}", "{order}", "..", ".", "",
        ])
        .prop_map(str::to_owned),
        1 => "[ -~]{0,12}",
        1 => ".{0,6}",
    ]
}

#[derive(Debug, Clone)]
struct HttpCase {
    method: String,
    segments: Vec<String>,
    query: Option<String>,
    headers: BTreeMap<String, String>,
    body: RequestBody,
    base64: Option<bool>,
}

/// The API's routes: method and path, ids as placeholders.
const ROUTES: [(&str, &str); 10] = [
    ("POST", "repairs"),
    ("GET", "repairs/{repair}"),
    ("POST", "repairs/{repair}/start"),
    ("POST", "repairs/{repair}/line-items"),
    ("POST", "repairs/{repair}/complete"),
    ("POST", "repairs/{repair}/cancel"),
    ("POST", "orders"),
    ("GET", "orders/{order}"),
    ("POST", "orders/{order}/status"),
    ("POST", "orders/{order}/cancel"),
];

/// A method and path: mostly one of the API's routes, sometimes another method
/// on it, sometimes any path at all.
fn target() -> impl Strategy<Value = (String, Vec<String>)> {
    let route = proptest::sample::select(ROUTES.to_vec()).prop_map(|(method, path)| {
        (
            method.to_owned(),
            path.split('/').map(str::to_owned).collect(),
        )
    });
    let method = prop_oneof![
        4 => proptest::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
            .prop_map(str::to_owned),
        1 => "[A-Z]{1,8}",
    ];
    prop_oneof![
        6 => route.clone(),
        1 => (route, method.clone()).prop_map(|((_, path), method)| (method, path)),
        2 => (method, proptest::collection::vec(segment(), 0..5)),
    ]
}

fn http_case() -> impl Strategy<Value = HttpCase> {
    let header = prop_oneof![
        4 => (Just("content-type".to_owned()), Just("application/json".to_owned())),
        1 => (Just("content-type".to_owned()), proptest::sample::select(vec![
            "application/json", "application/json; charset=utf-8", "text/plain", "",
        ]).prop_map(str::to_owned)),
        1 => (Just("content-type".to_owned()), ".{0,20}"),
        1 => (Just("idempotency-key".to_owned()), ".{0,140}"),
        1 => (Just("idempotency-key".to_owned()), "[a-z0-9-]{1,20}"),
        1 => (Just("x-correlation-id".to_owned()), ".{0,140}"),
        1 => (Just("traceparent".to_owned()), ".{0,60}"),
        1 => (Just("traceparent".to_owned()), Just("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned())),
        1 => ("[a-z-]{1,12}", ".{0,20}"),
    ];
    (
        target(),
        proptest::option::of(".{0,12}"),
        proptest::collection::btree_map("[a-d]", header, 0..5),
        request_body(),
        proptest::option::weighted(0.2, any::<bool>()),
    )
        .prop_map(
            |((method, segments), query, headers, body, base64)| HttpCase {
                method,
                segments,
                query,
                headers: headers.into_values().collect(),
                body,
                base64,
            },
        )
}

/// The raw HTTP API event of `case`, with real ids.
fn http_event(case: &HttpCase, repair: &str, order: &str) -> Value {
    let path: String = case
        .segments
        .iter()
        .map(|s| s.replace("{repair}", repair).replace("{order}", order))
        .map(|s| format!("/{s}"))
        .collect();
    let body = match &case.body {
        RequestBody::None => None,
        RequestBody::Json(value) => Some(value.to_string()),
        RequestBody::Text(text) => Some(text.clone()),
        RequestBody::Mutated(value, mutation) => {
            let mut value = value.clone();
            mutate(&mut value, mutation);
            Some(value.to_string())
        }
    };
    let headers: serde_json::Map<String, Value> = case
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    let encoded = match (&body, case.base64) {
        (Some(body), Some(true)) => Some(base64::engine::general_purpose::STANDARD.encode(body)),
        _ => body.clone(),
    };
    let mut event = raw_event(
        &case.method,
        if path.is_empty() { "/" } else { &path },
        "$default",
        Value::Object(headers),
        encoded.as_deref(),
    );
    event["requestContext"]["http"]["method"] = Value::from(case.method.clone());
    if let Some(query) = &case.query {
        event["rawQueryString"] = Value::from(query.clone());
    }
    if case.base64 == Some(false) && body.is_some() {
        // Flagged base64 though it is not.
        event["isBase64Encoded"] = Value::from(true);
    } else if case.base64 == Some(true) {
        event["isBase64Encoded"] = Value::from(true);
    }
    event
}

async fn answer(api: &CommandApi, event: Value) -> (u64, Value) {
    let response = api.handle_event(event).await;
    let status = response["statusCode"].as_u64().unwrap();
    let body = response["body"].as_str().unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn check_http_case(case: &HttpCase) -> Result<(), TestCaseError> {
    runtime().block_on(async {
        let store = MemoryStore::new();
        let api = CommandApi::new(CommandService::new(
            Arc::new(store.clone()),
            Arc::new(SystemClock),
            Arc::new(RandomIds),
            CommandPolicy::default(),
        ), &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()));
        let json_headers = json!({"content-type": "application/json"});
        let create = |path: &str, body: Value| {
            raw_event("POST", path, "$default", json_headers.clone(), Some(&body.to_string()))
        };
        let (_, repair) = answer(
            &api,
            create("/repairs", json!({"vehicle": "B-1", "customer": "Ada", "customerEmail": "ada@example.com", "description": "d"})),
        )
        .await;
        let (_, order) = answer(
            &api,
            create(
                "/orders",
                json!({"customer": "Ada", "items": [{"sku": "A", "quantity": 1, "unitPriceCents": 1}]}),
            ),
        )
        .await;
        let repair = repair["repairId"].as_str().unwrap().to_owned();
        let order = order["orderId"].as_str().unwrap().to_owned();
        let before = store.outbox();

        let (status, body) = answer(&api, http_event(case, &repair, &order)).await;

        prop_assert!(status < 500, "a client's input never makes a 5xx: {status} {body}");
        if status >= 400 {
            let code = body["error"]["code"].as_str().unwrap_or_default();
            let message = body["error"]["message"].as_str();
            prop_assert!(!code.is_empty() && message.is_some(), "an error body: {body}");
            prop_assert_eq!(store.outbox(), before, "a refusal writes nothing");
        } else {
            prop_assert!(body.is_object(), "a JSON answer: {body}");
        }
        Ok(())
    })
}

// ---------------------------------------------------------------- stream relay

/// A well-formed DynamoDB attribute value of any type.
fn attribute_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        ".{0,12}".prop_map(|s| json!({"S": s})),
        Just(json!({"S": "OUTBOX"})),
        "-?[0-9]{1,6}".prop_map(|n| json!({"N": n})),
        "[a-z]{1,4}".prop_map(|n| json!({"N": n})),
        any::<bool>().prop_map(|b| json!({"BOOL": b})),
        Just(json!({"NULL": true})),
        proptest::collection::vec(".{0,4}", 1..3).prop_map(|ss| json!({"SS": ss})),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|l| json!({"L": l})),
            proptest::collection::btree_map(
                proptest::sample::select(FIELDS.to_vec()).prop_map(str::to_owned),
                inner,
                0..4
            )
            .prop_map(|m| json!({"M": m})),
        ]
    })
}

#[derive(Debug, Clone)]
enum Image {
    /// A valid outbox image.
    Valid,
    /// A valid outbox image with one attribute removed, replaced or added.
    Mutated(Mutation, Value),
    /// Any item, maybe claiming to be an outbox item.
    Foreign(BTreeMap<String, Value>),
    /// No image at all, as in a KEYS_ONLY stream.
    KeysOnly,
}

#[derive(Debug, Clone)]
struct StreamCase {
    name: String,
    image: Image,
    positioned: bool,
}

fn stream_case() -> impl Strategy<Value = StreamCase> {
    let name = prop_oneof![
        6 => Just("INSERT".to_owned()),
        1 => Just("MODIFY".to_owned()),
        1 => Just("REMOVE".to_owned()),
        1 => "[A-Z]{0,6}",
    ];
    let image = prop_oneof![
        3 => Just(Image::Valid),
        3 => (mutation(), attribute_value()).prop_map(|(m, v)| Image::Mutated(m, v)),
        2 => proptest::collection::btree_map(
            prop_oneof![
                proptest::sample::select(vec!["pk", "sk", "entityType", "eventId", "eventType"])
                    .prop_map(str::to_owned),
                "[a-zA-Z]{1,8}",
            ],
            attribute_value(),
            0..6,
        )
        .prop_map(Image::Foreign),
        1 => Just(Image::KeysOnly),
    ];
    (name, image, proptest::bool::weighted(0.9)).prop_map(|(name, image, positioned)| StreamCase {
        name,
        image,
        positioned,
    })
}

/// The stream record of case `index`, and whether it is an outbox insert by the
/// documented rule: an `INSERT` whose image has `entityType` `OUTBOX`, or that
/// has no image and a sort key `EVENT#…`.
fn stream_record_of(index: usize, case: &StreamCase) -> (Value, bool) {
    let valid = outbox_image(&envelope(index as u128 + 1, 1, "WorkStarted", json!({})));
    let image = match &case.image {
        Image::Valid => valid,
        Image::Mutated(mutation, value) => {
            let mut image = valid;
            let mutation = match mutation {
                Mutation::Replace(at, _) => Mutation::Replace(*at, value.clone()),
                Mutation::Add(key, _) => Mutation::Add(key.clone(), value.clone()),
                remove => remove.clone(),
            };
            mutate(&mut image, &mutation);
            image
        }
        Image::Foreign(attributes) => Value::Object(attributes.clone().into_iter().collect()),
        Image::KeysOnly => json!({}),
    };
    let mut record = stream_record(1000 + index as u64, &case.name, image.clone());
    let keys = json!({
        "pk": image.get("pk").cloned().unwrap_or_else(|| json!({"S": format!("REPAIR#{index}")})),
        "sk": image.get("sk").cloned().unwrap_or_else(|| json!({"S": "EVENT#00000000000000000001"})),
    });
    record["dynamodb"]["Keys"] = keys.clone();
    if matches!(case.image, Image::KeysOnly) {
        record["dynamodb"]
            .as_object_mut()
            .unwrap()
            .remove("NewImage");
    }
    if !case.positioned {
        record["dynamodb"]
            .as_object_mut()
            .unwrap()
            .remove("SequenceNumber");
    }
    let outbox = match image.get("entityType") {
        Some(entity_type) => entity_type == &json!({"S": "OUTBOX"}),
        None => keys["sk"]["S"]
            .as_str()
            .is_some_and(|sk| sk.starts_with("EVENT#")),
    };
    (record, case.name == "INSERT" && outbox)
}

fn check_stream_case(cases: &[StreamCase]) -> Result<(), TestCaseError> {
    runtime().block_on(async {
        let bus = MemoryBus::new(
            outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
        );
        let dead_letters = MemoryDeadLetterQueue::new();
        let relay = Relay::new(Arc::new(bus.clone()), Arc::new(dead_letters.clone()));
        let mut records = Vec::new();
        let mut outbox_inserts = 0;
        let mut valid_ids = Vec::new();
        for (index, case) in cases.iter().enumerate() {
            let (record, outbox) = stream_record_of(index, case);
            outbox_inserts += usize::from(outbox);
            if outbox && case.positioned && matches!(case.image, Image::Valid) {
                valid_ids.push(envelope(index as u128 + 1, 1, "WorkStarted", json!({})).event_id);
            }
            records.push(record);
        }
        let event = stream_event(records);

        let response = relay_stream_batch(&relay, &event).await;

        let response = match response {
            Ok(response) => response,
            Err(error) => return Err(TestCaseError::fail(format!("the batch failed: {error}"))),
        };
        prop_assert!(response.batch_item_failures.is_empty(), "{response:?}");
        let letters = dead_letters.letters();
        prop_assert!(letters.iter().all(|l| !l.reason.is_empty()));
        let published = bus.accepted();
        prop_assert_eq!(
            published.len() + letters.len(),
            outbox_inserts,
            "every outbox insert is published or dead-lettered, and nothing else"
        );
        let published_ids: HashSet<_> = published.iter().map(|e| e.event_id).collect();
        for id in valid_ids {
            prop_assert!(published_ids.contains(&id), "a valid event is published");
        }
        Ok(())
    })
}

// ---------------------------------------------------------------- SQS consumer

#[derive(Debug, Clone)]
enum MessageBody {
    Text(String),
    Json(Value),
    Valid,
    MutatedEnvelope(Mutation),
    MutatedData(Mutation),
    /// As EventBridge Pipes publishes it: the stream record as `detail`, its
    /// outbox image maybe with one attribute changed to any DynamoDB value.
    Piped(Option<(Mutation, Value)>),
    /// As a Custom Event Bus subscriber delivers it raw: the envelope itself,
    /// maybe with one change.
    Raw(Option<Mutation>),
    Repeat,
}

fn message_body() -> impl Strategy<Value = MessageBody> {
    prop_oneof![
        1 => ".{0,40}".prop_map(MessageBody::Text),
        1 => json_value().prop_map(MessageBody::Json),
        3 => Just(MessageBody::Valid),
        3 => mutation().prop_map(MessageBody::MutatedEnvelope),
        3 => mutation().prop_map(MessageBody::MutatedData),
        2 => Just(MessageBody::Piped(None)),
        3 => (mutation(), attribute_value()).prop_map(|m| MessageBody::Piped(Some(m))),
        2 => proptest::option::of(mutation()).prop_map(MessageBody::Raw),
        1 => Just(MessageBody::Repeat),
    ]
}

/// Whether the domain accepts the message body `text` as a repair completion:
/// it carries an envelope, and its event decodes through the domain's types.
fn acceptable_completion(text: &str) -> Option<EventEnvelope> {
    let envelope = envelope_of_body(text)?;
    let event = envelope.decode::<Repair>().ok()?;
    matches!(event, RepairEvent::RepairCompleted { .. }).then_some(envelope)
}

fn check_sqs_case(bodies: &[MessageBody]) -> Result<(), TestCaseError> {
    runtime().block_on(async {
        let (consume, inbox, dead_letters) = fixtures::invoicing();
        let mut messages = Vec::new();
        let mut sent: Vec<String> = Vec::new();
        let mut valid = HashSet::new();
        let mut acceptable = HashSet::new();
        let mut expected_letters = 0;
        for (index, body) in bodies.iter().enumerate() {
            let event = completed(index as u128 + 1);
            let text = match body {
                MessageBody::Text(text) => text.clone(),
                MessageBody::Json(value) => value.to_string(),
                MessageBody::Valid => {
                    valid.insert(event.event_id);
                    bridged(&event)
                }
                MessageBody::MutatedEnvelope(mutation) => {
                    let mut bridged: Value = serde_json::from_str(&bridged(&event)).unwrap();
                    mutate(&mut bridged["detail"], mutation);
                    bridged.to_string()
                }
                MessageBody::MutatedData(mutation) => {
                    let mut bridged: Value = serde_json::from_str(&bridged(&event)).unwrap();
                    mutate(&mut bridged["detail"]["data"], mutation);
                    bridged.to_string()
                }
                MessageBody::Piped(None) => {
                    valid.insert(event.event_id);
                    piped(&event, index as u64 + 1)
                }
                MessageBody::Piped(Some((mutation, value))) => {
                    let mut piped: Value =
                        serde_json::from_str(&piped(&event, index as u64 + 1)).unwrap();
                    let mutation = match mutation {
                        Mutation::Replace(at, _) => Mutation::Replace(*at, value.clone()),
                        Mutation::Add(key, _) => Mutation::Add(key.clone(), value.clone()),
                        remove => remove.clone(),
                    };
                    mutate(&mut piped["detail"]["dynamodb"]["NewImage"], &mutation);
                    piped.to_string()
                }
                MessageBody::Raw(None) => {
                    valid.insert(event.event_id);
                    serde_json::to_string(&event).unwrap()
                }
                MessageBody::Raw(Some(mutation)) => {
                    let mut raw = serde_json::to_value(&event).unwrap();
                    mutate(&mut raw, mutation);
                    raw.to_string()
                }
                MessageBody::Repeat => sent.last().cloned().unwrap_or_default(),
            };
            if let Some(envelope) = acceptable_completion(&text) {
                acceptable.insert(envelope.event_id);
            }
            expected_letters += usize::from(must_be_dead_lettered(&text));
            messages.push(sqs_message(&format!("m{index}"), &text));
            sent.push(text);
        }

        let response = consume_sqs_batch(&consume, &sqs_event(messages)).await;

        prop_assert!(response.batch_item_failures.is_empty(), "{response:?}");
        let mut effects: HashMap<_, usize> = HashMap::new();
        for effect in inbox.effects_of("invoicing") {
            *effects.entry(effect.event_id).or_default() += 1;
        }
        for (id, count) in &effects {
            prop_assert!(
                acceptable.contains(id),
                "an effect only for an acceptable event"
            );
            prop_assert_eq!(*count, 1, "one effect per event");
        }
        for id in valid {
            prop_assert_eq!(effects.get(&id), Some(&1), "a valid event has its effect");
        }
        let letters = dead_letters.letters();
        prop_assert!(letters.iter().all(|l| !l.reason.is_empty()));
        prop_assert_eq!(
            letters.len(),
            expected_letters,
            "exactly what cannot be consumed is dead-lettered: nothing dropped in silence"
        );
        Ok(())
    })
}

/// The envelope an event's `detail` carries, as the documented contract reads it:
/// a DynamoDB stream record (EventBridge Pipes) through its outbox image, or the
/// envelope itself (the Lambda relay).
fn envelope_in(detail: &Value) -> Option<EventEnvelope> {
    if detail.get("dynamodb").is_some() {
        let record: aws_lambda_events::event::dynamodb::EventRecord =
            serde_json::from_value(detail.clone()).ok()?;
        return outbox_dynamodb::items::outbox_envelope(record.change.new_image).ok();
    }
    serde_json::from_value(detail.clone()).ok()
}

/// The envelope a message body carries, as the documented contract reads it:
/// an EventBridge event (it has a `detail-type`) through its `detail`, any
/// other JSON as the envelope itself (a Custom Event Bus's raw delivery).
fn envelope_of_body(text: &str) -> Option<EventEnvelope> {
    use aws_lambda_events::event::eventbridge::EventBridgeEvent;
    let value: Value = serde_json::from_str(text).ok()?;
    if value.get("detail-type").is_some() {
        let event: EventBridgeEvent<Value> = serde_json::from_value(value).ok()?;
        return envelope_in(&event.detail);
    }
    serde_json::from_value(value).ok()
}

/// Whether the invoicing consumer must dead-letter a message with body `text`:
/// it carries no envelope, or it is a repair completion the domain does not
/// accept. (Other events are of no interest to invoicing.)
fn must_be_dead_lettered(text: &str) -> bool {
    match envelope_of_body(text) {
        None => true,
        Some(envelope) => {
            envelope.aggregate_type == "Repair"
                && envelope.event_type == RepairEvent::REPAIR_COMPLETED
                && envelope.decode::<Repair>().is_err()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_command_api_answers_any_request_below_500_and_writes_nothing_on_refusal(
        case in http_case(),
    ) {
        check_http_case(&case)?;
    }

    #[test]
    fn the_stream_relay_publishes_or_dead_letters_every_outbox_insert_of_any_batch(
        cases in proptest::collection::vec(stream_case(), 1..12),
    ) {
        check_stream_case(&cases)?;
    }

    #[test]
    fn a_consumer_applies_only_acceptable_events_whatever_the_messages(
        bodies in proptest::collection::vec(message_body(), 1..10),
    ) {
        check_sqs_case(&bodies)?;
    }
}
