//! `serve`: the command API on a loopback port over plain HTTP, through the
//! very handler the Lambda function runs (the request converted in, the
//! response converted back: one contract, two runtimes). Behind it the DynamoDB
//! adapter, the self-hosted stream relay, and the local bus routing to the
//! consumers, each behind the DynamoDB inbox.
//!
//! The relay is the one `relay` runs ([`LocalRelay`]), sharing the stream's
//! shards with any other relay of the table through leases. It publishes to
//! the local bus so that a batch is checkpointed only once every consumer has
//! handled its deliveries durably: a process killed at any instant (`kill -9`)
//! loses no delivery; a restart (or another relay, once the lease runs out)
//! reads on from the checkpoint, and what comes twice the inboxes drop.
//! Stopping (Ctrl-C or SIGTERM, or the `shutdown` future) is orderly: no new
//! requests, requests in flight answered, the relay reads its shards to their
//! end and gives its leases up, the consumers drain, the store closed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use outbox_application::ports::{RandomIds, SystemClock};
use outbox_application::{CommandPolicy, CommandService, Service};
use outbox_dynamodb::DynamoStore;
use outbox_lambda::CommandApi;

use super::http_guard::{too_large, GuardedListener};
use super::relay::{LocalRelay, RelayOptions, RelayReport};
use super::stack::Stack;
use super::LocalError;

/// The largest request body accepted.
const MAX_BODY_BYTES: u64 = 1024 * 1024;

/// Options of `outbox-local serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeOptions {
    /// The loopback port to listen on (0: any free port).
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// The relay behind the API (the bus, its leases, where the data lives),
    /// as `relay` takes it.
    #[command(flatten)]
    pub relay: RelayOptions,
}

/// Binds `127.0.0.1:port`.
///
/// # Errors
/// [`LocalError::File`] naming the address when it cannot be bound.
pub async fn bind(port: u16) -> Result<TcpListener, LocalError> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| LocalError::File {
            path: format!("127.0.0.1:{port}"),
            source,
        })
}

/// Serves on `listener` until `shutdown` resolves, then stops in order.
///
/// # Errors
/// [`LocalError`] when the store cannot be opened or the server fails.
pub async fn serve(
    service: &Service,
    options: &ServeOptions,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RelayReport, LocalError> {
    let options = &options.relay;
    let stack = Stack::open(service, &options.stack, true).await?;
    let address = listener.local_addr().ok();
    let layout = stack.layout.clone();
    let commands = CommandService::new(
        Arc::new(DynamoStore::new(stack.dynamodb.clone(), layout.clone())),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        CommandPolicy::default(),
    );
    let api = CommandApi::new(commands, service);
    let relay = LocalRelay::new(service, &stack, options.bus, options.lease.timings()).await?;
    // Said only once the store is open: a bad --data fails before it.
    if let Some(address) = address {
        eprintln!("serving the command API on http://{address} (Ctrl-C or SIGTERM stops)");
    }
    info!(
        address = ?address,
        store = %stack.description,
        dynamodb_endpoint = stack.endpoint.as_deref().unwrap_or("AWS"),
        sent = %super::sent::SentFolder::beside(&options.stack.data).root().display(),
        "serving the command API; documents and emails sent go to the `sent` folder"
    );

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let relay_task = tokio::spawn(relay.run(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    }));
    let router = axum::Router::new().fallback(handle).with_state(api);
    let served = axum::serve(GuardedListener::new(listener, MAX_BODY_BYTES), router)
        .with_graceful_shutdown(shutdown)
        .await;
    info!("no more requests; stopping the relay, then the consumers");
    let _ = stop_tx.send(true);
    let report = relay_task.await.unwrap_or_default();
    stack.close().await?;
    served.map_err(|source| LocalError::File {
        path: address.map_or_else(String::new, |a: SocketAddr| a.to_string()),
        source,
    })?;
    info!(?report, "stopped");
    Ok(report)
}

/// One HTTP request through the Lambda function's handler.
async fn handle(
    State(api): State<CommandApi>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let limit = usize::try_from(MAX_BODY_BYTES).unwrap_or(usize::MAX);
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => return lambda_to_axum(too_large(MAX_BODY_BYTES).into_response()),
    };
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => lambda_http::Body::Text(text),
            Err(binary) => lambda_http::Body::Binary(binary.into_bytes()),
        }
    };
    let response = api
        .handle(&lambda_http::Request::from_parts(parts, body))
        .await;
    lambda_to_axum(response)
}

/// A response of the Lambda handler as axum's.
fn lambda_to_axum(response: lambda_http::Response<lambda_http::Body>) -> axum::response::Response {
    let (parts, body) = response.into_parts();
    axum::response::Response::from_parts(parts, axum::body::Body::from(body.to_vec()))
}
