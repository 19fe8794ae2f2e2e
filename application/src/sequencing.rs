//! The ordered consumer's rule, pure: given where it stands on an aggregate and
//! a delivered version, apply it, drop it as a repeat, hand it back for
//! redelivery, or park the aggregate.
//!
//! An ordered consumer receives every event type of its aggregate type (see
//! [`Subscription::delivered_types`](crate::routing::Subscription::delivered_types)),
//! so its versions are `1..=n` without holes and a missing version is a real
//! gap, never an event type it does not act on.

use std::time::Duration;

use outbox_domain::Version;

use crate::ports::Sequence;

/// When an aggregate waiting for a missing version is parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkingPolicy {
    /// Park once an event ahead of the gap was delivered this many times.
    pub max_attempts: u32,
    /// Park once an event ahead of the gap has waited this long since its first delivery.
    pub max_wait: Duration,
}

impl Default for ParkingPolicy {
    /// 5 deliveries or 15 minutes: longer than a bus and a queue reorder, far
    /// shorter than a queue keeps a message.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            max_wait: Duration::from_secs(15 * 60),
        }
    }
}

/// How long an event ahead of a gap has waited so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waited {
    /// Deliveries, this one included.
    pub attempts: u32,
    /// Time since its first delivery, if the queue says.
    pub since_first_delivery: Option<Duration>,
}

/// What to do with a delivered version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Applied or skipped before: acknowledge, write nothing.
    Duplicate,
    /// The next version: apply it.
    Apply,
    /// The aggregate is parked: add the event to its parked list.
    Hold,
    /// Ahead of a gap, within the bound: hand it back for redelivery.
    Defer,
    /// Ahead of a gap past the bound: park the aggregate, this event first in its list.
    Park {
        /// Why, for the operator.
        reason: String,
    },
}

/// The step for `version` when the consumer stands at `sequence`.
pub fn step(sequence: &Sequence, version: Version, waited: Waited, policy: ParkingPolicy) -> Step {
    if version <= sequence.applied {
        return Step::Duplicate;
    }
    if sequence.parking.is_some() {
        return Step::Hold;
    }
    if version == sequence.missing() {
        return Step::Apply;
    }
    let missing = sequence.missing();
    if waited.attempts >= policy.max_attempts {
        return Step::Park {
            reason: format!(
                "version {missing} did not arrive within {} deliveries of version {version}",
                waited.attempts
            ),
        };
    }
    match waited.since_first_delivery {
        Some(wait) if wait >= policy.max_wait => Step::Park {
            reason: format!(
                "version {missing} did not arrive within {} s of the first delivery of version {version}",
                wait.as_secs()
            ),
        },
        _ => Step::Defer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Parking;

    fn at(applied: u64) -> Sequence {
        Sequence {
            applied: Version::new(applied),
            ..Sequence::default()
        }
    }

    fn waited(attempts: u32, secs: Option<u64>) -> Waited {
        Waited {
            attempts,
            since_first_delivery: secs.map(Duration::from_secs),
        }
    }

    const POLICY: ParkingPolicy = ParkingPolicy {
        max_attempts: 3,
        max_wait: Duration::from_secs(60),
    };

    #[test]
    fn the_next_version_applies_and_anything_at_or_below_is_a_repeat() {
        let first = waited(1, None);
        assert_eq!(step(&at(0), Version::new(1), first, POLICY), Step::Apply);
        assert_eq!(step(&at(4), Version::new(5), first, POLICY), Step::Apply);
        assert_eq!(
            step(&at(4), Version::new(4), first, POLICY),
            Step::Duplicate
        );
        assert_eq!(
            step(&at(4), Version::new(1), first, POLICY),
            Step::Duplicate
        );
    }

    #[test]
    fn an_event_ahead_of_a_gap_waits_until_the_bound_then_parks_the_aggregate() {
        assert_eq!(
            step(&at(1), Version::new(3), waited(2, Some(59)), POLICY),
            Step::Defer
        );
        let Step::Park { reason } = step(&at(1), Version::new(3), waited(3, Some(1)), POLICY)
        else {
            panic!("the attempts bound parks");
        };
        assert!(reason.starts_with("version 2 did not arrive within 3 deliveries"));
        let Step::Park { reason } = step(&at(1), Version::new(3), waited(1, Some(60)), POLICY)
        else {
            panic!("the age bound parks");
        };
        assert!(reason.contains("within 60 s"));
    }

    #[test]
    fn a_parked_aggregate_holds_every_later_version_even_the_missing_one() {
        let parked = Sequence {
            parking: Some(Parking {
                reason: "r".into(),
                since: time::OffsetDateTime::UNIX_EPOCH,
            }),
            ..at(2)
        };
        let first = waited(1, None);
        assert_eq!(step(&parked, Version::new(3), first, POLICY), Step::Hold);
        assert_eq!(step(&parked, Version::new(9), first, POLICY), Step::Hold);
        assert_eq!(
            step(&parked, Version::new(2), first, POLICY),
            Step::Duplicate
        );
    }
}
