//! The in-memory inbox: (consumer, event id) marks and effects, written
//! together; for ordered consumers a sequence per (consumer, aggregate) with
//! its parked list, changed only at the revision it was read; an external
//! effect's in-progress claims beside the marks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use outbox_application::ports::{
    Claim, ClaimOutcome, CompleteOutcome, Completion, Effect, Inbox, InboxError, InboxOutcome,
    ParkedAggregate, Sequence, SequenceOutcome, SequenceWrite, Skip,
};
use outbox_application::{AggregateRef, EventEnvelope, EventId};
use outbox_domain::Version;

/// A consumer's position on an aggregate.
type SequenceKey = (String, AggregateRef);

#[derive(Debug, Default)]
struct Records {
    marks: HashSet<(String, EventId)>,
    claims: HashMap<(String, EventId), Claim>,
    completions: Vec<(String, EventId, Completion)>,
    effects: Vec<(String, Effect)>,
    histories: HashMap<SequenceKey, Vec<Effect>>,
    duplicates: HashMap<String, u64>,
    sequences: HashMap<SequenceKey, Sequence>,
    held: BTreeMap<(SequenceKey, Version), EventEnvelope>,
    skips: Vec<(SequenceKey, Skip)>,
}

/// The in-memory inbox. Clones share the same records.
#[derive(Debug, Clone, Default)]
pub struct MemoryInbox {
    records: Arc<Mutex<Records>>,
}

impl MemoryInbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything recorded (a long run audited window by window, once
    /// nothing is in flight).
    pub fn forget(&self) {
        *self.lock() = Records::default();
    }

    /// The effects `consumer` recorded, in the order they were applied.
    pub fn effects_of(&self, consumer: &str) -> Vec<Effect> {
        self.lock()
            .effects
            .iter()
            .filter(|(owner, _)| owner == consumer)
            .map(|(_, effect)| effect.clone())
            .collect()
    }

    /// The effects an ordered `consumer` applied to `aggregate`, in order.
    pub fn history(&self, consumer: &str, aggregate: &AggregateRef) -> Vec<Effect> {
        let key = (consumer.to_owned(), aggregate.clone());
        self.lock().histories.get(&key).cloned().unwrap_or_default()
    }

    /// The external effects `consumer` completed, in order: the event and its completed mark.
    pub fn completions_of(&self, consumer: &str) -> Vec<(EventId, Completion)> {
        self.lock()
            .completions
            .iter()
            .filter(|(owner, _, _)| owner == consumer)
            .map(|(_, event_id, completion)| (*event_id, completion.clone()))
            .collect()
    }

    /// The in-progress claim on (`consumer`, `event_id`), if one is there.
    pub fn claim_on(&self, consumer: &str, event_id: EventId) -> Option<Claim> {
        self.lock()
            .claims
            .get(&(consumer.to_owned(), event_id))
            .cloned()
    }

    /// Redeliveries `consumer` recognised and ignored.
    pub fn duplicates_of(&self, consumer: &str) -> u64 {
        self.lock()
            .duplicates
            .get(consumer)
            .copied()
            .unwrap_or_default()
    }

    /// The skips recorded for `consumer` on `aggregate`.
    pub fn skips_of(&self, consumer: &str, aggregate: &AggregateRef) -> Vec<Skip> {
        self.lock()
            .skips
            .iter()
            .filter(|((owner, of), _)| owner == consumer && of == aggregate)
            .map(|(_, skip)| skip.clone())
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Inbox for MemoryInbox {
    async fn processed(&self, consumer: &str, event_id: EventId) -> Result<bool, InboxError> {
        Ok(self.lock().marks.contains(&(consumer.to_owned(), event_id)))
    }

    async fn apply_once(
        &self,
        consumer: &str,
        event_id: EventId,
        effect: Option<Effect>,
    ) -> Result<InboxOutcome, InboxError> {
        let mut records = self.lock();
        if !records.marks.insert((consumer.to_owned(), event_id)) {
            return Ok(InboxOutcome::AlreadyProcessed);
        }
        if let Some(effect) = effect {
            records.effects.push((consumer.to_owned(), effect));
        }
        Ok(InboxOutcome::Applied)
    }

    async fn claim(
        &self,
        consumer: &str,
        event_id: EventId,
        claim: &Claim,
    ) -> Result<ClaimOutcome, InboxError> {
        let key = (consumer.to_owned(), event_id);
        let mut records = self.lock();
        if records.marks.contains(&key) {
            return Ok(ClaimOutcome::Completed);
        }
        let took_over = match records.claims.get(&key) {
            Some(held) if held.until >= claim.at => {
                return Ok(ClaimOutcome::Held { until: held.until })
            }
            Some(_) => true,
            None => false,
        };
        records.claims.insert(key, claim.clone());
        Ok(ClaimOutcome::Claimed { took_over })
    }

    async fn complete(
        &self,
        consumer: &str,
        event_id: EventId,
        token: &str,
        completion: Completion,
    ) -> Result<CompleteOutcome, InboxError> {
        let key = (consumer.to_owned(), event_id);
        let mut records = self.lock();
        if records
            .claims
            .get(&key)
            .is_none_or(|held| held.token != token)
        {
            return Ok(CompleteOutcome::Lost);
        }
        records.claims.remove(&key);
        records.marks.insert(key);
        if let Some(effect) = completion.record.clone() {
            records.effects.push((consumer.to_owned(), effect));
        }
        records
            .completions
            .push((consumer.to_owned(), event_id, completion));
        Ok(CompleteOutcome::Completed)
    }

    async fn release(
        &self,
        consumer: &str,
        event_id: EventId,
        token: &str,
    ) -> Result<(), InboxError> {
        let key = (consumer.to_owned(), event_id);
        let mut records = self.lock();
        if records
            .claims
            .get(&key)
            .is_some_and(|held| held.token == token)
        {
            records.claims.remove(&key);
        }
        Ok(())
    }

    async fn count_duplicate(&self, consumer: &str) -> Result<(), InboxError> {
        *self
            .lock()
            .duplicates
            .entry(consumer.to_owned())
            .or_default() += 1;
        Ok(())
    }

    async fn sequence(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
    ) -> Result<Sequence, InboxError> {
        let key = (consumer.to_owned(), aggregate.clone());
        Ok(self.lock().sequences.get(&key).cloned().unwrap_or_default())
    }

    async fn write_sequence(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
        revision: u64,
        write: SequenceWrite,
    ) -> Result<SequenceOutcome, InboxError> {
        let key = (consumer.to_owned(), aggregate.clone());
        let mut records = self.lock();
        let current = records
            .sequences
            .get(&key)
            .map_or(0, |sequence| sequence.revision);
        if current != revision {
            return Ok(SequenceOutcome::Conflict);
        }
        if let Some(event) = &write.hold {
            if records
                .held
                .contains_key(&(key.clone(), event.aggregate_version))
            {
                return Ok(SequenceOutcome::AlreadyHeld);
            }
        }
        if let Some(version) = write.release {
            if records.held.remove(&(key.clone(), version)).is_none() {
                return Ok(SequenceOutcome::Conflict);
            }
        }
        if let Some(event) = write.hold {
            records
                .held
                .insert((key.clone(), event.aggregate_version), event);
        }
        if let Some(effect) = write.effect {
            records
                .histories
                .entry(key.clone())
                .or_default()
                .push(effect.clone());
            records.effects.push((consumer.to_owned(), effect));
        }
        if let Some(skip) = write.skip {
            records.skips.push((key.clone(), skip));
        }
        records.sequences.insert(key, write.next);
        Ok(SequenceOutcome::Written)
    }

    async fn held(
        &self,
        consumer: &str,
        aggregate: &AggregateRef,
        version: Version,
    ) -> Result<Option<EventEnvelope>, InboxError> {
        let key = (consumer.to_owned(), aggregate.clone());
        Ok(self.lock().held.get(&(key, version)).cloned())
    }

    async fn parked(&self) -> Result<Vec<ParkedAggregate>, InboxError> {
        let records = self.lock();
        let mut parked: Vec<ParkedAggregate> = records
            .sequences
            .iter()
            .filter(|(_, sequence)| sequence.parking.is_some())
            .map(|((consumer, aggregate), sequence)| ParkedAggregate {
                consumer: consumer.clone(),
                aggregate: aggregate.clone(),
                sequence: sequence.clone(),
            })
            .collect();
        parked.sort_by(|a, b| (&a.consumer, &a.aggregate).cmp(&(&b.consumer, &b.aggregate)));
        Ok(parked)
    }
}
