//! What the console shows, read from the store: a [`Snapshot`] (the status
//! `status` prints, and the dead letters by cause) taken every few seconds,
//! and the counters of each snapshot kept as a [`Sample`] for the flow chart
//! (the last [`KEPT_SAMPLES`]).

use std::collections::VecDeque;

use time::OffsetDateTime;

use outbox_application::ports::StoredLetter;

use super::super::letter_groups::{group, Grouped, LetterGroup};
use super::super::redrive::redrive_service;
use super::super::stack::{Stack, StoreArgs};
use super::super::status::{self, Status};
use super::super::target::{Target, TargetArgs};
use super::super::LocalError;

/// Samples kept for the chart.
pub const KEPT_SAMPLES: usize = 120;
/// The most dead letters read for the view.
pub const MAX_LETTERS: usize = 1000;

/// The counters at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When they were read.
    pub at: OffsetDateTime,
    /// Events in the outbox.
    pub committed: u64,
    /// Of those, relayed.
    pub relayed: u64,
    /// Per consumer, the committed events it handled (applied or called).
    pub applied: Vec<(String, u64)>,
}

/// Everything the page shows but the chart and an event's story.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When it was read.
    pub at: OffsetDateTime,
    /// What `status` shows.
    pub status: Status,
    /// The dead letters by cause.
    pub groups: Vec<LetterGroup>,
    /// Messages of the dead-letter queue that are no dead letters.
    pub malformed: usize,
    /// The letters as read, whose handles an action may use.
    pub listed: Vec<StoredLetter>,
}

impl Snapshot {
    /// Reads the status of `stack` and its letters where `target` says. On a
    /// queue that hides what it returns (`hides`: SQS), the letters are read
    /// again only once `previous` has grown older than the hiding lasts.
    ///
    /// # Errors
    /// [`LocalError`] when the store or the queue cannot be read.
    pub async fn read(
        stack: &Stack,
        args: (&StoreArgs, &TargetArgs),
        target: &Target,
        previous: Option<&Snapshot>,
        hides: bool,
    ) -> Result<Self, LocalError> {
        let (store, target_args) = args;
        let status = status::read(stack, target_args, store).await?;
        let at = OffsetDateTime::now_utc();
        let hidden_for = time::Duration::seconds(i64::from(outbox_sqs::READ_HIDES_SECONDS) + 1);
        let listed = match previous {
            Some(previous) if hides && at - previous.at < hidden_for => previous.listed.clone(),
            _ => redrive_service(target).list(MAX_LETTERS).await?,
        };
        let Grouped { groups, malformed } = group(&listed);
        Ok(Self {
            at,
            status,
            groups,
            malformed,
            listed,
        })
    }

    /// Its counters.
    pub fn sample(&self) -> Sample {
        Sample {
            at: self.at,
            committed: self.status.committed,
            relayed: self.status.relayed,
            applied: self
                .status
                .consumers
                .iter()
                .map(|consumer| (consumer.name.clone(), consumer.handled))
                .collect(),
        }
    }
}

/// The samples of the last minutes, oldest first.
#[derive(Debug, Clone, Default)]
pub struct History(VecDeque<Sample>);

impl History {
    /// Adds `sample`, forgetting the oldest past [`KEPT_SAMPLES`].
    pub fn push(&mut self, sample: Sample) {
        if self.0.len() == KEPT_SAMPLES {
            self.0.pop_front();
        }
        self.0.push_back(sample);
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.0.iter()
    }
}
