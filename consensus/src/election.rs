//! Leader election (§5.2, §5.4.1) with pre-vote (thesis §9.6).

use crate::errors::Error;
use crate::quorum::VoteResult;
use crate::raft::Raft;
use crate::storage::Storage;
use crate::types::{EntryKind, Message, MessageType, Role, CAMPAIGN_TRANSFER, NONE};

impl<S: Storage> Raft<S> {
    /// The election timer fired (or the application asked us to campaign). `transfer` is set
    /// for elections started by a leadership transfer, which skip pre-vote (thesis §3.10).
    pub fn hup(&mut self, transfer: bool) {
        if self.role == Role::Leader || !self.promotable() {
            return;
        }
        if self.has_unapplied_conf_changes() {
            // Our configuration may be about to change; campaigning under the old one could
            // count the wrong majority. Wait until the change is applied.
            return;
        }
        if self.pre_vote && !transfer {
            self.campaign(true, false);
        } else {
            self.campaign(false, transfer);
        }
    }

    fn has_unapplied_conf_changes(&self) -> bool {
        let (lo, hi) = (self.log.applied + 1, self.log.committed + 1);
        if lo >= hi {
            return false;
        }
        match self.log.slice(lo.max(self.log.first_index()), hi, u64::MAX) {
            Ok(ents) => ents.iter().any(|e| e.kind == EntryKind::ConfChange),
            Err(_) => false,
        }
    }

    /// Starts a (pre-)election: vote for ourselves and ask every other voter (§5.2: "It then
    /// votes for itself and issues RequestVote RPCs in parallel to each of the other servers").
    pub(crate) fn campaign(&mut self, pre: bool, transfer: bool) {
        let (vote_type, term) = if pre {
            self.become_pre_candidate();
            // Thesis §9.6: ask at the term we *would* use, without adopting it yet.
            (MessageType::RequestPreVote, self.term + 1)
        } else {
            self.become_candidate();
            (MessageType::RequestVote, self.term)
        };
        if self.poll(self.id, true) != VoteResult::Pending {
            return; // a single-voter cluster decides at once
        }
        let voters: Vec<_> = self.tracker.voters.iter().copied().collect();
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        for id in voters {
            if id == self.id {
                continue;
            }
            let mut m = Message::new(vote_type, self.id, id);
            m.term = term;
            m.index = last_index;
            m.log_term = last_term;
            if transfer {
                m.context = CAMPAIGN_TRANSFER.to_vec();
            }
            self.send(m);
        }
    }

    /// Counts a vote; on a majority a pre-candidate starts the real election and a candidate
    /// becomes leader (§5.2); on a lost election we return to follower.
    pub(crate) fn poll(&mut self, from: u64, granted: bool) -> VoteResult {
        let result = self.tracker.record_vote(from, granted);
        match result {
            VoteResult::Won => {
                if self.role == Role::PreCandidate {
                    self.campaign(false, false);
                } else {
                    self.become_leader();
                    self.bcast_append();
                }
            }
            VoteResult::Lost => {
                let term = self.term;
                self.become_follower(term, NONE);
            }
            VoteResult::Pending => {}
        }
        result
    }

    /// Answers RequestVote / RequestPreVote.
    ///
    /// §5.2: "each server will vote for at most one candidate in a given term, on a
    /// first-come-first-served basis". §5.4.1: "the voter denies its vote if its own log is
    /// more up-to-date than that of the candidate". Thesis §9.6: a pre-vote is granted under
    /// the same log rule when the candidate's proposed term is ahead of ours, and changes
    /// nothing.
    pub(crate) fn handle_vote_request(&mut self, m: Message) {
        let pre = m.msg_type == MessageType::RequestPreVote;
        let can_vote = self.vote == m.from
            || (self.vote == NONE && self.leader_id == NONE)
            || (pre && m.term > self.term);
        let log_ok =
            self.mutations.vote_without_log_check || self.log.is_up_to_date(m.index, m.log_term);
        let resp_type = if pre {
            MessageType::RequestPreVoteResponse
        } else {
            MessageType::RequestVoteResponse
        };
        let mut resp = Message::new(resp_type, self.id, m.from);
        if can_vote && log_ok {
            // Answer at the requested term so the candidate does not discard a pre-vote as
            // stale (our own term may be lower for pre-votes).
            resp.term = m.term;
            if !pre {
                self.election_elapsed = 0;
                self.vote = m.from;
            }
        } else {
            resp.term = self.term;
            resp.reject = true;
        }
        self.send(resp);
    }

    pub(crate) fn step_candidate(&mut self, m: Message) -> Result<(), Error> {
        match m.msg_type {
            MessageType::Propose | MessageType::ReadIndex => {
                Err(Error::ProposalDropped("no leader"))
            }
            // §5.2: "If the leader's term is at least as large as the candidate's current term,
            // then the candidate recognizes the leader as legitimate and returns to follower".
            MessageType::Append => {
                self.become_follower(m.term, m.from);
                self.handle_append(m);
                Ok(())
            }
            MessageType::Heartbeat => {
                self.become_follower(m.term, m.from);
                self.handle_heartbeat(m);
                Ok(())
            }
            MessageType::Snapshot => {
                self.become_follower(m.term, m.from);
                self.handle_snapshot(m);
                Ok(())
            }
            MessageType::RequestPreVoteResponse if self.role == Role::PreCandidate => {
                self.poll(m.from, !m.reject);
                Ok(())
            }
            MessageType::RequestVoteResponse if self.role == Role::Candidate => {
                self.poll(m.from, !m.reject);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
