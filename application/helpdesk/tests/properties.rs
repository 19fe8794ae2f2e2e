//! Property tests of the helpdesk on the toolkit's in-memory adapters.
//!
//! - Random sequences of ticket commands, valid and invalid, some repeated
//!   with an idempotency key, run through `CommandService` on a
//!   `MemoryStore`. After every command the stored state is the fold of the
//!   stored outbox, each ticket's versions are `1..=n` without a gap, the
//!   outcome is what the pure domain decides, and a command that was refused,
//!   replayed or reused a key wrote nothing.
//! - A ticket's events, each delivered twice in a random order, consumed by
//!   `ticket-timeline` through the sequenced inbox: one entry per event, in
//!   version order; and by `satisfaction-survey`: one request per resolution.
//!
//! `PROPTEST_CASES` sets the number of cases (proptest's default: 256).

use std::collections::HashMap;
use std::sync::Arc;

use outbox_application::{
    AggregateId, AggregateRef, CommandError, CommandOutcome, CommandPolicy, CommandService,
    ConsumeError, ConsumeService, Delivery, DeliveryContent, EventEnvelope, IdempotencyKey,
    Reaction, RequestMeta, Target,
};
use outbox_domain::{decide, fold, Aggregate, Text, Version};
use outbox_memory::{MemoryDeadLetterQueue, MemoryInbox, MemoryStore, SequentialIds, StepClock};
use proptest::prelude::*;
use proptest::sample::Index;

use helpdesk::reactions::{SatisfactionSurvey, SurveyRequest, TicketTimeline, TimelineEntry};
use helpdesk::ticket::{Ticket, TicketCommand, TicketEvent, TicketState};

/// The tickets a case works on.
const SLOTS: usize = 3;
/// The agents a ticket is assigned to.
const AGENTS: [&str; 2] = ["grace", "linus"];

#[derive(Debug, Clone)]
enum Action {
    Open,
    Assign(usize),
    Resolve,
    Reopen,
}

#[derive(Debug, Clone)]
struct Step {
    slot: usize,
    action: Action,
    key: Option<u8>,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Open),
        (0..AGENTS.len()).prop_map(Action::Assign),
        Just(Action::Resolve),
        Just(Action::Reopen),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (0..SLOTS, action(), proptest::option::of(0u8..4)).prop_map(|(slot, action, key)| Step {
        slot,
        action,
        key,
    })
}

fn text(raw: &str) -> Text {
    Text::parse("test", raw).expect("valid text")
}

fn command(action: &Action) -> TicketCommand {
    match action {
        Action::Open => TicketCommand::OpenTicket {
            subject: text("printer on fire"),
            requester: text("ada@example.com"),
        },
        Action::Assign(agent) => TicketCommand::AssignTicket {
            agent: text(AGENTS[*agent]),
        },
        Action::Resolve => TicketCommand::ResolveTicket {
            resolution: text("replaced the toner"),
        },
        Action::Reopen => TicketCommand::ReopenTicket {
            reason: text("still smoking"),
        },
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
}

fn commands(store: &MemoryStore) -> CommandService {
    CommandService::new(
        Arc::new(store.clone()),
        Arc::new(StepClock::default()),
        Arc::new(SequentialIds::default()),
        CommandPolicy::default(),
    )
}

/// A ticket id no command ever creates.
fn unknown_ticket() -> AggregateId {
    AggregateId::parse("00000000-0000-7000-8000-000000000000").expect("a canonical id")
}

/// What the client and the pure domain expect the store to hold.
#[derive(Default)]
struct Model {
    slots: [Option<AggregateId>; SLOTS],
    tickets: HashMap<AggregateId, (TicketState, Version)>,
    keys: HashMap<String, (Target, TicketCommand, CommandOutcome)>,
}

/// Everything the store holds, to tell that a command wrote nothing.
fn snapshot(store: &MemoryStore) -> (usize, Vec<EventEnvelope>, Vec<String>) {
    let states = store
        .aggregates()
        .iter()
        .map(|aggregate| format!("{aggregate} {:?}", store.state_of(aggregate)))
        .collect();
    (store.change_count(), store.outbox(), states)
}

/// The stored state of every ticket is the fold of its stored outbox, its
/// versions are `1..=n`, and it is the state the model expects.
fn check_store(store: &MemoryStore, model: &Model) -> Result<(), TestCaseError> {
    let aggregates = store.aggregates();
    prop_assert_eq!(aggregates.len(), model.tickets.len());
    for aggregate in aggregates {
        prop_assert_eq!(aggregate.aggregate_type.as_str(), Ticket::TYPE);
        let record = store
            .state_of(&aggregate)
            .expect("a listed aggregate has a state");
        let outbox = store.outbox_of(&aggregate);
        let versions: Vec<u64> = outbox.iter().map(|e| e.aggregate_version.value()).collect();
        let expected: Vec<u64> = (1..=record.version.value()).collect();
        prop_assert_eq!(versions, expected, "versions of {}", aggregate);
        let events = outbox
            .iter()
            .map(EventEnvelope::decode::<Ticket>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        let stored: TicketState = serde_json::from_value(record.state)
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert_eq!(
            &stored,
            &fold::<Ticket>(None, &events),
            "fold of {}",
            aggregate
        );
        let modelled = model.tickets.get(&aggregate.aggregate_id);
        prop_assert_eq!(modelled, Some(&(stored, record.version)));
    }
    Ok(())
}

/// Runs one step and checks the outcome and what it wrote against the model.
async fn run(
    store: &MemoryStore,
    commands: &CommandService,
    model: &mut Model,
    step: &Step,
) -> Result<(), TestCaseError> {
    let command = command(&step.action);
    let target = match (model.slots[step.slot], &step.action) {
        (Some(id), _) => Target::Existing(id),
        (None, Action::Open) => Target::New,
        (None, _) => Target::Existing(unknown_ticket()),
    };
    let key = step.key.map(|k| format!("key-{k}"));
    let meta = RequestMeta {
        idempotency_key: key
            .as_deref()
            .map(|k| IdempotencyKey::parse(k).expect("a valid key")),
        ..RequestMeta::default()
    };
    let before = snapshot(store);
    let result = commands.execute::<Ticket>(target, &command, &meta).await;

    if let Some((first_target, first_command, first)) = key.as_ref().and_then(|k| model.keys.get(k))
    {
        if (first_target, first_command) == (&target, &command) {
            let outcome = result.map_err(|error| TestCaseError::fail(error.to_string()))?;
            prop_assert!(outcome.replayed);
            prop_assert_eq!(
                (&outcome.aggregate, outcome.version, &outcome.event_ids),
                (&first.aggregate, first.version, &first.event_ids)
            );
        } else {
            prop_assert!(
                matches!(result, Err(CommandError::IdempotencyKeyReused(_))),
                "{:?}",
                result
            );
        }
        prop_assert_eq!(snapshot(store), before, "a repeated key wrote");
        return Ok(());
    }

    let (state, version) = match target {
        Target::New => (None, Version::INITIAL),
        Target::Existing(id) => model.tickets.get(&id).cloned().unwrap_or_default(),
    };
    match (decide::<Ticket>(&state, version, &command), result) {
        (Err(expected), Err(CommandError::Rejected(refused))) => {
            prop_assert_eq!(refused, expected);
            prop_assert_eq!(snapshot(store), before, "a refused command wrote");
        }
        (Ok(decision), Ok(outcome)) => {
            prop_assert!(!outcome.replayed);
            prop_assert_eq!(outcome.version, decision.version);
            let id = outcome.aggregate.aggregate_id;
            let new: Vec<_> = store
                .outbox_of(&outcome.aggregate)
                .into_iter()
                .filter(|e| e.aggregate_version > version)
                .map(|e| e.event_id)
                .collect();
            prop_assert_eq!(&new, &outcome.event_ids);
            prop_assert_eq!(new.len(), decision.events.len());
            prop_assert_eq!(store.outbox().len(), before.1.len() + new.len());
            model.tickets.insert(id, (decision.state, decision.version));
            if target == Target::New {
                model.slots[step.slot] = Some(id);
            }
            if let Some(key) = key {
                model.keys.insert(key, (target, command, outcome));
            }
        }
        (expected, result) => {
            return Err(TestCaseError::fail(format!(
                "the domain decides {expected:?}, the service answered {result:?}"
            )))
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn the_store_holds_the_fold_of_its_outbox_after_every_command(
        steps in proptest::collection::vec(step(), 1..40)
    ) {
        runtime().block_on(async {
            let store = MemoryStore::new();
            let commands = commands(&store);
            let mut model = Model::default();
            for step in &steps {
                run(&store, &commands, &mut model, step).await?;
                check_store(&store, &model)?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}

/// One ticket's outbox after `actions`, the refused ones leaving no trace.
async fn history(actions: &[Action]) -> (AggregateRef, Vec<EventEnvelope>) {
    let store = MemoryStore::new();
    let commands = commands(&store);
    let opened = commands
        .execute::<Ticket>(
            Target::New,
            &command(&Action::Open),
            &RequestMeta::default(),
        )
        .await
        .expect("a new ticket opens");
    let id = Target::Existing(opened.aggregate.aggregate_id);
    for action in actions {
        // Refusals are part of the story: they record nothing.
        let _refused = commands
            .execute::<Ticket>(id, &command(action), &RequestMeta::default())
            .await;
    }
    let outbox = store.outbox_of(&opened.aggregate);
    (opened.aggregate, outbox)
}

/// Delivers every event twice, in the order `picks` chooses from what is
/// waiting; a delivery an ordered consumer hands back waits again.
async fn deliver(
    reaction: impl Reaction + 'static,
    inbox: &MemoryInbox,
    events: &[EventEnvelope],
    picks: &[Index],
) -> Result<(), TestCaseError> {
    let consume = ConsumeService::new(
        Arc::new(inbox.clone()),
        Arc::new(reaction),
        Arc::new(MemoryDeadLetterQueue::new()),
    );
    let mut waiting: Vec<(usize, u32, &EventEnvelope)> = events
        .iter()
        .chain(events)
        .enumerate()
        .map(|(message, event)| (message, 1, event))
        .collect();
    let mut picks = picks.iter().cycle();
    while !waiting.is_empty() {
        let at = picks.next().map_or(0, |pick| pick.index(waiting.len()));
        let (message, receive_count, event) = waiting.swap_remove(at);
        let delivery = Delivery {
            message_id: format!("message-{message}"),
            receive_count,
            first_received_at: None,
            content: DeliveryContent::Event(event.clone()),
        };
        match consume.consume(delivery).await {
            Ok(_) => {}
            Err(ConsumeError::OutOfOrder { .. }) => {
                waiting.push((message, receive_count + 1, event))
            }
            Err(error) => return Err(TestCaseError::fail(error.to_string())),
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn the_timeline_has_one_entry_per_event_in_version_order(
        actions in proptest::collection::vec(action(), 0..20),
        picks in proptest::collection::vec(any::<Index>(), 1..60),
    ) {
        runtime().block_on(async {
            let (ticket, events) = history(&actions).await;
            let inbox = MemoryInbox::new();
            deliver(TicketTimeline, &inbox, &events, &picks).await?;
            deliver(SatisfactionSurvey, &inbox, &events, &picks).await?;

            let entries = inbox
                .history(TicketTimeline::NAME, &ticket)
                .into_iter()
                .map(|effect| serde_json::from_value::<TimelineEntry>(effect.data))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| TestCaseError::fail(error.to_string()))?;
            prop_assert_eq!(inbox.effects_of(TicketTimeline::NAME).len(), events.len());
            let told: Vec<_> = entries.iter().map(|e| (e.version, e.event_type.as_str())).collect();
            let happened: Vec<_> = events
                .iter()
                .map(|e| (e.aggregate_version, e.event_type.as_str()))
                .collect();
            prop_assert_eq!(told, happened);

            let surveys = inbox
                .effects_of(SatisfactionSurvey::NAME)
                .into_iter()
                .map(|effect| serde_json::from_value::<SurveyRequest>(effect.data))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| TestCaseError::fail(error.to_string()))?;
            let resolutions = events
                .iter()
                .filter(|e| e.event_type == TicketEvent::TICKET_RESOLVED)
                .count();
            prop_assert_eq!(surveys.len(), resolutions);
            Ok::<(), TestCaseError>(())
        })?;
    }
}
