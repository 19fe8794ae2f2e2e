//! Shard leases: how a fleet of relays shares a stream's shards, one reader
//! per shard at a time, free of I/O.
//!
//! The design is the Kinesis Client Library's lease table. Each shard has one
//! lease item: its owner, a counter that every write increments, the parent
//! shard, the checkpoint and whether the shard is finished. Every write is
//! conditional on the counter read before, so two instances can never both
//! succeed from the same view. Nobody compares wall clocks: an instance calls a
//! lease *expired* when it has seen the same counter for a whole lease duration
//! on its own monotonic clock.
//!
//! **One reader at a time.** A holder may read a shard only until its last
//! successful write's *send* time plus the lease duration. A taker observes the
//! counter of that write no earlier than the write happened (after it was sent),
//! and may read only a whole lease duration after that observation. So the
//! holder's window closes before the taker's opens, whether the lease expired
//! (the holder died or paused) or was taken for balance (the conditional write
//! proves the holder wrote nothing since). An instance stopping in order
//! releases its leases (owner cleared), and a released lease is readable by
//! its taker at once.
//!
//! **Fair share.** Each instance counts the live owners (its own view), aims at
//! `ceil(ready / instances)` leases, takes unowned and expired leases first and
//! else one lease of the most loaded owner per scan. **Order across a split**: a
//! child shard's lease is taken only once its parent's is finished.
//!
//! **Takeover bound.** A killed instance's shards are readable by another one
//! at most [`LeaseTimings::takeover_bound`] after its last write.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long a lease lasts, and how often it is renewed and the table scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimings {
    /// How long a lease holds after its last write without another one.
    pub duration: Duration,
    /// How long after its last write a holder renews a lease.
    pub renew_after: Duration,
    /// How often an instance reads the lease table.
    pub scan_every: Duration,
}

impl LeaseTimings {
    /// Timings scaled from one lease duration: renewed at a third of it, the
    /// table scanned at a fifth.
    pub fn from_duration(duration: Duration) -> Self {
        Self {
            duration,
            renew_after: duration / 3,
            scan_every: duration / 5,
        }
    }

    /// The longest time from a killed holder's last write until another
    /// instance may read its shard: a lease duration, one scan later.
    pub fn takeover_bound(&self) -> Duration {
        self.duration + self.scan_every
    }
}

impl Default for LeaseTimings {
    /// A 10-second lease: renewed every 3.3 s, the table scanned every 2 s.
    fn default() -> Self {
        Self::from_duration(Duration::from_secs(10))
    }
}

/// One lease item as read from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    /// The shard.
    pub shard: String,
    /// The shard it was split from, if any.
    pub parent: Option<String>,
    /// The instance holding it; `None` when free.
    pub owner: Option<String>,
    /// Incremented by every write.
    pub counter: u64,
    /// Whether the shard is closed and read to its end.
    pub finished: bool,
}

/// A write an instance must attempt, each conditional on `counter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAction {
    /// Keep a held lease: counter + 1 if the owner is this instance and the counter `counter`.
    Renew {
        /// The shard.
        shard: String,
        /// The counter this instance last wrote.
        counter: u64,
    },
    /// Take a lease: owner := this instance, counter + 1, if the counter is still `counter`.
    Take {
        /// The shard.
        shard: String,
        /// The counter observed.
        counter: u64,
    },
}

impl LeaseAction {
    /// The shard the action concerns.
    pub fn shard(&self) -> &str {
        match self {
            Self::Renew { shard, .. } | Self::Take { shard, .. } => shard,
        }
    }
}

/// A lease this instance holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    /// The counter of this instance's last successful write.
    counter: u64,
    /// When that write was sent.
    written_at: Duration,
    /// When reading may start (a taken lease waits out the former holder's window).
    readable_from: Duration,
}

/// A counter seen on a lease of another owner, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    owner: Option<String>,
    counter: u64,
    since: Duration,
}

/// A take this instance asked for, until it is confirmed or lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Asked {
    counter: u64,
    readable_from: Duration,
}

/// One instance's side of the lease protocol. Times are durations on the
/// instance's own monotonic clock, from any origin.
#[derive(Debug, Clone)]
pub struct LeaseKeeper {
    me: String,
    timings: LeaseTimings,
    held: BTreeMap<String, Held>,
    seen: BTreeMap<String, Seen>,
    asked: BTreeMap<String, Asked>,
}

impl LeaseKeeper {
    /// The keeper of instance `me`, holding nothing.
    pub fn new(me: impl Into<String>, timings: LeaseTimings) -> Self {
        Self {
            me: me.into(),
            timings,
            held: BTreeMap::new(),
            seen: BTreeMap::new(),
            asked: BTreeMap::new(),
        }
    }

    /// This instance's name, the owner it writes.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The timings.
    pub fn timings(&self) -> LeaseTimings {
        self.timings
    }

    /// Takes in the lease table as read at `now` (the time the read returned)
    /// and says which writes to attempt: renewals due, then takes towards a fair
    /// share. Leases the table shows as someone else's, or at a counter this
    /// instance did not write, are dropped.
    pub fn plan(&mut self, table: &[LeaseView], now: Duration) -> Vec<LeaseAction> {
        self.asked.clear();
        self.forget_lost(table);
        self.observe(table, now);
        let mut actions: Vec<LeaseAction> = self
            .held
            .iter()
            .filter(|(_, held)| now >= held.written_at + self.timings.renew_after)
            .map(|(shard, held)| LeaseAction::Renew {
                shard: shard.clone(),
                counter: held.counter,
            })
            .collect();
        for (lease, readable_from) in self.to_take(table, now) {
            self.asked.insert(
                lease.shard.clone(),
                Asked {
                    counter: lease.counter,
                    readable_from,
                },
            );
            actions.push(LeaseAction::Take {
                shard: lease.shard.clone(),
                counter: lease.counter,
            });
        }
        actions
    }

    /// A write of `shard` sent at `sent_at` succeeded and left the counter at
    /// `counter`: a renewal, a take, or a checkpoint saved under the lease.
    pub fn written(&mut self, shard: &str, counter: u64, sent_at: Duration) {
        if let Some(held) = self.held.get_mut(shard) {
            held.counter = counter;
            held.written_at = sent_at;
            return;
        }
        let readable_from = self
            .asked
            .remove(shard)
            .map_or(sent_at, |asked| asked.readable_from.max(sent_at));
        self.seen.remove(shard);
        self.held.insert(
            shard.to_owned(),
            Held {
                counter,
                written_at: sent_at,
                readable_from,
            },
        );
    }

    /// A conditional write of `shard` failed: the lease is someone else's now.
    pub fn lost(&mut self, shard: &str) {
        self.held.remove(shard);
        self.asked.remove(shard);
    }

    /// Stops holding anything, as an instance stopping in order does once it
    /// has stopped reading, and says which leases to release (owner cleared,
    /// conditional on the counter). A lease still waiting out its former
    /// holder's window is not released (that holder may still be reading): it
    /// is left to expire.
    pub fn release_all(&mut self, now: Duration) -> Vec<(String, u64)> {
        self.asked.clear();
        std::mem::take(&mut self.held)
            .into_iter()
            .filter(|(_, held)| held.readable_from <= now)
            .map(|(shard, held)| (shard, held.counter))
            .collect()
    }

    /// The shard is finished: it needs no lease any more.
    pub fn finished(&mut self, shard: &str) {
        self.held.remove(shard);
    }

    /// Whether this instance may read `shard` at `now`.
    pub fn readable(&self, shard: &str, now: Duration) -> bool {
        self.window(shard)
            .is_some_and(|(from, until)| from <= now && now < until)
    }

    /// When this instance may read `shard` as things stand: from the first
    /// time, until the second (excluded), unless a write renews it.
    pub fn window(&self, shard: &str) -> Option<(Duration, Duration)> {
        self.held
            .get(shard)
            .map(|held| (held.readable_from, held.written_at + self.timings.duration))
    }

    /// The counter this instance last wrote on `shard`, while it holds it.
    pub fn counter(&self, shard: &str) -> Option<u64> {
        self.held.get(shard).map(|held| held.counter)
    }

    /// The shards held (readable or waiting to be), with their counters.
    pub fn held(&self) -> impl Iterator<Item = (&str, u64)> {
        self.held
            .iter()
            .map(|(shard, held)| (shard.as_str(), held.counter))
    }

    /// Drops held leases the table shows at another owner or counter.
    fn forget_lost(&mut self, table: &[LeaseView]) {
        let current: BTreeMap<&str, &LeaseView> =
            table.iter().map(|l| (l.shard.as_str(), l)).collect();
        let me = self.me.clone();
        self.held.retain(|shard, held| {
            current.get(shard.as_str()).is_some_and(|lease| {
                lease.owner.as_deref() == Some(me.as_str())
                    && lease.counter == held.counter
                    && !lease.finished
            })
        });
    }

    /// Records, per lease of another owner, since when its counter stands still.
    fn observe(&mut self, table: &[LeaseView], now: Duration) {
        let mut seen = BTreeMap::new();
        for lease in table {
            if self.held.contains_key(&lease.shard) {
                continue;
            }
            let since = self
                .seen
                .get(&lease.shard)
                .filter(|s| s.counter == lease.counter && s.owner == lease.owner)
                .map_or(now, |s| s.since);
            seen.insert(
                lease.shard.clone(),
                Seen {
                    owner: lease.owner.clone(),
                    counter: lease.counter,
                    since,
                },
            );
        }
        self.seen = seen;
    }

    /// Whether the lease of another owner has stood still for a lease duration.
    fn expired(&self, shard: &str, now: Duration) -> bool {
        self.seen
            .get(shard)
            .is_some_and(|s| now >= s.since + self.timings.duration)
    }

    /// The leases to take now, each with when it becomes readable.
    fn to_take<'t>(&self, table: &'t [LeaseView], now: Duration) -> Vec<(&'t LeaseView, Duration)> {
        let finished: BTreeSet<&str> = table
            .iter()
            .filter(|l| l.finished)
            .map(|l| l.shard.as_str())
            .collect();
        let listed: BTreeSet<&str> = table.iter().map(|l| l.shard.as_str()).collect();
        let ready: Vec<&LeaseView> = table
            .iter()
            .filter(|l| !l.finished)
            .filter(|l| {
                l.parent
                    .as_deref()
                    .is_none_or(|p| finished.contains(p) || !listed.contains(p))
            })
            .collect();
        let mut load: BTreeMap<&str, usize> = BTreeMap::new();
        for lease in &ready {
            if let Some(owner) = lease.owner.as_deref() {
                if owner != self.me && !self.expired(&lease.shard, now) {
                    *load.entry(owner).or_default() += 1;
                }
            }
        }
        let instances = load.len() + 1;
        let target = ready.len().div_ceil(instances);
        let mine = ready
            .iter()
            .filter(|l| self.held.contains_key(&l.shard))
            .count();
        let mut wanted = target.saturating_sub(mine);
        let mut takes = Vec::new();
        let free = ready.iter().filter(|l| {
            !self.held.contains_key(&l.shard) && (l.owner.is_none() || self.expired(&l.shard, now))
        });
        // Free leases first, then expired ones.
        let (unowned, expired): (Vec<&LeaseView>, Vec<&LeaseView>) =
            free.partition(|l| l.owner.is_none());
        for lease in unowned.into_iter().chain(expired) {
            if wanted == 0 {
                break;
            }
            let readable_from = self.readable_from(lease, now);
            takes.push((lease, readable_from));
            wanted -= 1;
        }
        if wanted > 0 && takes.is_empty() {
            // Balance: one lease of the most loaded owner, if it holds at
            // least two more than this instance (so the spread shrinks).
            let busiest = load
                .iter()
                .max_by_key(|(owner, count)| (**count, std::cmp::Reverse(**owner)));
            if let Some((owner, count)) = busiest {
                if *count > mine + 1 {
                    if let Some(lease) = ready
                        .iter()
                        .rev()
                        .find(|l| l.owner.as_deref() == Some(owner))
                    {
                        takes.push((lease, self.readable_from(lease, now)));
                    }
                }
            }
        }
        takes
    }

    /// When a lease taken now becomes readable: at once when free, else a
    /// lease duration after its counter was first seen, when the former
    /// holder's window has surely closed.
    fn readable_from(&self, lease: &LeaseView, now: Duration) -> Duration {
        if lease.owner.is_none() {
            return now;
        }
        self.seen
            .get(&lease.shard)
            .map_or(now + self.timings.duration, |s| {
                (s.since + self.timings.duration).max(now)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn lease(shard: &str, owner: Option<&str>, counter: u64) -> LeaseView {
        LeaseView {
            shard: shard.into(),
            parent: None,
            owner: owner.map(str::to_owned),
            counter,
            finished: false,
        }
    }

    fn keeper(me: &str) -> LeaseKeeper {
        LeaseKeeper::new(me, LeaseTimings::from_duration(10 * SECOND))
    }

    #[test]
    fn free_leases_are_taken_and_readable_at_once() {
        let mut a = keeper("a");
        let table = [lease("s1", None, 0), lease("s2", None, 3)];
        let actions = a.plan(&table, SECOND);
        assert_eq!(
            actions,
            vec![
                LeaseAction::Take {
                    shard: "s1".into(),
                    counter: 0
                },
                LeaseAction::Take {
                    shard: "s2".into(),
                    counter: 3
                }
            ]
        );
        a.written("s1", 1, SECOND);
        assert!(a.readable("s1", SECOND));
        assert!(!a.readable("s2", SECOND), "not confirmed");
        assert!(!a.readable("s1", 11 * SECOND), "the window closed");
    }

    #[test]
    fn a_live_owner_keeps_its_lease_and_an_expired_one_is_taken_after_its_window() {
        // One owner alive with one lease: nothing is free, and taking it
        // would only move the imbalance.
        let mut b = keeper("b");
        assert_eq!(b.plan(&[lease("s1", Some("a"), 5)], SECOND), vec![]);
        assert_eq!(b.plan(&[lease("s1", Some("a"), 6)], 9 * SECOND), vec![]);
        // The counter stands still from 9 s: expired at 19 s.
        assert_eq!(b.plan(&[lease("s1", Some("a"), 6)], 18 * SECOND), vec![]);
        let take = b.plan(&[lease("s1", Some("a"), 6)], 19 * SECOND);
        assert_eq!(
            take,
            vec![LeaseAction::Take {
                shard: "s1".into(),
                counter: 6
            }]
        );
        b.written("s1", 7, 19 * SECOND);
        assert!(b.readable("s1", 19 * SECOND));
    }

    #[test]
    fn a_child_waits_for_its_parent_to_finish() {
        let mut a = keeper("a");
        let mut child = lease("child", None, 0);
        child.parent = Some("parent".into());
        let parent = lease("parent", Some("gone"), 2);
        let actions = a.plan(&[parent.clone(), child.clone()], SECOND);
        assert!(actions.is_empty(), "{actions:?}");
        let finished = LeaseView {
            finished: true,
            ..parent
        };
        let actions = a.plan(&[finished, child], 2 * SECOND);
        assert_eq!(actions.len(), 1);
        assert_eq!(actions[0].shard(), "child");
    }

    #[test]
    fn a_lease_taken_for_balance_waits_out_the_former_holders_window() {
        let mut b = keeper("b");
        let table: Vec<LeaseView> = (0..4)
            .map(|i| lease(&format!("s{i}"), Some("a"), 1))
            .collect();
        let actions = b.plan(&table, SECOND);
        assert_eq!(actions.len(), 1, "one steal per scan: {actions:?}");
        let taken = actions[0].shard().to_owned();
        b.written(&taken, 2, SECOND);
        // Renewed while waiting: a's window (from its write seen at 1 s) closes at 11 s.
        let mut table = table;
        for lease in &mut table {
            if lease.shard == taken {
                lease.owner = Some("b".into());
                lease.counter = 2;
            }
        }
        let actions = b.plan(&table, 5 * SECOND);
        assert_eq!(
            actions[0],
            LeaseAction::Renew {
                shard: taken.clone(),
                counter: 2
            }
        );
        b.written(&taken, 3, 5 * SECOND);
        assert!(!b.readable(&taken, 10 * SECOND));
        assert!(b.readable(&taken, 11 * SECOND));
    }

    #[test]
    fn a_lease_written_by_another_is_lost() {
        let mut a = keeper("a");
        a.plan(&[lease("s1", None, 0)], SECOND);
        a.written("s1", 1, SECOND);
        a.plan(&[lease("s1", Some("b"), 2)], 2 * SECOND);
        assert!(!a.readable("s1", 2 * SECOND));
        assert_eq!(a.counter("s1"), None);
    }
}
