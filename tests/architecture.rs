//! The crate graph is the architecture: the core crates name no I/O runtime and
//! no AWS crate, and no framework crate names the service it runs: not the
//! seed stories, not the helpdesk, not any aggregate, event type, source,
//! route or consumer the deployed declaration holds.

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
            "outbox-application",
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
            "outbox-memory",
            "outbox-dynamodb",
            "outbox-eventbridge",
            "outbox-sqs",
            "outbox-s3",
            "outbox-ses",
        ],
    );
}

#[test]
fn the_memory_adapter_pulls_no_aws_sdk() {
    assert_free_of(
        "adapters/memory",
        &[
            "aws",
            "lambda",
            "serde_dynamo",
            "outbox-simulation",
            "outbox-bootstrap",
        ],
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
        "adapters/s3",
        "adapters/ses",
        "adapters/lambda",
    ] {
        assert_free_of(adapter, &["outbox-simulation"]);
    }
}

#[test]
fn the_dynamodb_adapter_names_no_other_adapter_and_no_emulator() {
    assert_free_of(
        "adapters/dynamodb",
        &[
            "outbox-memory",
            "outbox-bootstrap",
            "dynoxide",
            "lambda_runtime",
        ],
    );
}

#[test]
fn the_bus_and_queue_adapters_name_only_their_own_sdk() {
    for adapter in ["adapters/eventbridge", "adapters/sqs"] {
        assert_free_of(
            adapter,
            &[
                "outbox-memory",
                "outbox-dynamodb",
                "outbox-bootstrap",
                "lambda",
                "aws-sdk-dynamodb",
                "aws_lambda_events",
            ],
        );
    }
}

#[test]
fn the_outside_adapters_name_only_their_own_sdk() {
    for (adapter, other_sdk) in [
        ("adapters/s3", "aws-sdk-sesv2"),
        ("adapters/ses", "aws-sdk-s3"),
    ] {
        assert_free_of(
            adapter,
            &[
                "outbox-memory",
                "outbox-dynamodb",
                "outbox-bootstrap",
                "lambda",
                "aws-sdk-dynamodb",
                "aws_lambda_events",
                other_sdk,
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
            "outbox-memory",
            "outbox-bootstrap",
        ],
    );
}

/// The toolkit's crates: everything but the services built on it.
const FRAMEWORK: [&str; 12] = [
    "domain",
    "application",
    "adapters/memory",
    "adapters/dynamodb",
    "adapters/eventbridge",
    "adapters/sqs",
    "adapters/s3",
    "adapters/ses",
    "adapters/lambda",
    "bootstrap",
    "bootstrap/simulation",
    "bootstrap/src/deploy",
];

/// What the deployed service declares: identifiers (matched as whole words)
/// and strings (matched anywhere in code).
fn declared_names() -> (Vec<String>, Vec<String>) {
    let service = outbox_reference::service(&outbox_memory::MemoryOutside::new().ports());
    let mut words = vec![
        "outbox_seeds".to_owned(),
        "outbox_seeds_domain".to_owned(),
        "helpdesk".to_owned(),
        "outbox_reference".to_owned(),
    ];
    let mut strings = Vec::new();
    for aggregate in service.aggregates() {
        words.push(aggregate.aggregate_type().to_owned());
        words.extend(aggregate.event_types().iter().map(|t| (*t).to_owned()));
        strings.push(aggregate.source().to_owned());
        strings.extend(aggregate.collection().map(|c| format!("\"{c}\"")));
        strings.extend(aggregate.collection().map(|c| format!("/{c}")));
    }
    for reaction in service.consumers() {
        words.push(outbox_bootstrap::deploy::logical_id(reaction.name()));
        strings.push(format!("\"{}\"", reaction.name()));
    }
    (words, strings)
}

/// The non-comment lines of a framework crate's production code, and its
/// template fragments.
fn framework_lines(crate_dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir);
    let sources = if crate_dir.ends_with("deploy") {
        let mut fragments = Vec::new();
        for entry in std::fs::read_dir(&root).expect("the template fragments") {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).expect("a fragment");
                fragments.push((path.display().to_string(), text));
            }
        }
        fragments
    } else {
        production_code(crate_dir)
    };
    sources
        .into_iter()
        .flat_map(|(file, code)| {
            code.lines()
                .filter(|line| {
                    let line = line.trim_start();
                    !line.starts_with("//") && !line.starts_with('#')
                })
                .map(|line| (file.clone(), line.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn no_framework_crate_depends_on_a_service() {
    for crate_dir in FRAMEWORK.iter().filter(|dir| !dir.ends_with("deploy")) {
        assert_free_of(crate_dir, &["outbox-seeds", "helpdesk", "outbox-reference"]);
    }
}

#[test]
fn no_framework_crate_names_an_aggregate_event_source_route_or_consumer_of_a_service() {
    let (words, strings) = declared_names();
    assert!(
        words.contains(&"RepairCompleted".to_owned()),
        "the names are read: {words:?}"
    );
    assert!(
        strings.contains(&"\"order-tracking\"".to_owned()),
        "{strings:?}"
    );
    for crate_dir in FRAMEWORK {
        let lines = framework_lines(crate_dir);
        assert!(!lines.is_empty(), "{crate_dir} is read");
        for (file, line) in lines {
            for token in line.split(|c: char| !c.is_alphanumeric() && c != '_') {
                assert!(
                    !words.iter().any(|word| word == token),
                    "{file} names {token}: {line}"
                );
            }
            for string in &strings {
                assert!(
                    !line.contains(string.as_str()),
                    "{file} names {string}: {line}"
                );
            }
        }
    }
}

/// The SDK crates go without `default-https-client`, which links aws-lc into
/// every binary whatever HTTP client is given (`bootstrap/src/https.rs`): no
/// package of the lock file may bring it back.
#[test]
fn no_crate_links_aws_lc() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("Cargo.lock");
    let text = std::fs::read_to_string(&lock)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", lock.display()));
    let packages: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("name = \""))
        .filter_map(|name| name.strip_suffix('"'))
        .collect();
    assert!(packages.contains(&"ring"), "rustls' ring is locked");
    for package in packages {
        assert!(
            !package.starts_with("aws-lc"),
            "{package} is locked: a dependency turned on aws-lc (`cargo tree -i {package} -e features`)"
        );
    }
}
