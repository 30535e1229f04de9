//! What the leader knows about each follower's log, and the flow control that decides when
//! to send it more (the "progress state machine" of etcd-raft's design.md).
//!
//! ```text
//!            +---------------------------------------------------------+
//!            |              send snapshot (log compacted)              |
//!            |                                                         v
//!   +-----------+  append accepted   +-------------+           +------------+
//!   |   Probe   | -----------------> |  Replicate  |           |  Snapshot  |
//!   +-----------+ <----------------- +-------------+           +------------+
//!            ^     append rejected /                                   |
//!            |     follower unreachable                                |
//!            +--------------- snapshot applied or failed --------------+
//! ```
//!
//! * **Probe**: we don't know where the follower's log matches ours; send one append per
//!   heartbeat interval and backtrack on rejection (§5.3).
//! * **Replicate**: the follower is in sync; send appends optimistically (pipelining, thesis
//!   §10.2.2 "Batching and pipelining") as long as the in-flight window has room.
//! * **Snapshot**: the entries it needs are compacted; wait for the snapshot to be installed (§7).

use std::collections::VecDeque;

/// The replication state of one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Looking for the point where the logs match; one message at a time.
    Probe,
    /// Pipelining appends inside the in-flight window.
    Replicate,
    /// A snapshot is on its way.
    Snapshot,
}

/// A bounded window of append messages sent but not yet acknowledged, limited both in count
/// and in payload bytes: pipelining (thesis §10.2.2) with flow control, so a slow follower
/// cannot make the leader buffer unbounded data.
#[derive(Clone, Debug)]
pub struct Inflights {
    /// (last index in the message, payload bytes), oldest first.
    window: VecDeque<(u64, u64)>,
    bytes: u64,
    max_count: usize,
    max_bytes: u64,
}

impl Inflights {
    /// An empty window; `max_bytes == 0` means no byte limit.
    pub fn new(max_count: usize, max_bytes: u64) -> Inflights {
        Inflights {
            window: VecDeque::new(),
            bytes: 0,
            max_count,
            max_bytes,
        }
    }

    /// True if no more messages may be sent.
    pub fn full(&self) -> bool {
        self.window.len() >= self.max_count || (self.max_bytes > 0 && self.bytes >= self.max_bytes)
    }

    /// Records a sent message whose last entry is `index`.
    pub fn add(&mut self, index: u64, bytes: u64) {
        self.window.push_back((index, bytes));
        self.bytes += bytes;
    }

    /// The follower acknowledged everything up to `index`: those messages are no longer in flight.
    pub fn free_le(&mut self, index: u64) {
        while let Some(&(i, b)) = self.window.front() {
            if i > index {
                break;
            }
            self.bytes -= b;
            self.window.pop_front();
        }
    }

    /// Forgets the oldest message (used when a heartbeat response proves the follower is alive
    /// while the window is full, so the window cannot stay stuck on lost messages).
    pub fn free_first_one(&mut self) {
        if let Some((_, b)) = self.window.pop_front() {
            self.bytes -= b;
        }
    }

    /// Empties the window.
    pub fn reset(&mut self) {
        self.window.clear();
        self.bytes = 0;
    }

    /// Number of messages in flight.
    pub fn count(&self) -> usize {
        self.window.len()
    }
}

/// The leader's view of one follower (§5.3 Figure 2 "Volatile state on leaders":
/// `nextIndex[]` and `matchIndex[]`), plus flow-control state.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Highest index known to be replicated on the follower.
    pub matched: u64,
    /// Index of the next entry to send.
    pub next: u64,
    /// Flow-control state.
    pub state: ProgressState,
    /// In Snapshot state: the index of the snapshot being sent.
    pub pending_snapshot: u64,
    /// Heard from since the last check-quorum round (thesis §6.2).
    pub recent_active: bool,
    /// In Probe state: a probe is outstanding; wait for a reply or the next heartbeat.
    pub probe_sent: bool,
    /// The in-flight window (Replicate state).
    pub inflights: Inflights,
    /// True for a learner (receives the log, does not vote).
    pub is_learner: bool,
}

impl Progress {
    /// A follower we know nothing about yet: probe from `next`.
    pub fn new(next: u64, max_inflight: usize, max_inflight_bytes: u64) -> Progress {
        Progress {
            matched: 0,
            next,
            state: ProgressState::Probe,
            pending_snapshot: 0,
            recent_active: false,
            probe_sent: false,
            inflights: Inflights::new(max_inflight, max_inflight_bytes),
            is_learner: false,
        }
    }

    fn reset_state(&mut self, state: ProgressState) {
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.state = state;
        self.inflights.reset();
    }

    /// Back to probing, starting right after what we know matches (or after the snapshot).
    pub fn become_probe(&mut self) {
        if self.state == ProgressState::Snapshot {
            let pending = self.pending_snapshot;
            self.reset_state(ProgressState::Probe);
            self.next = (self.matched + 1).max(pending + 1);
        } else {
            self.reset_state(ProgressState::Probe);
            self.next = self.matched + 1;
        }
    }

    /// The follower's log matches up to `matched`: pipeline from there.
    pub fn become_replicate(&mut self) {
        self.reset_state(ProgressState::Replicate);
        self.next = self.matched + 1;
    }

    /// A snapshot at `snapshot_index` is being sent.
    pub fn become_snapshot(&mut self, snapshot_index: u64) {
        self.reset_state(ProgressState::Snapshot);
        self.pending_snapshot = snapshot_index;
    }

    /// The follower acknowledged `n`. Returns true if that is news.
    pub fn maybe_update(&mut self, n: u64) -> bool {
        let mut updated = false;
        if self.matched < n {
            self.matched = n;
            updated = true;
            self.probe_sent = false;
        }
        self.next = self.next.max(n + 1);
        updated
    }

    /// The follower rejected an append whose preceding index was `rejected`; `match_hint` is
    /// where it suggests to retry (§5.3 fast backtracking). Returns false for a stale reply.
    pub fn maybe_decr_to(&mut self, rejected: u64, match_hint: u64) -> bool {
        if self.state == ProgressState::Replicate {
            // A rejection of something older than what we know matches is stale.
            if rejected <= self.matched {
                return false;
            }
            self.next = self.matched + 1;
            return true;
        }
        // In Probe state only the rejection of our latest probe counts.
        if self.next - 1 != rejected {
            return false;
        }
        self.next = rejected.min(match_hint + 1).max(self.matched + 1);
        self.probe_sent = false;
        true
    }

    /// Records that an append carrying entries up to `last` (`bytes` payload) was sent.
    pub fn sent_entries(&mut self, count: usize, last: u64, bytes: u64) {
        match self.state {
            ProgressState::Replicate => {
                if count > 0 {
                    self.next = last + 1;
                    self.inflights.add(last, bytes);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot => {}
        }
    }

    /// True if nothing more may be sent to this follower for now.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.full(),
            ProgressState::Snapshot => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflights_bound_count_and_bytes() {
        let mut w = Inflights::new(3, 100);
        w.add(1, 10);
        w.add(2, 10);
        assert!(!w.full());
        w.add(3, 10);
        assert!(w.full(), "count bound");
        w.free_le(2);
        assert_eq!(w.count(), 1);
        w.add(4, 95);
        assert!(w.full(), "byte bound");
        w.free_le(4);
        assert!(!w.full());
    }

    #[test]
    fn probe_backtracks_with_hint_but_not_below_match() {
        let mut p = Progress::new(11, 10, 0);
        p.matched = 3;
        p.probe_sent = true;
        assert!(!p.maybe_decr_to(5, 2), "stale rejection ignored");
        assert!(p.maybe_decr_to(10, 6));
        assert_eq!(p.next, 7);
        assert!(!p.probe_sent);
        assert!(p.maybe_decr_to(6, 0));
        assert_eq!(p.next, 4, "never below match+1");
    }

    #[test]
    fn replicate_pipelines_until_window_full() {
        let mut p = Progress::new(1, 2, 0);
        p.become_replicate();
        p.sent_entries(1, 1, 1);
        p.sent_entries(1, 2, 1);
        assert_eq!(p.next, 3, "optimistic next");
        assert!(p.is_paused());
        p.maybe_update(1);
        p.inflights.free_le(1);
        assert!(!p.is_paused());
    }
}
