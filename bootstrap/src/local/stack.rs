//! Where the local program's tables live: embedded dynoxide with its data in a
//! file (the default), any DynamoDB endpoint given by `--endpoint-url` (moto,
//! DynamoDB Local), or AWS itself through the SDK's standard configuration
//! (`--aws`, or `AWS_ENDPOINT_URL` set). Table names come from flags or the
//! functions' own environment variables, so an operator points the tools at a
//! deployed stack.

use std::path::PathBuf;

use aws_config::{BehaviorVersion, SdkConfig};

use outbox_application::{EventSources, Service};
use outbox_dynamodb::{create_tables, stream_arn, LeaseTable, TableLayout};

use crate::clients::sdk_config;
use crate::embedded::EmbeddedDynamo;

use super::LocalError;

/// The embedded server's data file unless `--data` says otherwise.
pub const DEFAULT_DATA: &str = "outbox-local.db";

/// Where the data is, as flags.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The embedded dynoxide server's data file (the default store).
    #[arg(long, default_value = DEFAULT_DATA)]
    pub data: PathBuf,
    /// A DynamoDB-compatible endpoint (moto, DynamoDB Local, a running `serve`)
    /// instead of the embedded server; local credentials, region us-east-1.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Use the AWS SDK's standard configuration (AWS_REGION, AWS_PROFILE,
    /// credentials, AWS_ENDPOINT_URL); implied when AWS_ENDPOINT_URL is set.
    #[arg(long)]
    pub aws: bool,
    /// The aggregate table (the outbox too, unless --outbox-table).
    #[arg(long, env = "TABLE_NAME", default_value = "outbox-local")]
    pub table: String,
    /// A separate outbox table.
    #[arg(long, env = "OUTBOX_TABLE_NAME")]
    pub outbox_table: Option<String>,
    /// The consumers' inbox table [default: <table>-inbox].
    #[arg(long, env = "INBOX_TABLE_NAME")]
    pub inbox_table: Option<String>,
    /// The self-hosted relay's checkpoint table [default: <table>-checkpoints].
    #[arg(long, env = "CHECKPOINT_TABLE_NAME")]
    pub checkpoint_table: Option<String>,
}

impl StoreArgs {
    /// The tables these flags name, outbox items carrying `sources`.
    pub fn layout(&self, sources: EventSources) -> TableLayout {
        let mut layout = TableLayout::single_table(&self.table, sources);
        if let Some(outbox) = &self.outbox_table {
            layout = layout.with_outbox_table(outbox);
        }
        if let Some(inbox) = &self.inbox_table {
            layout.inbox_table.clone_from(inbox);
        }
        if let Some(checkpoints) = &self.checkpoint_table {
            layout.checkpoint_table.clone_from(checkpoints);
        }
        layout
    }

    fn uses_aws(&self) -> bool {
        self.aws
            || std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some()
    }
}

/// An open store: its SDK configuration, its tables, and the embedded server if any.
pub struct Stack {
    /// The service whose tables these are.
    pub service: Service,
    /// The SDK configuration of every client (DynamoDB, Streams, SQS, EventBridge).
    pub sdk: SdkConfig,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// DynamoDB Streams.
    pub streams: aws_sdk_dynamodbstreams::Client,
    /// The tables.
    pub layout: TableLayout,
    /// What the store is, for logs and `status`.
    pub description: String,
    /// The DynamoDB endpoint, when it is local (for a second process).
    pub endpoint: Option<String>,
    server: Option<EmbeddedDynamo>,
}

impl Stack {
    /// Opens the store `args` name for `service`, after checking its
    /// declaration. With `create_missing` (the service and
    /// the demo) a local store gets its tables created when missing; the
    /// operator's tools never create tables: a missing one is an error.
    ///
    /// # Errors
    /// [`LocalError`] when the server does not start or the tables are missing.
    pub async fn open(
        service: &Service,
        args: &StoreArgs,
        create_missing: bool,
    ) -> Result<Self, LocalError> {
        service.validate()?;
        let layout = args.layout(service.sources());
        let (sdk, description, endpoint, server, local) = if let Some(url) = &args.endpoint_url {
            (
                sdk_config(url),
                format!("DynamoDB at {url}"),
                Some(url.clone()),
                None,
                true,
            )
        } else if args.uses_aws() {
            let sdk = aws_config::defaults(BehaviorVersion::latest())
                .http_client(crate::https::platform_roots())
                .load()
                .await;
            let region = sdk
                .region()
                .map_or_else(|| "no region".to_owned(), ToString::to_string);
            (sdk, format!("AWS ({region})"), None, None, false)
        } else {
            // An operator's tool reads a store; it never makes one where a
            // mistyped path points.
            if !create_missing && !args.data.exists() {
                return Err(LocalError::NoDataFile(args.data.display().to_string()));
            }
            let server = EmbeddedDynamo::start(Some(&args.data)).await?;
            let url = server.endpoint();
            let description = format!("dynoxide, data in {}", args.data.display());
            (sdk_config(&url), description, Some(url), Some(server), true)
        };
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        if local && create_missing {
            create_tables(&dynamodb, &layout).await?;
        }
        let stack = Self {
            service: service.clone(),
            streams: aws_sdk_dynamodbstreams::Client::new(&sdk),
            dynamodb,
            sdk,
            layout,
            description,
            endpoint,
            server,
        };
        stack.require(stack.layout.outbox_table()).await?;
        Ok(stack)
    }

    /// Fails with [`LocalError::UnknownTable`] unless `table` exists.
    ///
    /// # Errors
    /// [`LocalError::UnknownTable`], or [`LocalError::Unreachable`].
    pub async fn require(&self, table: &str) -> Result<(), LocalError> {
        match self
            .dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Err(LocalError::UnknownTable(table.to_owned()))
            }
            Err(error) => Err(LocalError::Unreachable(
                outbox_dynamodb::DynamoError::from(error).to_string(),
            )),
        }
    }

    /// The stream of the outbox table.
    ///
    /// # Errors
    /// [`LocalError::Tables`] when the table has no stream.
    pub async fn stream_arn(&self) -> Result<String, LocalError> {
        Ok(stream_arn(&self.dynamodb, self.layout.outbox_table()).await?)
    }

    /// The self-hosted relay's shard leases (with their checkpoints) of `stream_arn`.
    pub fn leases(&self, stream_arn: &str) -> LeaseTable {
        LeaseTable::new(
            self.dynamodb.clone(),
            self.layout.checkpoint_table.clone(),
            stream_arn,
        )
    }

    /// Stops the embedded server, if any, after its last request.
    ///
    /// # Errors
    /// [`LocalError::Embedded`] when the server had failed.
    pub async fn close(self) -> Result<(), LocalError> {
        if let Some(server) = self.server {
            server.stop().await?;
        }
        Ok(())
    }
}
