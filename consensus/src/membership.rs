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
