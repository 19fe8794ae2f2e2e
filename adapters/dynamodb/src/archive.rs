//! The outbox table as an outbox archive: a window's events read from the
//! sparse time index, hour by hour and shard by shard, each query sorted by
//! instant, aggregate and version; one aggregate's events read from its own
//! partition. Nothing is scanned. A cursor names the index partition and the
//! last item read, so a replay resumes exactly where it stopped.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use outbox_application::ports::{
    ArchiveCursor, ArchiveError, ArchivePage, ArchiveWindow, OutboxArchive,
};

use crate::errors::DynamoError;
use crate::items::{outbox_envelope, Attributes};
use crate::layout::{
    aggregate_pk, hour_bucket, instant, TableLayout, HOUR_SHARDS, OUTBOX_AT, OUTBOX_HOUR,
    OUTBOX_TIME_INDEX, PK, SK,
};

/// Items per query.
pub const ARCHIVE_QUERY_LIMIT: i32 = 100;

/// Where an archive read stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Position {
    /// Hours since the window's first hour.
    hour: u32,
    /// The index shard of that hour.
    shard: u32,
    /// The last item read in that partition, if any: its index and table keys.
    last: Option<LastKey>,
}

/// The keys of the last item read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LastKey {
    pk: String,
    sk: String,
    at: String,
}

/// The outbox archive in the outbox table of a layout.
#[derive(Debug, Clone)]
pub struct DynamoArchive {
    client: Client,
    table: String,
}

impl DynamoArchive {
    /// The archive of `layout`'s outbox table.
    pub fn new(client: Client, layout: &TableLayout) -> Self {
        Self {
            client,
            table: layout.outbox_table().to_owned(),
        }
    }

    /// A page of the window: partitions read in order until the page holds
    /// [`ARCHIVE_QUERY_LIMIT`] events or the window ends, so empty hours cost
    /// a query each but no page.
    async fn window_page(
        &self,
        window: &ArchiveWindow,
        position: Position,
    ) -> Result<ArchivePage, ArchiveError> {
        let mut events = Vec::new();
        let mut next = Some(position);
        while let Some(position) = next.take() {
            let (mut read, after) = self.partition_page(window, position).await?;
            events.append(&mut read);
            next = after;
            if events.len() >= ARCHIVE_QUERY_LIMIT as usize {
                break;
            }
        }
        Ok(ArchivePage {
            events,
            next: next.map(|p| encode(&p)).transpose()?,
        })
    }

    /// Up to [`ARCHIVE_QUERY_LIMIT`] events of one index partition, and where the window goes on.
    async fn partition_page(
        &self,
        window: &ArchiveWindow,
        mut position: Position,
    ) -> Result<(Vec<outbox_application::EventEnvelope>, Option<Position>), ArchiveError> {
        let first_hour = window
            .from
            .replace_minute(0)
            .and_then(|t| t.replace_second(0));
        let first_hour = first_hour
            .and_then(|t| t.replace_nanosecond(0))
            .map_err(|error| ArchiveError::BadCursor(error.to_string()))?;
        let hours = hours_between(first_hour, window.to);
        if position.hour >= hours {
            return Ok((Vec::new(), None));
        }
        let hour_start = first_hour + time::Duration::hours(i64::from(position.hour));
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OUTBOX_TIME_INDEX)
            .key_condition_expression("#hour = :hour AND #at BETWEEN :from AND :to")
            .expression_attribute_names("#hour", OUTBOX_HOUR)
            .expression_attribute_names("#at", OUTBOX_AT)
            .expression_attribute_values(
                ":hour",
                AttributeValue::S(hour_bucket(hour_start, position.shard)),
            )
            .expression_attribute_values(":from", AttributeValue::S(instant(window.from)))
            .expression_attribute_values(":to", AttributeValue::S(instant(window.to)))
            .limit(ARCHIVE_QUERY_LIMIT);
        if let Some(last) = &position.last {
            query = query
                .exclusive_start_key(
                    OUTBOX_HOUR,
                    AttributeValue::S(hour_bucket(hour_start, position.shard)),
                )
                .exclusive_start_key(OUTBOX_AT, AttributeValue::S(last.at.clone()))
                .exclusive_start_key(PK, AttributeValue::S(last.pk.clone()))
                .exclusive_start_key(SK, AttributeValue::S(last.sk.clone()));
        }
        let output = query.send().await.map_err(archive_error)?;
        let items = output.items.unwrap_or_default();
        let last = items.last().map(last_key).transpose()?;
        let events = decode(items)?;
        let more_here = output.last_evaluated_key.is_some_and(|key| !key.is_empty());
        let next = if more_here {
            position.last = last;
            Some(position)
        } else if position.shard + 1 < HOUR_SHARDS {
            Some(Position {
                hour: position.hour,
                shard: position.shard + 1,
                last: None,
            })
        } else if position.hour + 1 < hours {
            Some(Position {
                hour: position.hour + 1,
                shard: 0,
                last: None,
            })
        } else {
            None
        };
        Ok((events, next))
    }

    async fn aggregate_page(
        &self,
        window: &ArchiveWindow,
        pk: String,
        position: Position,
    ) -> Result<ArchivePage, ArchiveError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :event)")
            .filter_expression("#at BETWEEN :from AND :to")
            .expression_attribute_names("#at", OUTBOX_AT)
            .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
            .expression_attribute_values(":event", AttributeValue::S("EVENT#".into()))
            .expression_attribute_values(":from", AttributeValue::S(instant(window.from)))
            .expression_attribute_values(":to", AttributeValue::S(instant(window.to)))
            .limit(ARCHIVE_QUERY_LIMIT);
        if let Some(last) = &position.last {
            query = query
                .exclusive_start_key(PK, AttributeValue::S(pk))
                .exclusive_start_key(SK, AttributeValue::S(last.sk.clone()));
        }
        let output = query.send().await.map_err(archive_error)?;
        let last = output
            .last_evaluated_key
            .filter(|key| !key.is_empty())
            .map(|key| {
                let text = |name: &str| key.get(name).and_then(|v| v.as_s().ok()).cloned();
                LastKey {
                    pk: text(PK).unwrap_or_default(),
                    sk: text(SK).unwrap_or_default(),
                    at: String::new(),
                }
            });
        let events = decode(output.items.unwrap_or_default())?;
        let next = last.map(|last| Position {
            hour: 0,
            shard: 0,
            last: Some(last),
        });
        Ok(ArchivePage {
            events,
            next: next.map(|p| encode(&p)).transpose()?,
        })
    }
}

#[async_trait]
impl OutboxArchive for DynamoArchive {
    async fn page(
        &self,
        window: &ArchiveWindow,
        after: Option<&ArchiveCursor>,
    ) -> Result<ArchivePage, ArchiveError> {
        let position = match after {
            None => Position {
                hour: 0,
                shard: 0,
                last: None,
            },
            Some(cursor) => serde_json::from_str(&cursor.0)
                .map_err(|_| ArchiveError::BadCursor(cursor.0.clone()))?,
        };
        match &window.aggregate {
            Some(aggregate) => {
                self.aggregate_page(window, aggregate_pk(aggregate), position)
                    .await
            }
            None => self.window_page(window, position).await,
        }
    }
}

/// Whole hours from `first_hour` up to and including the hour of the instant before `to`.
fn hours_between(first_hour: OffsetDateTime, to: OffsetDateTime) -> u32 {
    if to <= first_hour {
        return 0;
    }
    let span = to - first_hour;
    let whole = span.whole_hours();
    let partial = i64::from(span - time::Duration::hours(whole) > time::Duration::ZERO);
    u32::try_from(whole + partial).unwrap_or(u32::MAX)
}

fn last_key(item: &Attributes) -> Result<LastKey, ArchiveError> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| ArchiveError::Corrupt(format!("an outbox item has no {name}").into()))
    };
    Ok(LastKey {
        pk: text(PK)?,
        sk: text(SK)?,
        at: text(OUTBOX_AT)?,
    })
}

fn decode(items: Vec<Attributes>) -> Result<Vec<outbox_application::EventEnvelope>, ArchiveError> {
    items
        .into_iter()
        .map(|item| outbox_envelope(item).map_err(|error| ArchiveError::Corrupt(Box::new(error))))
        .collect()
}

fn encode(position: &Position) -> Result<ArchiveCursor, ArchiveError> {
    serde_json::to_string(position)
        .map(ArchiveCursor)
        .map_err(|error| ArchiveError::Corrupt(Box::new(error)))
}

/// A missing table or index is [`ArchiveError::Missing`]; the rest is classified as everywhere.
fn archive_error<E, R>(error: aws_sdk_dynamodb::error::SdkError<E, R>) -> ArchiveError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let missing = error.code() == Some("ResourceNotFoundException")
        || (error.code() == Some("ValidationException")
            && error
                .message()
                .is_some_and(|m| m.to_lowercase().contains("index")));
    if missing {
        return ArchiveError::Missing(Box::new(error));
    }
    match DynamoError::from(error) {
        DynamoError::Corrupt(source) => ArchiveError::Corrupt(source),
        other => ArchiveError::Unavailable(Box::new(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_window_covers_every_hour_it_touches() {
        let first = datetime!(2026-11-24 16:00 UTC);
        assert_eq!(hours_between(first, datetime!(2026-11-24 16:00 UTC)), 0);
        assert_eq!(hours_between(first, datetime!(2026-11-24 16:00:01 UTC)), 1);
        assert_eq!(hours_between(first, datetime!(2026-11-24 17:00 UTC)), 1);
        assert_eq!(hours_between(first, datetime!(2026-11-24 18:30 UTC)), 3);
    }
}
