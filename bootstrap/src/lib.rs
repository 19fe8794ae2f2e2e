//! Composition root for any service declaration: reads configuration, builds
//! adapters once, injects them into the use cases. A service's binaries are
//! one call each: [`lambda::run_command_api`], [`lambda::run_outbox_relay`],
//! [`lambda::run_consumer`] and [`local::main`] (`outbox-local`); [`deploy`]
//! renders its deployment template.

pub mod clients;
pub mod deploy;
pub mod embedded;
pub mod https;
pub mod lambda;
pub mod local;
pub mod logging;
pub mod operation_log;
pub mod outside;
