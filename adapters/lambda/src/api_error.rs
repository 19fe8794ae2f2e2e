//! Errors of the command API: a status and `{"error":{"code","message"}}`.
//!
//! A client mistake is a 4xx with a code it can act on; only a fault of the
//! service is a 5xx. The domain's refusals map by their kind, the use case's
//! failures by what they mean to the caller (retry later, or stop).

use lambda_http::http::header::{CONTENT_TYPE, RETRY_AFTER};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::json;
use tracing::error;

use outbox_application::ports::StoreError;
use outbox_application::{CommandError, InputError};
use outbox_domain::{Rejection, RejectionKind};

/// An error response of the command API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with `status`, a stable `code` and a human `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the body is not JSON or not of the expected shape.
    pub fn malformed(message: impl Into<String>) -> Self {
        InputError::malformed(message).into()
    }

    /// 400: a value breaks a rule of its field.
    pub fn invalid(message: impl Into<String>) -> Self {
        InputError::invalid(message).into()
    }

    /// 404: no such aggregate or route.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The JSON body, `{"error":{"code","message"}}`.
    pub fn body(&self) -> String {
        json!({ "error": { "code": self.code, "message": self.message } }).to_string()
    }

    /// The JSON response; throttling carries `Retry-After`.
    pub fn into_response(self) -> Response<Body> {
        let body = self.body();
        let mut response = Response::builder()
            .status(self.status)
            .header(CONTENT_TYPE, "application/json");
        if self.status == StatusCode::TOO_MANY_REQUESTS
            || self.status == StatusCode::SERVICE_UNAVAILABLE
        {
            response = response.header(RETRY_AFTER, "1");
        }
        response
            .body(Body::Text(body))
            .unwrap_or_else(|_| Response::new(Body::Empty))
    }
}

impl From<InputError> for ApiError {
    fn from(error: InputError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error.code(), error.to_string())
    }
}

impl<E: std::error::Error + Rejection + 'static> From<CommandError<E>> for ApiError {
    fn from(error: CommandError<E>) -> Self {
        let message = error.to_string();
        match &error {
            CommandError::Rejected(rejection) => match rejection.kind() {
                RejectionKind::NotFound => Self::not_found("NotFound", message),
                RejectionKind::AlreadyExists => {
                    Self::new(StatusCode::CONFLICT, "AlreadyExists", message)
                }
                RejectionKind::InvalidInput => Self::invalid(message),
                RejectionKind::InvalidTransition => {
                    Self::new(StatusCode::CONFLICT, "InvalidTransition", message)
                }
            },
            CommandError::Conflict { .. } => {
                Self::new(StatusCode::CONFLICT, "VersionConflict", message)
            }
            CommandError::IdempotencyKeyReused(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IdempotencyKeyReused",
                message,
            ),
            CommandError::TooLarge(_) => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "TooLarge", message)
            }
            CommandError::Unavailable(StoreError::Throttled(_)) => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "Throttled", message)
            }
            CommandError::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                format!("{message}; repeat the request with the same Idempotency-Key"),
            ),
            CommandError::Failed(_) | CommandError::Encoding(_) => {
                error!(%error, "command failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "the service failed; it has been logged",
                )
            }
        }
    }
}
