//! SDK errors turned into the store port's typed errors.
//!
//! A cancelled transaction names a reason per action, in the order the actions
//! were sent (state, outbox items, idempotency record), so a failed condition
//! tells exactly which rule was broken. Throttling, `TransactionConflict` and
//! server-side errors are retryable; a transport failure leaves the outcome unknown.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::CancellationReason;

use application::ports::StoreError;
use application::{BoxError, LimitError, WriteSet};

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

/// Classifies any SDK error by transport and error code.
pub fn sdk_error<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let (code, message) = match &error {
        SdkError::ServiceError(service) => (
            service.err().code().map(str::to_owned),
            service.err().message().unwrap_or_default().to_owned(),
        ),
        SdkError::ConstructionFailure(_) => return StoreError::Failed(Box::new(error)),
        _ => return StoreError::Unavailable(Box::new(error)),
    };
    let boxed: BoxError = Box::new(error);
    match code.as_deref() {
        Some(code) if RETRYABLE_CODES.contains(&code) => StoreError::Throttled(boxed),
        Some(code) if UNAVAILABLE_CODES.contains(&code) => StoreError::Unavailable(boxed),
        Some("ValidationException") if is_size_message(&message) => {
            StoreError::Limit(LimitError::RefusedByStore { reason: message })
        }
        _ => StoreError::Failed(boxed),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use application::{
        AggregateId, AggregateRef, EventEnvelope, IdempotencyKey, IdempotencyRecord, StateRecord,
    };
    use domain::Version;
    use uuid::Uuid;

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
        let err = cancelled(
            &w,
            &reasons(&["ConditionalCheckFailed", "None", "None", "None"]),
            "",
        );
        assert!(
            matches!(err, StoreError::VersionConflict { expected, .. } if expected == Version::new(1))
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
