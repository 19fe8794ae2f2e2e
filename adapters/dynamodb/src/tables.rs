//! Creates the tables of a [`TableLayout`] for local use and tests: on-demand
//! capacity, a `NEW_IMAGE` stream and the outbox time index on the table
//! holding the outbox, TTL on `expiresAt`, and the tables of checkpoints,
//! dead letters and the consumers' inbox. Production tables come from the deployment template.

use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use outbox_application::BoxError;

use crate::layout::{TableLayout, EXPIRES_AT, OUTBOX_AT, OUTBOX_HOUR, OUTBOX_TIME_INDEX, PK, SK};

/// Why the tables could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("setting up table {table} failed: {source}")]
pub struct TableError {
    /// The table.
    pub table: String,
    /// The cause.
    #[source]
    pub source: BoxError,
}

/// How long to wait for a new table to become active.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// Creates every table of `layout` that does not exist yet and waits until they are active.
///
/// # Errors
/// [`TableError`] naming the table that failed.
pub async fn create_tables(client: &Client, layout: &TableLayout) -> Result<(), TableError> {
    let separate_outbox = layout.outbox_table.is_some();
    create_table(client, &layout.table, !separate_outbox, true).await?;
    if let Some(outbox) = &layout.outbox_table {
        create_table(client, outbox, true, true).await?;
    }
    create_table(client, &layout.checkpoint_table, false, false).await?;
    create_table(client, &layout.dead_letter_table, false, false).await?;
    create_table(client, &layout.inbox_table, false, true).await
}

/// The ARN of the stream of `table`.
///
/// # Errors
/// [`TableError`] when the table cannot be described or has no stream.
pub async fn stream_arn(client: &Client, table: &str) -> Result<String, TableError> {
    let error = |source: BoxError| TableError {
        table: table.to_owned(),
        source,
    };
    let described = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| error(Box::new(e)))?;
    described
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| error("the table has no stream; enable one with NEW_IMAGE".into()))
}

async fn create_table(
    client: &Client,
    table: &str,
    with_stream: bool,
    with_ttl: bool,
) -> Result<(), TableError> {
    let error = |source: BoxError| TableError {
        table: table.to_owned(),
        source,
    };
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(|e| error(Box::new(e)))
    };
    let definition = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| error(Box::new(e)))
    };
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .attribute_definitions(definition(PK)?)
        .attribute_definitions(definition(SK)?);
    if with_stream {
        let index = GlobalSecondaryIndex::builder()
            .index_name(OUTBOX_TIME_INDEX)
            .key_schema(key(OUTBOX_HOUR, KeyType::Hash)?)
            .key_schema(key(OUTBOX_AT, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| error(Box::new(e)))?;
        request = request
            .attribute_definitions(definition(OUTBOX_HOUR)?)
            .attribute_definitions(definition(OUTBOX_AT)?)
            .global_secondary_indexes(index)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewImage)
                    .build()
                    .map_err(|e| error(Box::new(e)))?,
            );
    }
    match request.send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => {}
        Err(e) => return Err(error(Box::new(e))),
    }
    wait_until_active(client, table).await.map_err(error)?;
    if with_ttl {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(EXPIRES_AT)
            .enabled(true)
            .build()
            .map_err(|e| error(Box::new(e)))?;
        match client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(ttl)
            .send()
            .await
        {
            Ok(_) => {}
            // Enabling TTL twice is refused; the table has it already.
            Err(e) if e.code() == Some("ValidationException") => {}
            Err(e) => return Err(error(Box::new(e))),
        }
    }
    Ok(())
}

async fn wait_until_active(client: &Client, table: &str) -> Result<(), BoxError> {
    let deadline = tokio::time::Instant::now() + ACTIVE_TIMEOUT;
    loop {
        let described = client.describe_table().table_name(table).send().await?;
        let status = described.table.and_then(|t| t.table_status);
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("not active after {ACTIVE_TIMEOUT:?}: {status:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
