//! A simulated network: drops, delays (and so reorders), duplicates, and partitions that may
//! be symmetric or one-way. Everything is driven by the simulation's one seeded RNG.

use std::collections::BTreeSet;

use keel_consensus::{Message, SplitMix64};

pub struct InFlight {
    pub deliver_at: u64,
    pub msg: Message,
}

pub struct Network {
    pub queue: Vec<InFlight>,
    /// Directed links (from, to) that lose every message.
    pub blocked: BTreeSet<(u64, u64)>,
    /// Per-mille chance to drop a message.
    pub drop_pm: u64,
    /// Per-mille chance to deliver a message twice.
    pub dup_pm: u64,
    /// Messages take 1..=max_delay time units.
    pub max_delay: u64,
    /// Messages lost (to a drop or a blocked link) and messages delivered twice, so the test
    /// can assert that these faults really happened.
    pub dropped: u64,
    pub duplicated: u64,
}

/// What happened to a message at send time.
pub enum Fate {
    Queued,
    Dropped,
}

impl Network {
    pub fn new(drop_pm: u64, dup_pm: u64, max_delay: u64) -> Network {
        Network {
            queue: Vec::new(),
            blocked: BTreeSet::new(),
            drop_pm,
            dup_pm,
            max_delay,
            dropped: 0,
            duplicated: 0,
        }
    }

    pub fn is_blocked(&self, from: u64, to: u64) -> bool {
        self.blocked.contains(&(from, to))
    }

    pub fn send(&mut self, rng: &mut SplitMix64, now: u64, msg: Message) -> Fate {
        if self.is_blocked(msg.from, msg.to) || rng.chance(self.drop_pm, 1000) {
            self.dropped += 1;
            return Fate::Dropped;
        }
        if rng.chance(self.dup_pm, 1000) {
            self.duplicated += 1;
            let deliver_at = now + 1 + rng.below(self.max_delay);
            self.queue.push(InFlight {
                deliver_at,
                msg: msg.clone(),
            });
        }
        let deliver_at = now + 1 + rng.below(self.max_delay);
        self.queue.push(InFlight { deliver_at, msg });
        Fate::Queued
    }

    /// Removes and returns the messages due at `now`, in random order.
    pub fn due(&mut self, rng: &mut SplitMix64, now: u64) -> Vec<Message> {
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.queue.len() {
            if self.queue[i].deliver_at <= now {
                due.push(self.queue.swap_remove(i).msg);
            } else {
                i += 1;
            }
        }
        // Fisher-Yates shuffle: delivery order among simultaneous messages is arbitrary.
        for i in (1..due.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            due.swap(i, j);
        }
        due
    }

    /// Partitions the given ids into two sides that cannot talk to each other.
    pub fn split(&mut self, a: &[u64], b: &[u64]) {
        for &x in a {
            for &y in b {
                self.blocked.insert((x, y));
                self.blocked.insert((y, x));
            }
        }
    }

    /// Blocks one direction of one link.
    pub fn block_one_way(&mut self, from: u64, to: u64) {
        self.blocked.insert((from, to));
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }
}
