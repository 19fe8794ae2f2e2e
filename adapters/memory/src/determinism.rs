//! A clock and an id generator that repeat themselves run after run.

use std::sync::atomic::{AtomicU64, Ordering};

use outbox_application::ports::{Clock, IdGenerator};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// A clock that starts at a fixed instant and moves a millisecond per reading.
#[derive(Debug, Default)]
pub struct StepClock {
    readings: AtomicU64,
}

impl StepClock {
    /// The first instant it tells: 2024-01-01T00:00:00Z.
    pub const START_UNIX_SECONDS: i64 = 1_704_067_200;
}

impl Clock for StepClock {
    fn now(&self) -> OffsetDateTime {
        let step = self.readings.fetch_add(1, Ordering::Relaxed);
        let start = OffsetDateTime::UNIX_EPOCH + Duration::seconds(Self::START_UNIX_SECONDS);
        start + Duration::milliseconds(i64::try_from(step).unwrap_or(i64::MAX))
    }
}

/// UUID v7 ids whose time and random parts come from a counter.
#[derive(Debug, Default)]
pub struct SequentialIds {
    next: AtomicU64,
}

impl IdGenerator for SequentialIds {
    fn new_id(&self) -> Uuid {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let millis = StepClock::START_UNIX_SECONDS.unsigned_abs() * 1_000 + n;
        let mut random = [0u8; 10];
        random[2..].copy_from_slice(&n.to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_time_ordered_v7() {
        let ids = SequentialIds::default();
        let (a, b) = (ids.new_id(), ids.new_id());
        assert_ne!(a, b);
        assert!(a < b);
        assert_eq!(a.get_version_num(), 7);
    }

    #[test]
    fn the_clock_moves_forward() {
        let clock = StepClock::default();
        assert!(clock.now() < clock.now());
    }
}
