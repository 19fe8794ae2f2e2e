//! Dead letters on SQS: the letter as the message body (JSON), its reason,
//! attempt count and stream position as message attributes for filtering and
//! alarms. A letter is sent whole when it fits, with its attributes, in the
//! largest message SQS takes ([`MAX_MESSAGE_BYTES`]); a larger one carries a
//! cut copy of its payload. As a [`DeadLetterStore`] it reads them back for
//! redrive: a read hides the letters it returns for [`READ_HIDES_SECONDS`], a
//! letter is deleted only once handled, and a message that is no letter is
//! shown, never deleted.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    Message, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;
use time::OffsetDateTime;
use tracing::warn;

use outbox_application::ports::{
    DeadLetter, DeadLetterError, DeadLetterPayload, DeadLetterQueue, DeadLetterStore, LetterDepth,
    LetterPage, MalformedLetter, StoredLetter,
};

/// How long a read hides the letters it returned from other readers: long
/// enough to redrive a page, short enough that an interrupted redrive's letters
/// come back soon.
pub const READ_HIDES_SECONDS: i32 = 30;

/// The largest message SQS takes, body and attributes together, so the most a
/// letter can keep whole: "The message to send. The minimum size is one
/// character. The maximum size is 1 MiB or 1,048,576 bytes" (Amazon SQS API
/// Reference, `SendMessage`, `MessageBody`,
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>),
/// and "All parts of the message attribute, including Name, Type, and Value,
/// are part of the message size restriction (1 MiB or 1,048,576 bytes)."
/// (`MessageAttributeValue`,
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html>).
/// A queue takes it when its `MaximumMessageSize` is left at its default or
/// set to its largest, both 1,048,576 (`CreateQueue`,
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html>);
/// raised from 256 KiB, see the AWS Compute Blog, "More room to build:
/// serverless services now support payloads up to 1 MB"
/// (<https://aws.amazon.com/blogs/compute/more-room-to-build-serverless-services-now-support-payloads-up-to-1-mb>).
pub const MAX_MESSAGE_BYTES: usize = 1_048_576;
/// The least a payload is cut by per try, so cutting ends quickly.
const NOTICE_ROOM: usize = 1024;
/// The most of a reason kept in a cut letter.
const MAX_REASON_BYTES: usize = 4 * 1024;
/// The most of a reason its `reason` attribute carries, in characters.
const REASON_ATTRIBUTE_CHARS: usize = 256;

/// The dead-letter queue on SQS.
#[derive(Debug, Clone)]
pub struct SqsDeadLetterQueue {
    client: Client,
    queue_url: String,
}

impl SqsDeadLetterQueue {
    /// The queue at `queue_url` through `client`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Up to `max` (1 to 10) messages, hidden from other readers for `hide_seconds`.
    async fn receive(
        &self,
        max: usize,
        hide_seconds: i32,
    ) -> Result<Vec<StoredLetter>, DeadLetterError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
            .visibility_timeout(hide_seconds)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|error| DeadLetterError(Box::new(error)))?;
        Ok(output.messages().iter().map(stored).collect())
    }
}

/// A received message as a stored letter: the letter, or why it is none.
fn stored(message: &Message) -> StoredLetter {
    let body = message.body().unwrap_or_default().to_owned();
    let stored_at = message
        .attributes()
        .and_then(|attributes| attributes.get(&MessageSystemAttributeName::SentTimestamp))
        .and_then(|millis| millis.parse::<i128>().ok())
        .and_then(|millis| OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).ok());
    let content = serde_json::from_str::<DeadLetter>(&body).map_err(|error| MalformedLetter {
        reason: error.to_string(),
        body,
    });
    StoredLetter {
        handle: message.receipt_handle().unwrap_or_default().to_owned(),
        stored_at,
        content,
    }
}

/// The message of `letter`: its body, whole when it fits beside the
/// attributes in [`MAX_MESSAGE_BYTES`], and its attributes.
fn message(
    letter: &DeadLetter,
) -> Result<(String, HashMap<String, MessageAttributeValue>), serde_json::Error> {
    let attributes = attributes(letter);
    let room = MAX_MESSAGE_BYTES.saturating_sub(attributes_size(&attributes));
    Ok((body(letter, room)?, attributes))
}

/// The message attributes of `letter`, for filtering and alarms: its reason
/// (its first [`REASON_ATTRIBUTE_CHARS`] characters), attempt count and source.
fn attributes(letter: &DeadLetter) -> HashMap<String, MessageAttributeValue> {
    let reason: String = letter.reason.chars().take(REASON_ATTRIBUTE_CHARS).collect();
    let attempts = MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(letter.attempts.to_string())
        .build()
        .ok();
    [
        ("reason", text(&reason)),
        ("attempts", attempts),
        ("source", text(&letter.source.to_string())),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name.to_owned(), v)))
    .collect()
}

/// What `attributes` count for against [`MAX_MESSAGE_BYTES`]: each one's
/// name, data type and value.
fn attributes_size(attributes: &HashMap<String, MessageAttributeValue>) -> usize {
    attributes
        .iter()
        .map(|(name, value)| {
            name.len() + value.data_type().len() + value.string_value().map_or(0, str::len)
        })
        .sum()
}

/// The message body of `letter`, at most `max_bytes`. A longer one keeps its
/// position and (cut) reason but carries a cut copy of the payload, saying so:
/// the full item stays in the outbox table until its TTL. Sizes are measured on
/// the encoded body, since JSON escaping can double a raw payload.
fn body(letter: &DeadLetter, max_bytes: usize) -> Result<String, serde_json::Error> {
    let full = serde_json::to_string(letter)?;
    if full.len() <= max_bytes {
        return Ok(full);
    }
    let payload = match &letter.payload {
        DeadLetterPayload::Event { envelope } => serde_json::to_string(envelope)?,
        DeadLetterPayload::Raw { raw } => raw.clone(),
    };
    let reason = prefix(&letter.reason, MAX_REASON_BYTES);
    let mut cut = payload.len();
    loop {
        cut = floor_char_boundary(&payload, cut);
        let shortened = DeadLetter {
            reason: format!(
                "{reason} [payload cut from {} to {cut} bytes; the full item stays in the outbox table until its TTL]",
                payload.len()
            ),
            payload: DeadLetterPayload::Raw {
                raw: payload[..cut].to_owned(),
            },
            ..letter.clone()
        };
        let encoded = serde_json::to_string(&shortened)?;
        if encoded.len() <= max_bytes || cut == 0 {
            return Ok(encoded);
        }
        let overshoot = encoded.len() - max_bytes;
        cut = cut.saturating_sub(overshoot.max(NOTICE_ROOM));
    }
}

/// The longest prefix of `text` of at most `max` bytes.
fn prefix(text: &str, max: usize) -> &str {
    &text[..floor_char_boundary(text, max.min(text.len()))]
}

/// The largest char boundary of `text` at or below `index`.
fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

fn text(value: &str) -> Option<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .ok()
}

#[async_trait]
impl DeadLetterQueue for SqsDeadLetterQueue {
    async fn send(&self, letter: DeadLetter) -> Result<(), DeadLetterError> {
        let (body, attributes) =
            message(&letter).map_err(|error| DeadLetterError(Box::new(error)))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .set_message_attributes(Some(attributes))
            .send()
            .await
            .map_err(|error| {
                warn!(source = %letter.source, %error, "SendMessage to the dead-letter queue failed");
                DeadLetterError(Box::new(error))
            })?;
        Ok(())
    }
}

#[async_trait]
impl DeadLetterStore for SqsDeadLetterQueue {
    async fn read(&self, _after: Option<&str>, max: usize) -> Result<LetterPage, DeadLetterError> {
        let letters = self.receive(max, READ_HIDES_SECONDS).await?;
        let next = (!letters.is_empty()).then(|| "more".to_owned());
        Ok(LetterPage { letters, next })
    }

    async fn remove(&self, handle: &str) -> Result<(), DeadLetterError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(handle)
            .send()
            .await
            .map_err(|error| DeadLetterError(Box::new(error)))?;
        Ok(())
    }

    async fn depth(&self) -> Result<LetterDepth, DeadLetterError> {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|error| DeadLetterError(Box::new(error)))?;
        let count = |name: QueueAttributeName| {
            attributes
                .attributes()
                .and_then(|all| all.get(&name))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let letters = count(QueueAttributeName::ApproximateNumberOfMessages)
            + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
        // A peek that leaves the messages visible: the oldest of those it sees.
        let oldest = self
            .receive(10, 0)
            .await?
            .iter()
            .filter_map(|letter| letter.stored_at)
            .min();
        Ok(LetterDepth { letters, oldest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outbox_application::ports::{sha256_hex, LetterSource};
    use outbox_application::{RecordIdentity, SequenceNumber};

    fn identity() -> RecordIdentity {
        RecordIdentity {
            pk: Some("REPAIR#0196a5b2-0000-7000-8000-000000000001".into()),
            sk: Some("EVENT#00000000000000000003".into()),
            event_id: Some("8d5e957f-2971-5d0b-9e0c-3d1a4d1b1a2b".into()),
            event_type: Some("RepairCompleted".into()),
        }
    }

    fn letter(raw: String) -> DeadLetter {
        DeadLetter::new(
            LetterSource::StreamRecord {
                sequence: SequenceNumber::new("42"),
            },
            "undecodable outbox item",
            1,
            DeadLetterPayload::Raw { raw },
            identity(),
        )
    }

    /// The body of `letter` as sent, after checking that it fits beside its
    /// attributes in the largest message SQS takes.
    fn sent_body(letter: &DeadLetter) -> String {
        let (body, attributes) = message(letter).unwrap();
        let size = body.len() + attributes_size(&attributes);
        assert!(size <= MAX_MESSAGE_BYTES, "{size} bytes");
        body
    }

    #[test]
    fn a_small_letter_is_sent_whole() {
        let small = letter("{\"pk\":\"x\"}".into());
        let sent: DeadLetter = serde_json::from_str(&sent_body(&small)).unwrap();
        assert_eq!(sent, small);
    }

    #[test]
    fn a_letter_as_large_as_sqs_takes_is_sent_whole_and_a_byte_more_is_cut() {
        // "1 MiB or 1,048,576 bytes", body and attributes, as SQS's API
        // reference states it: the expectation, apart from the constant.
        let sqs_takes = 1_048_576;
        let empty = letter(String::new());
        let room = sqs_takes
            - attributes_size(&attributes(&empty))
            - serde_json::to_string(&empty).unwrap().len();
        let largest = letter("x".repeat(room));
        let body = sent_body(&largest);
        assert_eq!(
            body.len() + attributes_size(&attributes(&largest)),
            sqs_takes
        );
        assert_eq!(serde_json::from_str::<DeadLetter>(&body).unwrap(), largest);
        let over = letter("x".repeat(room + 1));
        let cut: DeadLetter = serde_json::from_str(&sent_body(&over)).unwrap();
        assert!(cut.reason.contains("[payload cut from"), "{}", cut.reason);
    }

    #[test]
    fn an_oversized_letter_is_cut_to_fit_and_says_so() {
        let big = letter("é".repeat(MAX_MESSAGE_BYTES));
        let encoded = sent_body(&big);
        let sent: DeadLetter = serde_json::from_str(&encoded).unwrap();
        assert_eq!(sent.source, big.source);
        assert!(sent
            .reason
            .starts_with("undecodable outbox item [payload cut from"));
        let DeadLetterPayload::Raw { raw } = sent.payload else {
            panic!("a cut payload is raw");
        };
        assert!(raw.starts_with("éé") && raw.len() < MAX_MESSAGE_BYTES);
    }

    #[test]
    fn a_letter_cut_to_nothing_still_names_its_item_event_and_payload_hash() {
        let raw = "\"".repeat(2 * MAX_MESSAGE_BYTES);
        let huge = letter(raw.clone());
        let sent: DeadLetter = serde_json::from_str(&sent_body(&huge)).unwrap();
        assert_eq!(
            sent.identity,
            identity(),
            "keys, event id and type are kept"
        );
        assert_eq!(sent.payload_sha256, sha256_hex(raw.as_bytes()));
        assert_eq!(sent.source, huge.source);
    }

    #[test]
    fn a_payload_that_json_escaping_doubles_still_fits() {
        let mut quoted = letter("\"".repeat(MAX_MESSAGE_BYTES / 2 + 10));
        quoted.reason = "r".repeat(MAX_MESSAGE_BYTES);
        let sent: DeadLetter = serde_json::from_str(&sent_body(&quoted)).unwrap();
        let DeadLetterPayload::Raw { raw } = sent.payload else {
            panic!("a cut payload is raw");
        };
        assert!(
            raw.len() > MAX_MESSAGE_BYTES / 4,
            "the cut keeps most of what fits: {}",
            raw.len()
        );
        assert!(sent.reason.len() < MAX_REASON_BYTES + 200);
    }
}
