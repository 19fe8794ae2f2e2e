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
            Some(bucket) => Arc::new(outbox_s3::S3DocumentStore::new(s3_client(sdk), bucket)),
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

/// The S3 client of `sdk`: bucket names in the host on AWS, in the path when
/// `AWS_ENDPOINT_URL` points elsewhere (an emulator or an S3-compatible
/// store, whose hosts seldom resolve per bucket).
fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
