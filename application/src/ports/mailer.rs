//! The mailer port: email to a person, sent from the service's one sender.

use async_trait::async_trait;

use outbox_domain::EmailAddress;

use crate::external::{CallError, CallKey};

/// An email to send, as plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// The recipient.
    pub to: EmailAddress,
    /// The subject line; one line (a line break in it is refused).
    pub subject: String,
    /// The body, as plain text.
    pub text: String,
}

/// What the mail service answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    /// The service's id of the message.
    pub message_id: String,
}

/// Sends email. Mail services take no idempotency key, so the key travels in
/// the message (a header) for the recipient's side to see; a repeat of the
/// same call may be delivered twice.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends `email`, carrying `key` in the message.
    ///
    /// # Errors
    /// [`CallError::Retryable`] for an outage or throttling,
    /// [`CallError::Permanent`] for a refused sender or recipient, or a
    /// subject with a line break.
    async fn send(&self, key: &CallKey, email: &Email) -> Result<SentEmail, CallError>;
}
