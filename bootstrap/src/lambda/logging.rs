//! Structured JSON logs for the Lambda functions: one object per line on
//! standard output, with the span fields (the runtime's `requestId`, and the
//! handlers' `correlation_id` and `event_id`) on every line.
//!
//! The filter is a list of `target=level` directives (`Targets`), not an
//! `EnvFilter`: the latter's span and field directives compile regular
//! expressions at every cold start and link a regex engine into every binary,
//! for filters a function's log level never uses.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the JSON subscriber, filtered by `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else `info`.
pub fn init() {
    let filter = filter(
        std::env::var("RUST_LOG").ok(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok(),
    );
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_target(false)
        .finish()
        .with(filter)
        .try_init();
}

/// `rust_log`'s directives (e.g. `info,outbox_lambda=debug`) where they
/// parse, else every target at `lambda_level` (Lambda's `DEBUG`, `WARN`, …),
/// else every target at `info`.
fn filter(rust_log: Option<String>, lambda_level: Option<String>) -> Targets {
    rust_log
        .filter(|directives| !directives.trim().is_empty())
        .and_then(|directives| directives.parse::<Targets>().ok())
        .or_else(|| {
            lambda_level
                .and_then(|level| level.trim().parse::<LevelFilter>().ok())
                .map(|level| Targets::new().with_default(level))
        })
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn given(rust_log: Option<&str>, lambda_level: Option<&str>) -> Targets {
        filter(rust_log.map(str::to_owned), lambda_level.map(str::to_owned))
    }

    #[test]
    fn rust_log_first_then_the_lambda_level_then_info() {
        let directives = given(Some("warn,outbox_lambda=debug"), Some("ERROR"));
        assert!(directives.would_enable("outbox_lambda", &Level::DEBUG));
        assert!(!directives.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(directives.would_enable("aws_smithy_runtime", &Level::WARN));

        let lambda = given(None, Some("DEBUG"));
        assert!(lambda.would_enable("outbox_bootstrap", &Level::DEBUG));
        assert!(!lambda.would_enable("outbox_bootstrap", &Level::TRACE));

        for (rust_log, lambda_level) in [
            (None, None),
            (Some(""), None),
            (Some("=what"), Some("FATAL")),
        ] {
            let default = given(rust_log, lambda_level);
            assert!(default.would_enable("outbox_lambda", &Level::INFO));
            assert!(
                !default.would_enable("outbox_lambda", &Level::DEBUG),
                "{rust_log:?} {lambda_level:?}"
            );
        }
    }
}
