//! Logging setup shared by the binaries.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Sends `tracing` output to standard error, filtered by `RUST_LOG` (else
/// `default`, the embedded server's answers quiet), coloured only on a
/// terminal and without `NO_COLOR`: a log redirected to a file carries no
/// escape codes.
pub fn init(default: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directives(default)));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty()),
        ))
        .init();
}

/// The filter `default` stands for: the embedded dynoxide server logs every
/// refused request as a warning, yet most are answers the program expects and
/// handles (a table or lease that exists, a repeated command or delivery), and
/// the program reports the failures that matter itself.
fn directives(default: &str) -> String {
    format!("{default},dynoxide::server=error")
}

/// Whether to colour the log: on a terminal, unless `NO_COLOR` is set (no-color.org).
fn colours(terminal: bool, no_color: bool) -> bool {
    terminal && !no_color
}

#[cfg(test)]
mod tests {
    use super::{colours, directives};
    use tracing_subscriber::EnvFilter;

    /// A log written into memory.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_embedded_servers_refusals_stay_out_of_the_default_log() {
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(directives("info")))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "dynoxide::server", operation = "CreateTable", "error response");
            tracing::error!(target: "dynoxide::server", "the server failed");
            tracing::info!(target: "outbox_bootstrap::local::serve", "serving");
        });
        let text = String::from_utf8(log.0.lock().map(|l| l.clone()).unwrap_or_default())
            .unwrap_or_default();
        assert!(!text.contains("CreateTable"), "{text}");
        assert!(text.contains("the server failed"), "{text}");
        assert!(text.contains("serving"), "{text}");
    }

    #[test]
    fn only_a_terminal_without_no_color_gets_colours() {
        assert!(colours(true, false));
        assert!(!colours(false, false), "a file or a pipe");
        assert!(!colours(true, true), "NO_COLOR");
        assert!(!colours(false, true));
    }
}
