//! The entry points of the Lambda binaries, generic over the service they
//! run: validate the declaration and configure once, build clients once, then
//! serve invocations until the runtime stops. A service's binaries are one
//! line each, e.g. `outbox_bootstrap::lambda::run_consumer(my_service).await`,
//! where `my_service` declares the service given the [`OutsidePorts`] this
//! runtime built.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};

use metrics_cloudwatch_embedded::Collector;
use outbox_application::ports::{EventPublisher, RandomIds, SystemClock};
use outbox_application::{
    CommandPolicy, CommandService, ConsumeService, EventSources, OutsidePort, OutsidePorts,
    Reaction, Relay, Service,
};
use outbox_dynamodb::{DynamoInbox, DynamoStore};
use outbox_eventbridge::{CustomBusPublisher, EventBridgePublisher};
use outbox_lambda::{
    handle_consumer_event, relay_stream_batch, telemetry, CommandApi, ConsumerEvent, StreamBatch,
};
use outbox_sqs::SqsDeadLetterQueue;

use crate::outside;

use super::config::{BusTarget, CommandApiConfig, ConfigError, ConsumerConfig, RelayConfig};
use super::init_error::report_init_error;
use super::{logging, sdk};

/// Installs the JSON logs, then checks the service declaration and reads the
/// configuration, or reports to the Runtime API why it cannot and fails.
async fn init<C>(
    service: &Service,
    read: impl FnOnce() -> Result<C, ConfigError>,
) -> Result<C, Error> {
    logging::init();
    match service
        .validate()
        .map_err(ConfigError::from)
        .and_then(|()| read())
    {
        Ok(config) => Ok(config),
        Err(error) => {
            report_init_error("Runtime.ConfigError", &error).await;
            Err(error.into())
        }
    }
}

/// The function's metrics exporter: CloudWatch Embedded Metric Format documents
/// on stdout, namespace [`telemetry::NAMESPACE`], dimension `Function`: the
/// deployed function's own name (`AWS_LAMBDA_FUNCTION_NAME`, unique per stack,
/// so two stacks in one account and region never share an alarm's series), or
/// `function` where that is not set. Without an exporter (it cannot be
/// installed twice) the function runs on, unmeasured.
fn metrics(function: &'static str) -> Option<&'static Collector> {
    let deployed = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| function.to_owned());
    match metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(telemetry::NAMESPACE)
        .with_dimension("Function", deployed)
        .init()
    {
        Ok(collector) => Some(collector),
        Err(error) => {
            tracing::warn!(%error, "metrics are off");
            None
        }
    }
}

/// Writes the invocation's metrics to stdout, where CloudWatch reads them.
fn flush(collector: Option<&'static Collector>, request_id: &str) {
    if let Some(collector) = collector {
        let written = collector
            .set_property("RequestId", request_id.to_owned())
            .flush(std::io::stdout());
        if let Err(error) = written {
            tracing::warn!(%error, "metrics were not written");
        }
    }
}

/// `command-api`: the HTTP command API of `service` over DynamoDB.
///
/// # Errors
/// A configuration error (reported to the Runtime API first), or the runtime's.
pub async fn run_command_api(declare: impl FnOnce(&OutsidePorts) -> Service) -> Result<(), Error> {
    let service = declare(&OutsidePorts::not_deployed());
    let config = init(&service, || CommandApiConfig::from_env(service.sources())).await?;
    let sdk = sdk::from_env();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.layout);
    let commands = CommandService::new(
        Arc::new(store),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        CommandPolicy::default(),
    );
    let api = CommandApi::new(commands, &service);
    let collector = metrics("command-api");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let api = api.clone();
        async move {
            let response = api.handle_event(event.payload).await;
            flush(collector, &event.context.request_id);
            Ok::<_, Infallible>(response)
        }
    }))
    .await
}

/// `outbox-relay`: DynamoDB stream batches → EventBridge (a classic bus, or a
/// Custom Event Bus), each event under its aggregate type's source in
/// `service`, with batch item failures.
///
/// # Errors
/// A configuration error (reported to the Runtime API first), or the runtime's.
pub async fn run_outbox_relay(declare: impl FnOnce(&OutsidePorts) -> Service) -> Result<(), Error> {
    let service = declare(&OutsidePorts::not_deployed());
    let config = init(&service, RelayConfig::from_env).await?;
    let sdk = sdk::from_env();
    let publisher = publisher(&sdk, config.bus, service.sources());
    let dead_letters =
        SqsDeadLetterQueue::new(aws_sdk_sqs::Client::new(&sdk), config.dead_letter_queue_url);
    let relay =
        Relay::new(publisher, Arc::new(dead_letters)).with_calls_in_flight(config.calls_in_flight);
    let collector = metrics("outbox-relay");
    // The batch is decoded record by record as the runtime reads the invocation.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<StreamBatch>| {
        let relay = relay.clone();
        async move {
            let response = relay_stream_batch(&relay, event.payload).await;
            flush(collector, &event.context.request_id);
            response.map_err(Error::from)
        }
    }))
    .await
}

/// The publisher of `bus` through the SDK configuration `sdk`.
pub fn publisher(
    sdk: &aws_config::SdkConfig,
    bus: BusTarget,
    sources: EventSources,
) -> Arc<dyn EventPublisher> {
    match bus {
        BusTarget::Classic { name } => Arc::new(EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(sdk),
            name,
            sources,
        )),
        BusTarget::Custom { arn } => Arc::new(CustomBusPublisher::new(
            aws_sdk_eventbridgev2::Client::new(sdk),
            arn,
            sources,
        )),
    }
}

/// A consumer: EventBridge events from SQS → the reaction of the declared
/// service that `CONSUMER_NAME` names, once per event, its calls through S3
/// (`DOCUMENT_BUCKET`) and SES (`SENDER_ADDRESS`). An unknown name, or a
/// reaction that calls a port its function was not deployed with, is an init error.
///
/// # Errors
/// A configuration error (reported to the Runtime API first), or the runtime's.
pub async fn run_consumer(declare: impl FnOnce(&OutsidePorts) -> Service) -> Result<(), Error> {
    logging::init();
    let config = match ConsumerConfig::from_env() {
        Ok(config) => config,
        Err(error) => return Err(init_failed(error).await),
    };
    let sdk = sdk::from_env();
    let ports = outside::aws(
        &sdk,
        config.document_bucket.clone(),
        config.sender_address.clone(),
    );
    let service = declare(&ports);
    let reaction = match service
        .validate()
        .and_then(|()| service.consumer_named(&config.consumer_name))
        .map_err(ConfigError::from)
        .and_then(|reaction| deployed_for(&config, reaction))
    {
        Ok(reaction) => reaction,
        Err(error) => return Err(init_failed(error).await),
    };
    let inbox = DynamoInbox::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name);
    let dead_letters =
        SqsDeadLetterQueue::new(aws_sdk_sqs::Client::new(&sdk), config.dead_letter_queue_url);
    let collector = metrics(reaction.name());
    let consume = ConsumeService::new(Arc::new(inbox), reaction, Arc::new(dead_letters))
        .with_parking(config.parking);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ConsumerEvent>| {
        let consume = consume.clone();
        async move {
            let response = handle_consumer_event(&consume, &event.payload).await;
            flush(collector, &event.context.request_id);
            response.map_err(|error| Error::from(error.to_string()))
        }
    }))
    .await
}

/// `reaction` if its function was deployed with every port it calls.
fn deployed_for(
    config: &ConsumerConfig,
    reaction: Arc<dyn Reaction>,
) -> Result<Arc<dyn Reaction>, ConfigError> {
    for port in reaction.calls() {
        let deployed = match port {
            OutsidePort::Documents => config.document_bucket.is_some(),
            OutsidePort::Mail => config.sender_address.is_some(),
        };
        if !deployed {
            return Err(ConfigError::Missing(outside::variable(*port)));
        }
    }
    Ok(reaction)
}

/// Reports `error` to the Runtime API as the function's init error.
async fn init_failed(error: ConfigError) -> Error {
    report_init_error("Runtime.ConfigError", &error).await;
    error.into()
}
