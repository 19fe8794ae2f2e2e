//! SDK clients for an AWS-compatible endpoint given by URL (dynoxide, moto),
//! with fixed local credentials and bounded timeouts.

use std::time::Duration;

use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

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
        let credentials = Credentials::new("local", "local", None, None, "outbox-local");
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(10))
            .build();
        let dynamodb = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(LOCAL_REGION))
            .endpoint_url(endpoint)
            .credentials_provider(credentials.clone())
            .timeout_config(timeouts.clone())
            .build();
        let streams = aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodbstreams::config::Region::new(LOCAL_REGION))
            .endpoint_url(endpoint)
            .credentials_provider(credentials.clone())
            .timeout_config(timeouts.clone())
            .build();
        let eventbridge = aws_sdk_eventbridge::Config::builder()
            .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
            .region(aws_sdk_eventbridge::config::Region::new(LOCAL_REGION))
            .endpoint_url(endpoint)
            .credentials_provider(credentials.clone())
            .timeout_config(timeouts.clone())
            .build();
        let sqs = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new(LOCAL_REGION))
            .endpoint_url(endpoint)
            .credentials_provider(credentials.clone())
            .timeout_config(timeouts.clone())
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
            streams: aws_sdk_dynamodbstreams::Client::from_conf(streams),
            eventbridge: aws_sdk_eventbridge::Client::from_conf(eventbridge),
            sqs: aws_sdk_sqs::Client::from_conf(sqs),
        }
    }
}
