//! Consuming an event exactly once: inbox check → reaction → effect and mark in
//! one atomic step; whatever cannot be consumed goes to the dead-letter queue.
//!
//! Delivery is at least once (the bus and the queue may both repeat an event); the
//! inbox turns that into exactly-once effects. A reaction turns an event into
//! what it calls for ([`Reacted`]): nothing, a **data effect** the inbox writes
//! together with the (consumer, event id) mark (exactly once), or an **external
//! call** made under the inbox's claim (at least once, never two at a time; see
//! [`external`](crate::external)). The policy for a delivery that can never be
//! consumed (unreadable, an event whose data breaks a domain rule, a call the
//! other side refuses for good) lives here once, for every runtime: dead-letter
//! it with its reason, then acknowledge it. A failure of the inbox or of the
//! dead-letter queue, a retryable call failure, or a live claim of another
//! delivery leaves it for redelivery.
//!
//! An ordered consumer applies each aggregate's events in version order (see
//! [`sequencing`](crate::sequencing)): the effect and its new position are one
//! conditioned write; an event ahead of a gap is handed back for redelivery
//! until its bound, then its aggregate is parked and its events held, while
//! other aggregates flow. The missing event's arrival (a late delivery, a
//! redrive) releases the held events in order; so does an operator's explicit
//! skip ([`ConsumeService::unpark`]). An ordered consumer records data effects
//! only: a call cannot join the conditioned write that moves its position.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use time::OffsetDateTime;
use tracing::{debug, info, warn};

use outbox_domain::Version;

use crate::change::RecordIdentity;
use crate::envelope::{EncodeError, EnvelopeError, EventEnvelope};
use crate::external::{CallError, CallKey, ExternalCall, OutsidePort, Reacted};
use crate::ids::{AggregateRef, EventId};
use crate::ports::{
    sha256_hex, Claim, ClaimOutcome, Clock, CompleteOutcome, Completion, DeadLetter,
    DeadLetterError, DeadLetterPayload, DeadLetterQueue, Effect, Inbox, InboxError, InboxOutcome,
    LetterSource, Parking, Sequence, SequenceOutcome, SequenceWrite, Skip, SystemClock,
};
use crate::routing::Subscription;
use crate::sequencing::{step, ParkingPolicy, Step, Waited};

/// Conflicting writes on one aggregate a delivery survives before it is handed back.
const CONFLICT_RETRIES: usize = 16;

/// How long a claim on an event lasts by default: twice the consumer
/// function's timeout, so a call (which Lambda stops at that timeout) always
/// ends inside its claim.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(60);

/// Why a reaction could not turn an event into an effect. All are permanent.
#[derive(Debug, thiserror::Error)]
pub enum ReactionError {
    /// The event's payload does not decode (or breaks a domain rule).
    #[error(transparent)]
    Undecodable(#[from] EnvelopeError),
    /// The effect does not encode: a defect of the reaction.
    #[error(transparent)]
    Encoding(#[from] EncodeError),
    /// An ordered consumer asked for an external call: a defect of the reaction.
    #[error("an ordered consumer records data effects only, but asked for a call ({0})")]
    CallInOrder(&'static str),
}

/// A consumer's decision on an event: nothing, a data effect, or an external call.
///
/// `react` may read through the ports the consumer was built with, but must
/// not change anything outside: whatever it changes must be the
/// [`ExternalCall`] it returns, which runs under the inbox's claim.
#[async_trait]
pub trait Reaction: Send + Sync {
    /// The consumer's stable name; the inbox key's first half. Never rename one.
    /// Lowercase letters, digits and dashes, e.g. `order-tracking`.
    fn name(&self) -> &'static str;

    /// One line on what the consumer does, e.g. for its function's description.
    fn description(&self) -> &'static str;

    /// The events routed to this consumer.
    fn subscription(&self) -> Subscription;

    /// The outside systems its calls reach, for its deployment's grants.
    fn calls(&self) -> &'static [OutsidePort] {
        &[]
    }

    /// What `event` calls for; [`Reacted::Ignored`] if this consumer ignores it.
    ///
    /// # Errors
    /// [`ReactionError`] when the event's payload does not decode or the effect
    /// does not encode.
    async fn react(&self, event: &EventEnvelope) -> Result<Reacted, ReactionError>;
}

/// What a delivery carries.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every value is the event variant; boxing it would only add an allocation"
)]
pub enum DeliveryContent {
    /// An outbox event.
    Event(EventEnvelope),
    /// A message that is not an outbox event.
    Unreadable {
        /// Why it could not be read.
        reason: String,
        /// The message as received.
        raw: String,
    },
}

/// One delivery of a message to a consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The queue's id of the message.
    pub message_id: String,
    /// How many times the message was received, this time included.
    pub receive_count: u32,
    /// When the message was first received, if the queue says.
    pub first_received_at: Option<OffsetDateTime>,
    /// What it carries.
    pub content: DeliveryContent,
}

/// What consuming one delivery did; the delivery is acknowledged in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumed {
    /// The effect was recorded now.
    Applied,
    /// The external call succeeded and its completed mark was written now.
    Called,
    /// The event is of no interest to this consumer; it is marked handled.
    Ignored,
    /// A repeated delivery: the effect was recorded before, nothing was written.
    Duplicate,
    /// The delivery can never be consumed; it was dead-lettered with its reason.
    DeadLettered,
    /// An ordered consumer parked the event's aggregate now: the event waited
    /// past the bound for a missing version and heads the parked list.
    Parked,
    /// An ordered consumer added the event to its parked aggregate's list.
    Held,
    /// The event was the version its parked aggregate missed: applied, then
    /// the `released` events held behind it applied in order, and the
    /// aggregate unparked.
    Released {
        /// Held events applied after it.
        released: usize,
    },
}

/// Why a delivery must be delivered again; nothing was acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The inbox failed.
    #[error(transparent)]
    Inbox(#[from] InboxError),
    /// The delivery could not be consumed and the dead-letter queue refused it.
    #[error(transparent)]
    DeadLetters(#[from] DeadLetterError),
    /// An ordered consumer waits for an earlier version of the aggregate first.
    #[error("{aggregate} version {got} waits for version {missing}")]
    OutOfOrder {
        /// The aggregate.
        aggregate: AggregateRef,
        /// The version the consumer waits for.
        missing: Version,
        /// The version delivered.
        got: Version,
    },
    /// A held event of a parked aggregate no longer reacts (the reaction
    /// changed since it was held); the aggregate stays parked at it.
    #[error("the held event {version} of {aggregate}: {source}")]
    HeldEvent {
        /// The aggregate.
        aggregate: AggregateRef,
        /// The held event's version.
        version: Version,
        /// Why it does not react.
        #[source]
        source: ReactionError,
    },
    /// Other deliveries of the aggregate kept changing its position.
    #[error("{0} is contended: its position changed {CONFLICT_RETRIES} times in a row")]
    Contended(AggregateRef),
    /// Another delivery holds a live claim on the event: it is calling now.
    #[error("event {event_id} is being handled by another delivery until {until}")]
    InProgress {
        /// The event.
        event_id: EventId,
        /// When that delivery's claim expires.
        until: OffsetDateTime,
    },
    /// The external call failed and may succeed later; the claim was released.
    #[error("the {kind} call failed: {reason}")]
    Call {
        /// What was called.
        kind: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// The call succeeded but its claim expired and was taken over before the
    /// completed mark was written; the next delivery finds out which holder completed it.
    #[error("the claim on event {0} expired before its call completed")]
    ClaimLost(EventId),
}

/// What releasing a parked aggregate did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    /// Held events applied, in version order.
    pub applied: usize,
    /// Where the consumer stands now; `parking` is set if it waits still.
    pub sequence: Sequence,
}

/// Why an operator's unpark did nothing.
#[derive(Debug, thiserror::Error)]
pub enum UnparkError {
    /// The aggregate is not parked by this consumer.
    #[error("{consumer} has not parked {aggregate}")]
    NotParked {
        /// The consumer.
        consumer: String,
        /// The aggregate.
        aggregate: AggregateRef,
    },
    /// A skip was asked for a version that is in the parked list.
    #[error("version {0} is in the parked list: unpark without a skip applies it")]
    MissingIsHeld(Version),
    /// A held event could not be applied or the inbox failed.
    #[error(transparent)]
    Consume(#[from] ConsumeError),
}

/// The consume use case for one consumer.
#[derive(Clone)]
pub struct ConsumeService {
    inbox: Arc<dyn Inbox>,
    reaction: Arc<dyn Reaction>,
    dead_letters: Arc<dyn DeadLetterQueue>,
    clock: Arc<dyn Clock>,
    parking: ParkingPolicy,
    lease: Duration,
}

impl ConsumeService {
    /// Wires a reaction to an inbox and a dead-letter queue.
    pub fn new(
        inbox: Arc<dyn Inbox>,
        reaction: Arc<dyn Reaction>,
        dead_letters: Arc<dyn DeadLetterQueue>,
    ) -> Self {
        Self {
            inbox,
            reaction,
            dead_letters,
            clock: Arc::new(SystemClock),
            parking: ParkingPolicy::default(),
            lease: DEFAULT_CLAIM_LEASE,
        }
    }

    /// The same service claiming events for `lease` before an external call.
    /// A call must end inside its lease (Lambda's timeout, an SDK's operation
    /// timeout), or a second delivery may call while the first still does.
    #[must_use]
    pub fn with_claim_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The same service parking aggregates by `policy`.
    #[must_use]
    pub fn with_parking(mut self, policy: ParkingPolicy) -> Self {
        self.parking = policy;
        self
    }

    /// The same service telling the time by `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The consumer's name.
    pub fn name(&self) -> &'static str {
        self.reaction.name()
    }

    /// How many aggregates this consumer holds parked now.
    ///
    /// # Errors
    /// [`InboxError::Unavailable`].
    pub async fn parked_count(&self) -> Result<u64, InboxError> {
        self.inbox.parked_count(self.reaction.name()).await
    }

    /// The events routed to this consumer.
    pub fn subscription(&self) -> Subscription {
        self.reaction.subscription()
    }

    /// Consumes one delivery: applies its effect once, or dead-letters it.
    ///
    /// # Errors
    /// [`ConsumeError`] when the delivery must come again.
    pub async fn consume(&self, delivery: Delivery) -> Result<Consumed, ConsumeError> {
        let event = match delivery.content {
            DeliveryContent::Event(event) => event,
            DeliveryContent::Unreadable { reason, raw } => {
                let payload = DeadLetterPayload::Raw { raw };
                return self
                    .dead_letter(
                        &delivery.message_id,
                        delivery.receive_count,
                        reason,
                        payload,
                    )
                    .await;
            }
        };
        let consumer = self.reaction.name();
        let ordered = self.reaction.subscription().is_ordered();
        if !ordered && self.inbox.processed(consumer, event.event_id).await? {
            return self.duplicate(&event).await;
        }
        let reacted = match self.reaction.react(&event).await {
            Ok(Reacted::Call(call)) if ordered => Err(ReactionError::CallInOrder(call.kind())),
            reacted => reacted,
        };
        let effect = match reacted {
            Ok(Reacted::Ignored) => None,
            Ok(Reacted::Record(effect)) => Some(effect),
            Ok(Reacted::Call(call)) => {
                return self
                    .call_out(
                        &delivery.message_id,
                        delivery.receive_count,
                        event,
                        call.as_ref(),
                    )
                    .await
            }
            Err(error) => {
                let reason = format!("{consumer}: {error}");
                let payload = DeadLetterPayload::Event { envelope: event };
                return self
                    .dead_letter(
                        &delivery.message_id,
                        delivery.receive_count,
                        reason,
                        payload,
                    )
                    .await;
            }
        };
        if ordered {
            let waited = Waited {
                attempts: delivery.receive_count,
                since_first_delivery: delivery
                    .first_received_at
                    .and_then(|first| (self.clock.now() - first).try_into().ok()),
            };
            return self.consume_in_order(event, effect, waited).await;
        }
        let ignored = effect.is_none();
        match self
            .inbox
            .apply_once(consumer, event.event_id, effect)
            .await?
        {
            InboxOutcome::AlreadyProcessed => self.duplicate(&event).await,
            InboxOutcome::Applied if ignored => Ok(Consumed::Ignored),
            InboxOutcome::Applied => {
                applied(consumer, &event);
                Ok(Consumed::Applied)
            }
        }
    }

    /// Applies `event` in its aggregate's version order, holds it behind a
    /// parked aggregate, or hands it back while a gap is open.
    async fn consume_in_order(
        &self,
        event: EventEnvelope,
        effect: Option<Effect>,
        waited: Waited,
    ) -> Result<Consumed, ConsumeError> {
        let consumer = self.reaction.name();
        let aggregate = event.aggregate();
        let version = event.aggregate_version;
        for _ in 0..CONFLICT_RETRIES {
            let sequence = self.inbox.sequence(consumer, &aggregate).await?;
            let (write, outcome) = match step(&sequence, version, waited, self.parking) {
                Step::Duplicate => return self.duplicate(&event).await,
                Step::Defer => {
                    return Err(ConsumeError::OutOfOrder {
                        aggregate,
                        missing: sequence.missing(),
                        got: version,
                    })
                }
                Step::Apply => {
                    let ignored = effect.is_none();
                    let write = SequenceWrite {
                        effect: effect.clone(),
                        ..SequenceWrite::to(sequence.then(|next| next.applied = version))
                    };
                    let outcome = if ignored {
                        Consumed::Ignored
                    } else {
                        Consumed::Applied
                    };
                    (write, outcome)
                }
                Step::Hold => (hold(&sequence, &event, None), Consumed::Held),
                Step::Park { reason } => {
                    warn!(consumer, %aggregate, missing = %sequence.missing(), %reason, "parking an aggregate");
                    let parking = Parking {
                        reason,
                        since: self.clock.now(),
                    };
                    (hold(&sequence, &event, Some(parking)), Consumed::Parked)
                }
            };
            match self
                .inbox
                .write_sequence(consumer, &aggregate, sequence.revision, write)
                .await?
            {
                SequenceOutcome::Conflict => continue,
                SequenceOutcome::AlreadyHeld => return self.duplicate(&event).await,
                SequenceOutcome::Written => {
                    if outcome == Consumed::Applied {
                        applied(consumer, &event);
                    }
                    if matches!(outcome, Consumed::Held | Consumed::Parked) {
                        let released = self.release(&aggregate).await?;
                        if released.sequence.parking.is_none() {
                            // The event itself was written to the list
                            // first: it is among those the release applied.
                            return Ok(Consumed::Released {
                                released: released.applied.saturating_sub(1),
                            });
                        }
                    }
                    return Ok(outcome);
                }
            }
        }
        Err(ConsumeError::Contended(aggregate))
    }

    /// Applies the parked list of `aggregate` in version order while its next
    /// version is there, and unparks the aggregate when the list is empty.
    ///
    /// # Errors
    /// [`ConsumeError`] when the inbox fails or a held event no longer reacts;
    /// what was applied stays applied.
    pub async fn release(&self, aggregate: &AggregateRef) -> Result<Released, ConsumeError> {
        let consumer = self.reaction.name();
        let mut applied = 0;
        let mut conflicts = 0;
        loop {
            let sequence = self.inbox.sequence(consumer, aggregate).await?;
            if sequence.parking.is_none() || conflicts == CONFLICT_RETRIES {
                return Ok(Released { applied, sequence });
            }
            let next = sequence.missing();
            let write = match self.inbox.held(consumer, aggregate, next).await? {
                Some(event) => {
                    let held_event = |source| ConsumeError::HeldEvent {
                        aggregate: aggregate.clone(),
                        version: next,
                        source,
                    };
                    let effect = match self.reaction.react(&event).await.map_err(held_event)? {
                        Reacted::Ignored => None,
                        Reacted::Record(effect) => Some(effect),
                        Reacted::Call(call) => {
                            return Err(held_event(ReactionError::CallInOrder(call.kind())))
                        }
                    };
                    SequenceWrite {
                        effect,
                        release: Some(next),
                        ..SequenceWrite::to(sequence.then(|after| {
                            after.applied = next;
                            after.held -= 1;
                        }))
                    }
                }
                None if sequence.held == 0 => {
                    SequenceWrite::to(sequence.then(|after| after.parking = None))
                }
                None => return Ok(Released { applied, sequence }),
            };
            let applying = write.release.is_some();
            match self
                .inbox
                .write_sequence(consumer, aggregate, sequence.revision, write)
                .await?
            {
                SequenceOutcome::Written if applying => {
                    info!(consumer, %aggregate, version = %next, "held event applied");
                    applied += 1;
                    conflicts = 0;
                }
                SequenceOutcome::Written => {
                    info!(consumer, %aggregate, "aggregate unparked");
                }
                SequenceOutcome::Conflict | SequenceOutcome::AlreadyHeld => conflicts += 1,
            }
        }
    }

    /// An operator's unpark of `aggregate`: skips its missing version if
    /// `skip` names who and why (recorded), then applies the parked list in order.
    ///
    /// # Errors
    /// [`UnparkError`]; nothing is skipped unless the skip was written.
    pub async fn unpark(
        &self,
        aggregate: &AggregateRef,
        skip: Option<(String, String)>,
    ) -> Result<Released, UnparkError> {
        let consumer = self.reaction.name();
        let not_parked = || UnparkError::NotParked {
            consumer: consumer.to_owned(),
            aggregate: aggregate.clone(),
        };
        let sequence = self
            .inbox
            .sequence(consumer, aggregate)
            .await
            .map_err(ConsumeError::from)?;
        if sequence.parking.is_none() {
            return Err(not_parked());
        }
        if let Some((by, why)) = skip {
            let missing = sequence.missing();
            let held = self
                .inbox
                .held(consumer, aggregate, missing)
                .await
                .map_err(ConsumeError::from)?;
            if held.is_some() {
                return Err(UnparkError::MissingIsHeld(missing));
            }
            let write = SequenceWrite {
                skip: Some(Skip {
                    version: missing,
                    by: by.clone(),
                    why: why.clone(),
                    at: self.clock.now(),
                }),
                ..SequenceWrite::to(sequence.then(|next| next.applied = missing))
            };
            match self
                .inbox
                .write_sequence(consumer, aggregate, sequence.revision, write)
                .await
                .map_err(ConsumeError::from)?
            {
                SequenceOutcome::Written => {
                    warn!(consumer, %aggregate, version = %missing, by, why, "missing version skipped");
                }
                SequenceOutcome::Conflict | SequenceOutcome::AlreadyHeld => {
                    return Err(ConsumeError::Contended(aggregate.clone()).into())
                }
            }
        }
        Ok(self.release(aggregate).await?)
    }

    /// Puts a batch in the order this consumer wants it: an ordered consumer's
    /// events by aggregate and version (a batch off a standard queue may hold
    /// an aggregate's versions reversed; applying them in order spares a
    /// redelivery), an unordered consumer's as they came.
    pub fn order_batch(&self, deliveries: &mut [Delivery]) {
        if self.reaction.subscription().is_ordered() {
            deliveries.sort_by_key(|delivery| match &delivery.content {
                DeliveryContent::Event(event) => Some((event.aggregate(), event.aggregate_version)),
                DeliveryContent::Unreadable { .. } => None,
            });
        }
    }

    /// Makes `call` for `event` under a claim: claim, call, then the completed
    /// mark (with the call's record) while the claim is still this delivery's.
    async fn call_out(
        &self,
        message_id: &str,
        attempts: u32,
        event: EventEnvelope,
        call: &dyn ExternalCall,
    ) -> Result<Consumed, ConsumeError> {
        let consumer = self.reaction.name();
        let event_id = event.event_id;
        let at = self.clock.now();
        let claim = Claim {
            token: Uuid::now_v7().to_string(),
            at,
            until: at + self.lease,
        };
        match self.inbox.claim(consumer, event_id, &claim).await? {
            ClaimOutcome::Completed => return self.duplicate(&event).await,
            ClaimOutcome::Held { until } => {
                debug!(consumer, %event_id, %until, "another delivery holds the claim");
                return Err(ConsumeError::InProgress { event_id, until });
            }
            ClaimOutcome::Claimed { took_over: true } => {
                warn!(consumer, %event_id, "an expired claim was taken over: its holder died or overran");
            }
            ClaimOutcome::Claimed { took_over: false } => {}
        }
        let key = CallKey::new(consumer, event_id);
        let kind = call.kind();
        match call.call(&key).await {
            Ok(called) => {
                let completion = Completion {
                    kind: kind.to_owned(),
                    digest: sha256_hex(called.receipt.to_string().as_bytes()),
                    record: called.record,
                };
                match self
                    .inbox
                    .complete(consumer, event_id, &claim.token, completion)
                    .await?
                {
                    CompleteOutcome::Completed => {
                        info!(consumer, %event_id, event_type = event.event_type, kind, "external call completed");
                        Ok(Consumed::Called)
                    }
                    CompleteOutcome::Lost => {
                        warn!(consumer, %event_id, kind, "the call completed after its claim expired");
                        Err(ConsumeError::ClaimLost(event_id))
                    }
                }
            }
            Err(CallError::Retryable(reason)) => {
                warn!(consumer, %event_id, kind, %reason, "the call failed; the claim is released");
                self.inbox.release(consumer, event_id, &claim.token).await?;
                Err(ConsumeError::Call { kind, reason })
            }
            Err(CallError::Permanent(reason)) => {
                self.inbox.release(consumer, event_id, &claim.token).await?;
                let reason = format!("{consumer}: the {kind} call was refused: {reason}");
                let payload = DeadLetterPayload::Event { envelope: event };
                self.dead_letter(message_id, attempts, reason, payload)
                    .await
            }
        }
    }

    /// Counts a recognised redelivery; a failure only costs the count.
    async fn duplicate(&self, event: &EventEnvelope) -> Result<Consumed, ConsumeError> {
        let consumer = self.reaction.name();
        debug!(consumer, event_id = %event.event_id, "duplicate delivery");
        if let Err(error) = self.inbox.count_duplicate(consumer).await {
            warn!(consumer, %error, "the duplicate was not counted");
        }
        Ok(Consumed::Duplicate)
    }

    async fn dead_letter(
        &self,
        message_id: &str,
        attempts: u32,
        reason: String,
        payload: DeadLetterPayload,
    ) -> Result<Consumed, ConsumeError> {
        warn!(consumer = self.name(), message_id, %reason, "dead-lettering a delivery");
        let letter = DeadLetter::new(
            LetterSource::QueueMessage {
                consumer: self.name().to_owned(),
                message_id: message_id.to_owned(),
            },
            reason,
            attempts,
            payload,
            RecordIdentity::default(),
        );
        self.dead_letters.send(letter).await?;
        Ok(Consumed::DeadLettered)
    }
}

/// The write adding `event` to the parked list, parking the aggregate if `parking`.
fn hold(sequence: &Sequence, event: &EventEnvelope, parking: Option<Parking>) -> SequenceWrite {
    SequenceWrite {
        hold: Some(event.clone()),
        ..SequenceWrite::to(sequence.then(|next| {
            next.held += 1;
            if parking.is_some() {
                next.parking = parking;
            }
        }))
    }
}

/// Logs an applied effect.
fn applied(consumer: &str, event: &EventEnvelope) {
    info!(consumer, event_id = %event.event_id, event_type = event.event_type, "effect applied");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::EventContext;
    use crate::external::Called;
    use crate::ids::AggregateId;
    use crate::ports::dead_letter::MockDeadLetterQueue;
    use crate::ports::inbox::MockInbox;
    use crate::ports::Effect;
    use crate::trace::Traceparent;
    use outbox_domain::{Aggregate, Money, Text, Version};
    use outbox_seeds_domain::repair::{Repair, RepairEvent};
    use time::OffsetDateTime;
    use uuid::Uuid;

    /// Bills a completed repair: the consumer under test.
    struct Invoicing;

    #[async_trait]
    impl Reaction for Invoicing {
        fn name(&self) -> &'static str {
            "invoicing"
        }

        fn description(&self) -> &'static str {
            "Bills completed repairs."
        }

        fn subscription(&self) -> Subscription {
            Subscription {
                aggregate_type: Repair::TYPE,
                event_types: &[RepairEvent::REPAIR_COMPLETED],
                ordered: None,
            }
        }

        async fn react(&self, event: &EventEnvelope) -> Result<Reacted, ReactionError> {
            let RepairEvent::RepairCompleted { total_cents, .. } = event.decode::<Repair>()? else {
                return Ok(Reacted::Ignored);
            };
            let bill = serde_json::json!({ "amountCents": total_cents.cents() });
            Ok(Reacted::Record(Effect::of("Invoice", event, &bill)?))
        }
    }

    /// Mails a completed repair's customer: the calling consumer under test.
    struct Mailing {
        answer: Result<Called, CallError>,
        calls: Arc<std::sync::Mutex<Vec<String>>>,
    }

    struct Send {
        answer: Result<Called, CallError>,
        calls: Arc<std::sync::Mutex<Vec<String>>>,
    }

    #[async_trait]
    impl ExternalCall for Send {
        fn kind(&self) -> &'static str {
            "Email"
        }

        async fn call(&self, key: &CallKey) -> Result<Called, CallError> {
            self.calls.lock().unwrap().push(key.to_string());
            self.answer.clone()
        }
    }

    #[async_trait]
    impl Reaction for Mailing {
        fn name(&self) -> &'static str {
            "mailing"
        }

        fn description(&self) -> &'static str {
            "Mails completed repairs."
        }

        fn subscription(&self) -> Subscription {
            Subscription::of::<Repair>(&[RepairEvent::REPAIR_COMPLETED])
        }

        async fn react(&self, _: &EventEnvelope) -> Result<Reacted, ReactionError> {
            Ok(Reacted::Call(Box::new(Send {
                answer: self.answer.clone(),
                calls: Arc::clone(&self.calls),
            })))
        }
    }

    fn mailing(
        inbox: MockInbox,
        dead_letters: MockDeadLetterQueue,
        answer: Result<Called, CallError>,
    ) -> (ConsumeService, Arc<std::sync::Mutex<Vec<String>>>) {
        let calls = Arc::default();
        let reaction = Mailing {
            answer,
            calls: Arc::clone(&calls),
        };
        let service =
            ConsumeService::new(Arc::new(inbox), Arc::new(reaction), Arc::new(dead_letters));
        (service, calls)
    }

    fn sent() -> Called {
        Called {
            receipt: serde_json::json!({"messageId": "m-9"}),
            record: None,
        }
    }

    fn claiming(outcome: ClaimOutcome) -> MockInbox {
        let mut inbox = MockInbox::new();
        inbox.expect_processed().returning(|_, _| Ok(false));
        inbox
            .expect_claim()
            .withf(|consumer, _, claim| {
                consumer == "mailing" && claim.until - claim.at == DEFAULT_CLAIM_LEASE
            })
            .times(1)
            .returning(move |_, _, _| Ok(outcome));
        inbox
    }

    #[tokio::test]
    async fn a_call_is_made_under_a_claim_with_the_event_key_and_completed_with_its_digest() {
        let event = completed();
        let event_id = event.event_id;
        let mut inbox = claiming(ClaimOutcome::Claimed { took_over: false });
        inbox
            .expect_complete()
            .withf(|_, _, token, completion| {
                !token.is_empty()
                    && completion.kind == "Email"
                    && completion.digest == sha256_hex(br#"{"messageId":"m-9"}"#)
            })
            .times(1)
            .returning(|_, _, _, _| Ok(CompleteOutcome::Completed));
        inbox.expect_apply_once().never();
        let (service, calls) = mailing(inbox, no_letters(), Ok(sent()));
        assert_eq!(
            service.consume(delivery(event)).await.unwrap(),
            Consumed::Called
        );
        assert_eq!(*calls.lock().unwrap(), [format!("mailing/{event_id}")]);
    }

    #[tokio::test]
    async fn a_live_claim_hands_the_delivery_back_and_a_completed_one_is_a_duplicate() {
        let until = OffsetDateTime::UNIX_EPOCH;
        let (service, calls) = mailing(
            claiming(ClaimOutcome::Held { until }),
            no_letters(),
            Ok(sent()),
        );
        assert!(matches!(
            service.consume(delivery(completed())).await,
            Err(ConsumeError::InProgress { until: u, .. }) if u == until
        ));
        let mut inbox = claiming(ClaimOutcome::Completed);
        inbox
            .expect_count_duplicate()
            .times(1)
            .returning(|_| Ok(()));
        let (again, _) = mailing(inbox, no_letters(), Ok(sent()));
        assert_eq!(
            again.consume(delivery(completed())).await.unwrap(),
            Consumed::Duplicate
        );
        assert!(calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_retryable_failure_releases_the_claim_and_a_permanent_one_dead_letters_too() {
        let mut inbox = claiming(ClaimOutcome::Claimed { took_over: true });
        inbox.expect_release().times(1).returning(|_, _, _| Ok(()));
        inbox.expect_complete().never();
        let (service, _) = mailing(
            inbox,
            no_letters(),
            Err(CallError::Retryable("throttled".into())),
        );
        assert!(matches!(
            service.consume(delivery(completed())).await,
            Err(ConsumeError::Call { kind: "Email", .. })
        ));

        let mut inbox = claiming(ClaimOutcome::Claimed { took_over: false });
        inbox.expect_release().times(1).returning(|_, _, _| Ok(()));
        inbox.expect_complete().never();
        let mut dead_letters = MockDeadLetterQueue::new();
        dead_letters
            .expect_send()
            .withf(|letter| letter.reason == "mailing: the Email call was refused: address refused")
            .times(1)
            .returning(|_| Ok(()));
        let (service, _) = mailing(
            inbox,
            dead_letters,
            Err(CallError::Permanent("address refused".into())),
        );
        assert_eq!(
            service.consume(delivery(completed())).await.unwrap(),
            Consumed::DeadLettered
        );
    }

    #[tokio::test]
    async fn a_claim_lost_before_the_mark_hands_the_delivery_back() {
        let mut inbox = claiming(ClaimOutcome::Claimed { took_over: false });
        inbox
            .expect_complete()
            .times(1)
            .returning(|_, _, _, _| Ok(CompleteOutcome::Lost));
        let (service, calls) = mailing(inbox, no_letters(), Ok(sent()));
        assert!(matches!(
            service.consume(delivery(completed())).await,
            Err(ConsumeError::ClaimLost(_))
        ));
        assert_eq!(calls.lock().unwrap().len(), 1);
    }

    fn completed() -> EventEnvelope {
        let context = EventContext {
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            correlation_id: "c".into(),
            causation_id: "r".into(),
            traceparent: Traceparent::root(Uuid::from_u128(1), Uuid::from_u128(2)),
        };
        let event = RepairEvent::RepairCompleted {
            vehicle: Text::parse("v", "car").unwrap(),
            customer: Text::parse("c", "Ada").unwrap(),
            customer_email: outbox_domain::EmailAddress::parse("e", "ada@example.com").unwrap(),
            total_cents: Money::from_cents(700).unwrap(),
        };
        EventEnvelope::wrap::<Repair>(
            AggregateId::from_uuid(Uuid::from_u128(3)),
            Version::new(3),
            &event,
            &context,
        )
        .unwrap()
    }

    fn delivery(event: EventEnvelope) -> Delivery {
        Delivery {
            message_id: "m-1".into(),
            receive_count: 2,
            first_received_at: None,
            content: DeliveryContent::Event(event),
        }
    }

    fn service(inbox: MockInbox, dead_letters: MockDeadLetterQueue) -> ConsumeService {
        ConsumeService::new(Arc::new(inbox), Arc::new(Invoicing), Arc::new(dead_letters))
    }

    fn no_letters() -> MockDeadLetterQueue {
        let mut dead_letters = MockDeadLetterQueue::new();
        dead_letters.expect_send().never();
        dead_letters
    }

    #[tokio::test]
    async fn a_repeated_delivery_is_recognised_before_reacting() {
        let mut inbox = MockInbox::new();
        inbox.expect_processed().returning(|_, _| Ok(true));
        inbox
            .expect_count_duplicate()
            .times(1)
            .returning(|_| Ok(()));
        inbox.expect_apply_once().never();
        assert_eq!(
            service(inbox, no_letters())
                .consume(delivery(completed()))
                .await
                .unwrap(),
            Consumed::Duplicate
        );
    }

    #[tokio::test]
    async fn the_effect_is_written_with_the_mark() {
        let event = completed();
        let event_id = event.event_id;
        let mut inbox = MockInbox::new();
        inbox.expect_processed().returning(|_, _| Ok(false));
        inbox
            .expect_apply_once()
            .withf(move |consumer, id, effect| {
                consumer == "invoicing"
                    && *id == event_id
                    && effect
                        .as_ref()
                        .is_some_and(|e| e.data["amountCents"] == 700)
            })
            .times(1)
            .returning(|_, _, _| Ok(InboxOutcome::Applied));
        assert_eq!(
            service(inbox, no_letters())
                .consume(delivery(event))
                .await
                .unwrap(),
            Consumed::Applied
        );
    }

    #[tokio::test]
    async fn an_undecodable_event_is_dead_lettered_and_writes_nothing() {
        let mut event = completed();
        event.data = serde_json::json!({"totalCents": -5});
        let event_id = event.event_id;
        let mut inbox = MockInbox::new();
        inbox.expect_processed().returning(|_, _| Ok(false));
        inbox.expect_apply_once().never();
        let mut dead_letters = MockDeadLetterQueue::new();
        dead_letters
            .expect_send()
            .withf(move |letter| {
                letter.attempts == 2
                    && letter.reason.starts_with("invoicing: ")
                    && letter.source
                        == LetterSource::QueueMessage {
                            consumer: "invoicing".into(),
                            message_id: "m-1".into(),
                        }
                    && matches!(&letter.payload, DeadLetterPayload::Event { envelope } if envelope.event_id == event_id)
            })
            .times(1)
            .returning(|_| Ok(()));
        assert_eq!(
            service(inbox, dead_letters)
                .consume(delivery(event))
                .await
                .unwrap(),
            Consumed::DeadLettered
        );
    }

    #[tokio::test]
    async fn an_event_whose_data_breaks_a_domain_rule_is_dead_lettered_not_applied() {
        let mut event = completed();
        event.data["customer"] = serde_json::json!("   ");
        let mut inbox = MockInbox::new();
        inbox.expect_processed().returning(|_, _| Ok(false));
        inbox.expect_apply_once().never();
        let mut dead_letters = MockDeadLetterQueue::new();
        dead_letters
            .expect_send()
            .withf(|letter| letter.reason.contains("must not be empty"))
            .times(1)
            .returning(|_| Ok(()));
        assert_eq!(
            service(inbox, dead_letters)
                .consume(delivery(event))
                .await
                .unwrap(),
            Consumed::DeadLettered
        );
    }

    #[tokio::test]
    async fn an_unreadable_message_is_dead_lettered_raw_or_redelivered_when_the_queue_refuses() {
        let unreadable = || Delivery {
            message_id: "m-2".into(),
            receive_count: 1,
            first_received_at: None,
            content: DeliveryContent::Unreadable {
                reason: "not JSON".into(),
                raw: "{".into(),
            },
        };
        let mut inbox = MockInbox::new();
        inbox.expect_processed().never();
        let mut dead_letters = MockDeadLetterQueue::new();
        dead_letters
            .expect_send()
            .withf(|letter| {
                letter.reason == "not JSON"
                    && letter.payload == DeadLetterPayload::Raw { raw: "{".into() }
            })
            .times(1)
            .returning(|_| Ok(()));
        dead_letters
            .expect_send()
            .returning(|_| Err(DeadLetterError("down".into())));
        let service = service(inbox, dead_letters);
        assert_eq!(
            service.consume(unreadable()).await.unwrap(),
            Consumed::DeadLettered
        );
        assert!(matches!(
            service.consume(unreadable()).await,
            Err(ConsumeError::DeadLetters(_))
        ));
    }

    #[tokio::test]
    async fn an_inbox_outage_is_retryable() {
        let mut inbox = MockInbox::new();
        inbox.expect_processed().returning(|_, _| Ok(false));
        inbox
            .expect_apply_once()
            .returning(|_, _, _| Err(InboxError::Unavailable("down".into())));
        assert!(matches!(
            service(inbox, no_letters())
                .consume(delivery(completed()))
                .await,
            Err(ConsumeError::Inbox(_))
        ));
    }
}
