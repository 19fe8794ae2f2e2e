//! The outside ports of a Lambda consumer: S3 and SES where its deployment
//! gives it a bucket or a sender, [`NotDeployed`](outbox_application::external::NotDeployed)
//! ports otherwise (a consumer checks at init that it has every port its
//! reaction [`calls`](outbox_application::Reaction::calls)).

use std::sync::Arc;

use outbox_application::{OutsidePort, OutsidePorts};
use outbox_domain::EmailAddress;

/// The variable that gives a consumer its document bucket.
pub const DOCUMENT_BUCKET: &str = "DOCUMENT_BUCKET";
/// The variable that gives a consumer its sender address.
pub const SENDER_ADDRESS: &str = "SENDER_ADDRESS";

/// The variable that deploys `port`.
pub fn variable(port: OutsidePort) -> &'static str {
    match port {
        OutsidePort::Documents => DOCUMENT_BUCKET,
        OutsidePort::Mail => SENDER_ADDRESS,
    }
}

/// S3 under `bucket` and SES from `sender`, each where given, through `sdk`.
pub fn aws(
    sdk: &aws_config::SdkConfig,
    bucket: Option<String>,
    sender: Option<EmailAddress>,
) -> OutsidePorts {
    let fallback = OutsidePorts::not_deployed();
    OutsidePorts {
        documents: match bucket {
            Some(bucket) => Arc::new(outbox_s3::S3DocumentStore::new(
                aws_sdk_s3::Client::new(sdk),
                bucket,
            )),
            None => fallback.documents,
        },
        mailer: match sender {
            Some(sender) => Arc::new(outbox_ses::SesMailer::new(
                aws_sdk_sesv2::Client::new(sdk),
                sender,
            )),
            None => fallback.mailer,
        },
    }
}
