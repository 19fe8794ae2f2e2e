//! Which entries go into the next publish call, under the bus's limits and order.
//!
//! Entries are numbered in stream order and belong to groups. An entry is
//! *ready* when every earlier entry of its group was accepted and none of its
//! group is in flight; a call takes ready entries up to the limits, those of
//! the groups with the most entries left first (the longest chains decide how
//! many rounds the batch takes), then in stream order. On an unordered bus every entry is a group of its own, so every
//! entry is ready at once and calls are packed fully; on a bus that keeps
//! order per aggregate the aggregate is the group, so a call carries at most
//! one entry per aggregate and no two calls in flight share one.
//!
//! A call that is not full waits while entries wait for calls in flight to
//! come back (they may fill it): so a call is launched full, or when nothing
//! more can become ready. This keeps the calls at the minimum the bus's order
//! allows without delaying the last call of an unordered batch.

use std::cmp::Reverse;
use std::collections::{BTreeSet, VecDeque};

use crate::ports::BatchLimits;

/// The plan of one relay run's publish calls.
#[derive(Debug)]
pub(crate) struct Schedule {
    limits: BatchLimits,
    sizes: Vec<usize>,
    group_of: Vec<usize>,
    /// Per group, its entries not yet accepted, in stream order.
    waiting: Vec<VecDeque<usize>>,
    /// Entries that may go into the next call, as (entries left in the group,
    /// most first; position in the stream).
    ready: BTreeSet<(Reverse<usize>, usize)>,
    /// Entries not yet in any call.
    unsent: usize,
    accepted: Vec<bool>,
}

impl Schedule {
    /// A schedule of entries given in stream order as `(group, size)`, groups
    /// numbered from 0.
    pub(crate) fn new(entries: &[(usize, usize)], limits: BatchLimits) -> Self {
        let groups = entries
            .iter()
            .map(|(group, _)| group + 1)
            .max()
            .unwrap_or(0);
        let mut waiting = vec![VecDeque::new(); groups];
        for (index, (group, _)) in entries.iter().enumerate() {
            waiting[*group].push_back(index);
        }
        let ready = waiting
            .iter()
            .filter_map(|w| w.front().map(|&first| (Reverse(w.len()), first)))
            .collect();
        Self {
            limits,
            sizes: entries.iter().map(|(_, size)| *size).collect(),
            group_of: entries.iter().map(|(group, _)| *group).collect(),
            waiting,
            ready,
            unsent: entries.len(),
            accepted: vec![false; entries.len()],
        }
    }

    /// The entries of the next call, marked in flight; `None` when no entry is
    /// ready, or when the call would not be full while `in_flight` calls may
    /// still make more entries ready.
    pub(crate) fn next_call(&mut self, in_flight: usize) -> Option<Vec<usize>> {
        let mut call = Vec::new();
        let mut bytes = 0;
        let mut full = false;
        for &(_, index) in &self.ready {
            let size = self.sizes[index];
            if call.len() >= self.limits.max_entries || bytes + size >= self.limits.max_batch_bytes
            {
                full = true;
                break;
            }
            bytes += size;
            call.push(index);
        }
        let full = full || call.len() >= self.limits.max_entries;
        let more_may_come = in_flight > 0 && self.unsent > self.ready.len();
        if call.is_empty() || (!full && more_may_come) {
            return None;
        }
        for &index in &call {
            let left = self.waiting[self.group_of[index]].len();
            self.ready.remove(&(Reverse(left), index));
        }
        self.unsent -= call.len();
        Some(call)
    }

    /// Records that entry `index` was handled (accepted by the bus, or
    /// dead-lettered): the next entry of its group becomes ready.
    pub(crate) fn accept(&mut self, index: usize) {
        self.accepted[index] = true;
        let waiting = &mut self.waiting[self.group_of[index]];
        if waiting.front() == Some(&index) {
            waiting.pop_front();
            if let Some(&next) = waiting.front() {
                self.ready.insert((Reverse(waiting.len()), next));
            }
        }
    }

    /// The first entry in stream order not handled, if any.
    pub(crate) fn first_unhandled(&self) -> Option<usize> {
        self.accepted.iter().position(|accepted| !accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::BusOrder;

    /// A limit of 10 entries and 10 KiB, whichever order.
    fn limits(max_entries: usize) -> BatchLimits {
        BatchLimits {
            max_entries,
            max_batch_bytes: 10 * 1024,
            order: BusOrder::Unordered,
        }
    }

    /// Runs the schedule to the end, accepting every call, one call in flight:
    /// the calls made.
    fn calls(entries: &[(usize, usize)], max_entries: usize) -> Vec<Vec<usize>> {
        let mut schedule = Schedule::new(entries, limits(max_entries));
        let mut calls = Vec::new();
        while let Some(call) = schedule.next_call(0) {
            for index in &call {
                schedule.accept(*index);
            }
            calls.push(call);
        }
        assert_eq!(schedule.first_unhandled(), None);
        calls
    }

    #[test]
    fn distinct_groups_pack_calls_fully() {
        let entries: Vec<_> = (0..25).map(|i| (i, 100)).collect();
        let calls = calls(&entries, 10);
        assert_eq!(
            calls.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![10, 10, 5]
        );
    }

    #[test]
    fn one_group_goes_one_entry_per_call_in_stream_order() {
        let entries: Vec<_> = (0..4).map(|_| (0, 100)).collect();
        assert_eq!(
            calls(&entries, 10),
            vec![vec![0], vec![1], vec![2], vec![3]]
        );
    }

    #[test]
    fn the_groups_with_the_most_entries_left_go_first() {
        // Group 0 has one entry left after its first, group 1 three: with two
        // entries per call, group 1's chain is served first, so four calls
        // suffice (the minimum: group 1 needs four rounds).
        let entries = [(0, 1), (0, 1), (1, 1), (1, 1), (1, 1), (1, 1), (2, 1)];
        let calls = calls(&entries, 2);
        assert_eq!(calls[0], vec![2, 0], "group 1's head before group 0's");
        assert_eq!(calls.len(), 4, "{calls:?}");
    }

    #[test]
    fn consecutive_groups_take_one_entry_of_each_per_call() {
        // 3 groups × 2 entries, each group's entries consecutive.
        let entries = [(0, 1), (0, 1), (1, 1), (1, 1), (2, 1), (2, 1)];
        assert_eq!(calls(&entries, 10), vec![vec![0, 2, 4], vec![1, 3, 5]]);
    }

    #[test]
    fn calls_stay_below_the_byte_limit() {
        let entries: Vec<_> = (0..5).map(|i| (i, 4 * 1024)).collect();
        let calls = calls(&entries, 10);
        assert_eq!(
            calls.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
    }

    #[test]
    fn a_group_waits_while_its_entry_is_in_flight() {
        let entries = [(0, 1), (0, 1), (1, 1)];
        let mut schedule = Schedule::new(&entries, limits(1));
        assert_eq!(schedule.next_call(0), Some(vec![0]));
        assert_eq!(schedule.next_call(1), Some(vec![2]));
        assert_eq!(schedule.next_call(2), None, "entry 1 waits for entry 0");
        schedule.accept(2);
        assert_eq!(schedule.next_call(1), None);
        assert_eq!(schedule.first_unhandled(), Some(0));
        schedule.accept(0);
        assert_eq!(schedule.next_call(0), Some(vec![1]));
        assert_eq!(schedule.first_unhandled(), Some(1));
    }

    #[test]
    fn an_entry_not_accepted_blocks_its_group_and_stays_unhandled() {
        let entries = [(0, 1), (1, 1), (0, 1)];
        let mut schedule = Schedule::new(&entries, limits(10));
        assert_eq!(schedule.next_call(0), Some(vec![0, 1]));
        schedule.accept(1);
        assert_eq!(schedule.next_call(1), None);
        assert_eq!(schedule.first_unhandled(), Some(0));
    }

    #[test]
    fn a_call_that_is_not_full_waits_for_calls_in_flight_that_may_fill_it() {
        // Three groups of two: with two entries per call, the third group's
        // first entry waits for the first call rather than go alone.
        let entries = [(0, 1), (1, 1), (2, 1), (0, 1), (1, 1), (2, 1)];
        let mut schedule = Schedule::new(&entries, limits(2));
        assert_eq!(schedule.next_call(0), Some(vec![0, 1]));
        assert_eq!(schedule.next_call(1), None, "only entry 2 is ready");
        schedule.accept(0);
        schedule.accept(1);
        assert_eq!(schedule.next_call(0), Some(vec![2, 3]));
        assert_eq!(
            schedule.next_call(1),
            None,
            "entry 4 waits for entry 5's turn"
        );
        schedule.accept(2);
        schedule.accept(3);
        assert_eq!(
            schedule.next_call(0),
            Some(vec![4, 5]),
            "three calls, the minimum"
        );
    }

    #[test]
    fn the_last_call_of_an_unordered_batch_goes_at_once_however_small() {
        let entries: Vec<_> = (0..12).map(|i| (i, 1)).collect();
        let mut schedule = Schedule::new(&entries, limits(10));
        assert_eq!(schedule.next_call(0).map(|c| c.len()), Some(10));
        assert_eq!(
            schedule.next_call(1),
            Some(vec![10, 11]),
            "nothing more can become ready"
        );
    }
}
