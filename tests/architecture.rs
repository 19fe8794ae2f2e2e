//! The crate graph is the architecture: the core crates name no I/O runtime and no AWS crate.

use std::path::Path;

/// The names in the `[dependencies]` table of a crate's manifest.
fn dependencies(crate_dir: &str) -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", manifest.display()));
    text.lines()
        .skip_while(|line| line.trim() != "[dependencies]")
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('['))
        .filter_map(|line| line.split(['=', '.']).next())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .collect()
}

fn assert_free_of(crate_dir: &str, forbidden: &[&str]) {
    let deps = dependencies(crate_dir);
    assert!(!deps.is_empty(), "{crate_dir} has a [dependencies] table");
    for dep in &deps {
        for banned in forbidden {
            assert!(
                !dep.starts_with(banned),
                "{crate_dir} must not depend on {dep}"
            );
        }
    }
}

#[test]
fn the_domain_is_pure() {
    assert_free_of(
        "domain",
        &[
            "aws",
            "lambda",
            "tokio",
            "async",
            "futures",
            "reqwest",
            "hyper",
            "serde_dynamo",
            "application",
        ],
    );
}

#[test]
fn the_application_names_no_adapter() {
    assert_free_of(
        "application",
        &[
            "aws",
            "lambda",
            "tokio",
            "hyper",
            "reqwest",
            "serde_dynamo",
            "memory-adapter",
            "dynamodb-adapter",
            "eventbridge-adapter",
            "sqs-adapter",
        ],
    );
}

#[test]
fn the_memory_adapter_pulls_no_aws_sdk() {
    assert_free_of(
        "adapters/memory",
        &["aws", "lambda", "serde_dynamo", "simulation", "bootstrap"],
    );
}

/// The code of a crate's `src`, each file cut at its test module.
fn production_code(crate_dir: &str) -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source folder") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                let code = text
                    .split("#[cfg(test)]")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                files.push((path.display().to_string(), code));
            }
        }
    }
    files
}

#[test]
fn the_memory_adapter_names_no_reaction_and_no_concrete_aggregate() {
    let files = production_code("adapters/memory");
    assert!(files.len() >= 5, "the memory adapter's files are read");
    for (file, code) in files {
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for path in [
                "outbox_seeds_domain::repair",
                "outbox_seeds_domain::order",
                "outbox_seeds::reactions",
            ] {
                assert!(!line.contains(path), "{file} names {path}: {line}");
            }
            let names = line.split(|c: char| !c.is_alphanumeric() && c != '_');
            for name in names {
                assert!(
                    !["Repair", "Order", "RepairEvent", "OrderEvent", "reactions"].contains(&name),
                    "{file} names {name}: {line}"
                );
            }
        }
    }
}

#[test]
fn the_adapters_do_not_depend_on_the_simulation() {
    for adapter in [
        "adapters/memory",
        "adapters/dynamodb",
        "adapters/eventbridge",
        "adapters/sqs",
        "adapters/lambda",
    ] {
        assert_free_of(adapter, &["simulation"]);
    }
}

#[test]
fn the_dynamodb_adapter_names_no_other_adapter_and_no_emulator() {
    assert_free_of(
        "adapters/dynamodb",
        &["memory-adapter", "bootstrap", "dynoxide", "lambda_runtime"],
    );
}

#[test]
fn the_bus_and_queue_adapters_name_only_their_own_sdk() {
    for adapter in ["adapters/eventbridge", "adapters/sqs"] {
        assert_free_of(
            adapter,
            &[
                "memory-adapter",
                "dynamodb-adapter",
                "bootstrap",
                "lambda",
                "aws-sdk-dynamodb",
                "aws_lambda_events",
            ],
        );
    }
}

#[test]
fn the_lambda_handlers_build_no_sdk_client_and_run_no_runtime_loop() {
    assert_free_of(
        "adapters/lambda",
        &[
            "aws-sdk",
            "aws-config",
            "lambda_runtime",
            "memory-adapter",
            "bootstrap",
        ],
    );
}
