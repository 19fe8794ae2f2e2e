//! The application core of the transactional outbox.
//!
//! It turns a domain [`Decision`](outbox_domain::Decision) into a storage-agnostic
//! [`WriteSet`] — the new state with its expected version, one outbox record per
//! event, the request's idempotency record — and runs the use cases through
//! [`ports`]: [`command`] (load → decide → commit atomically), [`relay`] (outbox
//! records in stream order → the bus, failures reported by position, poison to the
//! dead-letter queue) and [`consume`] (an effect applied once per event, or a
//! dead letter). A [`Service`] declares, in one place, a service's aggregates
//! (source, [`routes`], demo story) and consumers; [`routing`] turns a
//! consumer's subscription into the bus's patterns, and [`shard`] holds the
//! checkpoint arithmetic every change-feed reader shares.
//! No AWS type appears here; adapters implement the ports.

pub mod any;
pub mod change;
pub mod command;
pub mod consume;
pub mod envelope;
pub mod external;
pub mod ids;
pub mod lease;
pub mod letter_cause;
pub mod ports;
pub mod redrive;
pub mod relay;
pub mod replay;
pub mod routes;
pub mod routing;
pub mod sequencing;
pub mod service;
pub mod shard;
pub mod trace;
pub mod write_set;

pub use any::{AnyCommand, AnyRejection, TypedCommand};
pub use change::{ChangeContent, ChangeRecord, RecordIdentity, SequenceNumber};
pub use command::{
    CommandError, CommandOutcome, CommandPolicy, CommandService, RequestMeta, Target,
};
pub use consume::{
    ConsumeError, ConsumeService, Consumed, Delivery, DeliveryContent, Reaction, ReactionError,
    Released, UnparkError,
};
pub use envelope::{EncodeError, EnvelopeError, EventContext, EventEnvelope};
pub use external::{CallError, CallKey, Called, ExternalCall, OutsidePort, OutsidePorts, Reacted};
pub use ids::{AggregateId, AggregateRef, EventId, IdError, IdempotencyKey};
pub use lease::{LeaseAction, LeaseKeeper, LeaseTimings, LeaseView};
pub use letter_cause::{letter_id, LetterCause, SourceKind};
pub use ports::Effect;
pub use redrive::{LetterFilter, RawDecoder, RedriveService, RedriveSummary, Redriven};
pub use relay::{BusRefused, Relay, RelayReport, DEFAULT_CALLS_IN_FLIGHT};
pub use replay::{ReplayError, ReplayProgress, ReplayService};
pub use routes::{InputError, Json, NoBody, Route, RouteBody, Routes};
pub use routing::{EventSources, Subscription};
pub use sequencing::{ParkingPolicy, Waited};
pub use service::{
    AggregateDeclaration, DeclaredAggregate, Service, ServiceError, Story, StoryStep,
};
pub use shard::{AfterRead, ShardTracker};
pub use trace::{Traceparent, TraceparentError};
pub use write_set::{IdempotencyRecord, LimitError, StateRecord, WriteLimits, WriteSet};

/// The attribute a [`Reaction`] or an [`ExternalCall`] implementation wears:
/// `#[outbox_application::async_trait]`, so a consumer crate needs no
/// dependency of its own for it.
pub use async_trait::async_trait;

/// A boxed error that keeps its source chain, used where a port's failure comes
/// from an adapter the application must not name.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
