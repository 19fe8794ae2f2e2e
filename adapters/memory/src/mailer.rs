//! The in-memory mailer: every accepted send recorded with its call key, as a
//! mail service would deliver it. It refuses what SES refuses before sending
//! (a subject with a line break), and can be told to refuse an address for
//! good or to fail the next sends as an outage would.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use outbox_application::ports::{Email, Mailer, SentEmail};
use outbox_application::{CallError, CallKey};
use outbox_domain::EmailAddress;

#[derive(Debug, Default)]
struct Outbox {
    sent: Vec<(String, Email)>,
    refused: HashSet<EmailAddress>,
    failing: usize,
}

/// The in-memory mailer. Clones share the same record and settings.
#[derive(Debug, Clone, Default)]
pub struct MemoryMailer {
    outbox: Arc<Mutex<Outbox>>,
}

impl MemoryMailer {
    /// A mailer that accepts every well-formed email.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses every later send to `address` with [`CallError::Permanent`],
    /// as a mail service refuses a suppressed recipient.
    pub fn refusing(&self, address: EmailAddress) -> &Self {
        self.lock().refused.insert(address);
        self
    }

    /// Fails the next `n` sends with [`CallError::Retryable`], as an outage
    /// would; they record nothing.
    pub fn failing_next(&self, n: usize) -> &Self {
        self.lock().failing = n;
        self
    }

    /// Every accepted send, oldest first: the call key (as a string) and the
    /// email.
    pub fn sent(&self) -> Vec<(String, Email)> {
        self.lock().sent.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    /// Refuses a subject with a line break first, then fails while told to,
    /// then refuses a refused address; otherwise records the send and answers
    /// `memory-{n}`, its place in the record.
    async fn send(&self, key: &CallKey, email: &Email) -> Result<SentEmail, CallError> {
        if email.subject.contains(['\r', '\n']) {
            return Err(CallError::Permanent(
                "the email cannot be sent: the subject holds a line break".into(),
            ));
        }
        let mut outbox = self.lock();
        if outbox.failing > 0 {
            outbox.failing -= 1;
            return Err(CallError::Retryable(
                "the memory mailer is told to fail".into(),
            ));
        }
        if outbox.refused.contains(&email.to) {
            return Err(CallError::Permanent(format!(
                "the memory mailer refuses {}",
                email.to
            )));
        }
        outbox.sent.push((key.to_string(), email.clone()));
        Ok(SentEmail {
            message_id: format!("memory-{}", outbox.sent.len()),
        })
    }
}

#[cfg(test)]
mod tests {
    // A panic is how these tests fail.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use outbox_application::{AggregateId, AggregateRef, EventId};
    use outbox_domain::Version;

    fn key() -> CallKey {
        let id = AggregateId::parse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap();
        let event = EventId::derive(&AggregateRef::new("Repair", id), Version::new(1));
        CallKey::new("notify", event)
    }

    fn email(to: &str) -> Email {
        Email {
            to: EmailAddress::parse("test", to).unwrap(),
            subject: "Ready".into(),
            text: "Come.".into(),
        }
    }

    #[tokio::test]
    async fn the_next_sends_fail_retryably_as_told_then_succeed() {
        let mailer = MemoryMailer::new();
        mailer.failing_next(2);
        for _ in 0..2 {
            let failed = mailer.send(&key(), &email("ada@example.com")).await;
            assert!(matches!(failed, Err(CallError::Retryable(_))));
        }
        let sent = mailer
            .send(&key(), &email("ada@example.com"))
            .await
            .unwrap();
        assert_eq!(sent.message_id, "memory-1");
        assert_eq!(
            mailer.sent(),
            vec![(key().to_string(), email("ada@example.com"))]
        );
    }

    #[tokio::test]
    async fn a_refused_address_is_refused_for_good_and_others_are_not() {
        let mailer = MemoryMailer::new();
        mailer
            .clone()
            .refusing(EmailAddress::parse("test", "eve@example.com").unwrap());
        for _ in 0..2 {
            let refused = mailer.send(&key(), &email("eve@example.com")).await;
            assert!(matches!(refused, Err(CallError::Permanent(_))));
        }
        mailer
            .send(&key(), &email("ada@example.com"))
            .await
            .unwrap();
        assert_eq!(mailer.sent().len(), 1);
    }
}
