//! What invokes a consumer function: a batch from its queue, or its schedule
//! asking how many aggregates it holds parked (an ordered consumer's level
//! metric, so its alarm stays raised while an aggregate stays parked, even
//! when no delivery arrives).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::{Deserialize, Serialize};

use outbox_application::ports::InboxError;
use outbox_application::ConsumeService;

use crate::{consume_sqs_batch, telemetry};

/// A consumer function's event. The schedule's input is `{"probe": "parked"}`;
/// anything else is read as an SQS batch.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ConsumerEvent {
    /// The schedule's question.
    Probe(Probe),
    /// Messages from the consumer's queue.
    Queue(SqsEvent),
}

/// A scheduled question to the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// What is asked.
    pub probe: ProbeKind,
}

/// What a probe asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// How many aggregates the consumer holds parked now.
    Parked,
}

/// A consumer function's answer.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ConsumerResponse {
    /// The messages to deliver again.
    Queue(SqsBatchResponse),
    /// The parked aggregates counted, also recorded as the metric
    /// [`telemetry::PARKED_AGGREGATES`].
    Parked {
        /// How many.
        parked: u64,
    },
}

/// Handles `event`: a batch is consumed (never an error: what fails is named
/// for redelivery), a probe answered and recorded.
///
/// # Errors
/// [`InboxError`] when the parked aggregates cannot be counted: the
/// invocation fails, which the function's error alarm sees.
pub async fn handle_consumer_event(
    consume: &ConsumeService,
    event: &ConsumerEvent,
) -> Result<ConsumerResponse, InboxError> {
    match event {
        ConsumerEvent::Queue(batch) => Ok(ConsumerResponse::Queue(
            consume_sqs_batch(consume, batch).await,
        )),
        ConsumerEvent::Probe(Probe {
            probe: ProbeKind::Parked,
        }) => {
            let parked = consume.parked_count().await?;
            telemetry::parked(parked);
            Ok(ConsumerResponse::Parked { parked })
        }
    }
}
