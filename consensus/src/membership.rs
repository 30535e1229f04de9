//! Applying membership changes (thesis §4.1) and leadership transfer (thesis §3.10).

use crate::confchange;
use crate::errors::Error;
use crate::raft::Raft;
use crate::storage::Storage;
use crate::types::{ConfChange, ConfState, Message, MessageType, NodeId, Role, NONE};

impl<S: Storage> Raft<S> {
    /// Applies a committed membership change: the new configuration takes effect now, when the
    /// entry is applied (as in etcd). Returns the new configuration.
    pub fn apply_conf_change(&mut self, cc: &ConfChange) -> Result<ConfState, Error> {
        let cs = confchange::apply(&self.tracker.conf_state(), cc)?;
        let next = self.log.last_index() + 1;
        self.tracker.set_conf(&cs, next);
        if self.role == Role::Leader {
            if !self.tracker.is_voter(self.id) {
                // We removed ourselves: stop leading; the rest of the cluster elects a leader
                // among the remaining voters (thesis §4.2.2).
                let term = self.term;
                self.become_follower(term, NONE);
                return Ok(cs);
            }
            if let Some(t) = self.lead_transferee {
                if !self.tracker.progress.contains_key(&t) {
                    self.lead_transferee = None;
                }
            }
            // The majority changed size: maybe something is committed now.
            if self.maybe_commit() {
                self.release_pending_read_index();
            }
            self.bcast_append();
        }
        Ok(cs)
    }

    /// Replaces the configuration with `cs` outright, for a member whose state machine and
    /// membership record were replaced by a snapshot image newer than the snapshot's metadata:
    /// the membership changes between the two are in entries the application skips, so
    /// instead of applying them one by one it hands over the configuration they lead to (what a
    /// restart would start from). Leaders do not install snapshots; a leader calling this
    /// steps down if `cs` no longer lists it as a voter.
    pub fn restore_conf_state(&mut self, cs: &ConfState) {
        let next = self.log.last_index() + 1;
        self.tracker.set_conf(cs, next);
        if self.role == Role::Leader && !self.tracker.is_voter(self.id) {
            let term = self.term;
            self.become_follower(term, NONE);
        }
    }

    /// Thesis §3.10: hand leadership to `to`. The leader stops accepting proposals, brings `to`
    /// up to date, then sends it TimeoutNow so it campaigns at once. Aborted if it does not
    /// finish within an election timeout.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), Error> {
        if self.role != Role::Leader {
            let leader = (self.leader_id != NONE).then_some(self.leader_id);
            return Err(Error::NotLeader { leader });
        }
        if to == self.id {
            self.lead_transferee = None;
            return Ok(());
        }
        if !self.tracker.progress.contains_key(&to) {
            return Err(Error::PeerNotFound(to));
        }
        if !self.tracker.is_voter(to) {
            return Err(Error::ProposalDropped(
                "cannot transfer leadership to a learner",
            ));
        }
        if self.lead_transferee == Some(to) {
            return Ok(());
        }
        self.election_elapsed = 0;
        self.lead_transferee = Some(to);
        if self.tracker.progress[&to].matched == self.log.last_index() {
            self.send_timeout_now(to);
        } else {
            self.send_append(to);
        }
        Ok(())
    }

    pub(crate) fn send_timeout_now(&mut self, to: NodeId) {
        self.send(Message::new(MessageType::TimeoutNow, self.id, to));
    }
}
