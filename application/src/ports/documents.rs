//! The document store port: where a consumer writes a document it produced
//! (an invoice, a receipt), one object per event, so a repeat overwrites it.

use async_trait::async_trait;

use crate::external::{CallError, CallKey};

/// A document to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The file extension of its format, e.g. `json` or `pdf`.
    pub extension: &'static str,
    /// Its media type, e.g. `application/json`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: Vec<u8>,
}

/// Where a document was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// Its key: [`CallKey::document_key`].
    pub key: String,
    /// The store's tag of this version of it, if the store gives one.
    pub tag: Option<String>,
}

/// Stores documents under keys derived from the call that wrote them.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Writes `document` under `key.document_key(document.extension)`,
    /// replacing what a previous attempt of the same call wrote.
    ///
    /// # Errors
    /// [`CallError::Retryable`] for an outage or throttling,
    /// [`CallError::Permanent`] for a missing store or a refused write.
    async fn put(&self, key: &CallKey, document: &Document) -> Result<StoredDocument, CallError>;
}
