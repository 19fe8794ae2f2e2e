//! In-memory adapters of every port, for tests and for embedding the domain.
//!
//! They behave like their AWS counterparts where it matters to the outbox: the
//! [`MemoryStore`] commits a write set atomically and appends its outbox events
//! to an ordered change log; the [`MemoryStream`] reads that log like a Lambda
//! event source mapping reads a DynamoDB stream shard (batches, at least once,
//! retry from the first failed record); the [`MemoryBus`] routes by real
//! EventBridge event patterns to [`MemoryQueue`]s that redeliver what is not
//! deleted. [`MemoryDocuments`] and [`MemoryMailer`] stand for the outside
//! systems a consumer calls (S3, SES). Apart from the mailer's refusals and
//! failures it is told to make, they inject no faults themselves: fault
//! decorators wrap any adapter of a port, these or the AWS ones alike.

pub mod archive;
pub mod bus;
pub mod dead_letter;
pub mod determinism;
pub mod documents;
pub mod inbox;
pub mod mailer;
pub mod outside;
pub mod queue;
pub mod store;
pub mod stream;

pub use bus::{Acceptance, MemoryBus, PatternError, DEDUPLICATION_WINDOW};
pub use dead_letter::MemoryDeadLetterQueue;
pub use determinism::{SequentialIds, StepClock};
pub use documents::MemoryDocuments;
pub use inbox::MemoryInbox;
pub use mailer::MemoryMailer;
pub use outside::MemoryOutside;
pub use queue::{MemoryQueue, QueuedMessage};
pub use store::MemoryStore;
pub use stream::{MemoryStream, StreamPosition};
