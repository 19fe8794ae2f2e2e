//! Dead letters in a DynamoDB table, where no SQS queue is at hand (the local
//! program, whose data lives in one file): one item collection `pk = LETTER`,
//! sorted by `sk = <arrival instant>#<uuid>`, each item the letter's JSON. Read
//! back in arrival order, page by page, for an operator's redrive.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use aws_sdk_dynamodb::Client;
use time::OffsetDateTime;

use outbox_application::ports::{
    DeadLetter, DeadLetterError, DeadLetterQueue, DeadLetterStore, LetterDepth, LetterPage,
    MalformedLetter, StoredLetter,
};

use crate::errors::DynamoError;
use crate::items::now;
use crate::layout::{instant, PK, READ_PAGE_ITEMS, SK};

/// The partition of every letter.
const LETTERS_PK: &str = "LETTER";
/// The attribute holding the letter's JSON.
const BODY: &str = "letter";
/// The attribute holding the arrival time, in Unix milliseconds.
const STORED_AT: &str = "storedAt";

/// The dead-letter queue as a DynamoDB item collection.
#[derive(Debug, Clone)]
pub struct DynamoDeadLetterQueue {
    client: Client,
    table: String,
}

impl DynamoDeadLetterQueue {
    /// Letters in `table` (a layout's `dead_letter_table`) through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Stores a message body as it is, letter or not (for tests of bad input).
    ///
    /// # Errors
    /// [`DeadLetterError`] when the table cannot be written.
    pub async fn send_body(&self, body: String) -> Result<(), DeadLetterError> {
        let at = now();
        let millis = at.unix_timestamp_nanos() / 1_000_000;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, AttributeValue::S(LETTERS_PK.into()))
            .item(
                SK,
                AttributeValue::S(format!("{}#{}", instant(at), uuid::Uuid::now_v7())),
            )
            .item(BODY, AttributeValue::S(body))
            .item(STORED_AT, AttributeValue::N(millis.to_string()))
            .send()
            .await
            .map_err(|error| unavailable(DynamoError::from(error)))?;
        Ok(())
    }
}

fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> DeadLetterError {
    DeadLetterError(Box::new(error))
}

fn stored(item: &std::collections::HashMap<String, AttributeValue>) -> StoredLetter {
    let handle = item
        .get(SK)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let stored_at = item
        .get(STORED_AT)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i128>().ok())
        .and_then(|millis| OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).ok());
    let body = item
        .get(BODY)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let content = serde_json::from_str::<DeadLetter>(&body).map_err(|error| MalformedLetter {
        reason: error.to_string(),
        body,
    });
    StoredLetter {
        handle,
        stored_at,
        content,
    }
}

#[async_trait]
impl DeadLetterQueue for DynamoDeadLetterQueue {
    async fn send(&self, letter: DeadLetter) -> Result<(), DeadLetterError> {
        let body = serde_json::to_string(&letter).map_err(unavailable)?;
        self.send_body(body).await
    }
}

#[async_trait]
impl DeadLetterStore for DynamoDeadLetterQueue {
    async fn read(&self, after: Option<&str>, max: usize) -> Result<LetterPage, DeadLetterError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(LETTERS_PK.into()))
            .consistent_read(true)
            .limit(i32::try_from(max.clamp(1, 1000)).unwrap_or(1000));
        if let Some(after) = after {
            request = request
                .exclusive_start_key(PK, AttributeValue::S(LETTERS_PK.into()))
                .exclusive_start_key(SK, AttributeValue::S(after.to_owned()));
        }
        let output = request
            .send()
            .await
            .map_err(|error| unavailable(DynamoError::from(error)))?;
        let letters: Vec<StoredLetter> = output.items().iter().map(stored).collect();
        let next = output
            .last_evaluated_key()
            .and_then(|key| key.get(SK))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok(LetterPage { letters, next })
    }

    async fn remove(&self, handle: &str) -> Result<(), DeadLetterError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(LETTERS_PK.into()))
            .key(SK, AttributeValue::S(handle.to_owned()))
            .send()
            .await
            .map_err(|error| unavailable(DynamoError::from(error)))?;
        Ok(())
    }

    async fn depth(&self) -> Result<LetterDepth, DeadLetterError> {
        let counts: Vec<i32> = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(LETTERS_PK.into()))
            .limit(READ_PAGE_ITEMS)
            .select(Select::Count)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|error| unavailable(DynamoError::from(error)))?
            .iter()
            .map(|page| page.count())
            .collect();
        let letters = counts
            .into_iter()
            .map(|count| u64::try_from(count).unwrap_or(0))
            .sum();
        let oldest = self
            .read(None, 1)
            .await?
            .letters
            .first()
            .and_then(|letter| letter.stored_at);
        Ok(LetterDepth { letters, oldest })
    }
}
