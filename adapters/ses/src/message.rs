//! The raw message SES sends: an RFC 5322 message with one plain-text MIME
//! part, built here rather than by SES so it can carry headers of its own.
//!
//! The headers are `From`, `To`, `Subject`, `Date`, `MIME-Version`,
//! `Content-Type: text/plain; charset=UTF-8`, `Content-Transfer-Encoding:
//! base64` and [`CALL_KEY_HEADER`] with the call's key (SES takes no
//! idempotency key, so the key travels in the message for the receiving side
//! to see). A subject that is not plain printable ASCII, or too long for one
//! header line, is written as RFC 2047 encoded words (`=?UTF-8?B?...?=`),
//! folded one word per line. The body's line breaks become CRLF and it is
//! base64-encoded in lines of 76 characters, so any text travels unchanged.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

use outbox_application::ports::Email;
use outbox_application::CallKey;
use outbox_domain::EmailAddress;

/// The header carrying the call's key: `X-Outbox-Call-Key: {consumer}/{event id}`.
pub const CALL_KEY_HEADER: &str = "X-Outbox-Call-Key";

/// Line breaks in every message.
const CRLF: &str = "\r\n";
/// Characters per line of the base64 body (RFC 2045).
const BODY_LINE: usize = 76;
/// The longest subject written as is: `Subject: ` and it fit in 78 characters.
const PLAIN_SUBJECT_CHARS: usize = 78 - "Subject: ".len();
/// The most bytes of text in one encoded word: 39 bytes make 52 base64
/// characters, `=?UTF-8?B?` + 52 + `?=` is 64, so even the first line,
/// `Subject: ` and a word, stays within RFC 2047's 76.
const ENCODED_WORD_BYTES: usize = 39;

/// Why a message cannot be built; each is permanent, the same email fails the
/// same way every time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The subject holds a CR or LF, which would end the header early.
    #[error("the subject holds a line break")]
    LineBreakInSubject,
    /// The call's key is not printable ASCII, so it cannot be a header value.
    #[error("the call key `{0}` cannot be a header value: it must be printable ASCII")]
    CallKeyNotAHeader(String),
    /// The date does not format as RFC 5322 requires (years 1900 to 9999).
    #[error("the date {0} cannot be written in a message")]
    Date(OffsetDateTime),
}

/// The raw message of `email` from `from`, carrying `key` in
/// [`CALL_KEY_HEADER`], dated `date`.
///
/// # Errors
/// [`MessageError`]: a line break in the subject, a key that is not printable
/// ASCII, or a date outside RFC 5322's years.
pub fn build_message(
    from: &EmailAddress,
    key: &CallKey,
    email: &Email,
    date: OffsetDateTime,
) -> Result<String, MessageError> {
    if email.subject.contains(['\r', '\n']) {
        return Err(MessageError::LineBreakInSubject);
    }
    let key = key.to_string();
    if !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(MessageError::CallKeyNotAHeader(key));
    }
    let date = date
        .format(&Rfc2822)
        .map_err(|_| MessageError::Date(date))?;
    let headers = [
        format!("From: {}", from.as_str()),
        format!("To: {}", email.to.as_str()),
        format!("Subject: {}", subject(&email.subject)),
        format!("Date: {date}"),
        "MIME-Version: 1.0".to_owned(),
        "Content-Type: text/plain; charset=UTF-8".to_owned(),
        "Content-Transfer-Encoding: base64".to_owned(),
        format!("{CALL_KEY_HEADER}: {key}"),
    ];
    let mut message = headers.join(CRLF);
    message.push_str(CRLF);
    message.push_str(CRLF);
    message.push_str(&body(&email.text));
    Ok(message)
}

/// The subject's header value: as is when it is short printable ASCII that
/// cannot be mistaken for an encoded word, else RFC 2047 encoded words.
fn subject(subject: &str) -> String {
    let plain = subject.len() <= PLAIN_SUBJECT_CHARS
        && subject.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && !subject.contains("=?");
    if plain {
        return subject.to_owned();
    }
    let mut words = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for (index, character) in subject.char_indices() {
        let next = index + character.len_utf8();
        if next - start > ENCODED_WORD_BYTES {
            words.push(encoded_word(&subject[start..end]));
            start = end;
        }
        end = next;
    }
    if end > start || words.is_empty() {
        words.push(encoded_word(&subject[start..end]));
    }
    words.join(&format!("{CRLF} "))
}

/// One RFC 2047 encoded word of `text` (whole characters).
fn encoded_word(text: &str) -> String {
    format!("=?UTF-8?B?{}?=", STANDARD.encode(text))
}

/// The body: `text` with CRLF line breaks, base64 in lines of 76 characters.
fn body(text: &str) -> String {
    let canonical = text.replace("\r\n", "\n").replace('\n', CRLF);
    let encoded = STANDARD.encode(canonical);
    let mut body = String::with_capacity(encoded.len() + encoded.len() / BODY_LINE * 2 + 2);
    let mut rest = encoded.as_str();
    while !rest.is_empty() {
        let (line, after) = rest.split_at(rest.len().min(BODY_LINE));
        body.push_str(line);
        body.push_str(CRLF);
        rest = after;
    }
    body
}

#[cfg(test)]
mod tests {
    // A panic is how these tests fail.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use outbox_application::{AggregateId, AggregateRef, EventId};
    use outbox_domain::Version;
    use time::macros::datetime;

    fn event_id() -> EventId {
        let id = AggregateId::parse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap();
        EventId::derive(&AggregateRef::new("Repair", id), Version::new(1))
    }

    fn key() -> CallKey {
        CallKey::new("notify", event_id())
    }

    fn address(raw: &str) -> EmailAddress {
        EmailAddress::parse("test", raw).unwrap()
    }

    fn email(subject: &str, text: &str) -> Email {
        Email {
            to: address("ada@example.com"),
            subject: subject.to_owned(),
            text: text.to_owned(),
        }
    }

    fn build(email: &Email) -> Result<String, MessageError> {
        build_message(
            &address("shop@example.com"),
            &key(),
            email,
            datetime!(2026-12-01 09:30:00 UTC),
        )
    }

    /// The headers (unfolded) and the body of a message.
    fn split(message: &str) -> (Vec<String>, String) {
        let (head, body) = message.split_once("\r\n\r\n").unwrap();
        let mut headers: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            // Unfolding removes the line break and keeps the space.
            if line.starts_with(' ') {
                headers.last_mut().unwrap().push_str(line);
            } else {
                headers.push(line.to_owned());
            }
        }
        (headers, body.to_owned())
    }

    fn header(headers: &[String], name: &str) -> String {
        let prefix = format!("{name}: ");
        let found: Vec<&String> = headers.iter().filter(|h| h.starts_with(&prefix)).collect();
        assert_eq!(found.len(), 1, "one {name} header in {headers:?}");
        found[0][prefix.len()..].to_owned()
    }

    /// The text of a subject header value, decoding encoded words.
    fn decoded_subject(value: &str) -> String {
        if !value.starts_with("=?") {
            return value.to_owned();
        }
        let mut bytes = Vec::new();
        for word in value.split("=?UTF-8?B?").filter(|w| !w.is_empty()) {
            let encoded = word.trim_end().strip_suffix("?=").unwrap();
            bytes.extend(STANDARD.decode(encoded).unwrap());
        }
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn every_header_is_present_once() {
        let message = build(&email("Your car is ready", "Come and get it.")).unwrap();
        let (headers, _) = split(&message);
        assert_eq!(header(&headers, "From"), "shop@example.com");
        assert_eq!(header(&headers, "To"), "ada@example.com");
        assert_eq!(header(&headers, "Subject"), "Your car is ready");
        assert_eq!(header(&headers, "Date"), "Tue, 01 Dec 2026 09:30:00 +0000");
        assert_eq!(header(&headers, "MIME-Version"), "1.0");
        assert_eq!(
            header(&headers, "Content-Type"),
            "text/plain; charset=UTF-8"
        );
        assert_eq!(header(&headers, "Content-Transfer-Encoding"), "base64");
        assert_eq!(headers.len(), 8, "{headers:?}");
    }

    #[test]
    fn the_call_key_travels_in_its_header() {
        let message = build(&email("Ready", "Come.")).unwrap();
        let (headers, _) = split(&message);
        assert_eq!(header(&headers, CALL_KEY_HEADER), key().to_string());
        assert!(header(&headers, CALL_KEY_HEADER).starts_with("notify/"));
    }

    #[test]
    fn the_body_round_trips_through_base64_in_short_lines() {
        let text = "Grüße, Ada!\nYour invoice: 120,00 €.\r\n\n".to_owned() + &"x".repeat(300);
        let message = build(&email("Ready", &text)).unwrap();
        let (_, body) = split(&message);
        let lines: Vec<&str> = body.split("\r\n").collect();
        assert_eq!(lines.last(), Some(&""), "the body ends with a line break");
        assert!(lines.iter().all(|line| line.len() <= 76));
        assert!(lines.iter().filter(|line| line.len() == 76).count() >= 4);
        let decoded = STANDARD.decode(lines.concat()).unwrap();
        let expected = text.replace("\r\n", "\n").replace('\n', "\r\n");
        assert_eq!(String::from_utf8(decoded).unwrap(), expected);
    }

    #[test]
    fn an_empty_body_is_an_empty_part() {
        let message = build(&email("Ready", "")).unwrap();
        assert!(message.ends_with("\r\n\r\n"));
    }

    #[test]
    fn a_subject_beyond_ascii_is_encoded_in_whole_characters() {
        let subject = "Ihr Wagen ist fertig – Grüße aus der Werkstatt ✓ ".repeat(3);
        let message = build(&email(&subject, "Kommen Sie.")).unwrap();
        let (head, _) = message.split_once("\r\n\r\n").unwrap();
        assert!(head.is_ascii());
        assert!(head.split("\r\n").all(|line| line.len() <= 76), "{head}");
        let (headers, _) = split(&message);
        let value = header(&headers, "Subject");
        assert!(value.starts_with("=?UTF-8?B?"), "{value}");
        for word in value.split(' ') {
            assert!(word.len() <= 75, "{word}");
            let inner = word
                .strip_prefix("=?UTF-8?B?")
                .unwrap()
                .strip_suffix("?=")
                .unwrap();
            assert!(String::from_utf8(STANDARD.decode(inner).unwrap()).is_ok());
        }
        assert_eq!(decoded_subject(&value), subject);
    }

    #[test]
    fn a_subject_that_looks_encoded_or_holds_a_tab_is_encoded() {
        for subject in ["=?UTF-8?B?aGk=?=", "a\tb", ""] {
            let message = build(&email(subject, "x")).unwrap();
            let (headers, _) = split(&message);
            let value = header(&headers, "Subject");
            assert_eq!(decoded_subject(&value), subject, "{value}");
        }
    }

    #[test]
    fn a_line_break_in_the_subject_is_refused() {
        for subject in ["Ready\r\nBcc: eve@example.com", "Ready\nnow", "Ready\r"] {
            assert_eq!(
                build(&email(subject, "x")),
                Err(MessageError::LineBreakInSubject)
            );
        }
    }

    #[test]
    fn a_key_that_is_no_header_value_is_refused() {
        let key = CallKey::new("notify\r\nBcc: eve@example.com", event_id());
        let refused = build_message(
            &address("shop@example.com"),
            &key,
            &email("Ready", "x"),
            datetime!(2026-12-01 09:30:00 UTC),
        );
        assert!(matches!(refused, Err(MessageError::CallKeyNotAHeader(_))));
    }
}
