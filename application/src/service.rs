//! The service declaration: the one place a service names its aggregates and
//! its consumers.
//!
//! Each aggregate is declared with the `source` its events are published
//! under, its [`Routes`] (how requests become its commands; its state is shown
//! as JSON) and, for `outbox-local demo`, a [`Story`] of commands. Each
//! consumer is its [`Reaction`], which carries its name and its subscription,
//! ordered or not. The command API, the relay's sources, the local programs,
//! the operator's tools, the audit, the Lambda functions and the deployment
//! template all read the declaration; nothing else lists aggregates or
//! consumers. [`Service::validate`] refuses a declaration that would route
//! nothing, before anything runs.
//!
//! ```
//! use outbox_application::{AggregateDeclaration, Service};
//! # use outbox_domain::{Aggregate, DomainEvent, Rejection, RejectionKind};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! # #[serde(tag = "eventType", content = "data")]
//! # enum CounterEvent { Bumped {} }
//! # impl DomainEvent for CounterEvent {
//! #     const EVENT_TYPES: &'static [&'static str] = &["Bumped"];
//! #     fn event_type(&self) -> &'static str { "Bumped" }
//! #     fn schema_version(&self) -> u32 { 1 }
//! # }
//! # #[derive(Debug, PartialEq, thiserror::Error)]
//! # #[error("no")]
//! # struct No;
//! # impl Rejection for No { fn kind(&self) -> RejectionKind { RejectionKind::InvalidTransition } }
//! # struct Counter;
//! # impl Aggregate for Counter {
//! #     const TYPE: &'static str = "Counter";
//! #     type State = u64; type Command = (); type Event = CounterEvent; type Error = No;
//! #     fn decide(_: &u64, _: &()) -> Result<Vec<CounterEvent>, No> { Ok(vec![CounterEvent::Bumped {}]) }
//! #     fn evolve(state: u64, _: &CounterEvent) -> u64 { state + 1 }
//! # }
//! let service = Service::new()
//!     .aggregate(AggregateDeclaration::<Counter>::published_as("counters.outbox"));
//! assert!(service.validate().is_ok());
//! assert_eq!(service.sources().source_of("Counter"), "counters.outbox");
//! assert_eq!(service.aggregate_type("COUNTER"), Some("Counter"));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use outbox_domain::{fold, Aggregate, DomainEvent, Version};

use crate::any::{AnyCommand, AnyRejection, TypedCommand};
use crate::command::{CommandError, CommandService};
use crate::consume::Reaction;
use crate::envelope::EventEnvelope;
use crate::ids::AggregateId;
use crate::routes::Routes;
use crate::routing::EventSources;

/// A demo story of aggregate `A` for its `n`-th run: steps of (idempotency key,
/// command); the first creates the aggregate, the rest act on it.
pub type Story<A> = fn(usize) -> Vec<(String, <A as Aggregate>::Command)>;

/// An erased story step: its idempotency key and its command.
pub type StoryStep = (String, Box<dyn AnyCommand>);

/// How aggregate `A` takes part in a service.
pub struct AggregateDeclaration<A: Aggregate> {
    source: String,
    routes: Option<Routes<A>>,
    story: Option<Story<A>>,
}

impl<A> AggregateDeclaration<A>
where
    A: Aggregate + 'static,
    A::Command: 'static,
{
    /// `A`, its events published under `source` (an EventBridge `source`, e.g.
    /// `carworkshop.outbox`).
    pub fn published_as(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            routes: None,
            story: None,
        }
    }

    /// Served by the command API under `routes`.
    #[must_use]
    pub fn routes(mut self, routes: Routes<A>) -> Self {
        self.routes = Some(routes);
        self
    }

    /// Told by `outbox-local demo` as `story`.
    #[must_use]
    pub fn story(mut self, story: Story<A>) -> Self {
        self.story = Some(story);
        self
    }
}

/// An aggregate as the programs see it: its type, events, source, routes,
/// state and story, whatever its Rust types.
#[async_trait]
pub trait DeclaredAggregate: Send + Sync {
    /// The aggregate type, e.g. `Repair`.
    fn aggregate_type(&self) -> &'static str;

    /// Every event type it records.
    fn event_types(&self) -> &'static [&'static str];

    /// The `source` its events are published under.
    fn source(&self) -> &str;

    /// The collection of its routes, e.g. `repairs`, if it is served.
    fn collection(&self) -> Option<&'static str>;

    /// The response field of its id, e.g. `repairId`, if it is served.
    fn id_field(&self) -> Option<&'static str>;

    /// Parses the body of the route creating one.
    fn parse_create(&self, body: &[u8]) -> Option<crate::routes::Parsed>;

    /// Parses the body of action `name` on an existing one.
    fn parse_action(&self, name: &str, body: &[u8]) -> Option<crate::routes::Parsed>;

    /// Whether the route creating one (`None`) or action `Some(name)` reads a
    /// body; `None` if there is no such route.
    fn takes_body(&self, action: Option<&str>) -> Option<bool>;

    /// Its stored state as JSON and its version, `None` if it does not exist.
    ///
    /// # Errors
    /// The store's, as [`CommandError`].
    async fn show(
        &self,
        commands: &CommandService,
        id: AggregateId,
    ) -> Result<Option<(Value, Version)>, CommandError<AnyRejection>>;

    /// Whether folding `outbox` (its events in version order) gives the stored
    /// `state`; what differs if not.
    ///
    /// # Errors
    /// What differs, or what does not decode.
    fn check_replay(&self, state: &Value, outbox: &[EventEnvelope]) -> Result<(), String>;

    /// The demo story's steps for its `n`-th run; empty without a story.
    fn story(&self, n: usize) -> Vec<StoryStep>;
}

#[async_trait]
impl<A> DeclaredAggregate for AggregateDeclaration<A>
where
    A: Aggregate + 'static,
    A::Command: 'static,
{
    fn aggregate_type(&self) -> &'static str {
        A::TYPE
    }

    fn event_types(&self) -> &'static [&'static str] {
        <A::Event as DomainEvent>::EVENT_TYPES
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn collection(&self) -> Option<&'static str> {
        self.routes.as_ref().map(Routes::collection)
    }

    fn id_field(&self) -> Option<&'static str> {
        self.routes.as_ref().map(Routes::id_field)
    }

    fn parse_create(&self, body: &[u8]) -> Option<crate::routes::Parsed> {
        let route = self.routes.as_ref()?.create_route()?;
        Some(route.parse(body).map(erase::<A>))
    }

    fn parse_action(&self, name: &str, body: &[u8]) -> Option<crate::routes::Parsed> {
        let route = self.routes.as_ref()?.action_route(name)?;
        Some(route.parse(body).map(erase::<A>))
    }

    fn takes_body(&self, action: Option<&str>) -> Option<bool> {
        let routes = self.routes.as_ref()?;
        let route = match action {
            None => routes.create_route(),
            Some(name) => routes.action_route(name),
        }?;
        Some(route.takes_body())
    }

    async fn show(
        &self,
        commands: &CommandService,
        id: AggregateId,
    ) -> Result<Option<(Value, Version)>, CommandError<AnyRejection>> {
        let loaded = commands
            .load::<A>(id)
            .await
            .map_err(|error| error.map_rejection(|rejection| AnyRejection::of(&rejection)))?;
        loaded
            .map(|(state, version)| {
                serde_json::to_value(state)
                    .map(|state| (state, version))
                    .map_err(|error| {
                        CommandError::Encoding(crate::envelope::EncodeError::of("state")(error))
                    })
            })
            .transpose()
    }

    fn check_replay(&self, state: &Value, outbox: &[EventEnvelope]) -> Result<(), String> {
        let events = outbox
            .iter()
            .map(EventEnvelope::decode::<A>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("undecodable event: {error}"))?;
        let replayed = fold::<A>(A::State::default(), &events);
        match serde_json::from_value::<A::State>(state.clone()) {
            Ok(stored) if stored == replayed => Ok(()),
            Ok(stored) => Err(format!("stored {stored:?} but replayed {replayed:?}")),
            Err(error) => Err(format!("undecodable state: {error}")),
        }
    }

    fn story(&self, n: usize) -> Vec<StoryStep> {
        self.story.map_or_else(Vec::new, |story| {
            story(n)
                .into_iter()
                .map(|(key, command)| (key, erase::<A>(command)))
                .collect()
        })
    }
}

/// `command` of `A` as an [`AnyCommand`].
fn erase<A>(command: A::Command) -> Box<dyn AnyCommand>
where
    A: Aggregate + 'static,
    A::Command: 'static,
{
    Box::new(TypedCommand::<A>::new(command))
}

/// Why a declaration cannot run: it would route nothing, or name one thing twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The declaration has no aggregate.
    #[error("the service declares no aggregate")]
    NoAggregate,
    /// Two aggregates share a type.
    #[error("aggregate type {0} is declared twice")]
    DuplicateAggregate(String),
    /// Two aggregates share a route collection.
    #[error("route collection {0} is declared twice")]
    DuplicateCollection(String),
    /// An aggregate's source is not an EventBridge source.
    #[error("the source {declared:?} of {aggregate_type} is not 1 to 256 visible ASCII characters without spaces, or starts with aws.")]
    InvalidSource {
        /// The aggregate type.
        aggregate_type: String,
        /// The source declared.
        declared: String,
    },
    /// Two consumers share a name.
    #[error("consumer {0} is declared twice")]
    DuplicateConsumer(String),
    /// A consumer's name is no stable identifier.
    #[error("consumer name {0:?} is not 1 to 64 lowercase letters, digits and dashes")]
    InvalidConsumerName(String),
    /// A consumer subscribes to an aggregate type the service does not declare.
    #[error(
        "consumer {consumer} subscribes to {aggregate_type}, which the service does not declare"
    )]
    UnknownAggregate {
        /// The consumer.
        consumer: String,
        /// The aggregate type it names.
        aggregate_type: String,
    },
    /// A consumer subscribes to no event, or to event types its aggregate does not record.
    #[error(
        "consumer {consumer} subscribes to {event_types:?}, but {aggregate_type} records {known:?}"
    )]
    UnknownEventTypes {
        /// The consumer.
        consumer: String,
        /// The aggregate type.
        aggregate_type: String,
        /// The event types it names that the aggregate does not record (empty: it names none).
        event_types: Vec<String>,
        /// The event types the aggregate records.
        known: Vec<String>,
    },
    /// An ordered consumer is not delivered every event type of its aggregate,
    /// so a version it is not delivered would look like a gap forever.
    #[error("ordered consumer {consumer} must be delivered every event type of {aggregate_type}: {known:?}")]
    OrderedMissesTypes {
        /// The consumer.
        consumer: String,
        /// The aggregate type.
        aggregate_type: String,
        /// The event types the aggregate records.
        known: Vec<String>,
    },
    /// A consumer name was asked for that the service does not declare.
    #[error("no consumer {name}; the service declares {known:?}")]
    UnknownConsumer {
        /// The name asked for.
        name: String,
        /// The names declared.
        known: Vec<String>,
    },
}

/// A service: its aggregates and its consumers.
#[derive(Clone, Default)]
pub struct Service {
    aggregates: Vec<Arc<dyn DeclaredAggregate>>,
    consumers: Vec<Arc<dyn Reaction>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field(
                "aggregates",
                &self
                    .aggregates
                    .iter()
                    .map(|a| a.aggregate_type())
                    .collect::<Vec<_>>(),
            )
            .field(
                "consumers",
                &self.consumers.iter().map(|c| c.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Service {
    /// A service with nothing declared yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares an aggregate.
    #[must_use]
    pub fn aggregate<A>(mut self, declaration: AggregateDeclaration<A>) -> Self
    where
        A: Aggregate + 'static,
        A::Command: 'static,
    {
        self.aggregates.push(Arc::new(declaration));
        self
    }

    /// Declares a consumer.
    #[must_use]
    pub fn consumer(mut self, reaction: impl Reaction + 'static) -> Self {
        self.consumers.push(Arc::new(reaction));
        self
    }

    /// This service and `other`, deployed together.
    #[must_use]
    pub fn with(mut self, other: Service) -> Self {
        self.aggregates.extend(other.aggregates);
        self.consumers.extend(other.consumers);
        self
    }

    /// The aggregates, in declaration order.
    pub fn aggregates(&self) -> &[Arc<dyn DeclaredAggregate>] {
        &self.aggregates
    }

    /// The consumers, in declaration order.
    pub fn consumers(&self) -> &[Arc<dyn Reaction>] {
        &self.consumers
    }

    /// The consumer called `name`.
    ///
    /// # Errors
    /// [`ServiceError::UnknownConsumer`], listing the declared names.
    pub fn consumer_named(&self, name: &str) -> Result<Arc<dyn Reaction>, ServiceError> {
        self.consumers
            .iter()
            .find(|reaction| reaction.name() == name)
            .cloned()
            .ok_or_else(|| ServiceError::UnknownConsumer {
                name: name.chars().take(64).collect(),
                known: self.consumers.iter().map(|c| c.name().to_owned()).collect(),
            })
    }

    /// The declared aggregate type spelled `raw`, in any case (`REPAIR` → `Repair`).
    pub fn aggregate_type(&self, raw: &str) -> Option<&'static str> {
        self.aggregates
            .iter()
            .map(|aggregate| aggregate.aggregate_type())
            .find(|known| known.eq_ignore_ascii_case(raw))
    }

    /// The declared aggregate of type `aggregate_type`.
    pub fn declared(&self, aggregate_type: &str) -> Option<&Arc<dyn DeclaredAggregate>> {
        self.aggregates
            .iter()
            .find(|aggregate| aggregate.aggregate_type() == aggregate_type)
    }

    /// The `source` of each aggregate type's events.
    pub fn sources(&self) -> EventSources {
        EventSources::new(
            self.aggregates
                .iter()
                .map(|aggregate| (aggregate.aggregate_type(), aggregate.source())),
        )
    }

    /// Checks that the declaration routes every consumer's events and names
    /// nothing twice.
    ///
    /// # Errors
    /// The first [`ServiceError`] found.
    pub fn validate(&self) -> Result<(), ServiceError> {
        if self.aggregates.is_empty() {
            return Err(ServiceError::NoAggregate);
        }
        let mut types = BTreeMap::new();
        let mut collections = BTreeSet::new();
        for aggregate in &self.aggregates {
            let aggregate_type = aggregate.aggregate_type();
            if types.insert(aggregate_type, aggregate).is_some() {
                return Err(ServiceError::DuplicateAggregate(aggregate_type.to_owned()));
            }
            if let Some(collection) = aggregate.collection() {
                if !collections.insert(collection) {
                    return Err(ServiceError::DuplicateCollection(collection.to_owned()));
                }
            }
            let source = aggregate.source();
            let valid = (1..=256).contains(&source.len())
                && source.bytes().all(|b| b.is_ascii_graphic())
                && !source.starts_with("aws.");
            if !valid {
                return Err(ServiceError::InvalidSource {
                    aggregate_type: aggregate_type.to_owned(),
                    declared: source.chars().take(300).collect(),
                });
            }
        }
        let mut names = BTreeSet::new();
        for reaction in &self.consumers {
            let name = reaction.name();
            let valid = (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid {
                return Err(ServiceError::InvalidConsumerName(name.to_owned()));
            }
            if !names.insert(name) {
                return Err(ServiceError::DuplicateConsumer(name.to_owned()));
            }
            let subscription = reaction.subscription();
            let Some(aggregate) = types.get(subscription.aggregate_type) else {
                return Err(ServiceError::UnknownAggregate {
                    consumer: name.to_owned(),
                    aggregate_type: subscription.aggregate_type.to_owned(),
                });
            };
            let known = aggregate.event_types();
            let unknown: Vec<String> = subscription
                .event_types
                .iter()
                .chain(subscription.ordered.unwrap_or_default())
                .filter(|event_type| !known.contains(event_type))
                .map(|event_type| (*event_type).to_owned())
                .collect();
            if !unknown.is_empty() || subscription.event_types.is_empty() {
                return Err(ServiceError::UnknownEventTypes {
                    consumer: name.to_owned(),
                    aggregate_type: subscription.aggregate_type.to_owned(),
                    event_types: unknown,
                    known: known.iter().map(|t| (*t).to_owned()).collect(),
                });
            }
            if let Some(ordered) = subscription.ordered {
                if !known.iter().all(|event_type| ordered.contains(event_type)) {
                    return Err(ServiceError::OrderedMissesTypes {
                        consumer: name.to_owned(),
                        aggregate_type: subscription.aggregate_type.to_owned(),
                        known: known.iter().map(|t| (*t).to_owned()).collect(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consume::ReactionError;
    use crate::external::Reacted;
    use crate::routing::Subscription;
    use outbox_seeds_domain::order::{Order, OrderEvent};
    use outbox_seeds_domain::repair::{Repair, RepairEvent};

    /// A consumer named `name` of `subscription` that records nothing.
    struct Probe {
        name: &'static str,
        subscription: Subscription,
    }

    #[async_trait::async_trait]
    impl Reaction for Probe {
        fn name(&self) -> &'static str {
            self.name
        }

        fn description(&self) -> &'static str {
            "Watches."
        }

        fn subscription(&self) -> Subscription {
            self.subscription
        }

        async fn react(&self, _: &EventEnvelope) -> Result<Reacted, ReactionError> {
            Ok(Reacted::Ignored)
        }
    }

    fn repairs() -> AggregateDeclaration<Repair> {
        AggregateDeclaration::published_as("carworkshop.outbox")
    }

    fn probe(name: &'static str, subscription: Subscription) -> Probe {
        Probe { name, subscription }
    }

    fn completed() -> Subscription {
        Subscription::of::<Repair>(&[RepairEvent::REPAIR_COMPLETED])
    }

    #[test]
    fn a_declaration_that_routes_every_consumer_is_valid() {
        let service = Service::new()
            .aggregate(repairs())
            .aggregate(AggregateDeclaration::<Order>::published_as("orders.outbox"))
            .consumer(probe("billing", completed()))
            .consumer(probe(
                "tracking",
                Subscription::in_order::<Order>(&[OrderEvent::ORDER_PLACED]),
            ));
        assert_eq!(service.validate(), Ok(()));
        assert_eq!(service.sources().source_of("Order"), "orders.outbox");
        assert_eq!(service.aggregate_type("order"), Some("Order"));
        assert_eq!(service.aggregate_type("invoice"), None);
        assert!(service.consumer_named("tracking").is_ok());
        assert!(matches!(
            service.consumer_named("shipping"),
            Err(ServiceError::UnknownConsumer { known, .. }) if known == ["billing", "tracking"]
        ));
    }

    #[test]
    fn a_declaration_that_would_route_nothing_or_names_a_thing_twice_is_refused() {
        type Expected = fn(&ServiceError) -> bool;
        let cases: Vec<(Service, Expected)> = vec![
            (Service::new(), |e| matches!(e, ServiceError::NoAggregate)),
            (
                Service::new().aggregate(repairs()).aggregate(repairs()),
                |e| matches!(e, ServiceError::DuplicateAggregate(t) if t == "Repair"),
            ),
            (
                Service::new().aggregate(AggregateDeclaration::<Repair>::published_as("")),
                |e| matches!(e, ServiceError::InvalidSource { .. }),
            ),
            (
                Service::new()
                    .aggregate(AggregateDeclaration::<Repair>::published_as("aws.repairs")),
                |e| matches!(e, ServiceError::InvalidSource { .. }),
            ),
            (
                Service::new()
                    .aggregate(repairs())
                    .consumer(probe("billing", completed()))
                    .consumer(probe("billing", completed())),
                |e| matches!(e, ServiceError::DuplicateConsumer(n) if n == "billing"),
            ),
            (
                Service::new()
                    .aggregate(repairs())
                    .consumer(probe("Billing Team", completed())),
                |e| matches!(e, ServiceError::InvalidConsumerName(_)),
            ),
            (
                Service::new().aggregate(repairs()).consumer(probe(
                    "shipping",
                    Subscription::of::<Order>(&[OrderEvent::ORDER_PLACED]),
                )),
                |e| matches!(e, ServiceError::UnknownAggregate { aggregate_type, .. } if aggregate_type == "Order"),
            ),
            (
                Service::new().aggregate(repairs()).consumer(probe(
                    "billing",
                    Subscription::of::<Repair>(&["RepairBilled"]),
                )),
                |e| matches!(e, ServiceError::UnknownEventTypes { event_types, .. } if *event_types == ["RepairBilled"]),
            ),
            (
                Service::new()
                    .aggregate(repairs())
                    .consumer(probe("billing", Subscription::of::<Repair>(&[]))),
                |e| matches!(e, ServiceError::UnknownEventTypes { event_types, .. } if event_types.is_empty()),
            ),
            (
                Service::new().aggregate(repairs()).consumer(probe(
                    "history",
                    Subscription {
                        ordered: Some(&[RepairEvent::REPAIR_COMPLETED]),
                        ..completed()
                    },
                )),
                |e| matches!(e, ServiceError::OrderedMissesTypes { .. }),
            ),
        ];
        for (service, expected) in cases {
            let error = service.validate().expect_err("refused");
            assert!(expected(&error), "{service:?}: {error}");
        }
    }

    #[test]
    fn a_declared_aggregate_replays_its_outbox_against_its_stored_state() {
        let declaration = repairs();
        let declared: &dyn DeclaredAggregate = &declaration;
        assert_eq!(declared.event_types(), RepairEvent::TYPES);
        assert_eq!(declared.check_replay(&serde_json::Value::Null, &[]), Ok(()));
        let refused = declared
            .check_replay(&serde_json::json!({"vehicle": 1}), &[])
            .expect_err("undecodable");
        assert!(refused.starts_with("undecodable state"), "{refused}");
        assert!(declared.story(0).is_empty(), "no story was declared");
        assert_eq!(declared.takes_body(None), None, "no routes were declared");
    }
}
