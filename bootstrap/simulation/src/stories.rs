//! A client telling the declared aggregates' demo stories: it retries with
//! its idempotency keys as a real one would, letting the pipeline move on
//! between commands.

use std::collections::BTreeSet;

use outbox_application::{
    AggregateRef, AnyCommand, DeclaredAggregate, IdempotencyKey, RequestMeta, Target,
};

use crate::dice::Dice;
use crate::pipeline::Pipeline;

/// What the client saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTally {
    /// Commands accepted (replays of a repeated key included once).
    pub committed: usize,
    /// Commands that failed after the client's retries.
    pub failed: usize,
    /// The aggregates the stories touched.
    pub touched: BTreeSet<AggregateRef>,
}

/// A client of the pipeline.
pub struct Client<'p> {
    pipeline: &'p Pipeline,
    dice: &'p mut Dice,
    key_prefix: String,
    /// What it saw so far.
    pub tally: ClientTally,
}

impl<'p> Client<'p> {
    /// A client whose idempotency keys start with `key_prefix` (so a new run's
    /// requests are new requests when data outlives a run).
    pub fn new(pipeline: &'p Pipeline, dice: &'p mut Dice, key_prefix: impl Into<String>) -> Self {
        Self {
            pipeline,
            dice,
            key_prefix: key_prefix.into(),
            tally: ClientTally::default(),
        }
    }

    /// Sends one command with faults armed, then lets the pipeline take a step.
    async fn send(
        &mut self,
        target: Target,
        command: &dyn AnyCommand,
        key: &str,
    ) -> Option<Target> {
        self.dice.arm(self.pipeline);
        let key = format!("{}{key}", self.key_prefix);
        let meta = RequestMeta {
            idempotency_key: IdempotencyKey::parse(&key).ok(),
            ..RequestMeta::default()
        };
        let result = self.pipeline.submit_any(target, command, &meta, 5).await;
        self.pipeline.relay_step().await;
        self.pipeline.consume_step().await;
        match result {
            Ok(outcome) => {
                self.tally.committed += 1;
                let id = outcome.aggregate.aggregate_id;
                self.tally.touched.insert(outcome.aggregate);
                Some(Target::Existing(id))
            }
            Err(error) => {
                self.tally.failed += 1;
                tracing::warn!(%key, %error, "command failed");
                None
            }
        }
    }

    /// Tells `aggregate`'s `n`-th story: its first command creates the
    /// aggregate (if it fails, the story ends), the rest act on it.
    pub async fn tell(&mut self, aggregate: &dyn DeclaredAggregate, n: usize) {
        let mut steps = aggregate.story(n).into_iter();
        let Some((key, create)) = steps.next() else {
            return;
        };
        let Some(target) = self.send(Target::New, create.as_ref(), &key).await else {
            return;
        };
        for (key, command) in steps {
            self.send(target, command.as_ref(), &key).await;
        }
    }
}
