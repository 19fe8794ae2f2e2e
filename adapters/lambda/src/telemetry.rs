//! The functions' metrics, through the `metrics` facade: the binaries export
//! them as CloudWatch Embedded Metric Format documents, one flush per
//! invocation. Labels stay bounded: aggregate and event types, outcomes —
//! never an id.

use time::OffsetDateTime;

use outbox_application::{ChangeContent, ChangeRecord, Consumed, EventEnvelope, RelayReport};

/// The metrics' CloudWatch namespace.
pub const NAMESPACE: &str = "Outbox";
/// Events the bus accepted.
pub const EVENTS_PUBLISHED: &str = "EventsPublished";
/// Stream batches that left a record to retry.
pub const RELAY_RETRIES: &str = "RelayRetries";
/// Records dead-lettered by the relay.
pub const RELAY_DEAD_LETTERED: &str = "RelayDeadLettered";
/// `PutEvents` calls.
pub const PUT_EVENTS_CALLS: &str = "PutEventsCalls";
/// Milliseconds from an event's command to its relay.
pub const RELAY_LAG_MS: &str = "RelayLagMs";
/// Effects a consumer applied.
pub const EFFECTS_APPLIED: &str = "EffectsApplied";
/// External calls a consumer completed (the call made, its mark written).
pub const CALLS_COMPLETED: &str = "CallsCompleted";
/// Deliveries a consumer recognised as repeats.
pub const DUPLICATES_SUPPRESSED: &str = "DuplicatesSuppressed";
/// Deliveries a consumer dead-lettered.
pub const CONSUMER_DEAD_LETTERED: &str = "ConsumerDeadLettered";
/// Aggregates an ordered consumer parked behind a missing version.
pub const AGGREGATES_PARKED: &str = "AggregatesParked";
/// Aggregates an ordered consumer holds parked now (a level, by its schedule).
pub const PARKED_AGGREGATES: &str = "ParkedAggregates";
/// Deliveries an ordered consumer held in a parked aggregate's list.
pub const EVENTS_HELD: &str = "EventsHeld";
/// Deliveries left for redelivery (batch item failures).
pub const CONSUMER_RETRIES: &str = "ConsumerRetries";
/// Milliseconds from an event's command to its consumption.
pub const DELIVERY_LAG_MS: &str = "DeliveryLagMs";
/// Commands answered, by aggregate type and outcome.
pub const COMMANDS: &str = "Commands";

/// Milliseconds since `occurred_at`, never negative.
fn lag_ms(occurred_at: OffsetDateTime) -> f64 {
    let lag = OffsetDateTime::now_utc() - occurred_at;
    (lag.whole_milliseconds().max(0)) as f64
}

/// What one relay invocation did, and each relayed event's lag.
pub fn relay_run(records: &[ChangeRecord], report: &RelayReport) {
    metrics::counter!(EVENTS_PUBLISHED).increment(report.published as u64);
    metrics::counter!(RELAY_DEAD_LETTERED).increment(report.dead_lettered as u64);
    metrics::counter!(PUT_EVENTS_CALLS).increment(report.publish_calls as u64);
    metrics::counter!(RELAY_RETRIES).increment(u64::from(report.retry_from.is_some()));
    for record in records {
        if let ChangeContent::Outbox(event) = &record.content {
            metrics::histogram!(RELAY_LAG_MS).record(lag_ms(event.occurred_at));
        }
    }
}

/// What a delivery's metrics need of its event: its type and when it occurred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The event type.
    pub event_type: String,
    /// When its command was decided.
    pub occurred_at: OffsetDateTime,
}

impl From<&EventEnvelope> for Delivered {
    fn from(event: &EventEnvelope) -> Self {
        Self {
            event_type: event.event_type.clone(),
            occurred_at: event.occurred_at,
        }
    }
}

/// One delivery a consumer handled, by event type; `None` for an unreadable one.
pub fn consumed(event: Option<Delivered>, outcome: Option<Consumed>) {
    let (event_type, occurred_at) = match event {
        Some(event) => (event.event_type, Some(event.occurred_at)),
        None => ("unreadable".to_owned(), None),
    };
    let name = match outcome {
        Some(Consumed::Applied | Consumed::Released { .. }) => EFFECTS_APPLIED,
        Some(Consumed::Called) => CALLS_COMPLETED,
        Some(Consumed::Duplicate) => DUPLICATES_SUPPRESSED,
        Some(Consumed::DeadLettered) => CONSUMER_DEAD_LETTERED,
        // One series per function, without the event type, for one alarm each.
        Some(Consumed::Parked) => {
            metrics::counter!(AGGREGATES_PARKED).increment(1);
            return;
        }
        None => {
            metrics::counter!(CONSUMER_RETRIES).increment(1);
            return;
        }
        Some(Consumed::Held) => EVENTS_HELD,
        Some(Consumed::Ignored) => return,
    };
    metrics::counter!(name, "EventType" => event_type).increment(1);
    if let (Some(occurred_at), Some(Consumed::Applied | Consumed::Called)) = (occurred_at, outcome)
    {
        metrics::histogram!(DELIVERY_LAG_MS).record(lag_ms(occurred_at));
    }
}

/// How many aggregates the consumer holds parked now.
pub fn parked(count: u64) {
    metrics::gauge!(PARKED_AGGREGATES).set(count as f64);
}

/// One command answered: the aggregate type and the outcome (`ok` or the error code).
pub fn command(aggregate_type: &'static str, outcome: &'static str) {
    metrics::counter!(COMMANDS, "AggregateType" => aggregate_type, "Outcome" => outcome)
        .increment(1);
}
