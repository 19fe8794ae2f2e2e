//! The outside ports' contracts (the document store and the mailer), run on
//! the in-memory doubles and on S3 and SES against moto (`MOTO_ENDPOINT`,
//! started by `scripts/test.sh`; a missing server fails the test). moto's SES
//! sends are read back from `GET /_outbox/ses/sent`, an endpoint of
//! `scripts/moto_serial.py`.
//!
//! Each rule is one function run on every backend. Where a refusal has no
//! counterpart in memory, the backend supplies its own: SES refuses an
//! unverified sender, the memory mailer a recipient it was told to refuse,
//! and the same assertions hold of both (permanent, nothing sent). A missing
//! bucket has no counterpart in memory, so that rule runs on S3 alone.

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use outbox_application::ports::{Document, DocumentStore, Email, Mailer};
use outbox_application::{AggregateId, AggregateRef, CallError, CallKey, EventId};
use outbox_domain::{EmailAddress, Version};
use outbox_memory::{MemoryDocuments, MemoryMailer};
use outbox_s3::{S3DocumentStore, IDEMPOTENCY_KEY_METADATA};
use outbox_ses::SesMailer;
use outbox_tests::moto;

/// A call key of its own: a unique consumer, so its documents share a prefix
/// no other test writes under.
fn call_key(consumer: &str) -> CallKey {
    let aggregate = AggregateRef::new("Invoice", AggregateId::from_uuid(uuid::Uuid::now_v7()));
    CallKey::new(
        &moto::unique(consumer),
        EventId::derive(&aggregate, Version::new(1)),
    )
}

fn address(raw: &str) -> EmailAddress {
    EmailAddress::parse("test", raw).unwrap()
}

fn document(body: &str) -> Document {
    Document {
        extension: "json",
        content_type: "application/json",
        body: body.as_bytes().to_vec(),
    }
}

/// A document as a store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    body: Vec<u8>,
    content_type: String,
    call_key: Option<String>,
}

/// A document store under test, with a way to read it back.
enum Documents {
    Memory(MemoryDocuments),
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
    },
}

impl Documents {
    fn memory() -> Self {
        Self::Memory(MemoryDocuments::new())
    }

    async fn s3() -> Self {
        let client = moto::s3_client();
        let bucket = moto::unique("outside-documents");
        client
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("moto creates the bucket");
        Self::S3 { client, bucket }
    }

    fn port(&self) -> Arc<dyn DocumentStore> {
        match self {
            Self::Memory(documents) => Arc::new(documents.clone()),
            Self::S3 { client, bucket } => Arc::new(S3DocumentStore::new(client.clone(), bucket)),
        }
    }

    /// Every document held under `prefix`, by key.
    async fn under(&self, prefix: &str) -> BTreeMap<String, Held> {
        match self {
            Self::Memory(documents) => documents
                .documents()
                .into_iter()
                .filter(|(key, _)| key.starts_with(prefix))
                .map(|(key, document)| {
                    let held = Held {
                        body: document.body,
                        content_type: document.content_type.to_owned(),
                        call_key: documents.call_key(&key),
                    };
                    (key, held)
                })
                .collect(),
            Self::S3 { client, bucket } => {
                let listed = client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .send()
                    .await
                    .unwrap();
                let mut held = BTreeMap::new();
                for object in listed.contents() {
                    let key = object.key().unwrap().to_owned();
                    let got = client
                        .get_object()
                        .bucket(bucket)
                        .key(&key)
                        .send()
                        .await
                        .unwrap();
                    let content_type = got.content_type().unwrap_or_default().to_owned();
                    let call_key = got
                        .metadata()
                        .and_then(|m| m.get(IDEMPOTENCY_KEY_METADATA))
                        .cloned();
                    let body = got.body.collect().await.unwrap().into_bytes().to_vec();
                    held.insert(
                        key,
                        Held {
                            body,
                            content_type,
                            call_key,
                        },
                    );
                }
                held
            }
        }
    }
}

async fn a_document_put_twice_is_one_object_holding_the_second_body(documents: Documents) {
    let store = documents.port();
    let key = call_key("invoicing");
    let first = store.put(&key, &document(r#"{"total":1}"#)).await.unwrap();
    let second = store.put(&key, &document(r#"{"total":2}"#)).await.unwrap();

    assert_eq!(first.key, key.document_key("json"));
    assert_eq!(second.key, first.key);
    assert!(first.tag.is_some() && second.tag.is_some());
    assert_ne!(first.tag, second.tag, "each version has its own tag");
    let held = documents.under(&format!("{}/", key.consumer())).await;
    assert_eq!(
        held,
        BTreeMap::from([(
            key.document_key("json"),
            Held {
                body: br#"{"total":2}"#.to_vec(),
                content_type: "application/json".into(),
                call_key: Some(key.to_string()),
            }
        )])
    );
    if let Documents::Memory(memory) = &documents {
        assert_eq!(memory.puts().get(&key.document_key("json")), Some(&2));
    }
}

/// A mailer under test, with a way to see what it delivered.
enum Mail {
    Memory(MemoryMailer),
    Ses {
        client: aws_sdk_sesv2::Client,
        sender: EmailAddress,
    },
}

impl Mail {
    fn memory() -> Self {
        Self::Memory(MemoryMailer::new())
    }

    /// SES with a verified sender of its own.
    async fn ses() -> Self {
        let client = moto::ses_client();
        let sender = address(&format!("{}@shop.example.com", moto::unique("sender")));
        client
            .create_email_identity()
            .email_identity(sender.as_str())
            .send()
            .await
            .expect("moto creates the identity");
        Self::Ses { client, sender }
    }

    fn port(&self) -> Arc<dyn Mailer> {
        match self {
            Self::Memory(mailer) => Arc::new(mailer.clone()),
            Self::Ses { client, sender } => {
                Arc::new(SesMailer::new(client.clone(), sender.clone()))
            }
        }
    }

    /// A mailer that must refuse `email`: SES sending from an address never
    /// verified, the memory mailer told to refuse the recipient.
    fn refusing(&self, email: &Email) -> Arc<dyn Mailer> {
        match self {
            Self::Memory(mailer) => {
                mailer.refusing(email.to.clone());
                Arc::new(mailer.clone())
            }
            Self::Ses { client, .. } => {
                let unverified = address(&format!(
                    "{}@unverified.example.net",
                    moto::unique("sender")
                ));
                Arc::new(SesMailer::new(client.clone(), unverified))
            }
        }
    }

    /// What was delivered carrying `key`.
    async fn delivered(&self, key: &CallKey) -> Vec<moto::Delivered> {
        let key = key.to_string();
        match self {
            Self::Memory(mailer) => mailer
                .sent()
                .into_iter()
                .filter(|(sent_key, _)| *sent_key == key)
                .map(|(sent_key, email)| moto::Delivered {
                    recipients: vec![email.to.to_string()],
                    call_key: Some(sent_key),
                })
                .collect(),
            Self::Ses { .. } => moto::ses_sent()
                .await
                .into_iter()
                .filter(|sent| sent.call_key.as_deref() == Some(key.as_str()))
                .collect(),
        }
    }
}

fn email(subject: &str) -> Email {
    Email {
        to: address("ada@customer.example.org"),
        subject: subject.to_owned(),
        text: "Your car is ready.\nGrüße, die Werkstatt".to_owned(),
    }
}

async fn an_email_arrives_once_with_its_call_key_and_recipient(mail: Mail) {
    let key = call_key("notify");
    let sent = mail
        .port()
        .send(&key, &email("Ihr Wagen ist fertig – Grüße"))
        .await
        .unwrap();

    assert!(!sent.message_id.is_empty());
    assert_eq!(
        mail.delivered(&key).await,
        vec![moto::Delivered {
            recipients: vec!["ada@customer.example.org".into()],
            call_key: Some(key.to_string()),
        }]
    );
}

async fn a_refused_send_is_permanent_and_sends_nothing(mail: Mail) {
    let key = call_key("notify");
    let email = email("Ready");
    let refused = mail.refusing(&email).send(&key, &email).await;

    assert!(
        matches!(refused, Err(CallError::Permanent(_))),
        "{refused:?}"
    );
    assert_eq!(mail.delivered(&key).await, Vec::new());
}

async fn a_subject_with_a_line_break_is_permanent_and_sends_nothing(mail: Mail) {
    let key = call_key("notify");
    let refused = mail
        .port()
        .send(&key, &email("Ready\r\nBcc: eve@example.com"))
        .await;

    assert!(
        matches!(refused, Err(CallError::Permanent(_))),
        "{refused:?}"
    );
    assert_eq!(mail.delivered(&key).await, Vec::new());
}

mod memory {
    use super::*;

    #[tokio::test]
    async fn a_document_put_twice_is_one_object_holding_the_second_body() {
        super::a_document_put_twice_is_one_object_holding_the_second_body(Documents::memory())
            .await;
    }

    #[tokio::test]
    async fn an_email_arrives_once_with_its_call_key_and_recipient() {
        super::an_email_arrives_once_with_its_call_key_and_recipient(Mail::memory()).await;
    }

    #[tokio::test]
    async fn a_refused_recipient_is_permanent_and_sends_nothing() {
        super::a_refused_send_is_permanent_and_sends_nothing(Mail::memory()).await;
    }

    #[tokio::test]
    async fn a_subject_with_a_line_break_is_permanent_and_sends_nothing() {
        super::a_subject_with_a_line_break_is_permanent_and_sends_nothing(Mail::memory()).await;
    }
}

mod moto_aws {
    use super::*;

    #[tokio::test]
    async fn a_document_put_twice_is_one_object_holding_the_second_body() {
        super::a_document_put_twice_is_one_object_holding_the_second_body(Documents::s3().await)
            .await;
    }

    #[tokio::test]
    async fn a_missing_bucket_is_permanent() {
        let store = S3DocumentStore::new(moto::s3_client(), moto::unique("missing-bucket"));
        let refused = store.put(&call_key("invoicing"), &document("{}")).await;

        match refused {
            Err(CallError::Permanent(reason)) => {
                assert!(reason.contains(store.bucket()), "{reason} names the bucket");
                assert!(reason.contains("NoSuchBucket"), "{reason}");
            }
            other => panic!("a missing bucket is permanent, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_email_from_a_verified_sender_arrives_once_with_its_call_key_and_recipient() {
        super::an_email_arrives_once_with_its_call_key_and_recipient(Mail::ses().await).await;
    }

    #[tokio::test]
    async fn an_unverified_sender_is_permanent_and_sends_nothing() {
        super::a_refused_send_is_permanent_and_sends_nothing(Mail::ses().await).await;
    }

    #[tokio::test]
    async fn a_subject_with_a_line_break_is_permanent_and_sends_nothing() {
        super::a_subject_with_a_line_break_is_permanent_and_sends_nothing(Mail::ses().await).await;
    }
}
