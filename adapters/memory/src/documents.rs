//! The in-memory document store: documents by key, as S3 holds objects. A put
//! replaces what the key held, so a repeat of a call leaves one document (the
//! last body); the number of puts per key is kept, so a test sees the repeat.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use outbox_application::ports::{Document, DocumentStore, StoredDocument};
use outbox_application::{CallError, CallKey};

/// One stored document with the key of the call that last wrote it.
#[derive(Debug, Clone)]
struct Object {
    document: Document,
    call_key: String,
}

#[derive(Debug, Default)]
struct Shelf {
    objects: BTreeMap<String, Object>,
    puts: BTreeMap<String, usize>,
}

/// The in-memory document store. Clones share the same documents.
#[derive(Debug, Clone, Default)]
pub struct MemoryDocuments {
    shelf: Arc<Mutex<Shelf>>,
}

impl MemoryDocuments {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every document held, by key.
    pub fn documents(&self) -> BTreeMap<String, Document> {
        self.lock()
            .objects
            .iter()
            .map(|(key, object)| (key.clone(), object.document.clone()))
            .collect()
    }

    /// The document held under `key`, if any.
    pub fn get(&self, key: &str) -> Option<Document> {
        self.lock()
            .objects
            .get(key)
            .map(|object| object.document.clone())
    }

    /// The call key of the put that last wrote `key` (what S3 keeps as the
    /// object's `idempotency-key` metadata), if any.
    pub fn call_key(&self, key: &str) -> Option<String> {
        self.lock()
            .objects
            .get(key)
            .map(|object| object.call_key.clone())
    }

    /// How many times each key was put, repeats included.
    pub fn puts(&self) -> BTreeMap<String, usize> {
        self.lock().puts.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Shelf> {
        self.shelf.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl DocumentStore for MemoryDocuments {
    /// Replaces what the key held; the tag is the key's put count, so each
    /// version has its own.
    async fn put(&self, key: &CallKey, document: &Document) -> Result<StoredDocument, CallError> {
        let object_key = key.document_key(document.extension);
        let mut shelf = self.lock();
        let puts = shelf.puts.entry(object_key.clone()).or_insert(0);
        *puts += 1;
        let tag = puts.to_string();
        shelf.objects.insert(
            object_key.clone(),
            Object {
                document: document.clone(),
                call_key: key.to_string(),
            },
        );
        Ok(StoredDocument {
            key: object_key,
            tag: Some(tag),
        })
    }
}
