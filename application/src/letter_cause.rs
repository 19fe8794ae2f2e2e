//! Why a dead letter is there, as an operator groups letters: its reason with
//! the numbers masked (`the entry is # bytes…`), the kind of its source and the
//! consumer it came from. Letters of one cause are usually fixed, and redriven,
//! together. Each cause and each letter has a short id an operator can name on
//! the command line and a console can put in a form; both ids survive a read
//! of the queue (a queue's handles do not), and a letter keeps its id when a
//! redrive returns it with more attempts.

use crate::ports::{sha256_hex, DeadLetter, LetterSource};

/// Hex digits in an id: 48 bits, plenty for the letters of one queue.
const ID_DIGITS: usize = 12;

/// The kind of place a letter came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// A stream record the relay could not publish.
    StreamRecord,
    /// A stream record without a sequence number.
    UnpositionedStreamRecord,
    /// A queue message a consumer could not consume.
    QueueMessage,
}

impl SourceKind {
    /// The kind of `source`.
    pub fn of(source: &LetterSource) -> Self {
        match source {
            LetterSource::StreamRecord { .. } => Self::StreamRecord,
            LetterSource::UnpositionedStreamRecord { .. } => Self::UnpositionedStreamRecord,
            LetterSource::QueueMessage { .. } => Self::QueueMessage,
        }
    }

    /// How an operator reads it.
    pub fn label(self) -> &'static str {
        match self {
            Self::StreamRecord => "stream record",
            Self::UnpositionedStreamRecord => "stream record without a position",
            Self::QueueMessage => "queue message",
        }
    }
}

/// What letters of one group share.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LetterCause {
    /// The reason, each run of digits masked as `#`.
    pub reason: String,
    /// Where the letters came from.
    pub source: SourceKind,
    /// The consumer that dead-lettered them; `None` for the relay's.
    pub consumer: Option<String>,
}

impl LetterCause {
    /// The cause of `letter`.
    pub fn of(letter: &DeadLetter) -> Self {
        let consumer = match &letter.source {
            LetterSource::QueueMessage { consumer, .. } => Some(consumer.clone()),
            _ => None,
        };
        Self {
            reason: mask_numbers(&letter.reason),
            source: SourceKind::of(&letter.source),
            consumer,
        }
    }

    /// Its short id, the same wherever it is computed.
    pub fn id(&self) -> String {
        short_id(&format!(
            "{}|{}|{}",
            self.source.label(),
            self.consumer.as_deref().unwrap_or(""),
            self.reason
        ))
    }
}

/// The short id of `letter`: its source and its payload's hash, so a letter
/// keeps it across reads and returns.
pub fn letter_id(letter: &DeadLetter) -> String {
    short_id(&format!("{}|{}", letter.source, letter.payload_sha256))
}

fn short_id(text: &str) -> String {
    let mut id = sha256_hex(text.as_bytes());
    id.truncate(ID_DIGITS);
    id
}

/// `reason` with each run of ASCII digits replaced by one `#`.
fn mask_numbers(reason: &str) -> String {
    let mut masked = String::with_capacity(reason.len());
    let mut in_number = false;
    for c in reason.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                masked.push('#');
            }
            in_number = true;
        } else {
            masked.push(c);
            in_number = false;
        }
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{RecordIdentity, SequenceNumber};
    use crate::ports::DeadLetterPayload;

    fn letter(source: LetterSource, reason: &str, raw: &str) -> DeadLetter {
        DeadLetter::new(
            source,
            reason,
            1,
            DeadLetterPayload::Raw { raw: raw.into() },
            RecordIdentity::default(),
        )
    }

    fn record(sequence: &str) -> LetterSource {
        LetterSource::StreamRecord {
            sequence: SequenceNumber::new(sequence),
        }
    }

    #[test]
    fn letters_differing_only_in_numbers_share_a_cause_and_keep_ids_of_their_own() {
        let small = letter(record("1"), "the entry is 300000 bytes, max 262144", "a");
        let large = letter(record("2"), "the entry is 999999 bytes, max 262144", "b");
        assert_eq!(LetterCause::of(&small), LetterCause::of(&large));
        assert_eq!(
            LetterCause::of(&small).reason,
            "the entry is # bytes, max #"
        );
        assert_eq!(LetterCause::of(&small).id().len(), ID_DIGITS);
        assert_ne!(letter_id(&small), letter_id(&large));
    }

    #[test]
    fn the_consumer_and_the_source_kind_part_causes() {
        let relay = letter(record("1"), "refused", "a");
        let consumer = |name: &str| {
            letter(
                LetterSource::QueueMessage {
                    consumer: name.into(),
                    message_id: "m".into(),
                },
                "refused",
                "a",
            )
        };
        let ids = [
            LetterCause::of(&relay).id(),
            LetterCause::of(&consumer("invoicing")).id(),
            LetterCause::of(&consumer("shipping")).id(),
        ];
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
        assert_eq!(LetterCause::of(&relay).consumer, None);
    }

    #[test]
    fn a_returned_letter_keeps_its_id() {
        let first = letter(record("7"), "undecodable", "x");
        let mut again = first.clone();
        again.attempts += 1;
        again.reason = "still undecodable".into();
        assert_eq!(letter_id(&first), letter_id(&again));
    }
}
