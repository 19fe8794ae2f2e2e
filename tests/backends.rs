//! The stores the contract suite runs against: the in-memory store, dynoxide
//! embedded in the test process, and a moto server (`MOTO_ENDPOINT`, started by
//! `scripts/test.sh`). A missing server fails the test; nothing is skipped.

use std::sync::Arc;

use outbox_application::ports::ChangeFeed;
use outbox_application::ports::{AggregateStore, Effect, Inbox};
use outbox_application::{AggregateRef, EventEnvelope, LeaseTimings, Relay};
use outbox_bootstrap::clients::LocalClients;
use outbox_bootstrap::embedded::EmbeddedDynamo;
use outbox_bootstrap::operation_log::OperationLog;
use outbox_dynamodb::{
    create_tables, stream_arn, DynamoInbox, DynamoStore, LeaseTable, StreamRelay,
    StreamRelayOptions, TableLayout,
};
use outbox_memory::{MemoryInbox, MemoryStore, MemoryStream, StreamPosition};
use outbox_simulation::JournaledStore;

/// Stream records (or in-memory change records) read per poll in the contract tests.
pub const PAGE: usize = 5;

/// One store under test, with what the tests need to look inside it.
pub struct Backend {
    /// Its name in failure messages.
    pub name: &'static str,
    /// Whether a repeated `ClientRequestToken` succeeds without writing again.
    pub honours_request_token: bool,
    /// Whether it sizes items by DynamoDB's rule (moto counts them larger and
    /// refuses a growing item before the use case's estimate does).
    pub sizes_items_as_dynamodb: bool,
    kind: Kind,
}

#[allow(
    clippy::large_enum_variant,
    reason = "one value per test; boxing the DynamoDB side would only add noise"
)]
enum Kind {
    Memory {
        store: MemoryStore,
        journal: JournaledStore,
        position: StreamPosition,
    },
    Dynamo {
        store: DynamoStore,
        clients: LocalClients,
        calls: OperationLog,
        _server: Option<EmbeddedDynamo>,
    },
}

/// A consumer inbox of a backend, with its recorded effects.
#[derive(Clone)]
pub enum BackendInbox {
    /// The in-memory inbox.
    Memory(MemoryInbox),
    /// The DynamoDB inbox, with the requests it sent.
    Dynamo(DynamoInbox, OperationLog),
}

impl BackendInbox {
    /// The inbox as the port.
    pub fn port(&self) -> Arc<dyn Inbox> {
        match self {
            Self::Memory(inbox) => Arc::new(inbox.clone()),
            Self::Dynamo(inbox, _) => Arc::new(inbox.clone()),
        }
    }

    /// The effects `consumer` recorded.
    pub async fn effects_of(&self, consumer: &str) -> Vec<Effect> {
        match self {
            Self::Memory(inbox) => inbox.effects_of(consumer),
            Self::Dynamo(inbox, _) => inbox.effects_of(consumer).await.expect("effects scan"),
        }
    }

    /// The effects an ordered `consumer` applied to `aggregate`, in the order
    /// they were applied: the memory inbox's log, or DynamoDB's positions
    /// (each write's revision of the aggregate's sequence, which must be distinct).
    pub async fn history(&self, consumer: &str, aggregate: &AggregateRef) -> Vec<Effect> {
        match self {
            Self::Memory(inbox) => inbox.history(consumer, aggregate),
            Self::Dynamo(inbox, _) => {
                let history = inbox
                    .history(consumer, aggregate)
                    .await
                    .expect("history scan");
                let positions: std::collections::BTreeSet<u64> =
                    history.iter().map(|(position, _)| *position).collect();
                assert_eq!(
                    positions.len(),
                    history.len(),
                    "two effects at one position"
                );
                history.into_iter().map(|(_, effect)| effect).collect()
            }
        }
    }
}

impl Backend {
    /// The in-memory store and its change log.
    pub fn memory() -> Self {
        let store = MemoryStore::new();
        Self {
            name: "memory",
            honours_request_token: false,
            sizes_items_as_dynamodb: true,
            kind: Kind::Memory {
                journal: JournaledStore::new(Arc::new(store.clone())),
                store,
                position: StreamPosition::default(),
            },
        }
    }

    /// A fresh in-memory dynoxide server in this process, single-table or with a
    /// separate outbox table.
    pub async fn dynoxide(separate_outbox: bool) -> Self {
        let server = EmbeddedDynamo::start(None)
            .await
            .expect("dynoxide must start in-process");
        let clients = LocalClients::new(&server.endpoint());
        let mut layout = TableLayout::single_table(
            "workshop",
            outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
        );
        if separate_outbox {
            layout = layout.with_outbox_table("workshop-outbox");
        }
        Self::dynamo("dynoxide", true, true, clients, layout, Some(server)).await
    }

    /// Fresh tables on the moto server at `MOTO_ENDPOINT`.
    pub async fn moto() -> Self {
        let endpoint = std::env::var("MOTO_ENDPOINT").expect(
            "MOTO_ENDPOINT is not set: run `bash scripts/test.sh`, which installs and starts moto, \
             or start `moto_server -H 127.0.0.1 -p 5000` and export MOTO_ENDPOINT=http://127.0.0.1:5000",
        );
        let clients = LocalClients::new(&endpoint);
        let table = format!("contract-{}", uuid::Uuid::now_v7().simple());
        Self::dynamo(
            "moto",
            false,
            false,
            clients,
            TableLayout::single_table(
                table,
                outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
            ),
            None,
        )
        .await
    }

    async fn dynamo(
        name: &'static str,
        honours_request_token: bool,
        sizes_items_as_dynamodb: bool,
        clients: LocalClients,
        layout: TableLayout,
        server: Option<EmbeddedDynamo>,
    ) -> Self {
        create_tables(&clients.dynamodb, &layout)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let calls = OperationLog::default();
        let store = DynamoStore::new(calls.attach(&clients.dynamodb), layout);
        Self {
            name,
            honours_request_token,
            sizes_items_as_dynamodb,
            kind: Kind::Dynamo {
                store,
                clients,
                calls,
                _server: server,
            },
        }
    }

    /// The store under test.
    pub fn store(&self) -> Arc<dyn AggregateStore> {
        match &self.kind {
            Kind::Memory { journal, .. } => Arc::new(journal.clone()),
            Kind::Dynamo { store, .. } => Arc::new(store.clone()),
        }
    }

    /// Commits that reached the store: counted at the port in memory, as
    /// `TransactWriteItems` requests on the wire otherwise.
    pub fn store_calls(&self) -> usize {
        match &self.kind {
            Kind::Memory { journal, .. } => journal.attempts().len(),
            Kind::Dynamo { calls, .. } => calls.count("TransactWriteItems"),
        }
    }

    /// An inbox beside the store: in memory, or in the store's main table.
    pub fn inbox(&self) -> BackendInbox {
        match &self.kind {
            Kind::Memory { .. } => BackendInbox::Memory(MemoryInbox::new()),
            Kind::Dynamo { store, clients, .. } => {
                let log = OperationLog::default();
                BackendInbox::Dynamo(
                    DynamoInbox::new(log.attach(&clients.dynamodb), store.layout().table.clone()),
                    log,
                )
            }
        }
    }

    /// The outbox of `aggregate`, in version order.
    pub async fn outbox_of(&self, aggregate: &AggregateRef) -> Vec<EventEnvelope> {
        match &self.kind {
            Kind::Memory { store, .. } => store.outbox_of(aggregate),
            Kind::Dynamo { store, .. } => store.outbox_of(aggregate).await.expect("outbox query"),
        }
    }

    /// Every outbox event.
    pub async fn outbox(&self) -> Vec<EventEnvelope> {
        match &self.kind {
            Kind::Memory { store, .. } => store.outbox(),
            Kind::Dynamo { store, .. } => store.outbox().await.expect("outbox scan"),
        }
    }

    /// Writes an outbox item no relay can decode, as a foreign writer might.
    pub async fn write_poison(&self) {
        match &self.kind {
            Kind::Memory { store, .. } => store
                .append_raw_change(serde_json::json!({"entityType": "OUTBOX", "eventType": 42})),
            Kind::Dynamo { store, clients, .. } => {
                crate::put_foreign_outbox_item(&clients.dynamodb, store.layout().outbox_table())
                    .await;
            }
        }
    }

    /// A relay worker reading this store's change feed from its checkpoint, as a
    /// freshly started process would.
    pub async fn relay_worker(&self, relay: Relay) -> RelayWorker {
        match &self.kind {
            Kind::Memory {
                store, position, ..
            } => RelayWorker::Memory(MemoryStream::new(
                store.clone(),
                position.clone(),
                relay,
                PAGE,
            )),
            Kind::Dynamo { store, clients, .. } => {
                let layout = store.layout();
                let arn = stream_arn(&clients.dynamodb, layout.outbox_table())
                    .await
                    .expect("the outbox table has a stream");
                let leases =
                    LeaseTable::new(clients.dynamodb.clone(), &layout.checkpoint_table, &arn);
                // A short lease: a worker dropped without releasing (a killed
                // process) leaves its shards to the next within a second.
                let options = StreamRelayOptions {
                    batch_size: PAGE as i32,
                    idle_refresh: 3,
                    describe_interval: std::time::Duration::ZERO,
                    lease: LeaseTimings::from_duration(std::time::Duration::from_secs(1)),
                    ..StreamRelayOptions::default()
                };
                RelayWorker::Dynamo(Box::new(StreamRelay::new(
                    clients.streams.clone(),
                    arn,
                    leases,
                    relay,
                    options,
                )))
            }
        }
    }
}

/// A relay process over one backend's change feed.
pub enum RelayWorker {
    /// The in-memory change log, read from the position every reader of the backend shares.
    Memory(MemoryStream),
    /// A DynamoDB stream.
    Dynamo(Box<StreamRelay>),
}

impl RelayWorker {
    /// Reads and relays one page per shard; returns whether anything was read.
    pub async fn poll(&mut self) -> bool {
        match self {
            RelayWorker::Memory(stream) => {
                stream.poll().await.expect("the memory feed polls").records > 0
            }
            RelayWorker::Dynamo(worker) => match worker.poll().await {
                Ok(report) => report.records > 0,
                Err(error) => panic!("stream poll failed: {error}"),
            },
        }
    }
}
