//! The `outbox-local` binary as an operator runs it: what it says on standard
//! error when its data file is no database, and on a second start of `serve`
//! on one data file, stopped by a plain `kill` (SIGTERM).

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn data_file(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("outbox-binary-{name}-{}.db", uuid::Uuid::now_v7()))
}

#[test]
fn serve_on_a_file_that_is_no_database_fails_before_it_says_it_serves() {
    let data = data_file("garbage");
    std::fs::write(&data, "not a database at all").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_outbox-local"))
        .args(["serve", "--port", "0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("error: cannot open the dynoxide database"),
        "{stderr}"
    );
    assert!(!stderr.contains("serving"), "{stderr}");
    let _ = std::fs::remove_file(&data);
}

/// Runs `serve` on `data` until it says it serves, stops it with SIGTERM,
/// and returns everything it wrote to standard error.
#[cfg(unix)]
fn serve_once(data: &std::path::Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_outbox-local"))
        .args(["serve", "--port", "0", "--data"])
        .arg(data)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = String::new();
    let started = Instant::now();
    for line in lines.by_ref() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.contains("serving the command API on") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{said}");
    }
    // The relay takes its lease and reads once before the stop.
    std::thread::sleep(Duration::from_millis(500));
    let killed = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    for line in lines {
        said.push_str(&line.unwrap());
        said.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM stops serve in order: {said}");
    said
}

#[cfg(unix)]
#[test]
fn a_second_serve_on_one_data_file_starts_without_warnings_and_stops_on_sigterm() {
    let data = data_file("twice");
    serve_once(&data);
    let second = serve_once(&data);
    assert!(!second.contains("WARN"), "{second}");
    assert!(!second.contains("CreateTable"), "{second}");
    assert!(second.contains("stopped:"), "{second}");
    let _ = std::fs::remove_file(&data);
}
