//! What a simulated run did, and its one-screen summary.

use std::fmt;

use crate::audit::Violation;
use crate::pipeline::PipelineStats;

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Where the data lives.
    pub store: String,
    /// Aggregates in the store, earlier runs' included when it persists.
    pub aggregates_stored: usize,
    /// Whether the store outlives the run (a data file), so it holds earlier runs too.
    pub store_persists: bool,
    /// Commands accepted (replays of a repeated key included once).
    pub commands_committed: usize,
    /// Commands that failed after the client's retries.
    pub commands_failed: usize,
    /// Events in the outbox of this run's aggregates.
    pub events_committed: usize,
    /// What the pipeline counted.
    pub stats: PipelineStats,
    /// Effects per consumer.
    pub effects: Vec<(&'static str, usize)>,
    /// External calls completed, by the inbox's completion marks (a count
    /// that a delivery dying after its mark cannot lose).
    pub calls_completed: usize,
    /// Faults injected.
    pub faults_injected: usize,
    /// Broken invariants; empty when all held.
    pub violations: Vec<Violation>,
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        writeln!(f, "store                  {}", self.store)?;
        let earlier = if self.store_persists {
            " (earlier runs included)"
        } else {
            ""
        };
        writeln!(
            f,
            "aggregates stored      {}{earlier}",
            self.aggregates_stored
        )?;
        writeln!(f, "commands committed     {}", self.commands_committed)?;
        writeln!(f, "commands failed        {}", self.commands_failed)?;
        writeln!(f, "faults injected        {}", self.faults_injected)?;
        writeln!(f, "events committed       {}", self.events_committed)?;
        writeln!(
            f,
            "events published       {} (repeats included)",
            s.published
        )?;
        writeln!(
            f,
            "relay runs / retries   {} / {}",
            s.relay_runs, s.relay_retries
        )?;
        writeln!(f, "dead-lettered          {}", s.dead_lettered)?;
        let effects: usize = self.effects.iter().map(|(_, count)| count).sum();
        writeln!(
            f,
            "effects applied        {effects} (recorded in the inbox)"
        )?;
        writeln!(
            f,
            "calls completed        {} (external effects: documents, emails)",
            self.calls_completed
        )?;
        writeln!(f, "duplicates suppressed  {}", s.duplicates_suppressed)?;
        for (consumer, count) in &self.effects {
            writeln!(f, "  {consumer:<24} {count}")?;
        }
        if self.violations.is_empty() {
            writeln!(f, "invariants             all held")
        } else {
            writeln!(f, "invariants             {} broken", self.violations.len())?;
            for violation in &self.violations {
                writeln!(f, "  {violation:?}")?;
            }
            Ok(())
        }
    }
}
