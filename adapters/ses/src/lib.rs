//! The SES adapter of the outbox: [`SesMailer`] implements the application's
//! `Mailer` port with SES v2 `SendEmail`, sending a raw MIME message built by
//! [`message`] so the call's key travels in a header.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod mailer;
pub mod message;

pub use mailer::SesMailer;
pub use message::{build_message, MessageError, CALL_KEY_HEADER};
