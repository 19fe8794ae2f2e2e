//! The outbox pipeline simulated in one process, over any store: the program
//! behind `outbox-local` and the property tests, not part of any adapter.
//!
//! - [`faults`]: a fault decorator per port (store, publisher, dead-letter
//!   queue, inbox), wrapping the in-memory adapters and the AWS ones alike.
//! - [`journal`]: a commit journal for any store.
//! - [`backend`]: where aggregates live and how their change feed is read —
//!   memory, or DynamoDB with its stream.
//! - [`pipeline`]: command → commit → change feed → relay → bus → queues →
//!   consumers, routed by the reactions' declared subscriptions.
//! - [`audit`]: the outbox invariants, pure, over an observation of a run.
//! - [`dice`] and [`stories`]: random faults, and the seed stories told by a
//!   client that retries with idempotency keys; [`report`], a run's summary.

pub mod audit;
pub mod backend;
pub mod dice;
pub mod faults;
pub mod journal;
pub mod pipeline;
pub mod report;
pub mod stories;

pub use audit::{
    audit, audit_delivery, BusPromise, CompletedCall, Observation, StoredAggregate, Violation,
};
pub use backend::{Backend, DynamoBackend, MemoryBackend};
pub use dice::Dice;
pub use journal::{CommitAttempt, JournaledStore};
pub use pipeline::{Consumer, Pipeline, PipelineStats};
pub use report::RunReport;
pub use stories::{Client, ClientTally};
