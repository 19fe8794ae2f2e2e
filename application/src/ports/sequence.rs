//! An ordered consumer's position on one aggregate: the last version it
//! applied, and, while the aggregate is parked, the events held back behind the
//! missing one.
//!
//! The inbox stores one [`Sequence`] per (consumer, aggregate) and changes it
//! only by a [`SequenceWrite`] conditioned on the revision it was read at, so
//! two deliveries racing on one aggregate never both win.

use time::OffsetDateTime;

use outbox_domain::Version;

use crate::envelope::EventEnvelope;
use crate::ids::AggregateRef;
use crate::ports::Effect;

/// Why and since when an aggregate is parked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parking {
    /// Why it was parked, e.g. `version 3 did not arrive within 5 deliveries of version 4`.
    pub reason: String,
    /// When it was parked.
    pub since: OffsetDateTime,
}

/// Where one ordered consumer stands on one aggregate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sequence {
    /// The last version applied (or skipped); [`Version::INITIAL`] before the first.
    pub applied: Version,
    /// Set while the aggregate is parked.
    pub parking: Option<Parking>,
    /// Events held in the parked list.
    pub held: u64,
    /// Raised by every write; a write names the revision it read.
    pub revision: u64,
}

impl Sequence {
    /// The version the consumer waits for next.
    pub fn missing(&self) -> Version {
        self.applied.advanced_by(1)
    }

    /// The next revision, with `change` made.
    pub fn then(&self, change: impl FnOnce(&mut Self)) -> Self {
        let mut next = self.clone();
        next.revision += 1;
        change(&mut next);
        next
    }
}

/// An operator's decision to give up on a missing version, kept for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// The version given up on.
    pub version: Version,
    /// Who decided.
    pub by: String,
    /// Why.
    pub why: String,
    /// When.
    pub at: OffsetDateTime,
}

/// One atomic change of a sequence and the items that move with it.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceWrite {
    /// The sequence after the write.
    pub next: Sequence,
    /// The effect to record, if the write applies an event that has one.
    pub effect: Option<Effect>,
    /// An event to add to the parked list.
    pub hold: Option<EventEnvelope>,
    /// A held version to take out of the parked list (it is being applied).
    pub release: Option<Version>,
    /// A skip to record.
    pub skip: Option<Skip>,
}

impl SequenceWrite {
    /// Only the sequence changes.
    pub fn to(next: Sequence) -> Self {
        Self {
            next,
            effect: None,
            hold: None,
            release: None,
            skip: None,
        }
    }
}

/// What a [`SequenceWrite`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceOutcome {
    /// Everything was written.
    Written,
    /// The sequence was changed since it was read; nothing was written.
    Conflict,
    /// The event to hold is in the parked list already; nothing was written.
    AlreadyHeld,
}

/// A parked aggregate as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedAggregate {
    /// The consumer that parked it.
    pub consumer: String,
    /// The aggregate.
    pub aggregate: AggregateRef,
    /// Its sequence: the missing version, the held events, why and since when.
    pub sequence: Sequence,
}
