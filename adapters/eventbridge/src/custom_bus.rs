//! `PutEvents` on an EventBridge Custom Event Bus (`eventbridgev2`) for the
//! relay: the bus that keeps order per event group and drops a repeated
//! `DeduplicationId` for 5 minutes.
//!
//! Each entry's `SystemMetadata.EventGroupId` is its aggregate (`REPAIR#<id>`),
//! so FIFO subscribers see each aggregate's events in the order the bus
//! accepted them, and its `DeduplicationId` is the event id, so an event the
//! relay publishes again after a retry is dropped (`DEDUPLICATED`, which counts
//! as published). The publisher reports
//! [`BusOrder::PerAggregate`](outbox_application::ports::BusOrder::PerAggregate),
//! and the relay sends an aggregate's event only after its previous one was
//! accepted.
//!
//! Limits: [`BatchLimits::CUSTOM_EVENT_BUS`], which cites the entries per
//! request and says why its size is the one this publisher has run with (none
//! is documented for this bus); an entry counted as the classic bus counts it
//! plus the bytes of its group and deduplication ids.
//! The Custom Event Bus has no `TraceHeader`; the trace travels in the envelope.

use async_trait::async_trait;
use aws_sdk_eventbridgev2::primitives::DateTime;
use aws_sdk_eventbridgev2::types::{
    PutEventsRequestEntry, PutEventsResultEntry, PutEventsSystemMetadata, SuccessCode,
};
use aws_sdk_eventbridgev2::Client;

use outbox_application::ports::{BatchLimits, EventPublisher, PublishError, PublishOutcome};
use outbox_application::{EventEnvelope, EventSources};

use crate::attempts::{classify, publish_entries, Verdict};
use crate::retry::RetryPolicy;

/// What the `Time` parameter counts for, as on the classic bus.
const TIME_BYTES: usize = 14;

/// The size of an entry as this publisher counts it against
/// [`BatchLimits::CUSTOM_EVENT_BUS`]: the classic bus's rule (14 bytes for
/// `Time`, the UTF-8 bytes of `Source`, `DetailType`, `Detail` and each
/// resource) plus the bytes of the group and deduplication ids.
pub fn custom_bus_entry_size(entry: &PutEventsRequestEntry) -> usize {
    let text = |value: Option<&str>| value.map_or(0, str::len);
    let metadata = entry
        .system_metadata()
        .map_or(0, |m| text(m.event_group_id()) + text(m.deduplication_id()));
    entry.time().map_or(0, |_| TIME_BYTES)
        + entry.source().len()
        + entry.detail_type().len()
        + text(entry.detail())
        + entry.resources().iter().map(String::len).sum::<usize>()
        + metadata
}

/// Publishes outbox events to a Custom Event Bus, ordered per aggregate and
/// deduplicated by event id.
#[derive(Debug, Clone)]
pub struct CustomBusPublisher {
    client: Client,
    bus_arn: String,
    sources: EventSources,
    retry: RetryPolicy,
}

impl CustomBusPublisher {
    /// A publisher to the bus `bus_arn` through `client`.
    pub fn new(client: Client, bus_arn: impl Into<String>, sources: EventSources) -> Self {
        Self {
            client,
            bus_arn: bus_arn.into(),
            sources,
            retry: RetryPolicy::default(),
        }
    }

    /// The same publisher retrying failed entries by `retry`.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The entry of `event`: `Source` by aggregate type, `DetailType` the event
    /// type, `Detail` the whole envelope, `Time` when it occurred, the
    /// aggregate as event group and the event id as deduplication id.
    fn entry(&self, event: &EventEnvelope) -> Result<PutEventsRequestEntry, String> {
        let detail = serde_json::to_string(event).map_err(|error| error.to_string())?;
        PutEventsRequestEntry::builder()
            .source(self.sources.source_of(&event.aggregate_type))
            .detail_type(&event.event_type)
            .detail(detail)
            .time(DateTime::from_secs(event.occurred_at.unix_timestamp()))
            .system_metadata(
                PutEventsSystemMetadata::builder()
                    .event_group_id(event.aggregate().to_string())
                    .deduplication_id(event.event_id.to_string())
                    .build(),
            )
            .build()
            .map_err(|error| error.to_string())
    }
}

/// What a Custom Event Bus result entry says: `DEDUPLICATED` counts as
/// published (the bus accepted the event before); otherwise as on the classic
/// bus, published only with an event id.
fn verdict(result: &PutEventsResultEntry) -> Verdict {
    if result.error_code().is_none() && result.success_code() == Some(&SuccessCode::Deduplicated) {
        return Verdict::Published;
    }
    Verdict::of(
        result.error_code(),
        result.error_message(),
        result.event_id(),
    )
}

#[async_trait]
impl EventPublisher for CustomBusPublisher {
    /// `PutEvents`' limits on a Custom Event Bus ([`BatchLimits::CUSTOM_EVENT_BUS`]).
    fn limits(&self) -> BatchLimits {
        BatchLimits::CUSTOM_EVENT_BUS
    }

    /// The size of `event`'s entry ([`custom_bus_entry_size`]), counted
    /// without building the entry.
    fn entry_size(&self, event: &EventEnvelope) -> usize {
        const UUID_TEXT: usize = 36;
        let group = event.aggregate_type.to_uppercase().len() + 1 + UUID_TEXT;
        TIME_BYTES
            + self.sources.source_of(&event.aggregate_type).len()
            + event.event_type.len()
            + event.json_len()
            + group
            + UUID_TEXT
    }

    async fn publish(&self, events: &[EventEnvelope]) -> Result<Vec<PublishOutcome>, PublishError> {
        publish_entries(
            events,
            &self.retry,
            |event| self.entry(event),
            |entries| async move {
                let response = self
                    .client
                    .put_events()
                    .event_bus_arn(&self.bus_arn)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(classify)?;
                Ok(response.entries().iter().map(verdict).collect())
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eventbridgev2::operation::put_events::{
        PutEventsError, PutEventsInput, PutEventsOutput,
    };
    use aws_sdk_eventbridgev2::types::error::{
        AccessDeniedException, InternalException, ThrottlingException,
    };
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use outbox_application::{AggregateId, AggregateRef, EventId, Traceparent};
    use outbox_domain::Version;
    use std::time::Duration;
    use time::OffsetDateTime;
    use uuid::Uuid;

    const ARN: &str =
        "arn:aws:events:eu-west-1:123456789012:event-busv2/outbox/abcdefghijklmnopqrstuvwxy";

    fn event(aggregate: u128, version: u64) -> EventEnvelope {
        let aggregate_id = AggregateId::from_uuid(Uuid::from_u128(aggregate));
        EventEnvelope {
            event_id: EventId::derive(
                &AggregateRef::new("Repair", aggregate_id),
                Version::new(version),
            ),
            event_type: "RepairCompleted".into(),
            schema_version: 1,
            aggregate_type: "Repair".into(),
            aggregate_id,
            aggregate_version: Version::new(version),
            occurred_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            correlation_id: "c".into(),
            causation_id: "r".into(),
            traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
            data: serde_json::json!({ "note": "x" }),
        }
    }

    fn published(id: &str) -> PutEventsResultEntry {
        PutEventsResultEntry::builder()
            .event_id(id)
            .success_code(SuccessCode::Published)
            .sequence_number("1")
            .build()
    }

    fn deduplicated() -> PutEventsResultEntry {
        PutEventsResultEntry::builder()
            .success_code(SuccessCode::Deduplicated)
            .build()
    }

    fn failed(code: &str) -> PutEventsResultEntry {
        PutEventsResultEntry::builder()
            .error_code(code)
            .error_message("refused")
            .build()
    }

    fn response(entries: Vec<PutEventsResultEntry>) -> PutEventsOutput {
        let failed = entries.iter().filter(|e| e.error_code().is_some()).count();
        PutEventsOutput::builder()
            .failed_entry_count(i32::try_from(failed).unwrap())
            .set_entries(Some(entries))
            .build()
    }

    fn publisher(client: Client, max_attempts: u32) -> CustomBusPublisher {
        CustomBusPublisher::new(
            client,
            ARN,
            outbox_seeds::service(&outbox_application::OutsidePorts::not_deployed()).sources(),
        )
        .with_retry(RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        })
    }

    /// The (group, deduplication id) of each entry of `request`.
    fn metadata(request: &PutEventsInput) -> Vec<(String, String)> {
        request
            .entries()
            .iter()
            .map(|e| {
                let m = e.system_metadata().unwrap();
                (
                    m.event_group_id().unwrap().to_owned(),
                    m.deduplication_id().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn entries_carry_the_aggregate_as_group_and_the_event_id_as_deduplication_id() {
        let events = [event(1, 1), event(2, 1)];
        let expected: Vec<(String, String)> = events
            .iter()
            .map(|e| (e.aggregate().to_string(), e.event_id.to_string()))
            .collect();
        let rule = mock!(Client::put_events)
            .match_requests(move |request| {
                request.event_bus_arn() == Some(ARN)
                    && metadata(request) == expected
                    && request.entries()[0].detail_type() == "RepairCompleted"
                    && request.entries()[0].source() == "carworkshop.outbox"
            })
            .then_output(|| response(vec![published("e1"), published("e2")]));
        let client = mock_client!(aws_sdk_eventbridgev2, RuleMode::Sequential, [&rule]);
        let outcomes = publisher(client, 1).publish(&events).await.unwrap();
        assert_eq!(outcomes, vec![PublishOutcome::Published; 2]);
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_deduplicated_entry_counts_as_published() {
        let rule = mock!(Client::put_events)
            .then_output(|| response(vec![deduplicated(), published("e2")]));
        let client = mock_client!(aws_sdk_eventbridgev2, RuleMode::Sequential, [&rule]);
        let outcomes = publisher(client, 1)
            .publish(&[event(1, 1), event(2, 1)])
            .await
            .unwrap();
        assert_eq!(outcomes, vec![PublishOutcome::Published; 2]);
    }

    #[tokio::test]
    async fn a_throttled_entry_is_sent_again_alone_and_a_refused_one_is_final() {
        let events = [event(1, 1), event(2, 1), event(3, 1)];
        let retried = events[1].event_id.to_string();
        let first = mock!(Client::put_events)
            .match_requests(|request| request.entries().len() == 3)
            .then_output(|| {
                response(vec![
                    published("e1"),
                    failed("ThrottlingException"),
                    failed("InvalidInputException"),
                ])
            });
        let second = mock!(Client::put_events)
            .match_requests(move |request| {
                metadata(request)
                    .iter()
                    .map(|(_, d)| d.clone())
                    .collect::<Vec<_>>()
                    == vec![retried.clone()]
            })
            .then_output(|| response(vec![published("e2")]));
        let client = mock_client!(
            aws_sdk_eventbridgev2,
            RuleMode::Sequential,
            [&first, &second]
        );
        let outcomes = publisher(client, 3).publish(&events).await.unwrap();
        assert_eq!(outcomes[0], PublishOutcome::Published);
        assert_eq!(outcomes[1], PublishOutcome::Published);
        assert!(matches!(
            &outcomes[2],
            PublishOutcome::Failed { retryable: false, reason, attempts: 1 }
                if reason.starts_with("InvalidInputException")
        ));
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn an_entry_still_failing_after_the_last_attempt_is_a_retryable_failure() {
        let rule =
            mock!(Client::put_events).then_output(|| response(vec![failed("InternalException")]));
        let client = mock_client!(aws_sdk_eventbridgev2, RuleMode::MatchAny, [&rule]);
        let outcomes = publisher(client, 2).publish(&[event(1, 1)]).await.unwrap();
        assert!(matches!(
            &outcomes[0],
            PublishOutcome::Failed {
                retryable: true,
                attempts: 2,
                ..
            }
        ));
        assert_eq!(rule.num_calls(), 2);
    }

    #[tokio::test]
    async fn an_entry_without_an_event_id_or_a_result_is_never_published() {
        let rule = mock!(Client::put_events)
            .then_output(|| response(vec![PutEventsResultEntry::builder().build()]));
        let client = mock_client!(aws_sdk_eventbridgev2, RuleMode::MatchAny, [&rule]);
        let outcomes = publisher(client, 1)
            .publish(&[event(1, 1), event(2, 1)])
            .await
            .unwrap();
        assert!(outcomes.iter().all(|o| matches!(
            o,
            PublishOutcome::Failed {
                retryable: true,
                ..
            }
        )));
    }

    /// Error metadata with `code`, as the SDK reads it off a response.
    fn coded(code: &str) -> aws_sdk_eventbridgev2::error::ErrorMetadata {
        aws_sdk_eventbridgev2::error::ErrorMetadata::builder()
            .code(code)
            .message("refused")
            .build()
    }

    /// What `publish` returns when every call fails with `error`.
    async fn failing_with(
        error: fn() -> PutEventsError,
    ) -> Result<Vec<PublishOutcome>, PublishError> {
        let rule = mock!(Client::put_events)
            .sequence()
            .error(error)
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_eventbridgev2, RuleMode::MatchAny, [&rule], |c| c
            .retry_config(aws_sdk_eventbridgev2::config::retry::RetryConfig::disabled()));
        publisher(client, 3).publish(&[event(1, 1)]).await
    }

    #[tokio::test]
    async fn a_whole_call_failing_is_throttled_unavailable_or_refused() {
        let throttled = failing_with(|| {
            PutEventsError::ThrottlingException(
                ThrottlingException::builder()
                    .meta(coded("ThrottlingException"))
                    .build(),
            )
        })
        .await;
        assert!(
            matches!(throttled, Err(PublishError::Throttled(_))),
            "{throttled:?}"
        );
        let internal = failing_with(|| {
            PutEventsError::InternalException(
                InternalException::builder()
                    .meta(coded("InternalException"))
                    .build(),
            )
        })
        .await;
        assert!(
            matches!(internal, Err(PublishError::Unavailable(_))),
            "{internal:?}"
        );
        let denied = failing_with(|| {
            PutEventsError::AccessDeniedException(
                AccessDeniedException::builder()
                    .meta(coded("AccessDeniedException"))
                    .build(),
            )
        })
        .await;
        assert!(
            matches!(denied, Err(PublishError::Refused(_))),
            "{denied:?}"
        );
    }

    #[test]
    fn limits_are_a_hundred_entries_ordered_per_aggregate_and_the_size_counts_the_ids() {
        let client = mock_client!(aws_sdk_eventbridgev2, RuleMode::Sequential, []);
        let publisher = publisher(client, 1);
        assert_eq!(publisher.limits(), BatchLimits::CUSTOM_EVENT_BUS);
        let event = event(1, 1);
        let entry = publisher.entry(&event).unwrap();
        assert_eq!(publisher.entry_size(&event), custom_bus_entry_size(&entry));
        let detail = serde_json::to_string(&event).unwrap().len();
        let ids = event.aggregate().to_string().len() + event.event_id.to_string().len();
        assert_eq!(
            publisher.entry_size(&event),
            14 + "carworkshop.outbox".len() + "RepairCompleted".len() + detail + ids
        );
    }
}
