//! The aggregate contract: *decide* and *evolve*.
//!
//! An aggregate is a consistency boundary. [`Aggregate::decide`] looks at the
//! current state and a command and either refuses with a typed error or returns
//! the events that record what happened. [`Aggregate::evolve`] applies one event
//! to a state and never fails: invariants belong to `decide`, so replaying any
//! stored history always succeeds. [`decide`] combines the two into a
//! [`Decision`]: the entity change (new state, new version) plus its events.
//!
//! A whole aggregate, stated and tested the way a team writes its own:
//!
//! ```
//! use outbox_domain::scenario::given;
//! use outbox_domain::{decide, Aggregate, DomainEvent, Rejection, RejectionKind, Version};
//! use serde::{Deserialize, Serialize};
//!
//! /// A door that opens once.
//! struct Door;
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! #[serde(tag = "eventType", content = "data")]
//! enum DoorEvent {
//!     DoorOpened {},
//! }
//!
//! impl DomainEvent for DoorEvent {
//!     const EVENT_TYPES: &'static [&'static str] = &["DoorOpened"];
//!     fn event_type(&self) -> &'static str {
//!         "DoorOpened"
//!     }
//!     fn schema_version(&self) -> u32 {
//!         1
//!     }
//! }
//!
//! #[derive(Debug, Serialize)]
//! enum DoorCommand {
//!     Open,
//! }
//!
//! #[derive(Debug, PartialEq, thiserror::Error)]
//! #[error("the door is open already")]
//! struct AlreadyOpen;
//!
//! impl Rejection for AlreadyOpen {
//!     fn kind(&self) -> RejectionKind {
//!         RejectionKind::InvalidTransition
//!     }
//! }
//!
//! impl Aggregate for Door {
//!     const TYPE: &'static str = "Door";
//!     type State = bool;
//!     type Command = DoorCommand;
//!     type Event = DoorEvent;
//!     type Error = AlreadyOpen;
//!
//!     fn decide(open: &bool, _: &DoorCommand) -> Result<Vec<DoorEvent>, AlreadyOpen> {
//!         if *open {
//!             Err(AlreadyOpen)
//!         } else {
//!             Ok(vec![DoorEvent::DoorOpened {}])
//!         }
//!     }
//!
//!     fn evolve(_: bool, _: &DoorEvent) -> bool {
//!         true
//!     }
//! }
//!
//! given::<Door>(&[]).when_then(DoorCommand::Open, &[DoorEvent::DoorOpened {}]);
//! given::<Door>(&[DoorEvent::DoorOpened {}]).when_refused(DoorCommand::Open, AlreadyOpen);
//! let decision = decide::<Door>(&false, Version::INITIAL, &DoorCommand::Open).unwrap();
//! assert_eq!((decision.version, decision.state), (Version::new(1), true));
//! ```

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::rejection::Rejection;

/// The number of events an aggregate has recorded; `0` means it does not exist yet.
///
/// Every event carries the version the aggregate reaches by applying it, so an
/// aggregate's events are numbered `1..=n` with no gap.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Version(u64);

impl Version {
    /// The version of an aggregate that has no events yet.
    pub const INITIAL: Version = Version(0);

    /// Wraps a raw version number.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The raw version number.
    pub const fn value(self) -> u64 {
        self.0
    }

    /// The version after `events` more events.
    pub fn advanced_by(self, events: usize) -> Self {
        Self(self.0 + events as u64)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// A fact in the past tense, recorded by an aggregate.
///
/// Events serialize *adjacently tagged*: `{"eventType": "...", "data": {...}}`
/// (`#[serde(tag = "eventType", content = "data")]`), so the type name on the wire
/// is the serde variant name, which must equal [`DomainEvent::event_type`].
pub trait DomainEvent:
    Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync
{
    /// Every event type name of this aggregate, each as [`DomainEvent::event_type`] returns it.
    const EVENT_TYPES: &'static [&'static str];

    /// The stable, persisted name of this event's type. Never rename one.
    fn event_type(&self) -> &'static str;

    /// The schema version of this event type's `data`; bump it on a breaking change.
    fn schema_version(&self) -> u32;
}

/// The decide/evolve contract every aggregate implements.
pub trait Aggregate {
    /// The stable, persisted name of the aggregate type (e.g. `Repair`). Never rename one.
    const TYPE: &'static str;
    /// The state; its `Default` is the state of an aggregate that does not exist yet.
    type State: Clone + Debug + Default + PartialEq + Serialize + DeserializeOwned + Send + Sync;
    /// What a caller asks the aggregate to do (imperative).
    type Command: Debug + Serialize + Send + Sync;
    /// What the aggregate records (past tense).
    type Event: DomainEvent;
    /// Why the aggregate refused a command.
    type Error: std::error::Error + PartialEq + Rejection + Send + Sync + 'static;

    /// Decides on `command` given `state`: the events to record, or a refusal.
    ///
    /// # Errors
    /// Returns the aggregate's error when a business rule forbids the command.
    fn decide(
        state: &Self::State,
        command: &Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Applies one event to a state. Never validates and never fails.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;
}

/// The outcome of a successful decision: the entity change and the events behind it.
///
/// `Debug`, `Clone` and `PartialEq` are written by hand so that they ask
/// nothing of the marker type `A`, only of its state and events.
pub struct Decision<A: Aggregate> {
    /// The version the decision was taken against.
    pub expected_version: Version,
    /// The version after applying `events`.
    pub version: Version,
    /// The state after applying `events`.
    pub state: A::State,
    /// The events, in order; event `i` brings the aggregate to `expected_version + i + 1`.
    pub events: Vec<A::Event>,
}

impl<A: Aggregate> std::fmt::Debug for Decision<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decision")
            .field("expected_version", &self.expected_version)
            .field("version", &self.version)
            .field("state", &self.state)
            .field("events", &self.events)
            .finish()
    }
}

impl<A: Aggregate> Clone for Decision<A> {
    fn clone(&self) -> Self {
        Self {
            expected_version: self.expected_version,
            version: self.version,
            state: self.state.clone(),
            events: self.events.clone(),
        }
    }
}

impl<A: Aggregate> PartialEq for Decision<A> {
    fn eq(&self, other: &Self) -> bool {
        self.expected_version == other.expected_version
            && self.version == other.version
            && self.state == other.state
            && self.events == other.events
    }
}

/// Decides on `command` for an aggregate at `version` with `state`, and evolves the
/// state through the resulting events.
///
/// # Errors
/// Returns the aggregate's error when it refuses the command.
pub fn decide<A: Aggregate>(
    state: &A::State,
    version: Version,
    command: &A::Command,
) -> Result<Decision<A>, A::Error> {
    let events = A::decide(state, command)?;
    Ok(Decision {
        expected_version: version,
        version: version.advanced_by(events.len()),
        state: fold::<A>(state.clone(), &events),
        events,
    })
}

/// Folds events over a state, in order.
pub fn fold<'e, A: Aggregate>(
    state: A::State,
    events: impl IntoIterator<Item = &'e A::Event>,
) -> A::State
where
    A::Event: 'e,
{
    events.into_iter().fold(state, A::evolve)
}
