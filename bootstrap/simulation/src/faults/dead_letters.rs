//! Dead-letter queue faults for any dead-letter queue: an outage.

use std::sync::Arc;

use async_trait::async_trait;

use outbox_application::ports::{DeadLetter, DeadLetterError, DeadLetterQueue};

use super::{FaultPlan, InjectedFault};

/// A fault to inject into the next send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterFault {
    /// Refuse the letter.
    Unavailable,
}

/// Wraps a dead-letter queue and injects [`DeadLetterFault`]s into its sends.
#[derive(Clone)]
pub struct FaultyDeadLetters {
    inner: Arc<dyn DeadLetterQueue>,
    faults: FaultPlan<DeadLetterFault>,
}

impl FaultyDeadLetters {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn DeadLetterQueue>) -> Self {
        Self {
            inner,
            faults: FaultPlan::default(),
        }
    }

    /// The faults its next sends suffer.
    pub fn faults(&self) -> &FaultPlan<DeadLetterFault> {
        &self.faults
    }
}

#[async_trait]
impl DeadLetterQueue for FaultyDeadLetters {
    async fn send(&self, letter: DeadLetter) -> Result<(), DeadLetterError> {
        match self.faults.take() {
            Some(DeadLetterFault::Unavailable) => Err(DeadLetterError(Box::new(InjectedFault(
                "dead-letter queue unavailable",
            )))),
            None => self.inner.send(letter).await,
        }
    }
}
