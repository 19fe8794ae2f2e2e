//! A consumer on Lambda: EventBridge events delivered by SQS in, `batchItemFailures` out.
//!
//! Each message body is the EventBridge event whose `detail` is the outbox
//! envelope. The consume use case applies the effect once (inbox). A message
//! that is not such an event, or whose payload does not decode, is dead-lettered
//! with the reason and counts as handled; an inbox failure, or a dead-letter
//! queue that cannot take the letter, names the message for redelivery.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tracing::{info, info_span, warn, Instrument};

use application::ports::{DeadLetter, DeadLetterPayload, DeadLetterQueue};
use application::{ConsumeError, ConsumeService, EventEnvelope, SequenceNumber};

/// Consumes every message of `event`; the response names those to deliver again.
pub async fn consume_sqs_batch(
    consume: &ConsumeService,
    dead_letters: &dyn DeadLetterQueue,
    event: &SqsEvent,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in &event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let handled = consume_message(consume, dead_letters, message)
            .instrument(info_span!("message", message_id = %id, consumer = consume.name()))
            .await;
        if !handled {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Whether `message` is handled: consumed, a duplicate, or dead-lettered.
async fn consume_message(
    consume: &ConsumeService,
    dead_letters: &dyn DeadLetterQueue,
    message: &SqsMessage,
) -> bool {
    let body = message.body.as_deref().unwrap_or_default();
    let event = match serde_json::from_str::<EventBridgeEvent<EventEnvelope>>(body) {
        Ok(event) => event.detail,
        Err(error) => {
            let reason = format!("not an EventBridge event of an outbox envelope: {error}");
            return dead_letter(dead_letters, message, reason, None).await;
        }
    };
    let span = info_span!(
        "event",
        event_id = %event.event_id,
        event_type = %event.event_type,
        correlation_id = %event.correlation_id
    );
    match consume.consume(&event).instrument(span).await {
        Ok(outcome) => {
            info!(?outcome, event_id = %event.event_id, correlation_id = %event.correlation_id, "consumed");
            true
        }
        Err(ConsumeError::Undecodable(error)) => {
            dead_letter(dead_letters, message, error.to_string(), Some(event)).await
        }
        Err(error @ ConsumeError::Inbox(_)) => {
            warn!(%error, "consuming failed, the message will be delivered again");
            false
        }
    }
}

/// Dead-letters `message`; false when the letter could not be stored.
async fn dead_letter(
    dead_letters: &dyn DeadLetterQueue,
    message: &SqsMessage,
    reason: String,
    envelope: Option<EventEnvelope>,
) -> bool {
    warn!(%reason, "dead-lettering a message");
    let attempts = message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|count| count.parse().ok())
        .unwrap_or(1);
    let payload = match envelope {
        Some(envelope) => DeadLetterPayload::Event { envelope },
        None => DeadLetterPayload::Raw {
            raw: message.body.clone().unwrap_or_default(),
        },
    };
    let letter = DeadLetter {
        sequence: SequenceNumber::new(message.message_id.clone().unwrap_or_default()),
        reason,
        attempts,
        payload,
    };
    match dead_letters.send(letter).await {
        Ok(()) => true,
        Err(error) => {
            warn!(%error, "dead-lettering failed, the message will be delivered again");
            false
        }
    }
}
