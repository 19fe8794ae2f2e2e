//! Where the operator's tools send events and read dead letters: a deployed
//! bus and SQS dead-letter queue (flags, or the functions' own `EVENT_BUS_NAME`,
//! `EVENT_BUS_ARN` and `DEAD_LETTER_QUEUE_URL`), or, when no bus is named, the
//! local bus with its consumers and the dead-letter table of the local store.

use std::sync::Arc;

use outbox_application::ports::{DeadLetterStore, EventPublisher};
use outbox_application::DEFAULT_CALLS_IN_FLIGHT;
use outbox_dynamodb::{DynamoDeadLetterQueue, DynamoInbox};
use outbox_sqs::SqsDeadLetterQueue;

use crate::lambda::config::bus_target;
use crate::lambda::functions::publisher;

use super::local_bus::{DeliveringBus, LocalBus};
use super::stack::Stack;
use super::LocalError;

/// The bus and dead-letter queue, as flags.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// A classic EventBridge bus to publish to, instead of the local bus.
    #[arg(long, env = "EVENT_BUS_NAME")]
    pub event_bus_name: Option<String>,
    /// A Custom Event Bus (its ARN) to publish to, instead of the local bus.
    #[arg(long, env = "EVENT_BUS_ARN")]
    pub event_bus_arn: Option<String>,
    /// The SQS dead-letter queue, instead of the local store's dead-letter table.
    #[arg(long, env = "DEAD_LETTER_QUEUE_URL")]
    pub dead_letter_queue_url: Option<String>,
    /// Publish calls kept in flight (1–16).
    #[arg(long, default_value_t = DEFAULT_CALLS_IN_FLIGHT, value_parser = parse_calls_in_flight)]
    pub calls_in_flight: usize,
}

fn parse_calls_in_flight(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(calls) if (1..=16).contains(&calls) => Ok(calls),
        _ => Err(format!("`{raw}` is not a whole number from 1 to 16")),
    }
}

/// The resolved target.
pub struct Target {
    /// Where events go.
    pub publisher: Arc<dyn EventPublisher>,
    /// Where dead letters are.
    pub letters: Arc<dyn DeadLetterStore>,
    /// The local bus and its consumers, when no deployed bus was named: a
    /// publish returns once they have the events, so a position moves only
    /// past events they have.
    pub local: Option<DeliveringBus>,
    /// What the target is, for the summary.
    pub description: String,
}

impl Target {
    /// Resolves `args` against the open `stack`.
    ///
    /// # Errors
    /// [`LocalError::Config`] for a bad bus, or a deployed bus without a dead-letter queue.
    pub fn resolve(args: &TargetArgs, stack: &Stack) -> Result<Self, LocalError> {
        let letters = Self::letters(args, stack);
        let bus = bus_target(args.event_bus_name.clone(), args.event_bus_arn.clone())
            .map_err(|error| LocalError::Config(error.to_string()))?;
        match bus {
            Some(bus) => {
                if args.dead_letter_queue_url.is_none() {
                    return Err(LocalError::Config(
                        "a deployed bus needs its dead-letter queue: set --dead-letter-queue-url or DEAD_LETTER_QUEUE_URL".into(),
                    ));
                }
                let description = format!("{bus:?}");
                Ok(Self {
                    publisher: publisher(&stack.sdk, bus, stack.service.sources()),
                    letters,
                    local: None,
                    description,
                })
            }
            None => {
                let inbox = DynamoInbox::new(stack.dynamodb.clone(), &stack.layout.inbox_table);
                let local = DeliveringBus::new(LocalBus::new(
                    &stack.service,
                    Arc::new(inbox),
                    letters.clone(),
                    false,
                )?);
                Ok(Self {
                    publisher: Arc::new(local.clone()),
                    letters,
                    local: Some(local),
                    description: "the local bus and its consumers".into(),
                })
            }
        }
    }

    /// The dead-letter queue `args` name, or the local store's dead-letter table.
    pub fn letters(args: &TargetArgs, stack: &Stack) -> Arc<dyn DeadLetterStore> {
        match &args.dead_letter_queue_url {
            Some(url) => Arc::new(SqsDeadLetterQueue::new(
                aws_sdk_sqs::Client::new(&stack.sdk),
                url,
            )),
            None => Arc::new(DynamoDeadLetterQueue::new(
                stack.dynamodb.clone(),
                &stack.layout.dead_letter_table,
            )),
        }
    }
}
