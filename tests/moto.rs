//! moto, the AWS emulator the suites share (`MOTO_ENDPOINT`, started by
//! `scripts/test.sh`): clients, unique names, and buses with queues subscribed
//! by event patterns. A missing server fails the test; nothing is skipped.

use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use std::net::SocketAddr;

use aws_sdk_s3::config::Builder as S3ConfigBuilder;

use outbox_bootstrap::clients::{sdk_config, LocalClients};
use outbox_ses::CALL_KEY_HEADER;

use crate::http;

/// Clients of the moto server at `MOTO_ENDPOINT`.
pub fn clients() -> LocalClients {
    let endpoint = std::env::var("MOTO_ENDPOINT").expect(
        "MOTO_ENDPOINT is not set: run `bash scripts/test.sh`, which installs and starts moto",
    );
    LocalClients::new(&endpoint)
}

/// `prefix` made unique, so suites never share a resource.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// A new custom event bus; its name.
pub async fn bus(clients: &LocalClients, prefix: &str) -> String {
    let name = unique(prefix);
    clients
        .eventbridge
        .create_event_bus()
        .name(&name)
        .send()
        .await
        .expect("moto creates the bus");
    name
}

/// A new queue whose unacknowledged messages come back after a second; its URL.
pub async fn queue(clients: &LocalClients, prefix: &str) -> String {
    clients
        .sqs
        .create_queue()
        .queue_name(unique(prefix))
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .expect("moto creates the queue")
        .queue_url()
        .expect("a queue URL")
        .to_owned()
}

/// A new queue fed by a rule on `bus` with the event `pattern`; its URL.
pub async fn subscribed_queue(
    clients: &LocalClients,
    bus: &str,
    prefix: &str,
    pattern: &Value,
) -> String {
    let url = queue(clients, prefix).await;
    let arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("moto tells the queue's attributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("a queue ARN");
    let rule = unique(prefix);
    clients
        .eventbridge
        .put_rule()
        .name(&rule)
        .event_bus_name(bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .expect("moto takes the rule");
    clients
        .eventbridge
        .put_targets()
        .rule(&rule)
        .event_bus_name(bus)
        .targets(
            Target::builder()
                .id("queue")
                .arn(arn)
                .build()
                .expect("a valid target"),
        )
        .send()
        .await
        .expect("moto takes the target");
    url
}

/// The moto server's URL, `MOTO_ENDPOINT`.
pub fn endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").expect(
        "MOTO_ENDPOINT is not set: run `bash scripts/test.sh`, which installs and starts moto",
    )
}

/// An S3 client of moto, addressing buckets by path (moto has no bucket hosts).
pub fn s3_client() -> aws_sdk_s3::Client {
    let config = S3ConfigBuilder::from(&sdk_config(&endpoint()))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// An SES v2 client of moto.
pub fn ses_client() -> aws_sdk_sesv2::Client {
    aws_sdk_sesv2::Client::new(&sdk_config(&endpoint()))
}

/// One email as the mail service delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Its recipients, each once.
    pub recipients: Vec<String>,
    /// Its `X-Outbox-Call-Key` header.
    pub call_key: Option<String>,
}

/// What moto's SES sent, read from `GET /_outbox/ses/sent`: each message's
/// recipients (deduplicated: moto adds the To header's to the request's) and
/// its call key header.
pub async fn ses_sent() -> Vec<Delivered> {
    let endpoint = endpoint();
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let address: SocketAddr = authority.parse().expect("MOTO_ENDPOINT is http://IP:PORT");
    let answer = http::request(address, "GET", "/_outbox/ses/sent", None, &[])
        .await
        .expect("moto answers /_outbox/ses/sent");
    assert_eq!(answer.status, 200, "{answer:?}");
    let prefix = format!("{CALL_KEY_HEADER}: ");
    answer
        .body
        .as_array()
        .expect("an array of sent messages")
        .iter()
        .map(|sent| {
            let raw = sent["raw"].as_str().expect("a raw message");
            let head = raw.split("\r\n\r\n").next().unwrap_or_default();
            let call_key = head
                .split("\r\n")
                .find_map(|line| line.strip_prefix(&prefix))
                .map(str::to_owned);
            let mut recipients: Vec<String> = sent["destinations"]
                .as_array()
                .expect("a list of destinations")
                .iter()
                .map(|d| d.as_str().expect("an address").to_owned())
                .collect();
            recipients.dedup();
            Delivered {
                recipients,
                call_key,
            }
        })
        .collect()
}
