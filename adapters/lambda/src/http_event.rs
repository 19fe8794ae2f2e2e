//! The edge of the command API: the raw API Gateway HTTP API (payload 2.0) or
//! Function URL event in, its response event out.
//!
//! The event is read here rather than by the event library's converter, which
//! panics on a body flagged `isBase64Encoded` that is not base64 and on a path
//! that is not a valid URI, and fails the invocation (a 502 at API Gateway) on a
//! header value with control characters. Every such request is a 400
//! `MalformedRequest` here, never a panic.

use aws_lambda_events::encodings::Body as EventBody;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use base64::Engine;
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::api_error::ApiError;

/// Reads `event` into a request.
///
/// # Errors
/// [`ApiError`] 400 `MalformedRequest` when the event is not an HTTP API v2
/// event, its body is flagged base64 but is not, or its path and query do not
/// form a URI.
pub fn request_from_event(event: Value) -> Result<Request, ApiError> {
    let event: ApiGatewayV2httpRequest = serde_json::from_value(event)
        .map_err(|error| ApiError::malformed(format!("the request could not be read: {error}")))?;
    let body = match (event.body, event.is_base64_encoded) {
        (None, _) => Body::Empty,
        (Some(text), false) => Body::Text(text),
        (Some(encoded), true) => Body::Binary(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .map_err(|error| {
                    ApiError::malformed(format!("the body is flagged base64 but is not: {error}"))
                })?,
        ),
    };
    let path = event.raw_path.unwrap_or_else(|| "/".to_owned());
    let uri = match event.raw_query_string.as_deref() {
        Some(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path,
    };
    let method = event.request_context.http.method.clone();
    let mut request = lambda_http::http::Request::builder()
        .method(method)
        .uri(uri.as_str())
        .extension(RequestContext::ApiGatewayV2(event.request_context))
        .body(body)
        .map_err(|error| ApiError::malformed(format!("the request path is not valid: {error}")))?;
    *request.headers_mut() = event.headers;
    Ok(request)
}

/// Writes `response` as the response event API Gateway and Function URLs expect.
pub fn response_to_event(response: Response<Body>) -> Value {
    let (parts, body) = response.into_parts();
    let mut event = ApiGatewayV2httpResponse::default();
    event.status_code = i64::from(parts.status.as_u16());
    event.headers = parts.headers;
    match body {
        Body::Empty => {}
        Body::Text(text) => event.body = Some(EventBody::Text(text)),
        Body::Binary(bytes) => {
            event.body = Some(EventBody::Text(
                base64::engine::general_purpose::STANDARD.encode(bytes),
            ));
            event.is_base64_encoded = true;
        }
        _ => {}
    }
    serde_json::to_value(event).unwrap_or_else(|_| {
        serde_json::json!({
            "statusCode": 500,
            "headers": {"content-type": "application/json"},
            "body": ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "the response could not be written",
            )
            .body(),
            "isBase64Encoded": false
        })
    })
}
