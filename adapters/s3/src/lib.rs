//! The S3 adapter of the outbox: [`S3DocumentStore`] implements the
//! application's `DocumentStore` port, one object per call under the
//! consumer's prefix, so a repeat of the call overwrites what it wrote.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod documents;

pub use documents::{S3DocumentStore, IDEMPOTENCY_KEY_METADATA};
