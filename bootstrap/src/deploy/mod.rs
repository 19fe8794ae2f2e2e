//! The deployment template (`template.yaml`) and its nested stacks
//! (`stacks/`), rendered from a service's declaration by [`templates`]
//! (`outbox-local template`), so adding a consumer copies no YAML:
//! `base.yaml` holds all the main template shares (tables, bus, command API,
//! relay, their alarms, parameters, outputs), `consumer.yaml` one consumer's
//! resources (its queues, rule, roles, function, log group and alarms),
//! filled in once per consumer; `dashboard.yaml` the stack's CloudWatch
//! dashboard, with a `dashboard_consumer.yaml` row of widgets per consumer. The Custom Event Bus and the pipe are nested
//! stacks, as their resource types are missing from many regions:
//! `custom_bus.yaml` with a `subscriber.yaml` block per consumer (its
//! `subscriber_parameters.yaml` there, its `subscriber_queues.yaml` in the
//! main template's passing of them), and `pipe.yaml` as it is.
//! Adding a consumer adds a [`ConsumerResources`], no YAML.
//!
//! The notation of those files:
//! - `{{Name}}` the consumer's logical-id prefix (`OrderTracking`), `{{name}}`
//!   its name (`order-tracking`), `{{description}}`, `{{aggregate}}` (`order`),
//!   `{{an_aggregate}}` (`an order`), `{{rule_pattern}}` (flow YAML) and
//!   `{{subscriber_pattern}}` (a JSON string): the values of a
//!   [`ConsumerResources`]; `{{inbox_keys}}` the partition keys of its inbox
//!   items ([`outbox_dynamodb::leading_keys`]);
//! - the lines between `{{#ordered}}` and `{{/ordered}}` are only an ordered
//!   consumer's, those between `{{^ordered}}` and `{{/ordered}}` only an
//!   unordered one's; `{{#documents}}` and `{{#mail}}` sections likewise only a
//!   consumer's that calls that [`OutsidePort`] (in `consumer.yaml`) or, in
//!   `base.yaml`, the stack's when any consumer does (the bucket, the sender
//!   parameters); `{{#deletes}}` a consumer's that deletes inbox items (an
//!   ordered one releasing held events, a calling one releasing a claim);
//! - a `# generated: …` line is where the consumers' blocks (or the
//!   dashboard, in `base.yaml`) go, at its indentation.

mod notation;
mod yaml;

use serde_json::Value;

use outbox_application::{OutsidePort, Service};

const BASE: &str = include_str!("base.yaml");
const CONSUMER: &str = include_str!("consumer.yaml");
const SUBSCRIBER_QUEUES: &str = include_str!("subscriber_queues.yaml");
const CUSTOM_BUS: &str = include_str!("custom_bus.yaml");
const SUBSCRIBER: &str = include_str!("subscriber.yaml");
const SUBSCRIBER_PARAMETERS: &str = include_str!("subscriber_parameters.yaml");
const PIPE: &str = include_str!("pipe.yaml");
const DASHBOARD: &str = include_str!("dashboard.yaml");
const DASHBOARD_CONSUMER: &str = include_str!("dashboard_consumer.yaml");

/// One rendered file of the deployment.
pub struct Rendered {
    /// Its path from the repository root, where `sam` finds it.
    pub path: &'static str,
    /// Its YAML.
    pub text: String,
}

/// What the template needs to know of one consumer.
pub struct ConsumerResources {
    /// The consumer's stable name, e.g. "order-tracking": the function's CONSUMER_NAME and its metrics' `Function` dimension.
    pub name: String,
    /// One line on what it does: the function's Description.
    pub description: String,
    /// Whether it applies each aggregate's events in version order (FIFO queues + FIFO subscriber on a Custom Event Bus, parking settings, ParkedAggregates alarm).
    pub ordered: bool,
    /// The aggregate type it consumes, e.g. "Order" (for alarm texts).
    pub aggregate_type: String,
    /// The classic bus rule's EventPattern, e.g. {"source":["orders.outbox"],"detail-type":["OrderPlaced"]}.
    pub rule_pattern: Value,
    /// The Custom Event Bus subscriber's filter on the payload, e.g. {"aggregateType":["Order"],"eventType":["OrderPlaced"]}.
    pub subscriber_pattern: Value,
    /// The outside systems it calls: each adds its grant and its variable.
    pub calls: Vec<OutsidePort>,
}

/// The deployment template of `service`: the resources of each consumer it
/// declares, routed by its subscription under its aggregate type's source:
/// `template.yaml`, then its nested stacks.
pub fn templates(service: &Service) -> Vec<Rendered> {
    let sources = service.sources();
    let consumers: Vec<ConsumerResources> = service
        .consumers()
        .iter()
        .map(|reaction| {
            let subscription = reaction.subscription();
            ConsumerResources {
                name: reaction.name().to_owned(),
                description: reaction.description().to_owned(),
                ordered: subscription.is_ordered(),
                aggregate_type: subscription.aggregate_type.to_owned(),
                rule_pattern: subscription.event_pattern(&sources),
                subscriber_pattern: subscription.payload_pattern(),
                calls: reaction.calls().to_vec(),
            }
        })
        .collect();
    render(&consumers)
}

/// The deployment's files, with the resources of each of `consumers`.
pub fn render(consumers: &[ConsumerResources]) -> Vec<Rendered> {
    // Blocks of resources apart by a blank line, of parameters one on another.
    let each = |fragment, separator| -> String {
        consumers
            .iter()
            .map(|consumer| consumer.fill(fragment))
            .collect::<Vec<_>>()
            .join(separator)
    };
    let calling = |port| {
        consumers
            .iter()
            .any(|consumer| consumer.calls.contains(&port))
    };
    let base = notation::sections(
        BASE,
        &[
            ("documents", calling(OutsidePort::Documents)),
            ("mail", calling(OutsidePort::Mail)),
        ],
    );
    let base = notation::insert(
        &base,
        "# generated: subscriber queues",
        &each(SUBSCRIBER_QUEUES, ""),
    );
    let dashboard = notation::insert(
        DASHBOARD,
        "# generated: consumer widgets",
        &each(DASHBOARD_CONSUMER, ""),
    );
    let base = notation::insert(&base, "# generated: dashboard", &dashboard);
    let custom_bus = notation::insert(
        CUSTOM_BUS,
        "# generated: subscriber parameters",
        &each(SUBSCRIBER_PARAMETERS, ""),
    );
    vec![
        Rendered {
            path: "template.yaml",
            text: notation::insert(&base, "# generated: consumers", &each(CONSUMER, "\n")),
        },
        Rendered {
            path: "stacks/custom-bus.yaml",
            text: notation::insert(
                &custom_bus,
                "# generated: subscribers",
                &each(SUBSCRIBER, "\n"),
            ),
        },
        Rendered {
            path: "stacks/pipe.yaml",
            text: PIPE.to_owned(),
        },
    ]
}

impl ConsumerResources {
    /// `template` for this consumer: its ordered or unordered lines kept, its
    /// placeholders filled.
    fn fill(&self, template: &str) -> String {
        let aggregate = self.aggregate_type.to_lowercase();
        notation::fill(
            &notation::sections(
                template,
                &[
                    ("ordered", self.ordered),
                    ("deletes", self.ordered || !self.calls.is_empty()),
                    ("documents", self.calls.contains(&OutsidePort::Documents)),
                    ("mail", self.calls.contains(&OutsidePort::Mail)),
                ],
            ),
            &[
                ("{{Name}}", logical_id(&self.name)),
                ("{{name}}", self.name.clone()),
                ("{{description}}", yaml::double_quoted(&self.description)),
                ("{{an_aggregate}}", with_article(&aggregate)),
                ("{{aggregate}}", aggregate),
                ("{{rule_pattern}}", yaml::json(&self.rule_pattern)),
                (
                    "{{inbox_keys}}",
                    yaml::json(&Value::from(outbox_dynamodb::leading_keys(&self.name))),
                ),
                (
                    "{{subscriber_pattern}}",
                    yaml::single_quoted(&yaml::json(&self.subscriber_pattern)),
                ),
            ],
        )
    }
}

/// `order-tracking` → `OrderTracking`: the prefix of a consumer's logical ids.
pub fn logical_id(name: &str) -> String {
    name.split('-')
        .flat_map(|word| {
            let mut chars = word.chars();
            let first = chars.next().map(|first| first.to_ascii_uppercase());
            first.into_iter().chain(chars)
        })
        .collect()
}

/// `order` → `an order`, `ticket` → `a ticket`.
fn with_article(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}
