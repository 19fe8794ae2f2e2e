//! Property tests of ordered consumption over an unruly bus, on the in-memory
//! inbox: each consumer's queue delivers in random order, repeats deliveries,
//! and loses deliveries that come back later (a visibility timeout), like a
//! classic EventBridge bus in front of an SQS standard queue.
//!
//! - Every event arrives at least once: ordered consumers apply each
//!   aggregate's subscribed events exactly once and in version order, an
//!   unordered consumer exactly once, and nothing stays parked.
//! - One event is lost for good: its aggregate parks at the missing version
//!   in the ordered consumers while every other aggregate completes; the
//!   redrive of the missing event completes the parked aggregate in order.
//! - An operator's skip of a version lost for good is recorded and releases
//!   the rest in order.
//!
//! `SEQUENCING_PROPTEST_CASES` sets the cases (default 500).

#![allow(clippy::unwrap_used)] // A panic is how these tests fail.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use outbox_application::ports::{Effect, Inbox};
use outbox_application::{
    ConsumeError, ConsumeService, Consumed, Delivery, DeliveryContent, EventEnvelope, EventId,
    ParkingPolicy,
};
use outbox_domain::Aggregate;
use outbox_memory::{MemoryDeadLetterQueue, MemoryInbox};
use outbox_seeds_domain::order::Order;
use outbox_tests::{order_events, runtime};
use proptest::prelude::*;

/// Deliveries of an event ahead of a gap before its aggregate parks.
const PARK_AFTER: u32 = 4;

/// One message in a consumer's queue.
#[derive(Debug, Clone)]
struct Message {
    event: EventEnvelope,
    receive_count: u32,
}

/// What the unruly queue does with the message it picks.
#[derive(Debug, Clone, Copy)]
enum Move {
    /// Deliver it.
    Deliver,
    /// Deliver it and keep a copy: the bus published it twice.
    Repeat,
    /// Lose this delivery: the message comes back after its visibility timeout.
    Lose,
}

fn moves() -> impl Strategy<Value = Vec<(Move, usize)>> {
    let one = prop_oneof![
        6 => Just(Move::Deliver),
        1 => Just(Move::Repeat),
        1 => Just(Move::Lose),
    ];
    prop::collection::vec((one, any::<usize>()), 0..120)
}

/// A case: orders of 1–7 events, some ending cancelled.
fn orders() -> impl Strategy<Value = Vec<(u64, bool)>> {
    prop::collection::vec((1_u64..8, any::<bool>()), 1..6)
}

/// The order consumers: two ordered, one unordered.
fn order_consumers(inbox: &MemoryInbox) -> Vec<ConsumeService> {
    outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports())
        .consumers()
        .to_vec()
        .into_iter()
        .filter(|r| r.subscription().aggregate_type == Order::TYPE)
        .map(|reaction| {
            ConsumeService::new(
                Arc::new(inbox.clone()),
                reaction,
                Arc::new(MemoryDeadLetterQueue::new()),
            )
            .with_parking(ParkingPolicy {
                max_attempts: PARK_AFTER,
                max_wait: Duration::from_secs(3600),
            })
        })
        .collect()
}

/// Every event `consumer` is delivered (its subscription's delivered types).
fn routed<'a>(consumer: &ConsumeService, events: &'a [EventEnvelope]) -> Vec<&'a EventEnvelope> {
    let subscription = consumer.subscription();
    events
        .iter()
        .filter(|e| {
            e.aggregate_type == subscription.aggregate_type
                && subscription
                    .delivered_types()
                    .contains(&e.event_type.as_str())
        })
        .collect()
}

/// Runs one consumer's queue, holding `queue`'s messages, through `moves`
/// and then in queue order until it is empty. An event handed back (a gap)
/// goes to the back with one more delivery counted.
async fn drive(consumer: &ConsumeService, mut queue: Vec<Message>, moves: &[(Move, usize)]) {
    let mut moves = moves.iter().copied();
    let mut steps = 0;
    while !queue.is_empty() {
        steps += 1;
        assert!(
            steps < 20_000,
            "{}: the queue never empties",
            consumer.name()
        );
        let (choice, pick) = moves.next().unwrap_or((Move::Deliver, 0));
        let index = pick % queue.len();
        let mut message = queue.remove(index);
        message.receive_count += 1;
        match choice {
            Move::Lose => {
                queue.push(message);
                continue;
            }
            Move::Repeat => queue.push(Message {
                receive_count: 0,
                ..message.clone()
            }),
            Move::Deliver => {}
        }
        let delivery = Delivery {
            message_id: message.event.event_id.to_string(),
            receive_count: message.receive_count,
            first_received_at: None,
            content: DeliveryContent::Event(message.event.clone()),
        };
        match consumer.consume(delivery).await {
            Ok(Consumed::DeadLettered) => panic!("{}: a good event dead-lettered", consumer.name()),
            Ok(_) => {}
            Err(ConsumeError::OutOfOrder { .. }) => queue.push(message),
            Err(error) => panic!("{}: {error}", consumer.name()),
        }
    }
}

/// The events of the cases' orders, order `i` with id `i + 1`.
fn all_events(orders: &[(u64, bool)]) -> Vec<EventEnvelope> {
    orders
        .iter()
        .enumerate()
        .flat_map(|(i, (n, cancelled))| order_events(i as u128 + 1, *n, *cancelled))
        .collect()
}

/// Checks what `consumer` applied: for an ordered consumer, per aggregate the
/// subscribed events of `delivered` in version order; for an unordered one,
/// each subscribed event once.
fn check_effects(inbox: &MemoryInbox, consumer: &ConsumeService, delivered: &[EventEnvelope]) {
    let subscription = consumer.subscription();
    let effects: Vec<Effect> = inbox.effects_of(consumer.name());
    let by_id: HashMap<EventId, &EventEnvelope> =
        delivered.iter().map(|e| (e.event_id, e)).collect();
    let expected: Vec<&EventEnvelope> = delivered
        .iter()
        .filter(|e| subscription.accepts(e))
        .collect();
    let applied: Vec<EventId> = effects.iter().map(|e| e.event_id).collect();
    let unique: HashSet<EventId> = applied.iter().copied().collect();
    assert_eq!(
        unique.len(),
        applied.len(),
        "{}: an effect twice",
        consumer.name()
    );
    assert_eq!(
        unique,
        expected.iter().map(|e| e.event_id).collect::<HashSet<_>>(),
        "{}: the effects are not the subscribed events",
        consumer.name()
    );
    if subscription.is_ordered() {
        let mut last = HashMap::new();
        for id in applied {
            let event = by_id[&id];
            let before = last.insert(event.aggregate_id, event.aggregate_version);
            assert!(
                before < Some(event.aggregate_version),
                "{}: {} applied after version {before:?}",
                consumer.name(),
                event.aggregate_version
            );
        }
    }
}

fn cases() -> u32 {
    std::env::var("SEQUENCING_PROPTEST_CASES")
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(500)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn ordered_consumers_apply_in_version_order_and_every_consumer_exactly_once(
        orders in orders(),
        moves in moves(),
    ) {
        runtime().block_on(async {
            let events = all_events(&orders);
            let inbox = MemoryInbox::new();
            for consumer in order_consumers(&inbox) {
                let queue = routed(&consumer, &events)
                    .into_iter()
                    .map(|event| Message { event: event.clone(), receive_count: 0 })
                    .collect();
                drive(&consumer, queue, &moves).await;
                check_effects(&inbox, &consumer, &events);
            }
            assert_eq!(inbox.parked().await.unwrap(), vec![], "nothing stays parked");
        });
    }

    #[test]
    fn an_event_lost_for_good_parks_its_aggregate_alone_until_it_is_redriven(
        orders in orders(),
        moves in moves(),
        lost_order in any::<prop::sample::Index>(),
        lost_version in any::<prop::sample::Index>(),
    ) {
        runtime().block_on(async {
            let mut orders = orders;
            let lost_order = lost_order.index(orders.len());
            // The lost event has a successor, so an ordered consumer sees the gap.
            orders[lost_order].0 = orders[lost_order].0.max(2);
            let events = all_events(&orders);
            let of_lost: Vec<&EventEnvelope> = events
                .iter()
                .filter(|e| e.aggregate_id == events_of(lost_order))
                .collect();
            let lost = of_lost[lost_version.index(of_lost.len() - 1)].clone();
            let delivered: Vec<EventEnvelope> =
                events.iter().filter(|e| e.event_id != lost.event_id).cloned().collect();
            let inbox = MemoryInbox::new();
            let consumers = order_consumers(&inbox);
            for consumer in &consumers {
                let queue = routed(consumer, &delivered)
                    .into_iter()
                    .map(|event| Message { event: event.clone(), receive_count: 0 })
                    .collect();
                drive(consumer, queue, &moves).await;
            }
            // Ordered: the lost event's aggregate parks at it, holding what follows.
            let parked = inbox.parked().await.unwrap();
            let ordered: Vec<&ConsumeService> =
                consumers.iter().filter(|c| c.subscription().is_ordered()).collect();
            assert_eq!(parked.len(), ordered.len(), "{parked:?}");
            for parked in &parked {
                assert_eq!(parked.aggregate, lost.aggregate());
                assert_eq!(parked.sequence.missing(), lost.aggregate_version);
            }
            for consumer in &consumers {
                let before_gap: Vec<EventEnvelope> = delivered
                    .iter()
                    .filter(|e| {
                        !consumer.subscription().is_ordered()
                            || e.aggregate_id != lost.aggregate_id
                            || e.aggregate_version < lost.aggregate_version
                    })
                    .cloned()
                    .collect();
                check_effects(&inbox, consumer, &before_gap);
            }
            // The redrive of the lost event releases the parked list in order.
            for consumer in &consumers {
                if !routed(consumer, std::slice::from_ref(&lost)).is_empty() {
                    let queue = vec![Message { event: lost.clone(), receive_count: 0 }];
                    drive(consumer, queue, &[]).await;
                }
                check_effects(&inbox, consumer, &events);
            }
            assert_eq!(inbox.parked().await.unwrap(), vec![]);
        });
    }
}

/// The aggregate id of order `index` of a case.
fn events_of(index: usize) -> outbox_application::AggregateId {
    outbox_application::AggregateId::from_uuid(uuid::Uuid::from_u128(index as u128 + 1))
}

#[test]
fn a_skip_of_a_version_lost_for_good_is_recorded_and_releases_the_rest_in_order() {
    runtime().block_on(async {
        let events = order_events(7, 5, true);
        let inbox = MemoryInbox::new();
        let tracking = order_consumers(&inbox)
            .into_iter()
            .find(|c| c.name() == "order-tracking")
            .unwrap();
        let aggregate = events[0].aggregate();
        let queue: Vec<Message> = events
            .iter()
            .filter(|e| e.aggregate_version.value() != 3)
            .map(|event| Message {
                event: event.clone(),
                receive_count: 0,
            })
            .rev()
            .collect();
        drive(&tracking, queue, &[]).await;
        let parked = inbox.parked().await.unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].sequence.missing().value(), 3);
        assert_eq!(parked[0].sequence.held, 2, "versions 4 and 5 wait");
        assert!(parked[0]
            .sequence
            .parking
            .as_ref()
            .unwrap()
            .reason
            .starts_with("version 3 did not arrive"));

        let released = tracking
            .unpark(
                &aggregate,
                Some(("ops@example.com".into(), "lost in an outage".into())),
            )
            .await
            .unwrap();
        assert_eq!(released.applied, 2);
        assert!(released.sequence.parking.is_none());
        let skips = inbox.skips_of("order-tracking", &aggregate);
        assert_eq!(skips.len(), 1);
        assert_eq!(
            (skips[0].version.value(), skips[0].by.as_str()),
            (3, "ops@example.com")
        );
        let versions: Vec<u64> = inbox
            .effects_of("order-tracking")
            .iter()
            .map(|e| e.data["version"].as_u64().unwrap())
            .collect();
        assert_eq!(versions, [1, 2, 4, 5]);
        // The skipped version arriving late is a repeat, and a second unpark finds nothing parked.
        let late = Message {
            event: events[2].clone(),
            receive_count: 0,
        };
        drive(&tracking, vec![late], &[]).await;
        assert_eq!(inbox.effects_of("order-tracking").len(), 4);
        assert!(tracking.unpark(&aggregate, None).await.is_err());
    });
}

/// The version a parked aggregate missed, arriving, says what it released:
/// itself applied and the events held behind it (what a replay's summary
/// counts as released from parking).
#[test]
fn the_missing_version_arriving_reports_the_held_events_it_released() {
    runtime().block_on(async {
        let events = order_events(7, 5, true);
        let inbox = MemoryInbox::new();
        let tracking = order_consumers(&inbox)
            .into_iter()
            .find(|c| c.name() == "order-tracking")
            .unwrap();
        let queue: Vec<Message> = events
            .iter()
            .filter(|e| e.aggregate_version.value() != 3)
            .map(|event| Message {
                event: event.clone(),
                receive_count: 0,
            })
            .collect();
        drive(&tracking, queue, &[]).await;
        assert_eq!(inbox.parked().await.unwrap().len(), 1);
        let missing = Delivery {
            message_id: "late".into(),
            receive_count: 1,
            first_received_at: None,
            content: DeliveryContent::Event(events[2].clone()),
        };
        assert_eq!(
            tracking.consume(missing).await.unwrap(),
            Consumed::Released { released: 2 },
            "version 3 applied, then 4 and 5"
        );
        assert!(inbox.parked().await.unwrap().is_empty());
    });
}
