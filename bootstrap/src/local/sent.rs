//! What the local service sends, as files a newcomer can open: documents under
//! `<folder>/documents/<consumer>/<event id>.<ext>` (a repeat overwrites its
//! file, as S3 overwrites its object) and each email as its own
//! `<folder>/mail/<consumer>/<event id>-<n>.eml` (a repeat is a second file,
//! as a mail service would deliver it twice). The folder sits next to the data
//! file (`outbox-local.db` → `outbox-local.sent/`); `serve` names it in its log
//! and `status` counts what is in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use outbox_application::async_trait;
use outbox_application::ports::{
    Document, DocumentStore, Email, Mailer, SentEmail, StoredDocument,
};
use outbox_application::{CallError, CallKey, OutsidePorts};
use serde::Serialize;

/// The documents and emails sent, as files under one folder.
#[derive(Debug, Clone)]
pub struct SentFolder {
    root: PathBuf,
    from: String,
}

/// What one consumer sent, as the folder shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sends {
    /// Documents written (one file per event).
    pub documents: usize,
    /// Emails sent (one file per send).
    pub emails: usize,
}

impl SentFolder {
    /// The sender of local email.
    pub const FROM: &'static str = "outbox-local@localhost";

    /// The folder beside `data`: its name with the extension `sent`.
    pub fn beside(data: &Path) -> Self {
        Self {
            root: data.with_extension("sent"),
            from: Self::FROM.to_owned(),
        }
    }

    /// Where the files are.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Ports that write into this folder.
    pub fn ports(&self) -> OutsidePorts {
        OutsidePorts {
            documents: Arc::new(self.clone()),
            mailer: Arc::new(self.clone()),
        }
    }

    /// What each consumer sent, by consumer name; an absent folder is nothing sent.
    ///
    /// # Errors
    /// The I/O error of a folder that exists but cannot be listed.
    pub fn sends(&self) -> std::io::Result<BTreeMap<String, Sends>> {
        let mut sends: BTreeMap<String, Sends> = BTreeMap::new();
        for (kind, count) in [("documents", 0), ("mail", 1)] {
            for (consumer, files) in count_files(&self.root.join(kind))? {
                let entry = sends.entry(consumer).or_default();
                if count == 0 {
                    entry.documents = files;
                } else {
                    entry.emails = files;
                }
            }
        }
        Ok(sends)
    }

    fn folder(&self, kind: &str, key: &CallKey) -> Result<PathBuf, CallError> {
        let folder = self.root.join(kind).join(key.consumer());
        std::fs::create_dir_all(&folder).map_err(|error| {
            CallError::Retryable(format!("cannot create {}: {error}", folder.display()))
        })?;
        Ok(folder)
    }
}

/// Files per consumer folder under `kind`.
fn count_files(kind: &Path) -> std::io::Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    let entries = match std::fs::read_dir(kind) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(counts),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let files = std::fs::read_dir(entry.path())?.count();
            counts.insert(entry.file_name().to_string_lossy().into_owned(), files);
        }
    }
    Ok(counts)
}

#[async_trait]
impl DocumentStore for SentFolder {
    async fn put(&self, key: &CallKey, document: &Document) -> Result<StoredDocument, CallError> {
        let stored = key.document_key(document.extension);
        self.folder("documents", key)?;
        let path = self.root.join("documents").join(&stored);
        std::fs::write(&path, &document.body).map_err(|error| {
            CallError::Retryable(format!("cannot write {}: {error}", path.display()))
        })?;
        tracing::info!(path = %path.display(), "document written");
        Ok(StoredDocument {
            key: stored,
            tag: None,
        })
    }
}

#[async_trait]
impl Mailer for SentFolder {
    async fn send(&self, key: &CallKey, email: &Email) -> Result<SentEmail, CallError> {
        if email.subject.contains(['\r', '\n']) {
            return Err(CallError::Permanent(
                "the subject contains a line break".into(),
            ));
        }
        let folder = self.folder("mail", key)?;
        let message = format!(
            "From: {}\r\nTo: {}\r\nSubject: {}\r\nX-Outbox-Call-Key: {key}\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{}\r\n",
            self.from, email.to, email.subject, email.text
        );
        for n in 1.. {
            let path = folder.join(format!("{}-{n}.eml", key.event_id()));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    std::io::Write::write_all(&mut file, message.as_bytes()).map_err(|error| {
                        CallError::Retryable(format!("cannot write {}: {error}", path.display()))
                    })?;
                    tracing::info!(path = %path.display(), to = %email.to, "email sent");
                    return Ok(SentEmail {
                        message_id: path.display().to_string(),
                    });
                }
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(error) => {
                    return Err(CallError::Retryable(format!(
                        "cannot write {}: {error}",
                        path.display()
                    )))
                }
            }
        }
        Err(CallError::Retryable("no free file name".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outbox_application::{AggregateId, AggregateRef, EventId};
    use outbox_domain::{EmailAddress, Version};

    fn key(consumer: &str) -> CallKey {
        let aggregate =
            AggregateRef::new("Repair", AggregateId::from_uuid(uuid::Uuid::from_u128(1)));
        CallKey::new(consumer, EventId::derive(&aggregate, Version::new(1)))
    }

    #[tokio::test]
    async fn a_document_is_one_file_per_event_and_each_email_a_file_of_its_own() {
        let dir = std::env::temp_dir().join(format!("sent-{}", uuid::Uuid::now_v7()));
        let folder = SentFolder::beside(&dir.join("outbox-local.db"));
        let document = Document {
            extension: "json",
            content_type: "application/json",
            body: b"{}".to_vec(),
        };
        folder.put(&key("invoicing"), &document).await.unwrap();
        folder.put(&key("invoicing"), &document).await.unwrap();
        let email = Email {
            to: EmailAddress::parse("to", "ada@example.com").unwrap(),
            subject: "Ready".into(),
            text: "Your car is ready.".into(),
        };
        folder.send(&key("notify"), &email).await.unwrap();
        folder.send(&key("notify"), &email).await.unwrap();
        let bad = Email {
            subject: "a\nBcc: x@example.com".into(),
            ..email
        };
        assert!(matches!(
            folder.send(&key("notify"), &bad).await,
            Err(CallError::Permanent(_))
        ));
        let sends = folder.sends().unwrap();
        assert_eq!(
            sends["invoicing"],
            Sends {
                documents: 1,
                emails: 0
            }
        );
        assert_eq!(
            sends["notify"],
            Sends {
                documents: 0,
                emails: 2
            }
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
