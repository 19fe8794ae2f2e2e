//! The command API: the public HTTP contract, for API Gateway HTTP API (payload
//! v2) and Lambda Function URLs, which share one event shape, over every
//! aggregate a [`Service`] declares with [`Routes`](outbox_application::Routes):
//!
//! | route | success |
//! | --- | --- |
//! | `POST /{collection}` + the create route's JSON body | 201 `{<idField>, version}` |
//! | `GET /{collection}/{id}` | 200 `{<idField>, version, state}` |
//! | `POST /{collection}/{id}/{action}` + the action's JSON body, or none | 200 `{<idField>, version}` |
//!
//! Shared by every aggregate's routes: `Idempotency-Key` makes a command safe
//! to repeat (the repeat gets the first response, with `Idempotent-Replayed:
//! true`, and records no new events; the header given twice is a 400);
//! `X-Correlation-Id` and `traceparent` are carried into the events; a body
//! must be `application/json` and one JSON object, and a route that takes no
//! body refuses one; errors are [`ApiError`]s; each command is counted by
//! aggregate type and outcome. Nothing a client sends makes the handler panic
//! or answer 500.

use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::{json, Value};
use tracing::{info, info_span, Instrument};

use std::sync::Arc;

use outbox_application::{
    AggregateId, AnyCommand, CommandOutcome, CommandService, DeclaredAggregate, IdempotencyKey,
    RequestMeta, Service, Target, Traceparent,
};

use crate::api_error::ApiError;
use crate::{http_event, telemetry};

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

/// The command API over the command use case, serving every declared
/// aggregate that has routes.
#[derive(Clone)]
pub struct CommandApi {
    commands: CommandService,
    served: Vec<Arc<dyn DeclaredAggregate>>,
}

impl CommandApi {
    /// The API over `commands`, serving the routes `service` declares.
    pub fn new(commands: CommandService, service: &Service) -> Self {
        Self {
            commands,
            served: service
                .aggregates()
                .iter()
                .filter(|aggregate| aggregate.collection().is_some())
                .cloned()
                .collect(),
        }
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

    /// Answers `request`; every failure is a JSON error response. The answer
    /// carries the request's correlation id (`x-correlation-id`): the caller's,
    /// or one generated here, the same the log and the events carry.
    pub async fn handle(&self, request: &Request) -> Response<Body> {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        // Without the header, the request gets an id of its own here, so that
        // the log and the events it writes carry the same one.
        let correlation_id = request
            .headers()
            .get(CORRELATION_ID)
            .and_then(|value| value.to_str().ok())
            .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
        let span = info_span!("http", %method, %path, %correlation_id);
        let response = match self
            .route(request, &correlation_id)
            .instrument(span.clone())
            .await
        {
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
        let mut response = response;
        if let Ok(value) = lambda_http::http::HeaderValue::from_str(&correlation_id) {
            response.headers_mut().insert(CORRELATION_ID, value);
        }
        response
    }

    async fn route(
        &self,
        request: &Request,
        correlation_id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let method = request.method();
        let path = request.uri().path();
        let mut segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        // `/repairs/../orders/{id}` and `/repairs//{id}/` name no resource:
        // dot and empty segments are no route, each path names one resource.
        if segments
            .iter()
            .any(|s| s.is_empty() || *s == "." || *s == "..")
        {
            return Err(no_route(method, path));
        }
        if segments
            .first()
            .is_some_and(|first| Some(*first) == stage(request).as_deref())
        {
            segments.remove(0);
        }
        let Some((collection, rest)) = segments.split_first() else {
            return Err(no_route(method, path));
        };
        let Some(aggregate) = self
            .served
            .iter()
            .find(|aggregate| aggregate.collection() == Some(*collection))
        else {
            return Err(no_route(method, path));
        };
        let aggregate = aggregate.as_ref();
        match (rest, method) {
            ([], &Method::POST) => {
                let command = parse(request, aggregate, None)?;
                self.execute(
                    request,
                    aggregate,
                    Target::New,
                    command.as_ref(),
                    correlation_id,
                )
                .await
            }
            ([id], &Method::GET) => self.show(aggregate, id).await,
            ([id, action], &Method::POST) => {
                let command = parse(request, aggregate, Some(action))?;
                let target = existing(id)?;
                self.execute(request, aggregate, target, command.as_ref(), correlation_id)
                    .await
            }
            ([] | [_] | [_, _], _) => Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("{method} is not allowed on {}", truncated(path)),
            )),
            _ => Err(no_route(method, path)),
        }
    }

    async fn execute(
        &self,
        request: &Request,
        aggregate: &dyn DeclaredAggregate,
        target: Target,
        command: &dyn AnyCommand,
        correlation_id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let result = match meta(request) {
            Ok(mut meta) => {
                meta.correlation_id
                    .get_or_insert_with(|| correlation_id.to_owned());
                command
                    .execute(&self.commands, target, &meta)
                    .await
                    .map_err(ApiError::from)
            }
            Err(error) => Err(error),
        };
        telemetry::command(
            aggregate.aggregate_type(),
            result.as_ref().map_or_else(ApiError::code, |_| "ok"),
        );
        let outcome = result?;
        let status = match target {
            Target::New => StatusCode::CREATED,
            Target::Existing(_) => StatusCode::OK,
        };
        Ok(written(status, id_field(aggregate), &outcome))
    }

    async fn show(
        &self,
        aggregate: &dyn DeclaredAggregate,
        id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let id = aggregate_id(id)?;
        match aggregate.show(&self.commands, id).await? {
            Some((state, version)) => Ok(json_response(
                StatusCode::OK,
                &json!({ id_field(aggregate): id, "version": version, "state": state }),
            )),
            None => Err(ApiError::not_found(
                "NotFound",
                format!("no {} {id}", aggregate.aggregate_type()),
            )),
        }
    }
}

/// The field a served aggregate's id is answered under.
fn id_field(aggregate: &dyn DeclaredAggregate) -> &'static str {
    aggregate.id_field().unwrap_or("id")
}

/// The command the create route (`action` `None`) or an action asks for: a
/// route that reads a body needs `application/json`; one that reads none
/// refuses a body.
fn parse(
    request: &Request,
    aggregate: &dyn DeclaredAggregate,
    action: Option<&str>,
) -> Result<Box<dyn AnyCommand>, ApiError> {
    let path = request.uri().path();
    let Some(takes_body) = aggregate.takes_body(action) else {
        return Err(no_route(request.method(), path));
    };
    let body = if takes_body {
        json_body(request)?
    } else {
        request.body().as_ref()
    };
    let parsed = match action {
        None => aggregate.parse_create(body),
        Some(name) => aggregate.parse_action(name, body),
    };
    match parsed {
        Some(parsed) => parsed.map_err(ApiError::from),
        None => Err(no_route(request.method(), path)),
    }
}

fn truncated(path: &str) -> String {
    path.chars().take(200).collect()
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
        format!("no route for {method} {}", truncated(path)),
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
        let mut values = request.headers().get_all(name).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::invalid(format!(
                "the {name} header must be given once"
            )));
        }
        first
            .map(|value| {
                value.to_str().map_err(|_| {
                    ApiError::invalid(format!("the {name} header is not visible ASCII"))
                })
            })
            .transpose()
    };
    let idempotency_key = header(IDEMPOTENCY_KEY)?
        .map(|raw| {
            // API Gateway joins a header given twice into one, with a comma.
            if raw.contains(',') {
                return Err(ApiError::invalid(format!(
                    "the {IDEMPOTENCY_KEY} header must be given once, and a key holds no comma"
                )));
            }
            IdempotencyKey::parse(raw).map_err(|error| ApiError::invalid(error.to_string()))
        })
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
