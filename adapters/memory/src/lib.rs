//! In-memory adapters of every port, for tests and for embedding the domain.
//!
//! They behave like their AWS counterparts where it matters to the outbox: the
//! [`MemoryStore`] commits a write set atomically and appends its outbox events
//! to an ordered change log; the [`MemoryStream`] reads that log like a Lambda
//! event source mapping reads a DynamoDB stream shard (batches, at least once,
//! retry from the first failed record); the [`MemoryBus`] routes to
//! [`MemoryQueue`]s that redeliver what is not deleted. Each takes a
//! [`FaultPlan`] of faults to inject on its next calls. [`MemoryPipeline`] wires
//! them all to the use cases, and [`audit`] checks the outbox invariants.

pub mod audit;
pub mod bus;
pub mod dead_letter;
pub mod determinism;
pub mod fault;
pub mod faulty_store;
pub mod inbox;
pub mod pipeline;
pub mod queue;
pub mod store;
pub mod stream;

pub use audit::{audit, audit_at_rest, audit_delivery, audit_stored, StoredAggregate, Violation};
pub use bus::{BusFault, EventPattern, MemoryBus};
pub use dead_letter::{DeadLetterFault, MemoryDeadLetterQueue};
pub use determinism::{SequentialIds, StepClock};
pub use fault::{FaultPlan, InjectedFault};
pub use faulty_store::FaultyStore;
pub use inbox::{InboxFault, MemoryInbox};
pub use pipeline::{ConsumerFault, MemoryPipeline, PipelineStats};
pub use queue::{Delivery, MemoryQueue, QueueFault};
pub use store::{CommitAttempt, MemoryStore, StoreFault};
pub use stream::{MemoryStream, StreamFault};
