//! Dead letters grouped by cause, as an operator fixes them: per
//! [`LetterCause`] (the reason with its numbers masked, the source kind, the
//! consumer) how many letters, the oldest and the newest, and the letters
//! themselves. `redrive --list` prints the groups and the console shows them;
//! `redrive --cause ID` and `--letter ID` send one group or one letter back.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use outbox_application::ports::{DeadLetterPayload, StoredLetter};
use outbox_application::{letter_id, LetterCause};

/// One letter as a group lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupedLetter {
    /// Its id, for `redrive --letter`.
    pub id: String,
    /// Where it came from.
    pub source: String,
    /// Its reason, numbers and all.
    pub reason: String,
    /// How many attempts were made.
    pub attempts: u32,
    /// The event it holds (`None` for a raw record no decoder read).
    pub event_id: Option<String>,
    /// The event's aggregate, `TYPE#ID`.
    pub aggregate: Option<String>,
    /// When the queue received it.
    pub stored_at: Option<OffsetDateTime>,
}

/// The letters of one cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterGroup {
    /// Its id, for `redrive --cause`.
    pub id: String,
    /// What its letters share.
    pub cause: LetterCause,
    /// Its letters, oldest first.
    pub letters: Vec<GroupedLetter>,
    /// When the oldest letter arrived.
    pub oldest: Option<OffsetDateTime>,
    /// When the newest letter arrived.
    pub newest: Option<OffsetDateTime>,
}

/// A queue's letters by cause.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grouped {
    /// The causes, the largest first.
    pub groups: Vec<LetterGroup>,
    /// Messages that are no dead letters.
    pub malformed: usize,
}

/// The letters of `stored` by cause, the largest group first; messages that
/// are no dead letters are counted apart.
pub fn group(stored: &[StoredLetter]) -> Grouped {
    let mut groups: BTreeMap<LetterCause, Vec<GroupedLetter>> = BTreeMap::new();
    let mut malformed = 0;
    for letter in stored {
        let Ok(content) = &letter.content else {
            malformed += 1;
            continue;
        };
        let (event_id, aggregate) = match &content.payload {
            DeadLetterPayload::Event { envelope } => (
                Some(envelope.event_id.to_string()),
                Some(envelope.aggregate().to_string()),
            ),
            DeadLetterPayload::Raw { .. } => (content.identity.event_id.clone(), None),
        };
        groups
            .entry(LetterCause::of(content))
            .or_default()
            .push(GroupedLetter {
                id: letter_id(content),
                source: content.source.to_string(),
                reason: content.reason.clone(),
                attempts: content.attempts,
                event_id,
                aggregate,
                stored_at: letter.stored_at,
            });
    }
    let mut groups: Vec<LetterGroup> = groups
        .into_iter()
        .map(|(cause, mut letters)| {
            letters.sort_by_key(|letter| letter.stored_at);
            LetterGroup {
                id: cause.id(),
                oldest: letters.iter().filter_map(|l| l.stored_at).min(),
                newest: letters.iter().filter_map(|l| l.stored_at).max(),
                cause,
                letters,
            }
        })
        .collect();
    groups.sort_by_key(|group| std::cmp::Reverse(group.letters.len()));
    Grouped { groups, malformed }
}

impl std::fmt::Display for LetterGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cause {}: {} letter(s) | {} | {}",
            self.id,
            self.letters.len(),
            self.cause.source.label(),
            self.cause.reason
        )?;
        if let Some(consumer) = &self.cause.consumer {
            write!(f, " | {consumer}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A panic is how these tests fail.

    use super::*;
    use outbox_application::ports::{DeadLetter, LetterSource, MalformedLetter};
    use outbox_application::{RecordIdentity, SequenceNumber};

    fn stored(sequence: &str, reason: &str, at: i64) -> StoredLetter {
        StoredLetter {
            handle: sequence.into(),
            stored_at: Some(OffsetDateTime::from_unix_timestamp(at).unwrap()),
            content: Ok(DeadLetter::new(
                LetterSource::StreamRecord {
                    sequence: SequenceNumber::new(sequence),
                },
                reason,
                1,
                DeadLetterPayload::Raw {
                    raw: sequence.into(),
                },
                RecordIdentity::default(),
            )),
        }
    }

    #[test]
    fn letters_are_grouped_by_cause_with_their_count_oldest_and_newest() {
        let malformed = StoredLetter {
            handle: "m".into(),
            stored_at: None,
            content: Err(MalformedLetter {
                body: "{".into(),
                reason: "not JSON".into(),
            }),
        };
        let letters = [
            stored("1", "undecodable outbox item: missing field 7", 30),
            stored("2", "the bus refused the entry", 50),
            stored("3", "undecodable outbox item: missing field 9", 10),
            malformed,
        ];
        let Grouped { groups, malformed } = group(&letters);
        assert_eq!(malformed, 1);
        assert_eq!(groups.len(), 2);
        let largest = &groups[0];
        assert_eq!(
            largest.cause.reason,
            "undecodable outbox item: missing field #"
        );
        assert_eq!(largest.letters.len(), 2);
        assert_eq!(largest.letters[0].source, "stream record 3", "oldest first");
        assert_eq!(largest.oldest.unwrap().unix_timestamp(), 10);
        assert_eq!(largest.newest.unwrap().unix_timestamp(), 30);
        assert!(largest.to_string().starts_with(&format!(
            "cause {}: 2 letter(s) | stream record |",
            largest.id
        )));
    }
}
