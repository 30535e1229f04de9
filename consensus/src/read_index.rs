//! Linearizable reads without writing to the log: ReadIndex (thesis §6.4).
//!
//! 1. The leader must have committed an entry of its own term, so its commit index is at
//!    least as large as that of any previous leader.
//! 2. It records its commit index as the request's *read index*.
//! 3. It confirms it is still the leader by a round of heartbeats acknowledged by a majority
//!    (a newer leader would have made that majority reject the old term).
//! 4. The application answers the read once it has applied up to the read index.
//!
//! Followers forward the request to the leader and receive the read index back.

use crate::quorum;
use crate::raft::Raft;
use crate::storage::Storage;
use crate::types::{Message, MessageType, ReadState};

impl<S: Storage> Raft<S> {
    fn committed_entry_in_current_term(&self) -> bool {
        self.log
            .term(self.log.committed)
            .is_ok_and(|t| t == self.term)
    }

    /// A read request at the leader (local, or forwarded by a follower).
    pub(crate) fn handle_read_index_as_leader(&mut self, m: Message) {
        if !self.committed_entry_in_current_term() {
            // Step 1: wait for our first commit (the empty entry of become_leader). This holds
            // for a single voter too: after a restart its persisted commit index may lag
            // entries committed (and acknowledged) before the crash, because a commit-only
            // hard state need not be synced.
            self.pending_read_index.push(m);
            return;
        }
        self.send_read_index(m);
    }

    fn send_read_index(&mut self, m: Message) {
        let index = self.log.committed;
        if self.tracker.voters.len() == 1 && self.tracker.is_voter(self.id) {
            // Step 3 is trivial for a single voter: no other member can lead its term.
            self.respond_to_read_index(m, index);
            return;
        }
        if self.mutations.read_index_without_heartbeat {
            // The deliberately broken rule: skip step 3.
            self.respond_to_read_index(m, index);
            return;
        }
        let ctx = m.context.clone();
        self.read_only.add_request(index, m);
        self.read_only.recv_ack(self.id, &ctx);
        self.bcast_heartbeat_with_ctx(Some(ctx));
    }

    /// Our first entry of this term committed: serve the reads that waited for it.
    pub(crate) fn release_pending_read_index(&mut self) {
        if self.pending_read_index.is_empty() || !self.committed_entry_in_current_term() {
            return;
        }
        for m in std::mem::take(&mut self.pending_read_index) {
            self.send_read_index(m);
        }
    }

    /// A heartbeat response carried a read context: count it; at a majority (step 3) release
    /// every request up to and including that context.
    pub(crate) fn handle_read_index_ack(&mut self, from: u64, ctx: &[u8]) {
        let confirmed = match self.read_only.recv_ack(from, ctx) {
            Some(acks) => {
                let votes = acks.iter().map(|&id| (id, true)).collect();
                quorum::vote_result(&self.tracker.voters, &votes) == quorum::VoteResult::Won
            }
            None => false,
        };
        if !confirmed {
            return;
        }
        for st in self.read_only.advance(ctx) {
            self.respond_to_read_index(st.req, st.index);
        }
    }

    fn respond_to_read_index(&mut self, req: Message, index: u64) {
        if req.from == self.id || req.from == 0 {
            self.read_states.push(ReadState {
                index,
                context: req.context,
            });
        } else {
            let mut resp = Message::new(MessageType::ReadIndexResponse, self.id, req.from);
            resp.index = index;
            resp.context = req.context;
            self.send(resp);
        }
    }
}
