//! Given/when/then scenarios for aggregate tests: a history of past events, a
//! command, and the exact events or refusal expected. Exported so that tests of
//! any crate (and users' own aggregates) can state rules the same way.
//!
//! The helpers assert, so they panic on a mismatch: use them in tests only.

use crate::aggregate::{fold, Aggregate};

/// A history of events to decide against, folded into its state.
pub struct Given<A: Aggregate> {
    state: A::State,
}

/// Starts a scenario from a history of past events.
pub fn given<A: Aggregate>(history: &[A::Event]) -> Given<A> {
    Given {
        state: fold::<A>(A::State::default(), history),
    }
}

impl<A: Aggregate> Given<A> {
    /// Decides on `command` and asserts the events it records.
    #[track_caller]
    pub fn when_then(self, command: A::Command, expected: &[A::Event]) {
        match A::decide(&self.state, &command) {
            Ok(events) => assert_eq!(events, expected, "events for {command:?}"),
            Err(error) => panic!("{command:?} was refused: {error}"),
        }
    }

    /// Decides on `command` and asserts the exact refusal.
    #[track_caller]
    pub fn when_refused(self, command: A::Command, expected: A::Error) {
        match A::decide(&self.state, &command) {
            Ok(events) => panic!("{command:?} was accepted with {events:?}"),
            Err(error) => assert_eq!(error, expected, "refusal of {command:?}"),
        }
    }
}
