//! Which entries go into the next publish call, under the bus's limits and order.
//!
//! Entries are numbered in stream order and belong to groups. An entry is
//! *ready* when every earlier entry of its group was accepted and none of its
//! group is in flight; a call takes ready entries in stream order up to the
//! limits. On an unordered bus every entry is a group of its own, so every
//! entry is ready at once and calls are packed fully; on a bus that keeps
//! order per aggregate the aggregate is the group, so a call carries at most
//! one entry per aggregate and no two calls in flight share one.

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
    /// Entries that may go into the next call, in stream order.
    ready: BTreeSet<usize>,
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
        let ready = waiting.iter().filter_map(|w| w.front().copied()).collect();
        Self {
            limits,
            sizes: entries.iter().map(|(_, size)| *size).collect(),
            group_of: entries.iter().map(|(group, _)| *group).collect(),
            waiting,
            ready,
            accepted: vec![false; entries.len()],
        }
    }

    /// The entries of the next call, marked in flight; `None` when no entry is
    /// ready (all accepted, or the rest wait for calls in flight).
    pub(crate) fn next_call(&mut self) -> Option<Vec<usize>> {
        let mut call = Vec::new();
        let mut bytes = 0;
        for &index in &self.ready {
            let size = self.sizes[index];
            if call.len() >= self.limits.max_entries || bytes + size >= self.limits.max_batch_bytes
            {
                break;
            }
            bytes += size;
            call.push(index);
        }
        for index in &call {
            self.ready.remove(index);
        }
        (!call.is_empty()).then_some(call)
    }

    /// Records that entry `index` was handled (accepted by the bus, or
    /// dead-lettered): the next entry of its group becomes ready.
    pub(crate) fn accept(&mut self, index: usize) {
        self.accepted[index] = true;
        let waiting = &mut self.waiting[self.group_of[index]];
        if waiting.front() == Some(&index) {
            waiting.pop_front();
            if let Some(&next) = waiting.front() {
                self.ready.insert(next);
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
        while let Some(call) = schedule.next_call() {
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
        assert_eq!(schedule.next_call(), Some(vec![0]));
        assert_eq!(schedule.next_call(), Some(vec![2]));
        assert_eq!(schedule.next_call(), None, "entry 1 waits for entry 0");
        schedule.accept(2);
        assert_eq!(schedule.next_call(), None);
        assert_eq!(schedule.first_unhandled(), Some(0));
        schedule.accept(0);
        assert_eq!(schedule.next_call(), Some(vec![1]));
        assert_eq!(schedule.first_unhandled(), Some(1));
    }

    #[test]
    fn an_entry_not_accepted_blocks_its_group_and_stays_unhandled() {
        let entries = [(0, 1), (1, 1), (0, 1)];
        let mut schedule = Schedule::new(&entries, limits(10));
        assert_eq!(schedule.next_call(), Some(vec![0, 1]));
        schedule.accept(1);
        assert_eq!(schedule.next_call(), None);
        assert_eq!(schedule.first_unhandled(), Some(0));
    }
}
