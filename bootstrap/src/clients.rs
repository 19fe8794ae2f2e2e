//! SDK clients for an AWS-compatible endpoint given by URL (dynoxide, moto),
//! with fixed local credentials and bounded timeouts.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};

use crate::https;

/// The region local clients sign for.
const LOCAL_REGION: &str = "us-east-1";

/// Clients of the DynamoDB, DynamoDB Streams, EventBridge and SQS APIs at one endpoint.
#[derive(Debug, Clone)]
pub struct LocalClients {
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// DynamoDB Streams.
    pub streams: aws_sdk_dynamodbstreams::Client,
    /// EventBridge.
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
}

impl LocalClients {
    /// Clients of `endpoint`, e.g. `http://127.0.0.1:8000`.
    pub fn new(endpoint: &str) -> Self {
        let config = sdk_config(endpoint);
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            streams: aws_sdk_dynamodbstreams::Client::new(&config),
            eventbridge: aws_sdk_eventbridge::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
        }
    }
}

/// The SDK configuration of a local `endpoint`: fixed credentials and region.
pub fn sdk_config(endpoint: &str) -> SdkConfig {
    let credentials = Credentials::new("local", "local", None, None, "outbox-local");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(https::platform_roots())
        .region(Region::new(LOCAL_REGION))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(10))
                .build(),
        )
        .build()
}
