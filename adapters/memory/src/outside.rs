//! Every outside port in memory at once: the ports a service declaration
//! takes in tests, and the doubles behind them to look into.

use std::sync::Arc;

use outbox_application::OutsidePorts;

use crate::{MemoryDocuments, MemoryMailer};

/// The memory doubles of every outside port. Clones share them.
#[derive(Debug, Clone, Default)]
pub struct MemoryOutside {
    /// The document store.
    pub documents: MemoryDocuments,
    /// The mailer.
    pub mailer: MemoryMailer,
}

impl MemoryOutside {
    /// Fresh doubles.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ports backed by these doubles.
    pub fn ports(&self) -> OutsidePorts {
        OutsidePorts {
            documents: Arc::new(self.documents.clone()),
            mailer: Arc::new(self.mailer.clone()),
        }
    }
}
