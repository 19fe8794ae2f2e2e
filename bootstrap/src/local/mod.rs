//! `outbox-local`: the local service and the operator's tools, one binary.
//!
//! - `serve`: the command API over HTTP, the self-hosted relay and the consumers.
//! - `demo`: the declared aggregates' stories with faults, a summary and the invariant check.
//! - `replay`: the outbox events of a time window, published again.
//! - `redrive`: dead letters shown, and chosen ones sent back.
//! - `status`: relay lag, dead letters, consumers and parked aggregates on one screen.
//! - `unpark`: a parked aggregate's held events applied in order, its missing
//!   version skipped on an operator's explicit word.
//! - `console`: the operator's tools as one live web page on a loopback port.
//! - `template`: the deployment template of the service's declaration.
//!
//! Each reads its store from [`stack::StoreArgs`] (embedded dynoxide by
//! default) and, for the operator's tools, its bus and dead-letter queue from
//! [`target::TargetArgs`] (the local bus by default).

pub mod console;
pub mod demo;
pub mod http_guard;
pub mod letter_groups;
pub mod local_bus;
pub mod redrive;
pub mod relay;
pub mod replay;
pub mod sent;
pub mod serve;
pub mod stack;
pub mod status;
pub mod target;
pub mod unpark;

pub use demo::{run, BusKind, DemoOptions, StoreKind};

use std::process::ExitCode;

use clap::Parser;

use outbox_application::{AggregateId, AggregateRef, OutsidePorts, Service};

/// The command line of `outbox-local`.
#[derive(Debug, clap::Parser)]
#[command(
    version,
    about = "The transactional outbox, locally: a service to call, its demo stories, its deployment template, and the operator's tools"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve the command API over HTTP, with the relay and the consumers behind it.
    Serve(serve::ServeOptions),
    /// Run the self-hosted stream relay alone (with the consumers), sharing the shards with any other relay of the table.
    Relay(relay::RelayOptions),
    /// Tell every declared aggregate's demo story with faults and check every invariant.
    Demo(DemoOptions),
    /// Publish the outbox events of a time window again (past the stream's 24 hours).
    Replay(replay::ReplayOptions),
    /// Show dead letters and send chosen ones back where they came from.
    Redrive(redrive::RedriveOptions),
    /// Relay lag per shard, dead letters, what each consumer did, parked aggregates.
    Status(status::StatusOptions),
    /// Apply a parked aggregate's held events in order, skipping its missing version if told.
    Unpark(unpark::UnparkOptions),
    /// Serve the operator's console: the flow, dead letters by cause, parked aggregates and an event's story, with their actions, on a loopback port.
    Console(console::ConsoleOptions),
    /// Write the deployment template (AWS SAM) of the service's declaration and its nested stacks.
    Template(TemplateOptions),
}

/// Where `template` writes.
#[derive(Debug, clap::Args)]
pub struct TemplateOptions {
    /// The directory to write `template.yaml` and `stacks/` into (the repository root).
    #[arg(long, default_value = ".")]
    pub out: std::path::PathBuf,
}

impl Command {
    /// The data file the subcommand works on; the default one for `template`.
    pub fn data(&self) -> &std::path::Path {
        match self {
            Self::Serve(options) => &options.relay.stack.data,
            Self::Relay(options) => &options.stack.data,
            Self::Demo(options) => &options.stack.data,
            Self::Replay(options) => &options.stack.data,
            Self::Redrive(options) => &options.stack.data,
            Self::Status(options) => &options.stack.data,
            Self::Unpark(options) => &options.stack.data,
            Self::Console(options) => &options.stack.data,
            Self::Template(_) => std::path::Path::new(stack::DEFAULT_DATA),
        }
    }
}

/// Why a subcommand could not do its work; shown as one line.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The embedded server did not start.
    #[error(transparent)]
    Embedded(#[from] crate::embedded::EmbeddedError),
    /// The tables could not be set up or described.
    #[error(transparent)]
    Tables(#[from] outbox_dynamodb::TableError),
    /// The data file an operator's tool was given does not exist.
    #[error("no data file at {0}: `serve` and `demo` create one (check --data)")]
    NoDataFile(String),
    /// A table the command needs does not exist.
    #[error("table {0} does not exist (check --table or TABLE_NAME, and the region)")]
    UnknownTable(String),
    /// DynamoDB could not be reached.
    #[error("DynamoDB is unreachable: {0}")]
    Unreachable(String),
    /// The flags or variables are inconsistent.
    #[error("{0}")]
    Config(String),
    /// The service declaration cannot run.
    #[error("the service declaration: {0}")]
    Service(#[from] outbox_application::ServiceError),
    /// The pipeline could not be wired.
    #[error(transparent)]
    Routing(#[from] outbox_memory::PatternError),
    /// The store could not be read or written outside a command.
    #[error("the store failed: {0}")]
    Store(#[source] outbox_application::BoxError),
    /// The outbox archive could not be read.
    #[error(transparent)]
    Replay(#[from] outbox_application::ReplayError),
    /// The dead-letter queue could not be read or written.
    #[error(transparent)]
    DeadLetters(#[from] outbox_application::ports::DeadLetterError),
    /// A parked aggregate could not be unparked.
    #[error(transparent)]
    Unpark(#[from] outbox_application::UnparkError),
    /// The stream could not be read.
    #[error(transparent)]
    Stream(#[from] outbox_dynamodb::StreamRelayError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Parses `TYPE#ID` (e.g. `REPAIR#0196…`), the aggregate's key in the table;
/// its type is checked against the service by [`resolve_aggregate`].
///
/// # Errors
/// What is wrong with it, for clap to show.
pub fn parse_aggregate(raw: &str) -> Result<AggregateRef, String> {
    let (kind, id) = raw
        .split_once('#')
        .ok_or_else(|| format!("`{raw}` is not TYPE#ID, e.g. REPAIR#<uuid>"))?;
    if kind.is_empty() {
        return Err(format!("`{raw}` names no aggregate type"));
    }
    let id = AggregateId::parse(id).map_err(|error| error.to_string())?;
    Ok(AggregateRef::new(kind, id))
}

/// `aggregate` with its type as `service` declares it (`REPAIR` → `Repair`).
///
/// # Errors
/// [`LocalError::Config`] naming the declared types when it is none of them.
pub fn resolve_aggregate(
    service: &Service,
    aggregate: &AggregateRef,
) -> Result<AggregateRef, LocalError> {
    let kind = &aggregate.aggregate_type;
    let aggregate_type = service.aggregate_type(kind).ok_or_else(|| {
        let known: Vec<String> = service
            .aggregates()
            .iter()
            .map(|a| a.aggregate_type().to_uppercase())
            .collect();
        LocalError::Config(format!(
            "`{}` is no aggregate type ({})",
            kind.chars().take(64).collect::<String>(),
            known.join(" or ")
        ))
    })?;
    Ok(AggregateRef::new(aggregate_type, aggregate.aggregate_id))
}

/// Runs `outbox-local` for the service `declare` declares: parses the command
/// line, declares the service with ports that write what it sends into the
/// [`SentFolder`](sent::SentFolder) beside the data file, runs the subcommand,
/// prints its report; every error is one line on standard error and a non-zero
/// exit. A service's `outbox-local` binary is this one call.
pub fn main(declare: impl FnOnce(&OutsidePorts) -> Service) -> ExitCode {
    let cli = Cli::parse();
    let service = declare(&sent::SentFolder::beside(cli.command.data()).ports());
    let service = &service;
    // `serve` tells what flows through it; the tools only what goes wrong.
    let default_log = match cli.command {
        Command::Serve(_) | Command::Relay(_) => "info",
        // The console keeps running past a failed read: say so.
        Command::Console(_) => "warn",
        _ => "error",
    };
    crate::logging::init(default_log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_command(service, cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The exit code of a run a signal stopped (128 + SIGINT's 2, as shells report it).
const INTERRUPTED: u8 = 130;

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM (what ECS, Kubernetes and
/// systemd send to stop a program); on a platform without SIGTERM, on Ctrl-C.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
                return;
            }
            Err(error) => tracing::warn!(%error, "SIGTERM cannot be caught; Ctrl-C stops"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Runs one subcommand for `service`.
///
/// # Errors
/// [`LocalError`], shown as one line.
pub async fn run_command(service: &Service, command: Command) -> Result<ExitCode, LocalError> {
    service.validate()?;
    match command {
        Command::Serve(options) => {
            let listener = serve::bind(options.port).await?;
            let report = serve::serve(service, &options, listener, stop_signal()).await?;
            eprintln!(
                "stopped: {} published, {} applied, {} calls made, {} duplicates dropped",
                report.published,
                report.consumed.applied,
                report.consumed.called,
                report.consumed.duplicates
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Relay(options) => {
            eprintln!("relaying the outbox stream (Ctrl-C or SIGTERM stops)");
            let report = relay::relay(service, &options, stop_signal()).await?;
            eprintln!(
                "stopped: {} published ({} republished over trimmed gaps), {} applied, {} calls made, {} duplicates dropped",
                report.published,
                report.republished,
                report.consumed.applied,
                report.consumed.called,
                report.consumed.duplicates
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(options) => {
            let report = demo::run(service, &options).await?;
            print!("{report}");
            Ok(if report.violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Replay(options) => {
            // Stopped at any instant, the position file still holds the first
            // page not yet delivered (published, to a deployed bus).
            tokio::select! {
                report = replay::replay(service, &options) => {
                    print!("{}", report?);
                    Ok(ExitCode::SUCCESS)
                }
                () = stop_signal() => {
                    eprintln!("{}", replay::interrupted(&options));
                    Ok(ExitCode::from(INTERRUPTED))
                }
            }
        }
        Command::Redrive(options) => {
            let report = redrive::redrive(service, &options).await?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(options) => {
            let status = status::status(service, &options).await?;
            if options.json {
                let json = serde_json::to_string_pretty(&status)
                    .map_err(|error| LocalError::Config(error.to_string()))?;
                println!("{json}");
            } else {
                print!("{status}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Unpark(options) => {
            let report = unpark::unpark(service, &options).await?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Console(options) => {
            let listener = console::bind(&options).await?;
            console::serve(service, &options, listener, stop_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Template(options) => {
            for rendered in crate::deploy::templates(service) {
                let path = options.out.join(rendered.path);
                let written = path
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::write(&path, rendered.text));
                written.map_err(|source| LocalError::File {
                    path: path.display().to_string(),
                    source,
                })?;
                println!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)] // A panic is how these tests fail.

    /// A plain `kill` (SIGTERM) stops `serve` as Ctrl-C does, instead of
    /// ending the process at once with its queues unconsumed.
    #[tokio::test]
    async fn sigterm_is_a_stop_signal() {
        let stopped = tokio::spawn(super::stop_signal());
        // The handler is installed once the task has run; SIGTERM before that
        // would end the test process, so wait for it.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!stopped.is_finished(), "nothing has been sent yet");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(std::time::Duration::from_secs(5), stopped)
            .await
            .expect("SIGTERM resolves the stop signal")
            .unwrap();
    }
}
