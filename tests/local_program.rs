//! The local program on its default store, embedded dynoxide with a data file:
//! every invariant holds under faults, and the data survives a restart.

use bootstrap::local::{run, LocalOptions, StoreKind};
use clap::Parser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_stories_hold_under_faults_and_the_data_survives_a_restart() {
    let data = std::env::temp_dir().join(format!("outbox-local-{}.db", uuid::Uuid::now_v7()));
    let data_arg = data.display().to_string();
    let options = LocalOptions::parse_from([
        "outbox-local",
        "--fault-rate",
        "0.25",
        "--repairs",
        "4",
        "--orders",
        "4",
        "--data",
        &data_arg,
    ]);
    assert_eq!(options.store, StoreKind::Dynoxide);

    let first = run(&options).await.expect("first run");
    assert!(first.violations.is_empty(), "{first}");
    assert_eq!(first.aggregates_stored, 8, "{first}");
    assert!(first.faults_injected > 0, "{first}");
    assert!(
        first.stats.dead_lettered >= 1,
        "the malformed record is dead-lettered: {first}"
    );

    let second = run(&options).await.expect("second run on the same data");
    assert!(second.violations.is_empty(), "{second}");
    assert_eq!(
        second.aggregates_stored, 16,
        "the first run's aggregates are still there: {second}"
    );

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{data_arg}{suffix}"));
    }
}
