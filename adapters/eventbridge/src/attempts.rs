//! What both buses' `PutEvents` share: reading each result entry, classifying
//! a failed request, and sending only the failed entries again with backoff.

use std::future::Future;

use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use tracing::{debug, warn};

use outbox_application::ports::{PublishError, PublishOutcome};
use outbox_application::{BoxError, EventEnvelope};

use crate::retry::RetryPolicy;

/// Error codes that mean the bus itself refuses this publisher (missing bus,
/// denied access, bad credentials): no entry can succeed until that is fixed.
const REFUSED_CODES: [&str; 5] = [
    "AccessDeniedException",
    "ResourceNotFoundException",
    "NotAuthorizedForSourceException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
];

/// Entry error codes after which sending the entry again may succeed.
const RETRYABLE_CODES: [&str; 4] = [
    "ThrottlingException",
    "InternalFailure",
    "InternalException",
    "ServiceUnavailable",
];

/// What a result entry says of its request entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Accepted, with an event id (or dropped as a duplicate of one that was).
    Published,
    /// The bus refuses the publisher as a whole.
    Forbidden(String),
    /// Not accepted this time; sending it again may succeed.
    Retry(String),
    /// Refused for good.
    Refused(String),
}

impl Verdict {
    /// The verdict of a result entry that carries `error_code` (and its
    /// message), or else `event_id`.
    pub(crate) fn of(
        error_code: Option<&str>,
        error_message: Option<&str>,
        event_id: Option<&str>,
    ) -> Self {
        match (error_code, event_id) {
            (None, Some(_)) => Self::Published,
            (None, None) => Self::Retry("the bus returned no event id for the entry".into()),
            (Some(code), _) => {
                let reason = format!("{code}: {}", error_message.unwrap_or_default());
                if RETRYABLE_CODES.contains(&code) {
                    Self::Retry(reason)
                } else if REFUSED_CODES.contains(&code) {
                    Self::Forbidden(reason)
                } else {
                    Self::Refused(reason)
                }
            }
        }
    }
}

/// A whole request's failure: throttling, a bus that refuses the publisher, or
/// the bus out of reach.
pub(crate) fn classify<E, R>(error: SdkError<E, R>) -> PublishError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .map(str::to_owned);
    let boxed: BoxError = Box::new(error);
    if code
        .as_deref()
        .is_some_and(|code| REFUSED_CODES.contains(&code))
    {
        PublishError::Refused(boxed)
    } else if code.is_some_and(|code| code.starts_with("Throttl")) {
        PublishError::Throttled(boxed)
    } else {
        PublishError::Unavailable(boxed)
    }
}

fn retryable(reason: String, attempts: u32) -> PublishOutcome {
    PublishOutcome::Failed {
        retryable: true,
        reason,
        attempts,
    }
}

/// Publishes `events` as the entries `entry` makes of them: each entry is sent
/// by `call` (one request for all entries still pending) until it is
/// published, refused for good, or out of `retry`'s attempts; only failed
/// entries are sent again, after a backoff. Returns one outcome per event.
///
/// # Errors
/// The classified error of a request that failed as a whole.
pub(crate) async fn publish_entries<T, C, F>(
    events: &[EventEnvelope],
    retry: &RetryPolicy,
    entry: impl Fn(&EventEnvelope) -> Result<T, String>,
    call: C,
) -> Result<Vec<PublishOutcome>, PublishError>
where
    T: Clone,
    C: Fn(Vec<T>) -> F,
    F: Future<Output = Result<Vec<Verdict>, PublishError>>,
{
    let mut outcomes: Vec<Option<PublishOutcome>> = vec![None; events.len()];
    let mut pending = Vec::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        match entry(event) {
            Ok(entry) => pending.push((index, entry)),
            Err(error) => {
                outcomes[index] = Some(PublishOutcome::Failed {
                    retryable: false,
                    reason: format!("the envelope did not encode: {error}"),
                    attempts: 0,
                });
            }
        }
    }
    let max_attempts = retry.max_attempts.max(1);
    for attempt in 1..=max_attempts {
        if pending.is_empty() {
            break;
        }
        let verdicts = match call(pending.iter().map(|(_, e)| e.clone()).collect()).await {
            Ok(verdicts) => verdicts,
            Err(error) => {
                warn!(%error, "PutEvents failed as a whole");
                return Err(error);
            }
        };
        let mut again = Vec::new();
        for (position, (index, entry)) in pending.into_iter().enumerate() {
            let verdict = verdicts.get(position).cloned().unwrap_or_else(|| {
                Verdict::Retry("the bus returned no result for the entry".into())
            });
            match verdict {
                Verdict::Published => outcomes[index] = Some(PublishOutcome::Published),
                Verdict::Forbidden(reason) => return Err(PublishError::Refused(reason.into())),
                Verdict::Refused(reason) => {
                    warn!(reason, "the bus refused an entry for good");
                    outcomes[index] = Some(PublishOutcome::Failed {
                        retryable: false,
                        reason,
                        attempts: attempt,
                    });
                }
                Verdict::Retry(reason) => {
                    outcomes[index] = Some(retryable(reason, attempt));
                    again.push((index, entry));
                }
            }
        }
        pending = again;
        if !pending.is_empty() && attempt < max_attempts {
            let wait = retry.backoff(attempt);
            debug!(
                entries = pending.len(),
                attempt,
                ?wait,
                "retrying failed entries"
            );
            tokio::time::sleep(wait).await;
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or_else(|| retryable("not sent".into(), 0)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_as_retry_forbidden_or_refused() {
        assert_eq!(Verdict::of(None, None, Some("e1")), Verdict::Published);
        assert!(matches!(Verdict::of(None, None, None), Verdict::Retry(_)));
        assert!(matches!(
            Verdict::of(Some("ThrottlingException"), None, None),
            Verdict::Retry(_)
        ));
        assert!(matches!(
            Verdict::of(Some("AccessDeniedException"), None, None),
            Verdict::Forbidden(_)
        ));
        assert_eq!(
            Verdict::of(Some("MalformedDetail"), Some("bad"), Some("ignored")),
            Verdict::Refused("MalformedDetail: bad".into())
        );
    }
}
