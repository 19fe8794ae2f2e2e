//! moto, the AWS emulator the suites share (`MOTO_ENDPOINT`, started by
//! `scripts/test.sh`): clients, unique names, and buses with queues subscribed
//! by event patterns. A missing server fails the test; nothing is skipped.

use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use outbox_bootstrap::clients::LocalClients;

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
