//! A consumer on Lambda: EventBridge events delivered by SQS in, `batchItemFailures` out.
//!
//! From a classic bus each message body is an EventBridge event whose `detail`
//! is the outbox event in one of two shapes, whichever relay published it: the
//! envelope itself (the Lambda or self-hosted relay), or the DynamoDB stream
//! record whose new image is the outbox item (EventBridge Pipes). From a Custom
//! Event Bus subscriber (raw delivery) the body is the envelope itself. The
//! adapter only reads the message; the
//! consume use case applies the effect once (inbox), or dead-letters what can
//! never be consumed, and the response names the messages it could not
//! acknowledge, for redelivery.

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::Value;
use tracing::{info, info_span, warn, Instrument};

use outbox_application::{ConsumeService, Delivery, DeliveryContent, EventEnvelope};
use outbox_dynamodb::items::outbox_envelope;

use crate::telemetry;

/// Consumes every message of `event`; the response names those to deliver again.
pub async fn consume_sqs_batch(consume: &ConsumeService, event: &SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let mut deliveries: Vec<Delivery> = event.records.iter().map(delivery).collect();
    consume.order_batch(&mut deliveries);
    for delivery in deliveries {
        let id = delivery.message_id.clone();
        let span = match &delivery.content {
            DeliveryContent::Event(event) => info_span!(
                "message",
                message_id = %id,
                consumer = consume.name(),
                event_id = %event.event_id,
                event_type = %event.event_type,
                correlation_id = %event.correlation_id,
                traceparent = %event.traceparent.as_str()
            ),
            DeliveryContent::Unreadable { .. } => {
                info_span!("message", message_id = %id, consumer = consume.name())
            }
        };
        let delivered = match &delivery.content {
            DeliveryContent::Event(event) => Some(telemetry::Delivered::from(event)),
            DeliveryContent::Unreadable { .. } => None,
        };
        let result = consume.consume(delivery).instrument(span).await;
        telemetry::consumed(delivered, result.as_ref().ok().copied());
        match result {
            Ok(outcome) => info!(message_id = %id, ?outcome, "consumed"),
            Err(error) => {
                warn!(message_id = %id, %error, "not consumed, the message will be delivered again");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}

/// The outbox envelope in an event's `detail`: a DynamoDB stream record (from
/// EventBridge Pipes) is read through its new image, anything else as the envelope.
fn outbox_event(detail: Value) -> Result<EventEnvelope, String> {
    if detail.get("dynamodb").is_some() {
        let record: EventRecord = serde_json::from_value(detail)
            .map_err(|error| format!("a stream record that does not read: {error}"))?;
        return outbox_envelope(record.change.new_image)
            .map_err(|error| format!("a stream record whose image is no outbox item: {error}"));
    }
    serde_json::from_value(detail).map_err(|error| error.to_string())
}

/// The outbox envelope a message body carries: an EventBridge event (classic
/// bus) is read through its `detail`, anything else as the envelope itself
/// (a Custom Event Bus subscriber's raw delivery).
fn envelope_of(body: &str) -> Result<EventEnvelope, String> {
    let value: Value = serde_json::from_str(body).map_err(|error| error.to_string())?;
    if value.get("detail-type").is_some() {
        let event: EventBridgeEvent<Value> =
            serde_json::from_value(value).map_err(|error| error.to_string())?;
        return outbox_event(event.detail);
    }
    serde_json::from_value(value).map_err(|error| error.to_string())
}

/// Reads an SQS message as a delivery of an outbox event, or of something unreadable.
fn delivery(message: &SqsMessage) -> Delivery {
    let body = message.body.as_deref().unwrap_or_default();
    let content = match envelope_of(body) {
        Ok(envelope) => DeliveryContent::Event(envelope),
        Err(error) => DeliveryContent::Unreadable {
            reason: format!(
                "neither an EventBridge event of an outbox envelope nor an envelope: {error}"
            ),
            raw: body.to_owned(),
        },
    };
    Delivery {
        message_id: message.message_id.clone().unwrap_or_default(),
        receive_count: message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|count| count.parse().ok())
            .unwrap_or(1),
        first_received_at: message
            .attributes
            .get("ApproximateFirstReceiveTimestamp")
            .and_then(|millis| millis.parse::<i128>().ok())
            .and_then(|millis| {
                time::OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).ok()
            }),
        content,
    }
}
