//! The leader's bookkeeping for the whole cluster: the configuration, one [`Progress`] per
//! member, and the votes of the current election.

use std::collections::{BTreeMap, BTreeSet};

use crate::progress::Progress;
use crate::quorum::{self, VoteResult};
use crate::types::{ConfState, NodeId};

/// Configuration + per-member progress + votes.
#[derive(Clone, Debug)]
pub struct ProgressTracker {
    /// Voting members.
    pub voters: BTreeSet<NodeId>,
    /// Non-voting members.
    pub learners: BTreeSet<NodeId>,
    /// Progress of every member (voters and learners), including the local one.
    pub progress: BTreeMap<NodeId, Progress>,
    /// Votes received in the current election.
    pub votes: BTreeMap<NodeId, bool>,
    max_inflight: usize,
    max_inflight_bytes: u64,
}

impl ProgressTracker {
    /// An empty tracker with the given flow-control limits.
    pub fn new(max_inflight: usize, max_inflight_bytes: u64) -> ProgressTracker {
        ProgressTracker {
            voters: BTreeSet::new(),
            learners: BTreeSet::new(),
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            max_inflight,
            max_inflight_bytes,
        }
    }

    /// The current configuration.
    pub fn conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters.iter().copied().collect(),
            learners: self.learners.iter().copied().collect(),
        }
    }

    /// Switches to `cs`, keeping the progress of members that stay and creating fresh
    /// progress (probing from `next`) for new ones.
    pub fn set_conf(&mut self, cs: &ConfState, next: u64) {
        self.voters = cs.voters.iter().copied().collect();
        self.learners = cs.learners.iter().copied().collect();
        let members: BTreeSet<NodeId> = self.voters.union(&self.learners).copied().collect();
        self.progress.retain(|id, _| members.contains(id));
        for &id in &members {
            let pr = self.progress.entry(id).or_insert_with(|| {
                let mut p = Progress::new(next, self.max_inflight, self.max_inflight_bytes);
                // A new member has not had the chance to answer yet; don't let check-quorum
                // count it as unreachable right away.
                p.recent_active = true;
                p
            });
            pr.is_learner = self.learners.contains(&id);
        }
    }

    /// Resets every member's progress (on becoming leader or follower).
    pub fn reset_progress(&mut self, next: u64) {
        for (id, pr) in self.progress.iter_mut() {
            *pr = Progress::new(next, self.max_inflight, self.max_inflight_bytes);
            pr.is_learner = self.learners.contains(id);
        }
    }

    /// True if `id` votes.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// The index replicated on a majority of voters (§5.3).
    pub fn committed(&self) -> u64 {
        quorum::committed_index(&self.voters, |id| {
            self.progress.get(&id).map_or(0, |p| p.matched)
        })
    }

    /// Records `id`'s vote (first answer wins) and returns the election's outcome.
    pub fn record_vote(&mut self, id: NodeId, granted: bool) -> VoteResult {
        self.votes.entry(id).or_insert(granted);
        quorum::vote_result(&self.voters, &self.votes)
    }

    /// Check quorum (thesis §6.2): true if a majority of voters (counting `self_id`) was heard
    /// from since the last call; resets the activity flags for the next round.
    pub fn quorum_active(&mut self, self_id: NodeId) -> bool {
        let mut active = 0;
        for (&id, pr) in self.progress.iter_mut() {
            if id == self_id {
                pr.recent_active = true;
            }
            if pr.recent_active && self.voters.contains(&id) {
                active += 1;
            }
            if id != self_id {
                pr.recent_active = false;
            }
        }
        active >= quorum::majority(self.voters.len())
    }
}
