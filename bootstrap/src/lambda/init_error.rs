//! Reporting a failed initialisation to the Lambda Runtime API
//! (`POST /2018-06-01/runtime/init/error`), so the failure shows as an init error
//! with its message instead of a bare exit.

use lambda_runtime_api_client::body::Body;
use lambda_runtime_api_client::{build_request, Client};
use serde_json::json;
use tracing::error;

/// The path of the init-error endpoint.
pub const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";

/// Logs `error` and reports it as `error_type` (e.g. `Runtime.ConfigError`) to
/// the Runtime API named by `AWS_LAMBDA_RUNTIME_API`, when there is one.
pub async fn report_init_error(error_type: &str, error: &dyn std::error::Error) {
    let message = error.to_string();
    error!(error_type, %message, "initialisation failed");
    let Some(endpoint) = std::env::var("AWS_LAMBDA_RUNTIME_API")
        .ok()
        .and_then(|api| format!("http://{api}").parse().ok())
    else {
        return;
    };
    let body = json!({ "errorMessage": message, "errorType": error_type, "stackTrace": [] });
    let request = build_request()
        .method("POST")
        .uri(INIT_ERROR_PATH)
        .header("Lambda-Runtime-Function-Error-Type", error_type)
        .header("Content-Type", "application/vnd.aws.lambda.error+json")
        .body(Body::from(body.to_string()));
    let sent = match (Client::builder().with_endpoint(endpoint).build(), request) {
        (Ok(client), Ok(request)) => client.call(request).await.map(|_| ()),
        (Err(error), _) => Err(error.into()),
        (_, Err(error)) => Err(error.into()),
    };
    if let Err(report_error) = sent {
        error!(%report_error, "the init error could not be reported to the Runtime API");
    }
}
