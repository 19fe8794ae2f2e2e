//! `console`: the operator's tools as one web page, served on a loopback port
//! (another address only with `--allow-remote`), against the store and the
//! target the other tools take. The page is rendered on the server and reads
//! with JavaScript off; its script only refreshes it. It shows the flow
//! (events committed, relayed and applied per consumer, charted from samples
//! of the counters `status` reads, and the relay's lag per shard), the dead
//! letters by cause, the parked aggregates and an event's story; its actions
//! (redrive a cause or a letter, unpark with or without a recorded skip) run
//! the use cases `redrive` and `unpark` run, and are refused without the
//! session's token or from another site ([`session`]).
//!
//! Routes: `GET /` (the page; `?story=<event id or TYPE#ID>` tells a story),
//! `GET /live` (its live part, for the script), `GET /console.css`,
//! `GET /console.js`, `GET /favicon.svg`, `POST /actions/redrive` (`cause` or `letter`) and
//! `POST /actions/unpark` (`consumer`, `aggregate`, and `skip`, `by`, `why`).

pub mod form;
pub mod page;
pub mod session;
pub mod story;
pub mod view;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;

use outbox_application::{LetterFilter, Service};

use super::http_guard::GuardedListener;
use super::redrive::{send_back, Letters};
use super::stack::{Stack, StoreArgs};
use super::target::{Target, TargetArgs};
use super::unpark::{unpark_in, Skip, UnparkRequest};
use super::{parse_aggregate, LocalError};
use form::Form;
use session::Session;
use story::Lookup;
use view::{History, Snapshot, MAX_LETTERS};

/// The largest action body accepted.
const MAX_BODY_BYTES: u64 = 16 * 1024;

/// Options of `outbox-local console`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleOptions {
    /// The port to listen on (0: any free port).
    #[arg(long, default_value_t = 3001)]
    pub port: u16,
    /// The address to listen on; one that is not loopback needs --allow-remote.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Listen on an address that is not loopback: whoever reaches it reads the
    /// console (actions still need the page's session token).
    #[arg(long)]
    pub allow_remote: bool,
    /// Seconds between two samples of the counters (1–300).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub every: u64,
    /// Where the data lives.
    #[command(flatten)]
    pub stack: StoreArgs,
    /// Where events go and letters are.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Binds the address `options` name, refusing one that is not loopback
/// unless `--allow-remote` says so.
///
/// # Errors
/// [`LocalError::Config`] for a remote address without `--allow-remote`;
/// [`LocalError::File`] naming the address when it cannot be bound.
pub async fn bind(options: &ConsoleOptions) -> Result<TcpListener, LocalError> {
    if !options.bind.is_loopback() && !options.allow_remote {
        return Err(LocalError::Config(format!(
            "--bind {} is not a loopback address: the console's actions change the store; add --allow-remote to serve it there anyway",
            options.bind
        )));
    }
    let address = SocketAddr::new(options.bind, options.port);
    TcpListener::bind(address)
        .await
        .map_err(|source| LocalError::File {
            path: address.to_string(),
            source,
        })
}

/// The running console.
struct Console {
    stack: Stack,
    target: Target,
    store: StoreArgs,
    target_args: TargetArgs,
    every: u64,
    session: Session,
    /// Whether a read of the letters hides them for a while (SQS).
    hides: bool,
    seen: Mutex<(Option<Arc<Snapshot>>, History)>,
    /// One action at a time, and no sample in the middle of one.
    acting: tokio::sync::Mutex<()>,
}

impl Console {
    /// Reads a snapshot and keeps it, with its sample.
    async fn sample(&self) -> Result<Arc<Snapshot>, LocalError> {
        let previous = self.latest();
        let snapshot = Arc::new(
            Snapshot::read(
                &self.stack,
                (&self.store, &self.target_args),
                &self.target,
                previous.as_deref(),
                self.hides,
            )
            .await?,
        );
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.1.push(snapshot.sample());
        seen.0 = Some(Arc::clone(&snapshot));
        Ok(snapshot)
    }

    fn latest(&self) -> Option<Arc<Snapshot>> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    /// The latest snapshot, read now if there is none yet.
    async fn snapshot(&self) -> Result<Arc<Snapshot>, LocalError> {
        match self.latest() {
            Some(snapshot) => Ok(snapshot),
            None => self.sample().await,
        }
    }
}

/// Serves the console on `listener` until `shutdown` resolves.
///
/// # Errors
/// [`LocalError`] when the store cannot be opened or read, or the server fails.
pub async fn serve(
    service: &Service,
    options: &ConsoleOptions,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LocalError> {
    let stack = Stack::open(service, &options.stack, false).await?;
    let target = Target::resolve(&options.target, &stack)?;
    let console = Arc::new(Console {
        stack,
        target,
        store: options.stack.clone(),
        target_args: options.target.clone(),
        every: options.every,
        session: Session::new(),
        hides: options.target.dead_letter_queue_url.is_some(),
        seen: Mutex::new((None, History::default())),
        acting: tokio::sync::Mutex::new(()),
    });
    // A store that cannot be read fails the start, not the first page.
    console.sample().await?;
    let address = listener.local_addr().ok();
    if let Some(address) = address {
        eprintln!("the console is on http://{address}/ (Ctrl-C or SIGTERM stops)");
    }
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let sampler = {
        let console = Arc::clone(&console);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(console.every));
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stop_rx.wait_for(|stop| *stop) => break,
                }
                let _acting = console.acting.lock().await;
                if let Err(error) = console.sample().await {
                    tracing::warn!(%error, "the console could not read the store");
                }
            }
        })
    };
    let router = axum::Router::new()
        .route("/", axum::routing::get(page))
        .route("/live", axum::routing::get(live))
        .route("/console.css", axum::routing::get(stylesheet))
        .route("/console.js", axum::routing::get(script))
        .route("/favicon.svg", axum::routing::get(icon))
        .route("/actions/redrive", axum::routing::post(redrive))
        .route("/actions/unpark", axum::routing::post(unpark))
        .fallback(not_found)
        .with_state(Arc::clone(&console));
    let served = axum::serve(GuardedListener::new(listener, MAX_BODY_BYTES), router)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_tx.send(true);
    let _ = sampler.await;
    if let Ok(console) = Arc::try_unwrap(console) {
        console.stack.close().await?;
    }
    served.map_err(|source| LocalError::File {
        path: address.map_or_else(String::new, |a| a.to_string()),
        source,
    })
}

/// An HTML answer with the console's headers: no framing by another site,
/// scripts and styles from the console only, nothing cached.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A failure to read the store, as a page.
fn failed(error: &LocalError) -> Response {
    html(
        StatusCode::BAD_GATEWAY,
        page::outcome("The store could not be read", &error.to_string(), false),
    )
}

/// The page, or its live part, with the story `?story=` asks for.
async fn render(console: &Console, uri: &Uri, whole: bool) -> Response {
    let snapshot = match console.snapshot().await {
        Ok(snapshot) => snapshot,
        Err(error) => return failed(&error),
    };
    let query = match Form::parse(uri.query().unwrap_or("")) {
        Ok(query) => query,
        Err(error) => {
            return html(
                StatusCode::BAD_REQUEST,
                page::outcome("Bad query", &error.to_string(), false),
            )
        }
    };
    let asked = query.get("story").unwrap_or("").trim().to_owned();
    let story = if asked.is_empty() {
        None
    } else {
        Some(match Lookup::parse(&console.stack.service, &asked) {
            Ok(lookup) => story::tell(&console.stack, &snapshot, &lookup, &asked)
                .await
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        })
    };
    let history = console
        .seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .1
        .clone();
    let data = page::PageData {
        snapshot: &snapshot,
        history: &history,
        token: console.session.token(),
        every: console.every,
        target: &console.target.description,
        story,
        asked: &asked,
    };
    html(
        StatusCode::OK,
        if whole {
            page::page(&data)
        } else {
            page::live(&data)
        },
    )
}

async fn page(State(console): State<Arc<Console>>, uri: Uri) -> Response {
    render(&console, &uri, true).await
}

async fn live(State(console): State<Arc<Console>>, uri: Uri) -> Response {
    render(&console, &uri, false).await
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        page::STYLESHEET,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        page::SCRIPT,
    )
        .into_response()
}

async fn icon() -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml")], page::ICON).into_response()
}

async fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        page::outcome("Not found", "The console has no such page.", false),
    )
}

/// Why an action was refused before it ran.
struct Refusal {
    status: StatusCode,
    why: String,
}

impl Refusal {
    fn response(self) -> Response {
        html(self.status, page::outcome("Refused", &self.why, false))
    }
}

/// An action's form, once the session accepts it; the refusal otherwise.
fn accepted(console: &Console, headers: &HeaderMap, body: &[u8]) -> Result<Form, Refusal> {
    let bad = |why: String| Refusal {
        status: StatusCode::BAD_REQUEST,
        why,
    };
    let forbidden = |why: String| Refusal {
        status: StatusCode::FORBIDDEN,
        why,
    };
    let form = std::str::from_utf8(body)
        .map_err(|_| bad("the form is not UTF-8".into()))
        .and_then(|text| Form::parse(text).map_err(|error| bad(error.to_string())));
    // A request from another site is refused whatever its body.
    let form = match form {
        Ok(form) => form,
        Err(refusal) => {
            return Err(match console.session.check(headers, None) {
                Err(session::Refused::CrossSite(why)) => forbidden(why),
                _ => refusal,
            })
        }
    };
    console
        .session
        .check(headers, form.get("token"))
        .map_err(|refused| forbidden(refused.to_string()))?;
    Ok(form)
}

/// The answer to an action that ran, or could not.
async fn answered(console: &Console, title: &str, result: Result<String, LocalError>) -> Response {
    // The page shows what the action did at once.
    if let Err(error) = console.sample().await {
        tracing::warn!(%error, "the console could not read the store after an action");
    }
    match result {
        Ok(text) => html(StatusCode::OK, page::outcome(title, &text, true)),
        Err(error) => {
            let status = match error {
                LocalError::Config(_) | LocalError::Service(_) | LocalError::Unpark(_) => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::BAD_GATEWAY,
            };
            html(status, page::outcome(title, &error.to_string(), false))
        }
    }
}

async fn redrive(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = match accepted(&console, &headers, &body) {
        Ok(form) => form,
        Err(refusal) => return refusal.response(),
    };
    let filter = LetterFilter {
        cause: form.get("cause").map(str::to_owned),
        letter: form.get("letter").map(str::to_owned),
        ..LetterFilter::default()
    };
    let _acting = console.acting.lock().await;
    let result = if filter == LetterFilter::default() {
        Err(LocalError::Config(
            "choose a cause or a letter to redrive".into(),
        ))
    } else {
        let snapshot = console.latest();
        let letters = match &snapshot {
            Some(snapshot) if console.hides => Letters::Listed(&snapshot.listed),
            _ => Letters::Read(MAX_LETTERS),
        };
        send_back(&console.target, &filter, letters)
            .await
            .map(|report| report.to_string())
    };
    answered(&console, "Redrive", result).await
}

async fn unpark(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = match accepted(&console, &headers, &body) {
        Ok(form) => form,
        Err(refusal) => return refusal.response(),
    };
    let _acting = console.acting.lock().await;
    let result = async {
        let skip = match form.get("skip") {
            Some(_) => Some(Skip::new(
                form.get("by").unwrap_or(""),
                form.get("why").unwrap_or(""),
            )?),
            None => None,
        };
        let aggregate =
            parse_aggregate(form.get("aggregate").unwrap_or("")).map_err(LocalError::Config)?;
        let request = UnparkRequest::new(
            &console.stack.service,
            form.get("consumer").unwrap_or(""),
            &aggregate,
            skip,
        )?;
        unpark_in(&console.stack, &console.target_args, &request)
            .await
            .map(|report| report.to_string())
    }
    .await;
    answered(&console, "Unpark", result).await
}
