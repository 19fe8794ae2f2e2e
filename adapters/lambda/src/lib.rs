//! Lambda adapters of the outbox: the handlers behind the Lambda functions,
//! free of any runtime loop so they can be tested and embedded as plain functions.
//!
//! - [`CommandApi`]: the public HTTP contract (API Gateway HTTP API v2 payloads and
//!   Function URLs) → the command use case; every error is a JSON body with a status.
//! - [`relay_stream_batch`]: a DynamoDB stream batch, read record by record as a
//!   [`StreamBatch`] → the relay use case → `batchItemFailures` naming the first
//!   record not handled.
//! - [`consume_sqs_batch`]: EventBridge events delivered by SQS → the consume use
//!   case → `batchItemFailures` naming the messages to deliver again;
//!   [`handle_consumer_event`] that, or a scheduled probe of the parked aggregates.

pub mod api_error;
pub mod command_api;
pub mod consumer_event;
pub mod http_event;
pub mod sqs_consumer;
pub mod stream_batch;
pub mod stream_relay;
pub mod telemetry;

pub use api_error::ApiError;
pub use command_api::CommandApi;
pub use consumer_event::{handle_consumer_event, ConsumerEvent, ConsumerResponse};
pub use sqs_consumer::consume_sqs_batch;
pub use stream_batch::StreamBatch;
pub use stream_relay::{relay_stream_batch, StreamBatchError};
