//! `PutEvents` on a classic EventBridge bus for the relay: one request per
//! batch (the relay packs batches by the limits this publisher reports),
//! per-entry outcomes, and retries of only the failed entries. A bus that does
//! not exist or denies access refuses the publisher as a whole.

use async_trait::async_trait;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

use outbox_application::ports::{BatchLimits, EventPublisher, PublishError, PublishOutcome};
use outbox_application::{EventEnvelope, EventSources, Traceparent};

use crate::attempts::{classify, publish_entries, Verdict};
use crate::retry::RetryPolicy;

/// What the `Time` parameter counts for, whatever its value.
const TIME_BYTES: usize = 14;

/// The size of a `PutEvents` entry as EventBridge counts it against
/// [`BatchLimits::CLASSIC_EVENT_BUS`]: "If specified, the Time parameter is 14
/// bytes. The Source and DetailType parameters are the number of bytes for
/// their UTF-8 encoded forms. If specified, the Detail parameter is the number
/// of bytes for its UTF-8 encoded form. If specified, each entry of the
/// Resources parameter is the number of bytes for its UTF-8 encoded forms."
/// (Amazon EventBridge User Guide, "Calculating Amazon EventBridge PutEvents
/// event entry size",
/// <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html>).
pub fn entry_size(entry: &PutEventsRequestEntry) -> usize {
    let text = |value: Option<&str>| value.map_or(0, str::len);
    entry.time().map_or(0, |_| TIME_BYTES)
        + text(entry.source())
        + text(entry.detail_type())
        + text(entry.detail())
        + entry.resources().iter().map(String::len).sum::<usize>()
}

/// Publishes outbox events to an EventBridge bus.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: Client,
    bus_name: String,
    sources: EventSources,
    retry: RetryPolicy,
}

impl EventBridgePublisher {
    /// A publisher to `bus_name` through `client`.
    pub fn new(client: Client, bus_name: impl Into<String>, sources: EventSources) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
            sources,
            retry: RetryPolicy::default(),
        }
    }

    /// The same publisher retrying failed entries by `retry`.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The entry of `event`: `Source` by aggregate type, `DetailType` the event
    /// type, `Detail` the whole envelope, `Time` when it occurred, `TraceHeader`
    /// the command's trace in X-Ray format, so one trace spans API → table →
    /// relay → bus → consumer.
    fn entry(&self, event: &EventEnvelope) -> Result<PutEventsRequestEntry, serde_json::Error> {
        Ok(PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(self.sources.source_of(&event.aggregate_type))
            .detail_type(&event.event_type)
            .detail(serde_json::to_string(event)?)
            .time(DateTime::from_secs(event.occurred_at.unix_timestamp()))
            .trace_header(xray_trace_header(&event.traceparent))
            .build())
    }
}

/// `trace` in AWS X-Ray's header format, the one `TraceHeader` carries:
/// `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`.
fn xray_trace_header(trace: &Traceparent) -> String {
    let mut parts = trace.as_str().split('-').skip(1);
    let (id, parent, flags) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let sampled = u8::from_str_radix(flags, 16).map_or(0, |f| f & 1);
    let (epoch, unique) = id.split_at(id.len().min(8));
    format!("Root=1-{epoch}-{unique};Parent={parent};Sampled={sampled}")
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    /// `PutEvents`' limits on a classic bus ([`BatchLimits::CLASSIC_EVENT_BUS`]).
    fn limits(&self) -> BatchLimits {
        BatchLimits::CLASSIC_EVENT_BUS
    }

    /// The size of `event`'s entry as AWS counts it ([`entry_size`]), counted
    /// without building the entry: `Time`, `Source`, `DetailType`, `Detail`.
    fn entry_size(&self, event: &EventEnvelope) -> usize {
        TIME_BYTES
            + self.sources.source_of(&event.aggregate_type).len()
            + event.event_type.len()
            + event.json_len()
    }

    async fn publish(&self, events: &[EventEnvelope]) -> Result<Vec<PublishOutcome>, PublishError> {
        publish_entries(
            events,
            &self.retry,
            |event| self.entry(event).map_err(|error| error.to_string()),
            |entries| async move {
                let response = self
                    .client
                    .put_events()
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(classify)?;
                Ok(response
                    .entries()
                    .iter()
                    .map(|result| {
                        Verdict::of(
                            result.error_code(),
                            result.error_message(),
                            result.event_id(),
                        )
                    })
                    .collect())
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eventbridge::operation::put_events::{
        PutEventsError, PutEventsInput, PutEventsOutput,
    };
    use aws_sdk_eventbridge::types::error::InternalException;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use outbox_application::{AggregateId, AggregateRef, EventId, Traceparent};
    use outbox_domain::Version;
    use std::time::Duration;
    use time::OffsetDateTime;
    use uuid::Uuid;

    fn event(aggregate: u128, detail_bytes: usize) -> EventEnvelope {
        let aggregate_id = AggregateId::from_uuid(Uuid::from_u128(aggregate));
        EventEnvelope {
            event_id: EventId::derive(&AggregateRef::new("Repair", aggregate_id), Version::new(1)),
            event_type: "RepairCompleted".into(),
            schema_version: 1,
            aggregate_type: "Repair".into(),
            aggregate_id,
            aggregate_version: Version::new(1),
            occurred_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            correlation_id: "c".into(),
            causation_id: "r".into(),
            traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
            data: serde_json::json!({ "note": "x".repeat(detail_bytes) }),
        }
    }

    fn ok(id: &str) -> PutEventsResultEntry {
        PutEventsResultEntry::builder().event_id(id).build()
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

    fn publisher(client: Client, max_attempts: u32) -> EventBridgePublisher {
        EventBridgePublisher::new(
            client,
            "outbox-bus",
            outbox_seeds::service(&outbox_application::OutsidePorts::not_deployed()).sources(),
        )
        .with_retry(RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        })
    }

    fn details(request: &PutEventsInput) -> Vec<String> {
        request
            .entries()
            .iter()
            .map(|e| e.detail().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn entry_size_counts_like_aws_time_fourteen_bytes_and_utf8_lengths() {
        let entry = PutEventsRequestEntry::builder()
            .source("carworkshop.outbox")
            .detail_type("RepairCompleted")
            .detail("{\"k\":\"é\"}")
            .resources("arn:r")
            .time(DateTime::from_secs(0))
            .build();
        assert_eq!(entry_size(&entry), 14 + 18 + 15 + 10 + 5);
        let bare = PutEventsRequestEntry::builder()
            .source("s")
            .detail_type("d")
            .build();
        assert_eq!(entry_size(&bare), 2);
    }

    #[test]
    fn the_reported_entry_size_is_the_size_of_the_entry_sent() {
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, []);
        let publisher = publisher(client, 1);
        let event = event(1, 1_000);
        let entry = publisher.entry(&event).unwrap();
        assert_eq!(publisher.entry_size(&event), entry_size(&entry));
        assert!(publisher.entry_size(&event) > 1_000);
        assert_eq!(publisher.limits(), BatchLimits::CLASSIC_EVENT_BUS);
    }

    #[tokio::test]
    async fn only_failed_entries_are_sent_again_and_permanent_refusals_are_final() {
        let events: Vec<EventEnvelope> = (1..=4).map(|i| event(i, 1)).collect();
        let expected_retry = serde_json::to_string(&events[1]).unwrap();
        let first = mock!(Client::put_events)
            .match_requests(|request| request.entries().len() == 4)
            .then_output(|| {
                response(vec![
                    ok("e1"),
                    failed("ThrottlingException"),
                    ok("e3"),
                    failed("MalformedDetail"),
                ])
            });
        let second = mock!(Client::put_events)
            .match_requests(move |request| details(request) == vec![expected_retry.clone()])
            .then_output(|| response(vec![ok("e2")]));
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, [&first, &second]);

        let outcomes = publisher(client, 3).publish(&events).await.unwrap();

        assert_eq!(outcomes[0], PublishOutcome::Published);
        assert_eq!(outcomes[1], PublishOutcome::Published);
        assert_eq!(outcomes[2], PublishOutcome::Published);
        assert!(matches!(
            &outcomes[3],
            PublishOutcome::Failed { retryable: false, reason, attempts: 1 }
                if reason.starts_with("MalformedDetail")
        ));
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn entries_still_failing_after_the_last_attempt_are_retryable_failures() {
        let throttled = mock!(Client::put_events)
            .sequence()
            .output(|| response(vec![failed("InternalFailure")]))
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&throttled]);

        let outcomes = publisher(client, 3).publish(&[event(1, 1)]).await.unwrap();

        assert!(matches!(
            &outcomes[0],
            PublishOutcome::Failed {
                retryable: true,
                attempts: 3,
                ..
            }
        ));
        assert_eq!(throttled.num_calls(), 3);
    }

    #[tokio::test]
    async fn an_entry_without_a_result_or_event_id_is_never_reported_published() {
        let short = mock!(Client::put_events)
            .then_output(|| response(vec![PutEventsResultEntry::builder().build()]));
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, [&short]);

        let outcomes = publisher(client, 1)
            .publish(&[event(1, 1), event(2, 1)])
            .await
            .unwrap();

        assert_eq!(outcomes.len(), 2);
        assert!(outcomes.iter().all(|o| matches!(
            o,
            PublishOutcome::Failed {
                retryable: true,
                ..
            }
        )));
    }

    #[tokio::test]
    async fn a_request_failing_as_a_whole_publishes_nothing() {
        let down = mock!(Client::put_events)
            .sequence()
            .error(|| {
                PutEventsError::InternalException(
                    InternalException::builder().message("down").build(),
                )
            })
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&down]);

        let result = publisher(client, 2).publish(&[event(1, 1)]).await;

        assert!(
            matches!(result, Err(PublishError::Unavailable(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_missing_bus_or_denied_access_refuses_the_publisher_as_a_whole() {
        let missing = mock!(Client::put_events).then_error(|| {
            PutEventsError::generic(
                aws_sdk_eventbridge::error::ErrorMetadata::builder()
                    .code("ResourceNotFoundException")
                    .message("Event bus nope does not exist.")
                    .build(),
            )
        });
        let denied = mock!(Client::put_events)
            .then_output(|| response(vec![ok("a"), failed("AccessDeniedException")]));
        let client = mock_client!(
            aws_sdk_eventbridge,
            RuleMode::Sequential,
            [&missing, &denied]
        );
        let publisher = publisher(client, 3);
        let events = [event(1, 10), event(2, 10)];
        let first = publisher.publish(&events).await;
        assert!(matches!(first, Err(PublishError::Refused(_))), "{first:?}");
        let second = publisher.publish(&events).await;
        assert!(
            matches!(second, Err(PublishError::Refused(_))),
            "{second:?}"
        );
        assert_eq!((missing.num_calls(), denied.num_calls()), (1, 1));
    }

    #[test]
    fn a_w3c_trace_reads_as_the_same_xray_trace() {
        let trace =
            Traceparent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        assert_eq!(
            xray_trace_header(&trace),
            "Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=b7ad6b7169203331;Sampled=1"
        );
        let unsampled =
            Traceparent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00").unwrap();
        assert!(xray_trace_header(&unsampled).ends_with("Sampled=0"));
    }

    #[tokio::test]
    async fn entries_carry_bus_source_type_time_trace_and_the_envelope() {
        let repair = event(1, 1);
        let envelope = serde_json::to_string(&repair).unwrap();
        let trace = xray_trace_header(&repair.traceparent);
        assert!(trace.starts_with("Root=1-"), "{trace}");
        let check = mock!(Client::put_events)
            .match_requests(move |request| {
                let entry = &request.entries()[0];
                entry.event_bus_name() == Some("outbox-bus")
                    && entry.source() == Some("carworkshop.outbox")
                    && entry.detail_type() == Some("RepairCompleted")
                    && entry.detail() == Some(envelope.as_str())
                    && entry.time() == Some(&DateTime::from_secs(1_700_000_000))
                    && entry.trace_header() == Some(trace.as_str())
            })
            .then_output(|| response(vec![ok("e1")]));
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, [&check]);

        let outcomes = publisher(client, 1).publish(&[repair]).await.unwrap();

        assert_eq!(outcomes, vec![PublishOutcome::Published]);
    }
}
