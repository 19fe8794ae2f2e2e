//! The local program on its default store, embedded dynoxide with a data file:
//! every invariant holds under faults, and the data survives a restart; and on
//! a Custom Event Bus, every invariant of its promise holds under faults.

use clap::Parser;
use outbox_bootstrap::local::{run, BusKind, Cli, Command, DemoOptions, StoreKind};

/// The options of `outbox-local demo <args>`, as the binary parses them.
fn demo(args: &[&str]) -> DemoOptions {
    let line = ["outbox-local", "demo"].iter().chain(args);
    match Cli::parse_from(line).command {
        Command::Demo(options) => options,
        other => panic!("not a demo: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_stories_hold_under_faults_and_the_data_survives_a_restart() {
    let data = std::env::temp_dir().join(format!("outbox-local-{}.db", uuid::Uuid::now_v7()));
    let data_arg = data.display().to_string();
    let options = demo(&[
        "--fault-rate",
        "0.25",
        "--stories",
        "4",
        "--data",
        &data_arg,
    ]);
    assert_eq!(options.store, StoreKind::Dynoxide);

    let first = run(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &options,
    )
    .await
    .expect("first run");
    assert!(first.violations.is_empty(), "{first}");
    assert_eq!(first.aggregates_stored, 8, "{first}");
    assert!(
        first.to_string().contains("8 (earlier runs included)"),
        "{first}"
    );
    // Invoicing and customer notification call out once per completed repair.
    assert_eq!(first.calls_completed, 8, "{first}");
    assert!(
        first.to_string().contains("calls completed        8"),
        "{first}"
    );
    assert!(first.faults_injected > 0, "{first}");
    assert!(
        first.stats.dead_lettered >= 1,
        "the malformed record is dead-lettered: {first}"
    );
    // The operator's tools see the letters the demo reported.
    let Command::Status(status_options) =
        Cli::parse_from(["outbox-local", "status", "--data", &data_arg]).command
    else {
        unreachable!("a status command line")
    };
    let status = outbox_bootstrap::local::status::status(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &status_options,
    )
    .await
    .expect("status reads the data");
    assert_eq!(
        status.dead_letters, first.stats.dead_lettered as u64,
        "{status}\n{first}"
    );

    let second = run(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &options,
    )
    .await
    .expect("second run on the same data");
    assert!(second.violations.is_empty(), "{second}");
    assert_eq!(
        second.aggregates_stored, 16,
        "the first run's aggregates are still there: {second}"
    );

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{data_arg}{suffix}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_custom_event_bus_the_seed_stories_hold_under_faults() {
    let options = demo(&[
        "--store",
        "memory",
        "--bus",
        "custom",
        "--fault-rate",
        "0.3",
        "--stories",
        "6",
    ]);
    assert_eq!(options.bus, BusKind::Custom);
    let report = run(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &options,
    )
    .await
    .expect("the run");
    assert!(report.violations.is_empty(), "{report}");
    assert!(report.faults_injected > 0, "{report}");
    assert_eq!(report.aggregates_stored, 12, "{report}");
    assert!(
        !report.to_string().contains("earlier runs"),
        "a memory store holds this run only: {report}"
    );
}

/// A fault rate is a rate: the foreign writer's malformed records come at it,
/// so a rate of 1e-300 injects nothing at all (it used to inject one poison
/// record whatever the rate above 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_come_at_the_fault_rate() {
    let service = outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports());
    let tiny = run(
        &service,
        &demo(&[
            "--fault-rate",
            "1e-300",
            "--store",
            "memory",
            "--stories",
            "2",
        ]),
    )
    .await
    .expect("a run");
    assert_eq!(tiny.faults_injected, 0, "{tiny}");
    assert_eq!(tiny.stats.dead_lettered, 0, "{tiny}");
    assert!(tiny.violations.is_empty(), "{tiny}");
}

/// `--store memory` holds everything in memory: a run past its bound is
/// refused at once, by name, instead of growing until the machine gives out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_refuses_a_run_past_its_bound() {
    let service = outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports());
    let refused = run(
        &service,
        &demo(&["--store", "memory", "--stories", "100000000"]),
    )
    .await
    .map(|report| report.to_string())
    .unwrap_err();
    assert!(refused.to_string().contains("--store memory"), "{refused}");
}

/// A run longer than one audit window (100 stories a type) is told and
/// audited window by window, forgetting each once audited: every invariant
/// still holds under faults, and the report adds the windows up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_several_audit_windows_holds_every_invariant() {
    let service = outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports());
    let report = run(
        &service,
        &demo(&[
            "--store",
            "memory",
            "--stories",
            "250",
            "--fault-rate",
            "0.1",
        ]),
    )
    .await
    .expect("a run");
    assert!(report.violations.is_empty(), "{report}");
    assert_eq!(
        report.aggregates_stored, 500,
        "two aggregate types: {report}"
    );
    assert_eq!(
        report.events_committed, report.commands_committed,
        "{report}"
    );
    // Without faults each repair is invoiced once and each order shipped
    // once: the three windows' effects add up to the 250 stories.
    let calm = run(&service, &demo(&["--store", "memory", "--stories", "250"]))
        .await
        .expect("a run");
    assert!(calm.violations.is_empty(), "{calm}");
    for consumer in ["invoicing", "shipping"] {
        let effects = calm.effects.iter().find(|(name, _)| *name == consumer);
        assert_eq!(effects.map(|(_, n)| *n), Some(250), "{consumer}: {calm}");
    }
}
