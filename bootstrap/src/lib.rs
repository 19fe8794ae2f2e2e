//! Composition root: reads configuration, builds adapters once, injects them into
//! the use cases. The binaries under `src/bin` are thin shells around it.

pub mod clients;
pub mod embedded;
pub mod lambda;
pub mod local;
pub mod logging;
pub mod operation_log;
