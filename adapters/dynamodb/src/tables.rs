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

use crate::layout::{
    TableLayout, EXPIRES_AT, OUTBOX_AT, OUTBOX_HOUR, OUTBOX_TIME_INDEX, PARKED_BY,
    PARKED_BY_CONSUMER_INDEX, PARKED_SINCE, PK, SK,
};

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
    let outbox = Shape {
        stream: true,
        ttl: true,
        index: Some(OUTBOX_INDEX),
    };
    let plain = Shape {
        stream: false,
        ttl: false,
        index: None,
    };
    let separate_outbox = layout.outbox_table.is_some();
    let state = if separate_outbox {
        Shape { ttl: true, ..plain }
    } else {
        outbox
    };
    create_table(client, &layout.table, state).await?;
    if let Some(table) = &layout.outbox_table {
        create_table(client, table, outbox).await?;
    }
    create_table(client, &layout.checkpoint_table, plain).await?;
    create_table(client, &layout.dead_letter_table, plain).await?;
    let inbox = Shape {
        ttl: true,
        index: Some(PARKED_INDEX),
        ..plain
    };
    create_table(client, &layout.inbox_table, inbox).await
}

/// What a table has beside its `pk`/`sk` key.
#[derive(Clone, Copy)]
struct Shape {
    /// A stream of new images (a table that holds the outbox).
    stream: bool,
    /// Expiry by `expiresAt`.
    ttl: bool,
    /// A global secondary index.
    index: Option<Index>,
}

/// A global secondary index: its name, partition and sort key, and whether
/// it projects every attribute or the keys only.
#[derive(Clone, Copy)]
struct Index {
    name: &'static str,
    hash: &'static str,
    range: &'static str,
    all: bool,
}

/// The outbox by time window, for the archive's replays.
const OUTBOX_INDEX: Index = Index {
    name: OUTBOX_TIME_INDEX,
    hash: OUTBOX_HOUR,
    range: OUTBOX_AT,
    all: true,
};

/// The parked sequences by consumer, for counting them.
const PARKED_INDEX: Index = Index {
    name: PARKED_BY_CONSUMER_INDEX,
    hash: PARKED_BY,
    range: PARKED_SINCE,
    all: false,
};

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

async fn create_table(client: &Client, table: &str, shape: Shape) -> Result<(), TableError> {
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
    if let Some(index) = shape.index {
        let projection = if index.all {
            ProjectionType::All
        } else {
            ProjectionType::KeysOnly
        };
        let built = GlobalSecondaryIndex::builder()
            .index_name(index.name)
            .key_schema(key(index.hash, KeyType::Hash)?)
            .key_schema(key(index.range, KeyType::Range)?)
            .projection(Projection::builder().projection_type(projection).build())
            .build()
            .map_err(|e| error(Box::new(e)))?;
        request = request
            .attribute_definitions(definition(index.hash)?)
            .attribute_definitions(definition(index.range)?)
            .global_secondary_indexes(built);
    }
    if shape.stream {
        request = request.stream_specification(
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
    if shape.ttl {
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
