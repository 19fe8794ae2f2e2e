//! `outbox-local`: the local service (`serve`), the seed stories (`demo`) and
//! the operator's tools (`replay`, `redrive`, `status`, `unpark`). Every error is one
//! line on standard error and a non-zero exit.

use std::process::ExitCode;

use clap::Parser;

use outbox_bootstrap::local::{demo, redrive, replay, serve, status, unpark, Cli, Command, LocalError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` tells what flows through it; the tools only what goes wrong.
    let default_log = match cli.command {
        Command::Serve(_) => "info",
        _ => "error",
    };
    outbox_bootstrap::logging::init(default_log);
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
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<ExitCode, LocalError> {
    match command {
        Command::Serve(options) => {
            let listener = serve::bind(options.port).await?;
            if let Ok(address) = listener.local_addr() {
                eprintln!("serving the command API on http://{address} (Ctrl-C stops)");
            }
            let report = serve::serve(&options, listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
            eprintln!(
                "stopped: {} published, {} applied, {} duplicates dropped",
                report.published, report.consumed.applied, report.consumed.duplicates
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(options) => {
            let report = demo::run(&options).await?;
            print!("{report}");
            Ok(if report.violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Replay(options) => {
            let report = replay::replay(&options).await?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Redrive(options) => {
            let report = redrive::redrive(&options).await?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(options) => {
            let status = status::status(&options).await?;
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
            let report = unpark::unpark(&options).await?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
