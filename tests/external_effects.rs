//! The car workshop's external effects on real SDKs, against moto
//! (`MOTO_ENDPOINT`, started by `scripts/test.sh`; a missing server fails the
//! test): invoicing writes the invoice document into S3 and records it,
//! customer notification emails the customer through SES v2, each under the
//! inbox's claim on moto's DynamoDB. moto stores the objects and, read back
//! from `GET /_outbox/ses/sent`, counts the sends.
//!
//! What they prove: one invoice object and one email per completed repair
//! however often the event arrives; eight concurrent deliveries of one event
//! make one call; a consumer killed between its call and its mark calls at
//! most once more, with the same idempotency key, once its claim expired; a
//! permanent failure (a bucket that does not exist, a sender SES does not know)
//! dead-letters the event with its reason and blocks nothing else.

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use outbox_application::ports::{Clock, DeadLetterPayload, DocumentStore, Mailer};
use outbox_application::{
    AggregateId, CallKey, ConsumeError, ConsumeService, Consumed, EventContext, EventEnvelope,
    Traceparent,
};
use outbox_domain::{Money, Version};
use outbox_memory::MemoryDeadLetterQueue;
use outbox_s3::S3DocumentStore;
use outbox_seeds::reactions::{CustomerNotification, Invoicing};
use outbox_seeds_domain::repair::{Repair, RepairEvent};
use outbox_ses::SesMailer;
use outbox_simulation::faults::{FaultyInbox, InboxFault};
use outbox_tests::backends::{Backend, BackendInbox};
use outbox_tests::{delivery, email_of, moto, text};

/// A clock the test moves by hand.
#[derive(Debug)]
struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(OffsetDateTime::now_utc())))
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// The stack of one test: the inbox on moto's DynamoDB, a bucket, a verified sender.
struct Workshop {
    _backend: Backend,
    inbox: BackendInbox,
    s3: aws_sdk_s3::Client,
    bucket: String,
    documents: Arc<dyn DocumentStore>,
    mailer: Arc<dyn Mailer>,
    letters: MemoryDeadLetterQueue,
}

impl Workshop {
    async fn new() -> Self {
        let backend = Backend::moto().await;
        let inbox = backend.inbox();
        let s3 = moto::s3_client();
        let bucket = moto::unique("invoices");
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let ses = moto::ses_client();
        let sender = email_of(&moto::unique("workshop"));
        ses.create_email_identity()
            .email_identity(sender.as_str())
            .send()
            .await
            .unwrap();
        Self {
            _backend: backend,
            inbox,
            documents: Arc::new(S3DocumentStore::new(s3.clone(), bucket.clone())),
            s3,
            bucket,
            mailer: Arc::new(SesMailer::new(ses, sender)),
            letters: MemoryDeadLetterQueue::new(),
        }
    }

    fn invoicing(&self) -> ConsumeService {
        ConsumeService::new(
            self.inbox.port(),
            Arc::new(Invoicing::new(Arc::clone(&self.documents))),
            Arc::new(self.letters.clone()),
        )
    }

    fn notification(&self) -> ConsumeService {
        ConsumeService::new(
            self.inbox.port(),
            Arc::new(CustomerNotification::new(Arc::clone(&self.mailer))),
            Arc::new(self.letters.clone()),
        )
    }

    /// The invoice objects in the bucket, by key.
    async fn invoice_keys(&self) -> Vec<String> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix("invoicing/")
            .send()
            .await
            .unwrap();
        let mut keys: Vec<String> = listed
            .contents()
            .iter()
            .filter_map(|object| object.key().map(str::to_owned))
            .collect();
        keys.sort();
        keys
    }
}

/// A completed repair of `customer`, as the command use case records it.
fn completed(customer: &str) -> EventEnvelope {
    let context = EventContext {
        occurred_at: OffsetDateTime::now_utc(),
        correlation_id: "c".into(),
        causation_id: "r".into(),
        traceparent: Traceparent::root(uuid::Uuid::now_v7(), uuid::Uuid::now_v7()),
    };
    let event = RepairEvent::RepairCompleted {
        vehicle: text("VW Golf"),
        customer: text(customer),
        customer_email: email_of(customer),
        total_cents: Money::from_cents(12_000).unwrap(),
    };
    EventEnvelope::wrap::<Repair>(
        AggregateId::from_uuid(uuid::Uuid::now_v7()),
        Version::new(4),
        &event,
        &context,
    )
    .unwrap()
}

/// The emails moto's SES sent carrying `key`.
async fn sends(key: &CallKey) -> usize {
    let key = key.to_string();
    moto::ses_sent()
        .await
        .iter()
        .filter(|sent| sent.call_key.as_deref() == Some(key.as_str()))
        .count()
}

#[tokio::test]
async fn one_invoice_object_and_one_email_per_completed_repair() {
    let workshop = Workshop::new().await;
    let events: Vec<EventEnvelope> = ["Ada", "Grace", "Linus"]
        .iter()
        .map(|customer| completed(&moto::unique(customer)))
        .collect();
    for consumer in [workshop.invoicing(), workshop.notification()] {
        for event in &events {
            let mut outcomes = Vec::new();
            for _ in 0..3 {
                outcomes.push(consumer.consume(delivery(event)).await.unwrap());
            }
            assert_eq!(
                outcomes,
                [Consumed::Called, Consumed::Duplicate, Consumed::Duplicate],
                "{}",
                consumer.name()
            );
        }
    }
    let mut expected: Vec<String> = events
        .iter()
        .map(|event| CallKey::new(Invoicing::NAME, event.event_id).document_key("json"))
        .collect();
    expected.sort();
    assert_eq!(workshop.invoice_keys().await, expected);
    let invoices = workshop.inbox.effects_of(Invoicing::NAME).await;
    assert_eq!(
        invoices.len(),
        3,
        "one invoice record per repair: {invoices:?}"
    );
    for event in &events {
        let key = CallKey::new(CustomerNotification::NAME, event.event_id);
        assert_eq!(sends(&key).await, 1, "one email for {key}");
        let object = workshop
            .s3
            .get_object()
            .bucket(&workshop.bucket)
            .key(CallKey::new(Invoicing::NAME, event.event_id).document_key("json"))
            .send()
            .await
            .unwrap();
        let body = object.body.collect().await.unwrap().into_bytes();
        let invoice: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(invoice["amountCents"], 12_000);
        assert_eq!(invoice["repairId"], event.aggregate_id.to_string());
    }
    assert!(workshop.letters.letters().is_empty());
}

#[tokio::test]
async fn eight_concurrent_deliveries_of_one_event_make_one_call() {
    let workshop = Workshop::new().await;
    let event = completed(&moto::unique("Ada"));
    let consumer = workshop.notification();
    let deliveries: Vec<_> = (0..8)
        .map(|_| {
            let consumer = consumer.clone();
            let event = event.clone();
            tokio::spawn(async move { consumer.consume(delivery(&event)).await })
        })
        .collect();
    let mut called = 0;
    for delivery in deliveries {
        match delivery.await.unwrap() {
            Ok(Consumed::Called) => called += 1,
            Ok(Consumed::Duplicate) | Err(ConsumeError::InProgress { .. }) => {}
            other => {
                panic!("a delivery neither called, nor found it done or in progress: {other:?}")
            }
        }
    }
    assert_eq!(called, 1);
    let key = CallKey::new(CustomerNotification::NAME, event.event_id);
    assert_eq!(sends(&key).await, 1, "one email");
    assert_eq!(
        consumer.consume(delivery(&event)).await.unwrap(),
        Consumed::Duplicate
    );
}

#[tokio::test]
async fn a_consumer_killed_between_its_call_and_its_mark_calls_once_more_with_the_same_key() {
    let workshop = Workshop::new().await;
    let event = completed(&moto::unique("Grace"));
    let key = CallKey::new(CustomerNotification::NAME, event.event_id);
    let clock = ManualClock::new();
    let faulty = FaultyInbox::new(workshop.inbox.port());
    let consumer = ConsumeService::new(
        Arc::new(faulty.clone()),
        Arc::new(CustomerNotification::new(Arc::clone(&workshop.mailer))),
        Arc::new(workshop.letters.clone()),
    )
    .with_clock(clock.clone());

    // The email goes out; the completed mark does not: the consumer died.
    faulty.faults().inject(InboxFault::Unavailable);
    assert!(matches!(
        consumer.consume(delivery(&event)).await,
        Err(ConsumeError::Inbox(_))
    ));
    assert_eq!(sends(&key).await, 1);

    // Redelivered while the dead holder's claim lives: handed back, no call.
    clock.advance(Duration::from_secs(30));
    assert!(matches!(
        consumer.consume(delivery(&event)).await,
        Err(ConsumeError::InProgress { .. })
    ));
    assert_eq!(sends(&key).await, 1);

    // After its expiry the claim is taken over: one more call, the same key.
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        consumer.consume(delivery(&event)).await.unwrap(),
        Consumed::Called
    );
    assert_eq!(
        sends(&key).await,
        2,
        "at most one more call, with the same key"
    );
    assert_eq!(
        consumer.consume(delivery(&event)).await.unwrap(),
        Consumed::Duplicate
    );
    assert_eq!(sends(&key).await, 2);
}

#[tokio::test]
async fn a_permanent_failure_dead_letters_the_event_with_its_reason_and_blocks_nothing_else() {
    let workshop = Workshop::new().await;
    let missing = moto::unique("no-such-bucket");
    let nowhere = ConsumeService::new(
        workshop.inbox.port(),
        Arc::new(Invoicing::new(Arc::new(S3DocumentStore::new(
            workshop.s3.clone(),
            missing.clone(),
        )))),
        Arc::new(workshop.letters.clone()),
    );
    let unknown_sender = ConsumeService::new(
        workshop.inbox.port(),
        Arc::new(CustomerNotification::new(Arc::new(SesMailer::new(
            moto::ses_client(),
            email_of(&moto::unique("stranger")),
        )))),
        Arc::new(workshop.letters.clone()),
    );
    let refused = completed(&moto::unique("Ada"));
    assert_eq!(
        nowhere.consume(delivery(&refused)).await.unwrap(),
        Consumed::DeadLettered
    );
    assert_eq!(
        unknown_sender.consume(delivery(&refused)).await.unwrap(),
        Consumed::DeadLettered
    );
    let letters = workshop.letters.letters();
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(
        letters[0]
            .reason
            .starts_with("invoicing: the InvoiceDocument call was refused")
            && letters[0].reason.contains(&missing),
        "{}",
        letters[0].reason
    );
    assert!(
        letters[1]
            .reason
            .starts_with("customer-notification: the Email call was refused"),
        "{}",
        letters[1].reason
    );
    for letter in &letters {
        assert!(matches!(
            &letter.payload,
            DeadLetterPayload::Event { envelope } if envelope.event_id == refused.event_id
        ));
    }
    assert_eq!(
        sends(&CallKey::new(CustomerNotification::NAME, refused.event_id)).await,
        0
    );

    // Nothing else waits: the next repair is invoiced and mailed; and the
    // refused event, redriven to a consumer that can write, is invoiced too
    // (its claim was released).
    let next = completed(&moto::unique("Grace"));
    assert_eq!(
        workshop.invoicing().consume(delivery(&next)).await.unwrap(),
        Consumed::Called
    );
    assert_eq!(
        workshop
            .notification()
            .consume(delivery(&next))
            .await
            .unwrap(),
        Consumed::Called
    );
    assert_eq!(
        workshop
            .invoicing()
            .consume(delivery(&refused))
            .await
            .unwrap(),
        Consumed::Called
    );
    assert_eq!(workshop.invoice_keys().await.len(), 2);
}
