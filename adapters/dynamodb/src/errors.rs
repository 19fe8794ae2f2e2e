//! The adapter's own error, [`DynamoError`]: every SDK error is classified once,
//! here, by transport and error code, and becomes a port's error only at the
//! adapter's edge (`From` for [`StoreError`] and [`InboxError`]).
//!
//! A cancelled transaction names a reason per action, in the order the actions
//! were sent (state, outbox items, idempotency record), so a failed condition
//! tells exactly which rule was broken; the state action returns the stored item
//! on a failed condition, so a version conflict names the version found.
//! Throttling, `TransactionConflict` and server-side errors are retryable; a
//! transport failure leaves the outcome unknown.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};

use outbox_application::ports::{InboxError, StoreError};
use outbox_application::{BoxError, LimitError, WriteSet};
use outbox_domain::Version;

use crate::layout::VERSION;

/// A failed DynamoDB call, classified.
#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    /// Throttled, or a transaction collided with another; retry later.
    #[error("DynamoDB is throttling: {0}")]
    Throttled(#[source] BoxError),
    /// Out of reach or failing on its side; the call's outcome is unknown.
    #[error("DynamoDB is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// DynamoDB refused the request or an item as too large.
    #[error("DynamoDB refused the size: {0}")]
    TooLarge(String),
    /// An item does not decode.
    #[error("an item does not decode: {0}")]
    Corrupt(#[source] BoxError),
    /// Anything else; retrying will not help.
    #[error("DynamoDB failed: {0}")]
    Failed(#[source] BoxError),
}

impl<E, R> From<SdkError<E, R>> for DynamoError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn from(error: SdkError<E, R>) -> Self {
        let (code, message) = match &error {
            SdkError::ServiceError(service) => (
                service.err().code().map(str::to_owned),
                service.err().message().unwrap_or_default().to_owned(),
            ),
            SdkError::ConstructionFailure(_) => return Self::Failed(Box::new(error)),
            _ => return Self::Unavailable(Box::new(error)),
        };
        match code.as_deref() {
            Some(code) if RETRYABLE_CODES.contains(&code) => Self::Throttled(Box::new(error)),
            Some(code) if UNAVAILABLE_CODES.contains(&code) => Self::Unavailable(Box::new(error)),
            Some("ValidationException") if is_size_message(&message) => Self::TooLarge(message),
            _ => Self::Failed(Box::new(error)),
        }
    }
}

impl From<serde_dynamo::Error> for DynamoError {
    fn from(error: serde_dynamo::Error) -> Self {
        Self::Corrupt(Box::new(error))
    }
}

impl From<DynamoError> for StoreError {
    fn from(error: DynamoError) -> Self {
        match error {
            DynamoError::Throttled(source) => StoreError::Throttled(source),
            DynamoError::Unavailable(source) => StoreError::Unavailable(source),
            DynamoError::TooLarge(reason) => {
                StoreError::Limit(LimitError::RefusedByStore { reason })
            }
            DynamoError::Corrupt(source) => StoreError::Corrupt(source),
            DynamoError::Failed(source) => StoreError::Failed(source),
        }
    }
}

impl From<DynamoError> for InboxError {
    fn from(error: DynamoError) -> Self {
        InboxError::Unavailable(Box::new(error))
    }
}

/// Error codes DynamoDB uses for throttling and colliding transactions.
const RETRYABLE_CODES: [&str; 7] = [
    "ThrottlingException",
    "ThrottlingError",
    "ProvisionedThroughputExceededException",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
    "TransactionConflict",
    "TransactionInProgressException",
];

/// Error codes of a server that failed or is briefly unavailable.
const UNAVAILABLE_CODES: [&str; 3] = [
    "InternalServerError",
    "ServiceUnavailable",
    "InternalFailure",
];

/// The code of a cancellation reason for an action whose condition failed.
const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// Classifies a cancelled transaction of `write` by its reasons. Servers that send
/// no reasons list the codes in the message, e.g. `[ConditionalCheckFailed, None]`.
pub fn cancelled(write: &WriteSet, reasons: &[CancellationReason], message: &str) -> StoreError {
    let codes: Vec<String> = if reasons.is_empty() {
        codes_in_message(message)
    } else {
        reasons
            .iter()
            .map(|reason| reason.code().unwrap_or("None").to_owned())
            .collect()
    };
    let failed = |index: usize| {
        codes
            .get(index)
            .is_some_and(|code| code == CONDITION_FAILED)
    };
    let events = write.outbox.len();
    if let Some(request) = &write.request {
        if failed(1 + events) {
            return StoreError::DuplicateRequest(request.key.clone());
        }
    }
    if failed(0) {
        return StoreError::VersionConflict {
            aggregate: write.aggregate.clone(),
            expected: write.expected_version,
            actual: reasons.first().and_then(stored_version),
        };
    }
    if (1..=events).any(failed) {
        return StoreError::DuplicateEvent(write.aggregate.clone());
    }
    let summary = format!("transaction cancelled: [{}] {message}", codes.join(", "));
    if codes
        .iter()
        .any(|code| RETRYABLE_CODES.contains(&code.as_str()))
    {
        return StoreError::Throttled(summary.into());
    }
    let refusals: Vec<&str> = reasons
        .iter()
        .filter(|r| {
            matches!(
                r.code(),
                Some("ValidationError" | "ItemCollectionSizeLimitExceeded")
            )
        })
        .filter_map(CancellationReason::message)
        .collect();
    if codes
        .iter()
        .any(|code| code == "ItemCollectionSizeLimitExceeded")
        || refusals.iter().any(|m| is_size_message(m))
    {
        return StoreError::Limit(LimitError::RefusedByStore { reason: summary });
    }
    StoreError::Failed(summary.into())
}

/// The version in the stored item a failed condition returned, if any.
fn stored_version(reason: &CancellationReason) -> Option<Version> {
    match reason.item()?.get(VERSION)? {
        AttributeValue::N(number) => number.parse().ok().map(Version::new),
        _ => None,
    }
}

/// Whether a validation message is about an item's or a request's size.
fn is_size_message(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("size") || message.contains("too long") || message.contains("100 items")
}

/// The codes in the bracketed list of a cancellation message.
fn codes_in_message(message: &str) -> Vec<String> {
    let Some(start) = message.rfind('[') else {
        return Vec::new();
    };
    let end = message[start..]
        .find(']')
        .map_or(message.len(), |end| start + end);
    message[start + 1..end]
        .split(',')
        .map(|code| code.trim().to_owned())
        .collect()
}

/// Per action of a cancelled transaction, whether its condition failed.
/// Servers that send no reasons list the codes in the message, e.g.
/// `[ConditionalCheckFailed, None]`.
pub(crate) fn failed_conditions(
    reasons: &[aws_sdk_dynamodb::types::CancellationReason],
    message: Option<&str>,
) -> Vec<bool> {
    if !reasons.is_empty() {
        return reasons
            .iter()
            .map(|reason| reason.code() == Some("ConditionalCheckFailed"))
            .collect();
    }
    message
        .and_then(|m| m.rfind('[').map(|start| &m[start + 1..]))
        .map(|codes| {
            codes
                .trim_end_matches(']')
                .split(',')
                .map(|code| code.trim() == "ConditionalCheckFailed")
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use outbox_application::{
        AggregateId, AggregateRef, EventEnvelope, IdempotencyKey, IdempotencyRecord, StateRecord,
    };
    use outbox_domain::Version;
    use uuid::Uuid;

    #[test]
    fn failed_conditions_are_read_from_the_reasons_or_else_the_message() {
        use aws_sdk_dynamodb::types::CancellationReason;
        let reasons = [
            CancellationReason::builder().code("None").build(),
            CancellationReason::builder()
                .code("ConditionalCheckFailed")
                .build(),
        ];
        assert_eq!(failed_conditions(&reasons, None), vec![false, true]);
        let message = "Transaction cancelled, please refer cancellation reasons for specific \
                       reasons [ConditionalCheckFailed, None]";
        assert_eq!(failed_conditions(&[], Some(message)), vec![true, false]);
        assert_eq!(failed_conditions(&[], None), Vec::<bool>::new());
    }

    fn write(events: usize, keyed: bool) -> WriteSet {
        let aggregate = AggregateRef::new("Repair", AggregateId::from_uuid(Uuid::from_u128(1)));
        let event: EventEnvelope = serde_json::from_value(serde_json::json!({
            "eventId": Uuid::from_u128(2), "eventType": "WorkStarted", "schemaVersion": 1,
            "aggregateType": "Repair", "aggregateId": Uuid::from_u128(1), "aggregateVersion": 2,
            "occurredAt": "2026-01-01T00:00:00Z", "correlationId": "c", "causationId": "r",
            "traceparent": "00-0000000000000000000000000000000a-000000000000000b-01", "data": {}
        }))
        .unwrap();
        WriteSet {
            aggregate: aggregate.clone(),
            expected_version: Version::new(1),
            state: StateRecord {
                version: Version::new(1 + events as u64),
                state: serde_json::Value::Null,
            },
            outbox: vec![event; events],
            request: keyed.then(|| IdempotencyRecord {
                key: IdempotencyKey::parse("k").unwrap(),
                fingerprint: Uuid::from_u128(3),
                aggregate,
                version: Version::new(2),
                event_ids: Vec::new(),
            }),
            request_token: "t".into(),
        }
    }

    fn reasons(codes: &[&str]) -> Vec<CancellationReason> {
        codes
            .iter()
            .map(|code| CancellationReason::builder().code(*code).build())
            .collect()
    }

    #[test]
    fn each_failed_condition_names_its_rule() {
        let w = write(2, true);
        let mut found = reasons(&["ConditionalCheckFailed", "None", "None", "None"]);
        found[0] = CancellationReason::builder()
            .code("ConditionalCheckFailed")
            .item(VERSION, AttributeValue::N("4".into()))
            .build();
        let err = cancelled(&w, &found, "");
        assert!(
            matches!(err, StoreError::VersionConflict { expected, actual: Some(actual), .. }
                if expected == Version::new(1) && actual == Version::new(4))
        );
        let err = cancelled(
            &w,
            &reasons(&["None", "None", "ConditionalCheckFailed", "None"]),
            "",
        );
        assert!(matches!(err, StoreError::DuplicateEvent(_)));
        let err = cancelled(
            &w,
            &reasons(&[
                "ConditionalCheckFailed",
                "None",
                "None",
                "ConditionalCheckFailed",
            ]),
            "",
        );
        assert!(matches!(err, StoreError::DuplicateRequest(key) if key.as_str() == "k"));
    }

    #[test]
    fn collisions_and_throttling_are_retryable() {
        let w = write(1, false);
        for code in [
            "TransactionConflict",
            "ThrottlingError",
            "ProvisionedThroughputExceeded",
        ] {
            let err = cancelled(&w, &reasons(&["None", code]), "");
            assert!(err.is_retryable(), "{code}: {err}");
        }
    }

    #[test]
    fn a_size_refusal_is_a_limit_error() {
        let w = write(1, false);
        let reason = CancellationReason::builder()
            .code("ValidationError")
            .message("Item size has exceeded the maximum allowed size")
            .build();
        let err = cancelled(&w, &[reason], "");
        assert!(matches!(
            err,
            StoreError::Limit(LimitError::RefusedByStore { .. })
        ));
    }

    #[test]
    fn codes_are_read_from_the_message_when_reasons_are_missing() {
        let w = write(1, false);
        let message = "Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]";
        assert!(matches!(
            cancelled(&w, &[], message),
            StoreError::VersionConflict { .. }
        ));
        assert!(matches!(
            cancelled(&w, &[], "no list"),
            StoreError::Failed(_)
        ));
    }
}
