//! The Lambda functions' composition: typed configuration read once from the
//! environment, SDK clients built once at init, handlers from `lambda-adapter`
//! served by `lambda_runtime`. A configuration error is reported to the Runtime
//! API's init-error endpoint and ends the process.

pub mod config;
pub mod functions;
pub mod init_error;
pub mod logging;
pub mod sdk;

pub use config::{CommandApiConfig, ConfigError, ConsumerConfig, RelayConfig};
pub use functions::{run_command_api, run_consumer, run_outbox_relay};
