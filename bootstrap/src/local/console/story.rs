//! An event's story: where each event of one event id or one aggregate is now —
//! in the outbox (committed), relayed by the relay's checkpoints, and per
//! subscribing consumer applied, held behind a parked gap, or not applied —
//! and the dead letters that hold it.

use std::collections::HashMap;

use outbox_application::ports::Inbox;
use outbox_application::{AggregateRef, EventEnvelope, EventId, Service};
use outbox_dynamodb::{DynamoInbox, DynamoStore};

use super::super::stack::Stack;
use super::super::{parse_aggregate, resolve_aggregate, LocalError};
use super::view::Snapshot;

/// What an operator looks up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// One event.
    Event(EventId),
    /// Every event of one aggregate.
    Aggregate(AggregateRef),
}

impl Lookup {
    /// An event id, or `TYPE#ID` of an aggregate `service` declares.
    ///
    /// # Errors
    /// [`LocalError::Config`] saying what is wrong with it.
    pub fn parse(service: &Service, raw: &str) -> Result<Self, LocalError> {
        let raw = raw.trim();
        if raw.contains('#') {
            let aggregate = parse_aggregate(raw).map_err(LocalError::Config)?;
            return Ok(Self::Aggregate(resolve_aggregate(service, &aggregate)?));
        }
        // An event id is a UUID, read as the envelope reads it.
        let id = serde_json::Value::String(raw.to_owned());
        serde_json::from_value::<EventId>(id)
            .map(Self::Event)
            .map_err(|_| {
                LocalError::Config(format!(
                    "`{}` is neither an event id nor TYPE#ID",
                    raw.chars().take(64).collect::<String>()
                ))
            })
    }
}

/// Where one consumer is with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerState {
    /// Applied (or, for an ordered consumer, its version skipped on record).
    Applied,
    /// The version its ordered consumer waits for, the aggregate parked.
    Missing,
    /// Held in order behind a version not applied yet.
    Held,
    /// Not applied: in flight, dead-lettered or lost.
    NotApplied,
}

/// One event and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct EventStory {
    /// The event.
    pub event: EventEnvelope,
    /// Whether the relay's checkpoints are past it.
    pub relayed: bool,
    /// Each subscribing consumer and where it is with the event.
    pub consumers: Vec<(String, ConsumerState)>,
    /// The ids of the dead letters holding it, with their cause's id.
    pub letters: Vec<(String, String)>,
}

/// The story of a lookup, oldest event first.
#[derive(Debug, Clone, PartialEq)]
pub struct Story {
    /// What was looked up, as typed.
    pub asked: String,
    /// Its events.
    pub events: Vec<EventStory>,
}

/// Tells the story of `lookup` from the open `stack` and the latest `snapshot`.
///
/// # Errors
/// [`LocalError::Store`] when the outbox or an inbox cannot be read.
pub async fn tell(
    stack: &Stack,
    snapshot: &Snapshot,
    lookup: &Lookup,
    asked: &str,
) -> Result<Story, LocalError> {
    let store_error =
        |error: outbox_application::ports::InboxError| LocalError::Store(Box::new(error));
    let (mut events, _) = DynamoStore::new(stack.dynamodb.clone(), stack.layout.clone())
        .outbox_readable()
        .await
        .map_err(|error| LocalError::Store(Box::new(error)))?;
    events.retain(|event| match lookup {
        Lookup::Event(id) => event.event_id == *id,
        Lookup::Aggregate(aggregate) => event.aggregate() == *aggregate,
    });
    events.sort_by_key(|event| (event.aggregate().to_string(), event.aggregate_version));
    let inbox = DynamoInbox::new(stack.dynamodb.clone(), &stack.layout.inbox_table);
    let mut handled = HashMap::new();
    let mut stories = Vec::new();
    for event in events {
        let mut consumers = Vec::new();
        for reaction in stack.service.consumers() {
            let subscription = reaction.subscription();
            if !subscription.accepts(&event) {
                continue;
            }
            let name = reaction.name();
            let state = if subscription.is_ordered() {
                let sequence = inbox
                    .sequence(name, &event.aggregate())
                    .await
                    .map_err(store_error)?;
                let version = event.aggregate_version.value();
                if version <= sequence.applied.value() {
                    ConsumerState::Applied
                } else if sequence.parking.is_some() && version == sequence.missing().value() {
                    ConsumerState::Missing
                } else if sequence.held > 0 {
                    ConsumerState::Held
                } else {
                    ConsumerState::NotApplied
                }
            } else {
                if !handled.contains_key(name) {
                    let marks = inbox.handled_events(name).await.map_err(store_error)?;
                    handled.insert(name.to_owned(), marks);
                }
                if handled
                    .get(name)
                    .is_some_and(|marks| marks.contains(&event.event_id))
                {
                    ConsumerState::Applied
                } else {
                    ConsumerState::NotApplied
                }
            };
            consumers.push((name.to_owned(), state));
        }
        let id = event.event_id.to_string();
        let letters = snapshot
            .groups
            .iter()
            .flat_map(|group| {
                group
                    .letters
                    .iter()
                    .filter(|letter| letter.event_id.as_deref() == Some(id.as_str()))
                    .map(|letter| (letter.id.clone(), group.id.clone()))
            })
            .collect();
        let relayed = snapshot
            .status
            .relayed_before
            .is_none_or(|before| event.occurred_at < before);
        stories.push(EventStory {
            event,
            relayed,
            consumers,
            letters,
        });
    }
    Ok(Story {
        asked: asked.to_owned(),
        events: stories,
    })
}
