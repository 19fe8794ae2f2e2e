//! Redriving dead letters: an operator reads the dead-letter queue and sends
//! chosen letters back where they came from — an event the relay could not
//! publish back to the bus, a delivery a consumer could not consume back to that
//! consumer. A letter is removed only after its event was accepted again. A
//! record that is still poison, or an event the bus or consumer refuses again,
//! goes back to the queue with its attempt count raised before the old letter is
//! removed: never lost. A letter that fails for a passing reason (throttling, an
//! outage) stays where it is.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tracing::{info, warn};

use crate::consume::{ConsumeService, Consumed, Delivery, DeliveryContent};
use crate::envelope::EventEnvelope;
use crate::ids::AggregateRef;
use crate::letter_cause::{letter_id, LetterCause};
use crate::ports::{
    DeadLetter, DeadLetterError, DeadLetterPayload, DeadLetterStore, EventPublisher, LetterSource,
    PublishOutcome, StoredLetter,
};

/// Reads a raw record of the change feed back into an event, or says why not:
/// the adapter's decoder, so a record dead-lettered by an older decoder can be
/// tried with the current one.
pub type RawDecoder = Arc<dyn Fn(&str) -> Result<EventEnvelope, String> + Send + Sync>;

/// Which letters to redrive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LetterFilter {
    /// Only letters whose reason contains this text.
    pub reason: Option<String>,
    /// Only letters of this aggregate's events.
    pub aggregate: Option<AggregateRef>,
    /// Only letters of the cause with this id ([`LetterCause::id`]).
    pub cause: Option<String>,
    /// Only the letter with this id ([`letter_id`]).
    pub letter: Option<String>,
}

impl LetterFilter {
    /// Whether `letter` is chosen.
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        let reason = self
            .reason
            .as_ref()
            .is_none_or(|text| letter.reason.contains(text.as_str()));
        let aggregate = self
            .aggregate
            .as_ref()
            .is_none_or(|wanted| match &letter.payload {
                DeadLetterPayload::Event { envelope } => envelope.aggregate() == *wanted,
                DeadLetterPayload::Raw { .. } => false,
            });
        let cause = self
            .cause
            .as_ref()
            .is_none_or(|id| LetterCause::of(letter).id() == *id);
        let single = self
            .letter
            .as_ref()
            .is_none_or(|id| letter_id(letter) == *id);
        reason && aggregate && cause && single
    }
}

/// What became of one letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redriven {
    /// Its event was accepted again; the letter is removed.
    Accepted,
    /// Refused again: a new letter with the attempt count raised replaced it.
    Returned {
        /// Why it was refused.
        reason: String,
    },
    /// It failed for a passing reason and stays in the queue.
    Kept {
        /// Why.
        reason: String,
    },
    /// Not chosen by the filter; untouched.
    Skipped,
    /// The message is no dead letter; it stays in the queue for a person.
    Malformed,
}

/// How many letters went which way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedriveSummary {
    /// Accepted again and removed.
    pub accepted: usize,
    /// Refused again and returned with more attempts.
    pub returned: usize,
    /// Left in the queue after a passing failure.
    pub kept: usize,
    /// Not chosen.
    pub skipped: usize,
    /// No dead letters.
    pub malformed: usize,
}

impl RedriveSummary {
    fn count(&mut self, outcome: &Redriven) {
        match outcome {
            Redriven::Accepted => self.accepted += 1,
            Redriven::Returned { .. } => self.returned += 1,
            Redriven::Kept { .. } => self.kept += 1,
            Redriven::Skipped => self.skipped += 1,
            Redriven::Malformed => self.malformed += 1,
        }
    }
}

/// Letters read from the queue at a time.
const READ_BATCH: usize = 10;

/// The redrive use case.
#[derive(Clone)]
pub struct RedriveService {
    letters: Arc<dyn DeadLetterStore>,
    publisher: Arc<dyn EventPublisher>,
    consumers: HashMap<String, ConsumeService>,
    decode_raw: RawDecoder,
}

impl RedriveService {
    /// Redrives letters of `letters` to `publisher`, decoding raw records with `decode_raw`.
    pub fn new(
        letters: Arc<dyn DeadLetterStore>,
        publisher: Arc<dyn EventPublisher>,
        decode_raw: RawDecoder,
    ) -> Self {
        Self {
            letters,
            publisher,
            consumers: HashMap::new(),
            decode_raw,
        }
    }

    /// The same service delivering a consumer's letters straight to `consumer`
    /// instead of publishing them to every subscriber again.
    #[must_use]
    pub fn with_consumer(mut self, consumer: ConsumeService) -> Self {
        self.consumers.insert(consumer.name().to_owned(), consumer);
        self
    }

    /// Reads up to `max` letters (hiding them from other readers for a while) without acting on them.
    ///
    /// # Errors
    /// [`DeadLetterError`] when the queue cannot be read.
    pub async fn list(&self, max: usize) -> Result<Vec<StoredLetter>, DeadLetterError> {
        let mut seen = HashSet::new();
        let mut letters = Vec::new();
        let mut after: Option<String> = None;
        while letters.len() < max {
            let page = self
                .letters
                .read(after.as_deref(), READ_BATCH.min(max - letters.len()))
                .await?;
            let before = letters.len();
            letters.extend(
                page.letters
                    .into_iter()
                    .filter(|stored| seen.insert(key_of(stored))),
            );
            match page.next {
                Some(next) if letters.len() > before => after = Some(next),
                _ => break,
            }
        }
        Ok(letters)
    }

    /// Redrives up to `max` letters chosen by `filter`; `on_letter` sees each letter and its fate.
    ///
    /// # Errors
    /// [`DeadLetterError`] when the queue cannot be read or written; every
    /// letter reported before was handled.
    pub async fn redrive(
        &self,
        filter: &LetterFilter,
        max: usize,
        mut on_letter: impl FnMut(&StoredLetter, &Redriven),
    ) -> Result<RedriveSummary, DeadLetterError> {
        let mut summary = RedriveSummary::default();
        let mut seen = HashSet::new();
        let mut after: Option<String> = None;
        while seen.len() < max {
            let page = self
                .letters
                .read(after.as_deref(), READ_BATCH.min(max - seen.len()))
                .await?;
            let fresh: Vec<StoredLetter> = page
                .letters
                .into_iter()
                .filter(|stored| seen.insert(key_of(stored)))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for stored in fresh {
                let outcome = self.chosen(&stored, filter).await?;
                summary.count(&outcome);
                on_letter(&stored, &outcome);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(summary)
    }

    /// Redrives the letters of `listed` (a [`list`](Self::list) just made)
    /// chosen by `filter`, by the handles that read gave, without reading the
    /// queue again: a queue that hides what it returns (SQS) would show a
    /// second read none of them; `on_letter` sees each letter and its fate.
    ///
    /// # Errors
    /// [`DeadLetterError`] when the queue cannot be written; every letter
    /// reported before was handled.
    pub async fn redrive_listed(
        &self,
        listed: &[StoredLetter],
        filter: &LetterFilter,
        mut on_letter: impl FnMut(&StoredLetter, &Redriven),
    ) -> Result<RedriveSummary, DeadLetterError> {
        let mut summary = RedriveSummary::default();
        for stored in listed {
            let outcome = self.chosen(stored, filter).await?;
            summary.count(&outcome);
            on_letter(stored, &outcome);
        }
        Ok(summary)
    }

    /// Redrives `stored` if `filter` chooses it.
    async fn chosen(
        &self,
        stored: &StoredLetter,
        filter: &LetterFilter,
    ) -> Result<Redriven, DeadLetterError> {
        Ok(match &stored.content {
            Err(_) => Redriven::Malformed,
            Ok(letter) if !filter.matches(letter) => Redriven::Skipped,
            Ok(letter) => self.redrive_one(&stored.handle, letter).await?,
        })
    }

    /// Sends one chosen letter back and acts on the answer.
    async fn redrive_one(
        &self,
        handle: &str,
        letter: &DeadLetter,
    ) -> Result<Redriven, DeadLetterError> {
        let envelope = match &letter.payload {
            DeadLetterPayload::Event { envelope } => envelope.clone(),
            DeadLetterPayload::Raw { raw } => match (self.decode_raw)(raw) {
                Ok(envelope) => envelope,
                Err(reason) => return self.return_letter(handle, letter, reason).await,
            },
        };
        let consumer = match &letter.source {
            LetterSource::QueueMessage { consumer, .. } => self.consumers.get(consumer),
            _ => None,
        };
        let outcome = match consumer {
            Some(consumer) => self.to_consumer(consumer, letter, envelope).await,
            None => match self.to_bus(envelope).await {
                Err(reason) => return self.return_letter(handle, letter, reason).await,
                Ok(outcome) => outcome,
            },
        };
        if matches!(outcome, Redriven::Accepted | Redriven::Returned { .. }) {
            self.letters.remove(handle).await?;
        }
        info!(source = %letter.source, ?outcome, "dead letter redriven");
        Ok(outcome)
    }

    /// Publishes an event to the bus again: accepted or kept, or `Err` with
    /// the reason the bus refuses it for good.
    async fn to_bus(&self, envelope: EventEnvelope) -> Result<Redriven, String> {
        let size = self.publisher.entry_size(&envelope);
        let limit = self.publisher.limits().max_batch_bytes;
        if size >= limit {
            return Err(format!(
                "the entry is {size} bytes, the bus takes less than {limit}"
            ));
        }
        let kept = |reason: String| Ok(Redriven::Kept { reason });
        match self
            .publisher
            .publish(std::slice::from_ref(&envelope))
            .await
        {
            Ok(outcomes) => match outcomes.into_iter().next() {
                Some(PublishOutcome::Published) => Ok(Redriven::Accepted),
                Some(PublishOutcome::Failed {
                    retryable: false,
                    reason,
                    ..
                }) => Err(reason),
                Some(PublishOutcome::Failed { reason, .. }) => kept(reason),
                None => kept("the bus reported no outcome".into()),
            },
            Err(error) => kept(error.to_string()),
        }
    }

    /// Delivers the letter's event to the consumer it came from. A consumer
    /// that refuses it again writes the new letter itself, with the raised count.
    async fn to_consumer(
        &self,
        consumer: &ConsumeService,
        letter: &DeadLetter,
        envelope: EventEnvelope,
    ) -> Redriven {
        let message_id = match &letter.source {
            LetterSource::QueueMessage { message_id, .. } => message_id.clone(),
            other => other.to_string(),
        };
        let delivery = Delivery {
            message_id,
            receive_count: letter.attempts.saturating_add(1),
            first_received_at: None,
            content: DeliveryContent::Event(envelope),
        };
        match consumer.consume(delivery).await {
            Ok(
                Consumed::Applied
                | Consumed::Called
                | Consumed::Duplicate
                | Consumed::Ignored
                | Consumed::Parked
                | Consumed::Held
                | Consumed::Released { .. },
            ) => Redriven::Accepted,
            Ok(Consumed::DeadLettered) => Redriven::Returned {
                reason: format!("{} refused it again", consumer.name()),
            },
            Err(error) => Redriven::Kept {
                reason: error.to_string(),
            },
        }
    }

    /// Sends `letter` back with one more attempt and `reason`, then removes the old one.
    async fn return_letter(
        &self,
        handle: &str,
        letter: &DeadLetter,
        reason: String,
    ) -> Result<Redriven, DeadLetterError> {
        warn!(source = %letter.source, %reason, "still poison; the letter goes back");
        let mut again = letter.clone();
        again.attempts = again.attempts.saturating_add(1);
        again.reason.clone_from(&reason);
        self.letters.send(again).await?;
        self.letters.remove(handle).await?;
        Ok(Redriven::Returned { reason })
    }
}

/// What tells one letter from another across reads (a queue's handles change).
fn key_of(stored: &StoredLetter) -> String {
    match &stored.content {
        Ok(letter) => format!(
            "{}|{}|{}",
            letter.source, letter.payload_sha256, letter.attempts
        ),
        Err(malformed) => format!(
            "malformed|{}",
            crate::ports::sha256_hex(malformed.body.as_bytes())
        ),
    }
}
