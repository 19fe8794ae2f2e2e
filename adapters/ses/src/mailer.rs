//! Email through SES v2: `SendEmail` with **raw** content, the message built
//! by [`build_message`](crate::message::build_message) so the call's key
//! travels in its `X-Outbox-Call-Key` header (SES takes no idempotency key).
//! A message that cannot be built (a line break in the subject) is refused
//! before SES is called.
//!
//! Every SDK error is classified once, in [`classify`]: a rejected message, an
//! unverified sender or MAIL FROM domain, a suspended or paused account, a bad
//! request and a missing resource are permanent; throttling, exceeded limits,
//! server errors, timeouts and transport failures are retryable.

use async_trait::async_trait;
use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use aws_sdk_sesv2::Client;
use time::OffsetDateTime;

use outbox_application::ports::{Email, Mailer, SentEmail};
use outbox_application::{CallError, CallKey};
use outbox_domain::EmailAddress;

use crate::message::build_message;

/// Error codes of a send that fails the same way every time.
const PERMANENT_CODES: [&str; 6] = [
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "AccountSuspendedException",
    "SendingPausedException",
    "BadRequestException",
    "NotFoundException",
];

/// Error codes of a send that can succeed later.
const RETRYABLE_CODES: [&str; 6] = [
    "TooManyRequestsException",
    "LimitExceededException",
    "ThrottlingException",
    "Throttling",
    "InternalFailure",
    "ServiceUnavailable",
];

/// The mailer on SES v2, sending from one verified identity.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
    from: EmailAddress,
}

impl SesMailer {
    /// The mailer sending from `from` through `client`.
    pub fn new(client: Client, from: EmailAddress) -> Self {
        Self { client, from }
    }

    /// The sender.
    pub fn from(&self) -> &EmailAddress {
        &self.from
    }
}

#[async_trait]
impl Mailer for SesMailer {
    /// Sends `email` as a raw message. SES always answers a message id; were
    /// one missing, the message was still accepted, so the send succeeds with
    /// an empty id rather than being repeated.
    async fn send(&self, key: &CallKey, email: &Email) -> Result<SentEmail, CallError> {
        let message = build_message(&self.from, key, email, OffsetDateTime::now_utc())
            .map_err(|error| CallError::Permanent(format!("the email cannot be sent: {error}")))?;
        let raw = RawMessage::builder()
            .data(Blob::new(message.into_bytes()))
            .build()
            .map_err(|error| {
                CallError::Permanent(format!(
                    "the raw message cannot be built: {}",
                    DisplayErrorContext(&error)
                ))
            })?;
        let output = self
            .client
            .send_email()
            .from_email_address(self.from.as_str())
            .destination(
                Destination::builder()
                    .to_addresses(email.to.as_str())
                    .build(),
            )
            .content(EmailContent::builder().raw(raw).build())
            .send()
            .await
            .map_err(|error| classify(&self.from, &error))?;
        Ok(SentEmail {
            message_id: output.message_id().unwrap_or_default().to_owned(),
        })
    }
}

/// A failed SES call sending from `from` as a [`CallError`]: permanent when
/// SES refused the message, the sender or the request (4xx other than
/// throttling) or the request could not be built; retryable for throttling,
/// limits, server errors, timeouts and transport failures.
pub(crate) fn classify<E>(from: &EmailAddress, error: &SdkError<E, HttpResponse>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let context = DisplayErrorContext(error);
    let service = match error {
        SdkError::ServiceError(service) => service,
        SdkError::ConstructionFailure(_) => {
            return CallError::Permanent(format!(
                "the email from {from} could not be built for SES: {context}"
            ))
        }
        SdkError::TimeoutError(_) => {
            return CallError::Retryable(format!("SES timed out sending from {from}: {context}"))
        }
        _ => return CallError::Retryable(format!("SES is out of reach: {context}")),
    };
    let status = service.raw().status().as_u16();
    let code = service.err().code();
    let message = service.err().message().unwrap_or("no message");
    let described = format!("{} ({status}): {message}", code.unwrap_or("no code"));
    match code {
        Some(code) if PERMANENT_CODES.contains(&code) => {
            CallError::Permanent(format!("SES refused the email from {from}: {described}"))
        }
        Some(code) if RETRYABLE_CODES.contains(&code) => {
            CallError::Retryable(format!("SES is throttling or failing: {described}"))
        }
        _ if status == 429 || status >= 500 => {
            CallError::Retryable(format!("SES is throttling or failing: {described}"))
        }
        _ if (400..500).contains(&status) => {
            CallError::Permanent(format!("SES refused the email from {from}: {described}"))
        }
        _ => CallError::Retryable(format!("SES answered unexpectedly: {described}")),
    }
}

#[cfg(test)]
mod tests {
    // A panic is how these tests fail.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use aws_sdk_sesv2::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_sesv2::operation::send_email::SendEmailError;

    fn from() -> EmailAddress {
        EmailAddress::parse("test", "shop@example.com").unwrap()
    }

    fn service_error(code: Option<&str>, status: u16) -> SdkError<SendEmailError, HttpResponse> {
        let mut meta = ErrorMetadata::builder().message("refused by test");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let raw = HttpResponse::new(status.try_into().unwrap(), "".into());
        SdkError::service_error(SendEmailError::generic(meta.build()), raw)
    }

    #[test]
    fn refusals_of_the_message_sender_or_account_are_permanent() {
        for (code, status) in [
            ("MessageRejected", 400),
            ("MailFromDomainNotVerifiedException", 400),
            ("AccountSuspendedException", 400),
            ("SendingPausedException", 400),
            ("BadRequestException", 400),
            ("NotFoundException", 404),
        ] {
            match classify(&from(), &service_error(Some(code), status)) {
                CallError::Permanent(reason) => {
                    assert!(reason.contains(code), "{reason} names the code");
                    assert!(
                        reason.contains("shop@example.com"),
                        "{reason} names the sender"
                    );
                }
                CallError::Retryable(reason) => panic!("{code} is permanent, got {reason}"),
            }
        }
    }

    #[test]
    fn throttling_limits_and_server_errors_are_retryable() {
        for (code, status) in [
            (Some("TooManyRequestsException"), 429),
            (Some("LimitExceededException"), 400),
            (Some("InternalFailure"), 500),
            (None, 503),
            (None, 429),
        ] {
            assert!(
                matches!(
                    classify(&from(), &service_error(code, status)),
                    CallError::Retryable(_)
                ),
                "{code:?} ({status}) is retryable"
            );
        }
    }

    #[test]
    fn an_unknown_refusal_is_permanent_by_its_status() {
        assert!(matches!(
            classify(&from(), &service_error(Some("SomethingNew"), 400)),
            CallError::Permanent(_)
        ));
    }

    #[test]
    fn timeouts_and_transport_failures_are_retryable() {
        let timeout: SdkError<SendEmailError, HttpResponse> =
            SdkError::timeout_error("operation timed out");
        assert!(matches!(
            classify(&from(), &timeout),
            CallError::Retryable(_)
        ));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let dispatch: SdkError<SendEmailError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(io)));
        assert!(matches!(
            classify(&from(), &dispatch),
            CallError::Retryable(_)
        ));
    }

    #[test]
    fn a_request_that_cannot_be_built_is_permanent() {
        let error: SdkError<SendEmailError, HttpResponse> =
            SdkError::construction_failure("no content");
        assert!(matches!(classify(&from(), &error), CallError::Permanent(_)));
    }
}
