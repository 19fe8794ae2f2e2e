//! Logging setup shared by the binaries.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Sends `tracing` output to standard error, filtered by `RUST_LOG` (else
/// `default`), coloured only on a terminal and without `NO_COLOR`: a log
/// redirected to a file carries no escape codes.
pub fn init(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty()),
        ))
        .init();
}

/// Whether to colour the log: on a terminal, unless `NO_COLOR` is set (no-color.org).
fn colours(terminal: bool, no_color: bool) -> bool {
    terminal && !no_color
}

#[cfg(test)]
mod tests {
    use super::colours;

    #[test]
    fn only_a_terminal_without_no_color_gets_colours() {
        assert!(colours(true, false));
        assert!(!colours(false, false), "a file or a pipe");
        assert!(!colours(true, true), "NO_COLOR");
        assert!(!colours(false, true));
    }
}
