//! Concurrent writers on one aggregate: optimistic concurrency loses no update.

use std::sync::Arc;

use application::{CommandError, CommandPolicy, CommandService, RequestMeta, Target};
use domain::repair::{Repair, RepairCommand};
use domain::Version;
use memory_adapter::{MemoryStore, SequentialIds, StepClock};
use system_tests::{line_item, open_repair};

#[test]
fn thirty_two_concurrent_writers_on_one_aggregate_lose_no_update() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = MemoryStore::journaled();
        let policy = CommandPolicy {
            max_attempts: 3,
            ..CommandPolicy::default()
        };
        let service = Arc::new(CommandService::new(
            Arc::new(store.clone()),
            Arc::new(StepClock::default()),
            Arc::new(SequentialIds::default()),
            policy,
        ));
        let meta = RequestMeta::default();
        let opened = service
            .execute::<Repair>(Target::New, &open_repair("Ada"), &meta)
            .await
            .unwrap();
        let id = Target::Existing(opened.aggregate.aggregate_id);
        service
            .execute::<Repair>(id, &RepairCommand::StartWork, &meta)
            .await
            .unwrap();

        let writers: Vec<_> = (0..32)
            .map(|i| {
                let service = Arc::clone(&service);
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    service
                        .execute::<Repair>(id, &line_item(100 + i), &RequestMeta::default())
                        .await
                })
            })
            .collect();
        let mut committed = 0;
        for writer in writers {
            match writer.await.unwrap() {
                Ok(_) => committed += 1,
                Err(CommandError::Conflict { attempts: 3 }) => {}
                Err(other) => panic!("unexpected failure: {other}"),
            }
        }
        let state = store.state_of(&opened.aggregate).unwrap();
        assert_eq!(state.version, Version::new(2 + committed));
        assert_eq!(
            store.outbox_of(&opened.aggregate).len() as u64,
            2 + committed
        );
        let applied = store
            .journal()
            .iter()
            .filter(|attempt| attempt.applied)
            .count() as u64;
        assert_eq!(
            applied,
            2 + committed,
            "one event set per committed command"
        );
        assert!(committed > 0);
    });
}
