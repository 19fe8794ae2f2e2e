//! Random faults at every hop, from a seeded die: a run with a fault rate
//! suffers lost replies, throttling, refused entries, relays and consumers that
//! die, and duplicate deliveries, and repeats itself under the same seed.

use crate::faults::{InboxFault, PublisherFault, StoreFault};
use crate::pipeline::Pipeline;

/// Injects faults with a fixed probability.
pub struct Dice {
    rng: fastrand::Rng,
    rate: f64,
    injected: usize,
}

impl Dice {
    /// A die hitting with probability `rate` (0 to 1), seeded by `seed`.
    pub fn new(rate: f64, seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            rate,
            injected: 0,
        }
    }

    /// Faults injected so far.
    pub fn injected(&self) -> usize {
        self.injected
    }

    /// Whether a foreign writer slips a malformed outbox item in (one roll,
    /// counted when it hits).
    pub fn poison(&mut self) -> bool {
        self.hit()
    }

    fn hit(&mut self) -> bool {
        let hit = self.rate > 0.0 && self.rng.f64() < self.rate;
        self.injected += usize::from(hit);
        hit
    }

    /// Arms random faults on every hop of `pipeline` for its next calls.
    pub fn arm(&mut self, pipeline: &Pipeline) {
        if self.hit() {
            let fault = [
                StoreFault::FailBeforeCommit,
                StoreFault::FailAfterCommit,
                StoreFault::Throttle,
            ][self.rng.usize(0..3)];
            pipeline.store.faults().inject(fault);
        }
        if self.hit() {
            let fault = match self.rng.usize(0..4) {
                0 => PublisherFault::Throttle,
                1 if self.rng.bool() => PublisherFault::Reject {
                    entries: [0].into(),
                    retryable: false,
                },
                _ => PublisherFault::Reject {
                    entries: [self.rng.usize(0..3)].into(),
                    retryable: true,
                },
            };
            pipeline.publisher.faults().inject(fault);
        }
        if self.hit() {
            pipeline
                .publisher
                .faults()
                .inject(PublisherFault::CrashMidBatch);
        }
        if self.hit() {
            pipeline
                .publisher
                .faults()
                .inject(PublisherFault::Duplicate);
        }
        for consumer in &pipeline.consumers {
            if self.hit() {
                consumer.inbox.faults().inject(InboxFault::CrashAfterApply);
            }
        }
    }
}
