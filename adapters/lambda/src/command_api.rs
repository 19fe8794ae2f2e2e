//! The command API: the public HTTP contract, for API Gateway HTTP API (payload
//! v2) and Lambda Function URLs, which share one event shape.
//!
//! | route | command | success |
//! | --- | --- | --- |
//! | `POST /repairs` `{vehicle, customer, description}` | open | 201 `{repairId, version}` |
//! | `GET /repairs/{id}` | — | 200 `{repairId, version, state}` |
//! | `POST /repairs/{id}/start` | start work | 200 `{repairId, version}` |
//! | `POST /repairs/{id}/line-items` `{description, priceCents}` | add a line item | 200 |
//! | `POST /repairs/{id}/complete` | complete | 200 |
//! | `POST /repairs/{id}/cancel` `{reason}` | cancel | 200 |
//! | `POST /orders` `{customer, items:[{sku, quantity, unitPriceCents}]}` | place | 201 `{orderId, version}` |
//! | `GET /orders/{id}` | — | 200 `{orderId, version, state}` |
//! | `POST /orders/{id}/status` `{status}` | change status | 200 |
//! | `POST /orders/{id}/cancel` | cancel | 200 |
//!
//! `Idempotency-Key` makes a command safe to repeat: the repeat gets the first
//! response (with `Idempotent-Replayed: true`) and records no new events.
//! `X-Correlation-Id` and `traceparent` are carried into the events. Errors are
//! [`ApiError`]s; nothing a client sends makes the handler panic or answer 500.

use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::{json, Value};
use tracing::{info, info_span, Instrument};

use outbox_application::{
    AggregateId, CommandOutcome, CommandService, IdempotencyKey, RequestMeta, Target, Traceparent,
};
use outbox_domain::order::Order;
use outbox_domain::repair::Repair;
use outbox_domain::{Aggregate, Rejection};

use crate::api_error::ApiError;
use crate::{api_request, http_event, telemetry};

/// The header that makes a command safe to repeat.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header carrying the business request's correlation id.
pub const CORRELATION_ID: &str = "x-correlation-id";
/// The longest correlation id accepted, in characters.
pub const MAX_CORRELATION_ID: usize = 128;
/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";
/// Set on the response to a repeated request.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The command API over the command use case.
#[derive(Clone)]
pub struct CommandApi {
    commands: CommandService,
}

impl CommandApi {
    /// The API over `commands`.
    pub fn new(commands: CommandService) -> Self {
        Self { commands }
    }

    /// Answers a raw HTTP API v2 / Function URL `event` with its response event;
    /// an event that cannot be read is a 400, never a panic.
    pub async fn handle_event(&self, event: Value) -> Value {
        let response = match http_event::request_from_event(event) {
            Ok(request) => self.handle(&request).await,
            Err(error) => {
                info!(status = 400, code = error.code(), "request unreadable");
                error.into_response()
            }
        };
        http_event::response_to_event(response)
    }

    /// Answers `request`; every failure is a JSON error response.
    pub async fn handle(&self, request: &Request) -> Response<Body> {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let correlation_id = request
            .headers()
            .get(CORRELATION_ID)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let span = info_span!("http", %method, %path, correlation_id);
        let response = match self.route(request).instrument(span.clone()).await {
            Ok(response) => response,
            Err(error) => {
                span.in_scope(|| {
                    info!(
                        status = error.status().as_u16(),
                        code = error.code(),
                        "request refused"
                    )
                });
                error.into_response()
            }
        };
        span.in_scope(|| info!(status = response.status().as_u16(), "request answered"));
        response
    }

    async fn route(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let mut segments: Vec<&str> = request
            .uri()
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        // `/repairs/../orders/{id}` names no resource: dot segments are no route.
        if segments.iter().any(|s| *s == "." || *s == "..") {
            return Err(no_route(request.method(), request.uri().path()));
        }
        if segments
            .first()
            .is_some_and(|first| Some(*first) == stage(request).as_deref())
        {
            segments.remove(0);
        }
        let body = || json_body(request);
        let method = request.method();
        match (segments.as_slice(), method) {
            (["repairs"], &Method::POST) => {
                let command = api_request::open_repair(body()?)?;
                self.execute::<Repair>(request, Target::New, &command, "repairId")
                    .await
            }
            (["repairs", id], &Method::GET) => self.show::<Repair>(id, "repairId").await,
            (["repairs", id, action], &Method::POST) => {
                let command = match *action {
                    "start" => outbox_domain::repair::RepairCommand::StartWork,
                    "line-items" => api_request::add_line_item(body()?)?,
                    "complete" => outbox_domain::repair::RepairCommand::CompleteRepair,
                    "cancel" => api_request::cancel_repair(body()?)?,
                    _ => return Err(no_route(method, request.uri().path())),
                };
                self.execute::<Repair>(request, existing(id)?, &command, "repairId")
                    .await
            }
            (["orders"], &Method::POST) => {
                let command = api_request::place_order(body()?)?;
                self.execute::<Order>(request, Target::New, &command, "orderId")
                    .await
            }
            (["orders", id], &Method::GET) => self.show::<Order>(id, "orderId").await,
            (["orders", id, action], &Method::POST) => {
                let command = match *action {
                    "status" => api_request::change_status(body()?)?,
                    "cancel" => outbox_domain::order::OrderCommand::CancelOrder,
                    _ => return Err(no_route(method, request.uri().path())),
                };
                self.execute::<Order>(request, existing(id)?, &command, "orderId")
                    .await
            }
            (
                ["repairs"]
                | ["repairs", _]
                | ["repairs", _, _]
                | ["orders"]
                | ["orders", _]
                | ["orders", _, _],
                _,
            ) => Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("{method} is not allowed on {}", request.uri().path()),
            )),
            _ => Err(no_route(method, request.uri().path())),
        }
    }

    async fn execute<A>(
        &self,
        request: &Request,
        target: Target,
        command: &A::Command,
        id_field: &'static str,
    ) -> Result<Response<Body>, ApiError>
    where
        A: Aggregate,
        A::Error: Rejection,
    {
        let result = match meta(request) {
            Ok(meta) => self
                .commands
                .execute::<A>(target, command, &meta)
                .await
                .map_err(ApiError::from),
            Err(error) => Err(error),
        };
        telemetry::command(
            A::TYPE,
            result.as_ref().map_or_else(ApiError::code, |_| "ok"),
        );
        let outcome = result?;
        let status = match target {
            Target::New => StatusCode::CREATED,
            Target::Existing(_) => StatusCode::OK,
        };
        Ok(written(status, id_field, &outcome))
    }

    async fn show<A>(&self, id: &str, id_field: &'static str) -> Result<Response<Body>, ApiError>
    where
        A: Aggregate,
        A::Error: Rejection,
    {
        let id = aggregate_id(id)?;
        match self.commands.load::<A>(id).await? {
            Some((state, version)) => Ok(json_response(
                StatusCode::OK,
                &json!({ id_field: id, "version": version, "state": state }),
            )),
            None => Err(ApiError::not_found(
                "NotFound",
                format!("no {} {id}", A::TYPE),
            )),
        }
    }
}

/// The API Gateway stage a request came through; `lambda_http` puts a named
/// stage in front of the path.
fn stage(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.stage.clone(),
        _ => None,
    }
}

fn no_route(method: &Method, path: &str) -> ApiError {
    ApiError::not_found(
        "RouteNotFound",
        format!(
            "no route for {method} {}",
            path.chars().take(200).collect::<String>()
        ),
    )
}

/// The body of a request that must carry JSON: its content type says so, or a
/// 415 `UnsupportedMediaType`.
fn json_body(request: &Request) -> Result<&[u8], ApiError> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the body must be application/json, got {:?}",
                content_type.chars().take(100).collect::<String>()
            ),
        ));
    }
    Ok(request.body().as_ref())
}

fn aggregate_id(raw: &str) -> Result<AggregateId, ApiError> {
    AggregateId::parse(raw).map_err(|error| ApiError::invalid(error.to_string()))
}

fn existing(raw: &str) -> Result<Target, ApiError> {
    aggregate_id(raw).map(Target::Existing)
}

/// The request metadata from the headers.
fn meta(request: &Request) -> Result<RequestMeta, ApiError> {
    let header = |name: &str| -> Result<Option<&str>, ApiError> {
        request
            .headers()
            .get(name)
            .map(|value| {
                value.to_str().map_err(|_| {
                    ApiError::invalid(format!("the {name} header is not visible ASCII"))
                })
            })
            .transpose()
    };
    let idempotency_key = header(IDEMPOTENCY_KEY)?
        .map(|raw| IdempotencyKey::parse(raw).map_err(|error| ApiError::invalid(error.to_string())))
        .transpose()?;
    let traceparent = header(TRACEPARENT)?
        .map(|raw| Traceparent::parse(raw).map_err(|error| ApiError::invalid(error.to_string())))
        .transpose()?;
    let correlation_id = header(CORRELATION_ID)?
        .map(|raw| {
            let valid = (1..=MAX_CORRELATION_ID).contains(&raw.len())
                && raw.bytes().all(|b| b.is_ascii_graphic());
            valid.then(|| raw.to_owned()).ok_or_else(|| {
                ApiError::invalid(format!(
                    "the {CORRELATION_ID} header must be 1 to {MAX_CORRELATION_ID} visible ASCII characters, got {} bytes",
                    raw.len()
                ))
            })
        })
        .transpose()?;
    Ok(RequestMeta {
        idempotency_key,
        correlation_id,
        causation_id: None,
        traceparent,
    })
}

fn written(status: StatusCode, id_field: &'static str, outcome: &CommandOutcome) -> Response<Body> {
    let mut response = json_response(
        status,
        &json!({ id_field: outcome.aggregate.aggregate_id, "version": outcome.version }),
    );
    if outcome.replayed {
        response.headers_mut().insert(
            IDEMPOTENT_REPLAYED,
            lambda_http::http::HeaderValue::from_static("true"),
        );
    }
    response
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| Value::Null.to_string());
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::Text(text))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}
