//! The ports: what the use cases need from the outside world, as traits.
//!
//! Each adapter crate implements some of them; the application names none of them.

pub mod change_feed;
pub mod clock;
pub mod dead_letter;
pub mod documents;
pub mod id_generator;
pub mod inbox;
pub mod mailer;
pub mod outbox_archive;
pub mod publisher;
pub mod sequence;
pub mod store;

pub use change_feed::{ChangeFeed, FeedError, FeedReport};
pub use clock::{Clock, SystemClock};
pub use dead_letter::{
    sha256_hex, DeadLetter, DeadLetterError, DeadLetterPayload, DeadLetterQueue, DeadLetterStore,
    LetterDepth, LetterPage, LetterSource, MalformedLetter, StoredLetter,
};
pub use documents::{Document, DocumentStore, StoredDocument};
pub use id_generator::{IdGenerator, RandomIds};
pub use inbox::{
    Claim, ClaimOutcome, CompleteOutcome, Completion, Effect, Inbox, InboxError, InboxOutcome,
};
pub use mailer::{Email, Mailer, SentEmail};
pub use outbox_archive::{ArchiveCursor, ArchiveError, ArchivePage, ArchiveWindow, OutboxArchive};
pub use publisher::{BatchLimits, BusOrder, EventPublisher, PublishError, PublishOutcome};
pub use sequence::{ParkedAggregate, Parking, Sequence, SequenceOutcome, SequenceWrite, Skip};
pub use store::{AggregateStore, StoreError};
