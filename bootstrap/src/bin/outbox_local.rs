//! `outbox-local`: runs the seed stories through the whole outbox pipeline in one
//! process and reports what happened and whether every invariant held.

use std::process::ExitCode;

use clap::Parser;

use bootstrap::local::{run, LocalOptions};

fn main() -> ExitCode {
    bootstrap::logging::init();
    let options = LocalOptions::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(run(&options)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    print!("{report}");
    if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
