//! The SQS adapter of the outbox: [`SqsDeadLetterQueue`] implements the
//! application's `DeadLetterQueue` port and reads its letters back for redrive.

pub mod dead_letter_queue;

pub use dead_letter_queue::{SqsDeadLetterQueue, MAX_MESSAGE_BYTES, READ_HIDES_SECONDS};
