//! Properties of the lease protocol, on a simulated lease table shared by
//! instances that scan, write with latency, pause, die, stop in order, finish
//! shards and split them, under one simulated clock:
//! - **one reader at a time**: no two instances' read windows on a shard ever
//!   overlap, whatever the interleaving (a paused instance counts: it would
//!   read on waking if its own window allowed);
//! - **takeover and fair share**: once the live instances keep scanning, within
//!   the takeover bound plus a few scans every ready shard is readable by
//!   exactly one live instance, and no live instance holds two more than another.

use std::collections::BTreeMap;
use std::time::Duration;

use outbox_application::{LeaseAction, LeaseKeeper, LeaseTimings, LeaseView};
use proptest::prelude::*;

const LEASE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Row {
    parent: Option<String>,
    owner: Option<String>,
    counter: u64,
    finished: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Running,
    /// Killed: never acts again; its windows still count.
    Dead,
    /// Stopped in order: released its leases.
    Stopped,
}

struct Instance {
    keeper: LeaseKeeper,
    state: State,
    /// The windows open now, per shard, as last recorded.
    open: BTreeMap<String, (Duration, Duration)>,
}

/// One step of the simulation.
#[derive(Debug, Clone)]
enum Step {
    /// Time passes.
    Wait(u64),
    /// Instance `i` reads the table (taking `latency` ms) and does what it plans.
    Scan { i: usize, latency: u64 },
    /// Instance `i` checkpoints a shard it may read.
    Checkpoint { i: usize, pick: usize },
    /// Instance `i` reads a shard to its end: finished, split in two.
    Split { i: usize, pick: usize },
    /// Instance `i` dies.
    Kill(usize),
    /// Instance `i` stops in order.
    Stop(usize),
    /// A new instance joins.
    Join,
    /// A new root shard appears.
    NewShard,
}

struct World {
    now: Duration,
    table: BTreeMap<String, Row>,
    instances: Vec<Instance>,
    /// Closed windows: (instance, shard, from, until).
    history: Vec<(usize, String, Duration, Duration)>,
    next_shard: usize,
}

impl World {
    fn new(instances: usize, shards: usize) -> Self {
        let mut world = Self {
            now: Duration::ZERO,
            table: BTreeMap::new(),
            instances: Vec::new(),
            history: Vec::new(),
            next_shard: 0,
        };
        for _ in 0..instances {
            world.join();
        }
        for _ in 0..shards {
            world.add_shard(None);
        }
        world
    }

    fn join(&mut self) {
        let name = format!("i{}", self.instances.len());
        self.instances.push(Instance {
            keeper: LeaseKeeper::new(name, LeaseTimings::from_duration(LEASE)),
            state: State::Running,
            open: BTreeMap::new(),
        });
    }

    fn add_shard(&mut self, parent: Option<String>) -> String {
        let shard = format!("s{:03}", self.next_shard);
        self.next_shard += 1;
        self.table.insert(
            shard.clone(),
            Row {
                parent,
                owner: None,
                counter: 0,
                finished: false,
            },
        );
        shard
    }

    fn view(&self) -> Vec<LeaseView> {
        self.table
            .iter()
            .map(|(shard, row)| LeaseView {
                shard: shard.clone(),
                parent: row.parent.clone(),
                owner: row.owner.clone(),
                counter: row.counter,
                finished: row.finished,
            })
            .collect()
    }

    /// Records instance `i`'s windows after its keeper changed: a window that
    /// changed is closed at `now` (it held until then) and reopened from `now`.
    fn record(&mut self, i: usize) {
        let now = self.now;
        let instance = &mut self.instances[i];
        let shards: Vec<String> = self.table.keys().cloned().collect();
        for shard in shards {
            let window = instance.keeper.window(&shard);
            let before = instance.open.get(&shard).copied();
            if window == before {
                continue;
            }
            if let Some((from, until)) = before {
                if from < now.min(until) {
                    self.history.push((i, shard.clone(), from, now.min(until)));
                }
                instance.open.remove(&shard);
            }
            if let Some((from, until)) = window {
                instance.open.insert(shard.clone(), (from.max(now), until));
            }
        }
    }

    /// A conditional write: applied if the counter (and owner, when given) match.
    fn write(
        &mut self,
        shard: &str,
        counter: u64,
        owner: Option<&str>,
        change: impl FnOnce(&mut Row),
    ) -> Option<u64> {
        let row = self.table.get_mut(shard)?;
        if row.counter != counter || owner.is_some_and(|o| row.owner.as_deref() != Some(o)) {
            return None;
        }
        change(row);
        row.counter += 1;
        Some(row.counter)
    }

    fn step(&mut self, step: &Step) {
        match *step {
            Step::Wait(ms) => self.now += Duration::from_millis(ms),
            Step::Scan { i, latency } => self.scan(i % self.instances.len(), latency),
            Step::Checkpoint { i, pick } => {
                let i = i % self.instances.len();
                if let Some((shard, counter)) = self.readable_pick(i, pick) {
                    let me = self.instances[i].keeper.me().to_owned();
                    let sent = self.now;
                    let result = self.write(&shard, counter, Some(&me), |_| {});
                    self.now += Duration::from_millis(5);
                    match result {
                        Some(counter) => self.instances[i].keeper.written(&shard, counter, sent),
                        None => self.instances[i].keeper.lost(&shard),
                    }
                    self.record(i);
                }
            }
            Step::Split { i, pick } => {
                let i = i % self.instances.len();
                if let Some((shard, counter)) = self.readable_pick(i, pick) {
                    let me = self.instances[i].keeper.me().to_owned();
                    if self
                        .write(&shard, counter, Some(&me), |row| row.finished = true)
                        .is_some()
                    {
                        self.instances[i].keeper.finished(&shard);
                        self.add_shard(Some(shard.clone()));
                        self.add_shard(Some(shard));
                    } else {
                        self.instances[i].keeper.lost(&shard);
                    }
                    self.record(i);
                }
            }
            Step::Kill(i) => {
                let i = i % self.instances.len();
                if self.instances[i].state == State::Running {
                    self.instances[i].state = State::Dead;
                }
            }
            Step::Stop(i) => {
                let i = i % self.instances.len();
                if self.instances[i].state == State::Running {
                    let me = self.instances[i].keeper.me().to_owned();
                    // Reading stops before the releases are written.
                    let released = self.instances[i].keeper.release_all(self.now);
                    self.record(i);
                    for (shard, counter) in released {
                        self.write(&shard, counter, Some(&me), |row| row.owner = None);
                    }
                    self.instances[i].state = State::Stopped;
                }
            }
            Step::Join => self.join(),
            Step::NewShard => {
                self.add_shard(None);
            }
        }
    }

    fn readable_pick(&self, i: usize, pick: usize) -> Option<(String, u64)> {
        let instance = &self.instances[i];
        if instance.state != State::Running {
            return None;
        }
        let readable: Vec<(String, u64)> = instance
            .keeper
            .held()
            .filter(|(shard, _)| instance.keeper.readable(shard, self.now))
            .map(|(s, c)| (s.to_owned(), c))
            .collect();
        if readable.is_empty() {
            return None;
        }
        readable.get(pick % readable.len()).cloned()
    }

    fn scan(&mut self, i: usize, latency: u64) {
        if self.instances[i].state != State::Running {
            return;
        }
        let latency = Duration::from_millis(latency);
        let snapshot = self.view();
        self.now += latency;
        let actions = self.instances[i].keeper.plan(&snapshot, self.now);
        self.record(i);
        let me = self.instances[i].keeper.me().to_owned();
        for action in actions {
            let sent = self.now;
            self.now += latency / 2;
            let result = match &action {
                LeaseAction::Renew { shard, counter } => {
                    self.write(shard, *counter, Some(&me), |_| {})
                }
                LeaseAction::Take { shard, counter } => {
                    let owner = me.clone();
                    self.write(shard, *counter, None, |row| row.owner = Some(owner))
                }
            };
            self.now += latency / 2;
            match result {
                Some(counter) => self.instances[i]
                    .keeper
                    .written(action.shard(), counter, sent),
                None => self.instances[i].keeper.lost(action.shard()),
            }
            self.record(i);
        }
    }

    /// Every window ever open, closed at `now` if still open.
    fn all_windows(&self) -> Vec<(usize, String, Duration, Duration)> {
        let mut all = self.history.clone();
        for (i, instance) in self.instances.iter().enumerate() {
            for (shard, (from, until)) in &instance.open {
                if instance.state != State::Stopped {
                    all.push((i, shard.clone(), *from, *until));
                }
            }
        }
        all
    }

    fn ready(&self) -> Vec<String> {
        self.table
            .iter()
            .filter(|(_, row)| !row.finished)
            .filter(|(_, row)| {
                row.parent
                    .as_ref()
                    .is_none_or(|p| self.table.get(p).is_none_or(|parent| parent.finished))
            })
            .map(|(shard, _)| shard.clone())
            .collect()
    }
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        6 => (1u64..4_000).prop_map(Step::Wait),
        8 => (0usize..8, 0u64..400).prop_map(|(i, latency)| Step::Scan { i, latency }),
        3 => (0usize..8, 0usize..8).prop_map(|(i, pick)| Step::Checkpoint { i, pick }),
        1 => (0usize..8, 0usize..8).prop_map(|(i, pick)| Step::Split { i, pick }),
        1 => (0usize..8).prop_map(Step::Kill),
        1 => (0usize..8).prop_map(Step::Stop),
        1 => Just(Step::Join),
        1 => Just(Step::NewShard),
    ];
    prop::collection::vec(step, 1..120)
}

fn overlaps(windows: &[(usize, String, Duration, Duration)]) -> Option<String> {
    for (n, a) in windows.iter().enumerate() {
        for b in &windows[n + 1..] {
            if a.0 != b.0 && a.1 == b.1 && a.2 < b.3 && b.2 < a.3 {
                return Some(format!("{a:?} overlaps {b:?}"));
            }
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn no_two_instances_ever_read_one_shard_at_once(
        instances in 1usize..5,
        shards in 1usize..7,
        steps in steps(),
    ) {
        let mut world = World::new(instances, shards);
        for step in &steps {
            world.step(step);
        }
        let windows = world.all_windows();
        prop_assert!(overlaps(&windows).is_none(), "{}", overlaps(&windows).unwrap_or_default());
    }

    #[test]
    fn the_live_instances_take_every_ready_shard_over_and_share_them_fairly(
        instances in 1usize..5,
        shards in 1usize..9,
        steps in steps(),
    ) {
        let mut world = World::new(instances, shards);
        for step in &steps {
            world.step(step);
        }
        if !world.instances.iter().any(|i| i.state == State::Running) {
            world.join();
        }
        let timings = LeaseTimings::from_duration(LEASE);
        // The takeover bound, then one scan per shard for the balancing steals.
        let rounds = timings.takeover_bound().as_millis() / timings.scan_every.as_millis()
            + 2 * world.table.len() as u128
            + 4;
        for _ in 0..rounds {
            for i in 0..world.instances.len() {
                world.scan(i, 0);
            }
            world.now += timings.scan_every;
        }
        for i in 0..world.instances.len() {
            world.scan(i, 0);
        }
        let now = world.now;
        let live: Vec<usize> = (0..world.instances.len())
            .filter(|i| world.instances[*i].state == State::Running)
            .collect();
        for shard in world.ready() {
            let readers: Vec<usize> = live
                .iter()
                .copied()
                .filter(|i| world.instances[*i].keeper.readable(&shard, now))
                .collect();
            prop_assert_eq!(readers.len(), 1, "shard {} read by {:?}", shard, readers);
        }
        let counts: Vec<usize> = live
            .iter()
            .map(|i| world.instances[*i].keeper.held().count())
            .collect();
        let spread = counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0);
        prop_assert!(spread <= 1, "held per live instance: {:?}", counts);
        let windows = world.all_windows();
        prop_assert!(overlaps(&windows).is_none(), "{}", overlaps(&windows).unwrap_or_default());
    }
}
