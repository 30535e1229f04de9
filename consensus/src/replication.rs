//! Log replication (§5.3), the commit rule (§5.4.2), heartbeats, snapshots for followers that
//! fell behind the compacted log (§7), and proposals.

use crate::codec::decode_conf_change_entry;
use crate::confchange;
use crate::errors::{Error, StorageError};
use crate::progress::ProgressState;
use crate::raft::Raft;
use crate::storage::Storage;
use crate::types::{Entry, EntryKind, Message, MessageType, NodeId, Role};

impl<S: Storage> Raft<S> {
    // ------------------------------------------------------------------ leader: proposals

    /// A client proposal reached the leader (§5.3: "The leader appends the command to its log
    /// as a new entry, then issues AppendEntries RPCs in parallel").
    pub(crate) fn handle_propose(&mut self, m: Message) -> Result<(), Error> {
        if m.entries.is_empty() {
            return Err(Error::InvalidMessage("empty proposal"));
        }
        if !self.tracker.progress.contains_key(&self.id) {
            return Err(Error::ProposalDropped(
                "this member is not in the configuration",
            ));
        }
        if self.lead_transferee.is_some() {
            // Thesis §3.10: "the prior leader stops accepting new client requests" during a
            // transfer, so the transferee can catch up.
            return Err(Error::ProposalDropped("leadership transfer in progress"));
        }
        let mut conf_changes = 0;
        for e in &m.entries {
            if e.kind == EntryKind::ConfChange {
                conf_changes += 1;
                if conf_changes > 1 || self.pending_conf_index > self.log.applied {
                    // Thesis §4.1: one membership change at a time.
                    return Err(Error::ProposalDropped(
                        "a membership change is already pending",
                    ));
                }
                let cc = decode_conf_change_entry(e).map_err(|_| {
                    Error::ConfChangeInvalid("undecodable membership change".into())
                })?;
                confchange::apply(&self.tracker.conf_state(), &cc)?;
            }
        }
        if !self.increase_uncommitted_size(&m.entries) {
            return Err(Error::ProposalDropped("too many uncommitted entries"));
        }
        let first = self.log.last_index() + 1;
        if let Some(pos) = m
            .entries
            .iter()
            .position(|e| e.kind == EntryKind::ConfChange)
        {
            self.pending_conf_index = first + pos as u64;
        }
        self.append_entries(m.entries);
        self.bcast_append();
        Ok(())
    }

    fn increase_uncommitted_size(&mut self, ents: &[Entry]) -> bool {
        let s: u64 = ents.iter().map(Entry::payload_size).sum();
        if self.max_uncommitted_size > 0
            && self.uncommitted_size > 0
            && s > 0
            && self.uncommitted_size + s > self.max_uncommitted_size
        {
            return false;
        }
        self.uncommitted_size += s;
        true
    }

    /// Committed entries were handed out for applying: they no longer count as uncommitted.
    pub fn reduce_uncommitted_size(&mut self, ents: &[Entry]) {
        if self.role != Role::Leader {
            return;
        }
        let s: u64 = ents.iter().map(Entry::payload_size).sum();
        self.uncommitted_size = self.uncommitted_size.saturating_sub(s);
    }

    /// Appends entries of the current term to the leader's own log. The leader's own progress
    /// is updated only once they are durable ([`Raft::on_persisted`]).
    pub(crate) fn append_entries(&mut self, mut ents: Vec<Entry>) {
        let mut index = self.log.last_index();
        for e in ents.iter_mut() {
            index += 1;
            e.term = self.term;
            e.index = index;
        }
        self.log.append(ents);
    }

    /// The application made the log durable up to `log.persisted_index()`. For a leader this is
    /// its own acknowledgement (thesis §10.2.1: the leader writes its log in parallel with
    /// replicating it and counts itself only once its write completes).
    pub fn on_persisted(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let persisted = self.log.persisted_index();
        let id = self.id;
        let updated = self
            .tracker
            .progress
            .get_mut(&id)
            .is_some_and(|pr| pr.maybe_update(persisted));
        if updated && self.maybe_commit() {
            self.release_pending_read_index();
            self.bcast_append();
        }
    }

    /// §5.3/§5.4.2: advance the commit index to the highest index replicated on a majority,
    /// provided that entry is from the current term.
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let mci = self.tracker.committed();
        self.log.maybe_commit(
            mci,
            self.term,
            self.mutations.commit_previous_term_by_counting,
        )
    }

    // ------------------------------------------------------------------ leader: sending

    /// Sends appends (or heartbeats' worth of empty appends) to every other member.
    pub(crate) fn bcast_append(&mut self) {
        let ids: Vec<NodeId> = self.tracker.progress.keys().copied().collect();
        for id in ids {
            if id != self.id {
                self.send_append(id);
            }
        }
    }

    /// Sends the next append to `to` if flow control allows it; to a follower in Replicate
    /// state, keeps sending (pipelining) until its window is full or it has everything.
    pub(crate) fn send_append(&mut self, to: NodeId) {
        if self.maybe_send_append(to, true) {
            while self
                .tracker
                .progress
                .get(&to)
                .is_some_and(|p| p.state == ProgressState::Replicate)
                && self.maybe_send_append(to, false)
            {}
        }
    }

    /// Sends the entries `to` is missing, from its `next` index on, or a snapshot if they are
    /// compacted (§7). With `send_if_empty == false`, sends nothing when there is nothing new.
    /// Returns true if a message was sent.
    pub(crate) fn maybe_send_append(&mut self, to: NodeId, send_if_empty: bool) -> bool {
        let Some(pr) = self.tracker.progress.get(&to) else {
            return false;
        };
        if pr.is_paused() {
            return false;
        }
        let next = pr.next;
        let prev_index = next - 1;
        let prev_term = self.log.term(prev_index);
        let ents = self.log.entries(next, self.max_msg_size);
        match (prev_term, ents) {
            (Ok(prev_term), Ok(ents)) => {
                if ents.is_empty() && !send_if_empty {
                    return false;
                }
                let count = ents.len();
                let last = ents.last().map_or(prev_index, |e| e.index);
                let bytes: u64 = ents.iter().map(Entry::payload_size).sum();
                let mut m = Message::new(MessageType::Append, self.id, to);
                m.index = prev_index;
                m.log_term = prev_term;
                m.entries = ents;
                m.commit = self.log.committed;
                if let Some(pr) = self.tracker.progress.get_mut(&to) {
                    pr.sent_entries(count, last, bytes);
                }
                self.send(m);
                true
            }
            _ => {
                // §7: "the leader must occasionally send snapshots to followers that lag behind"
                // — the entries it needs were discarded by compaction.
                if !self.tracker.progress[&to].recent_active {
                    return false;
                }
                let snap = match self.log.snapshot() {
                    Ok(s) => s,
                    Err(StorageError::SnapshotTemporarilyUnavailable) => return false,
                    Err(e) => panic!("leader {} failed to read its snapshot: {e}", self.id),
                };
                assert!(snap.meta.index > 0, "need a non-empty snapshot to send");
                if let Some(pr) = self.tracker.progress.get_mut(&to) {
                    pr.become_snapshot(snap.meta.index);
                }
                let mut m = Message::new(MessageType::Snapshot, self.id, to);
                m.snapshot = Some(snap);
                self.send(m);
                true
            }
        }
    }

    /// §5.2: "Upon election: send initial empty AppendEntries RPCs (heartbeat) to each server;
    /// repeat during idle periods to prevent election timeouts". Heartbeats also carry the
    /// context of the newest pending ReadIndex request (thesis §6.4).
    pub(crate) fn bcast_heartbeat(&mut self) {
        let ctx = self.read_only.last_pending_request_ctx();
        self.bcast_heartbeat_with_ctx(ctx);
    }

    pub(crate) fn bcast_heartbeat_with_ctx(&mut self, ctx: Option<Vec<u8>>) {
        let ids: Vec<NodeId> = self.tracker.progress.keys().copied().collect();
        for id in ids {
            if id == self.id {
                continue;
            }
            let matched = self.tracker.progress[&id].matched;
            let mut m = Message::new(MessageType::Heartbeat, self.id, id);
            // Only what the follower is known to hold may be committed on it (§5.3).
            m.commit = matched.min(self.log.committed);
            if let Some(c) = &ctx {
                m.context = c.clone();
            }
            self.send(m);
        }
    }

    // ------------------------------------------------------------------ leader: responses

    pub(crate) fn handle_append_response(&mut self, m: Message) {
        let last_index = self.log.last_index();
        let Some(pr) = self.tracker.progress.get_mut(&m.from) else {
            return;
        };
        pr.recent_active = true;
        if m.reject {
            // §5.3: "If AppendEntries fails because of log inconsistency: decrement nextIndex
            // and retry" — using the follower's hint to skip a whole term at a time.
            let mut next_probe = m.reject_hint;
            if m.log_term > 0 {
                next_probe = self.log.find_conflict_by_term(m.reject_hint, m.log_term).0;
            }
            let pr = self
                .tracker
                .progress
                .get_mut(&m.from)
                .expect("checked above");
            if pr.maybe_decr_to(m.index, next_probe) {
                if pr.state == ProgressState::Replicate {
                    pr.become_probe();
                }
                self.send_append(m.from);
            }
            return;
        }
        let was_paused = pr.is_paused();
        if !(pr.maybe_update(m.index)
            || (pr.matched == m.index && pr.state == ProgressState::Probe))
        {
            return;
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Snapshot => {
                if pr.matched + 1 >= self.log.first_index() {
                    // The follower caught up through the snapshot: resume normal replication.
                    pr.become_probe();
                    pr.become_replicate();
                }
            }
            ProgressState::Replicate => pr.inflights.free_le(m.index),
        }
        let matched = pr.matched;
        if self.maybe_commit() {
            self.release_pending_read_index();
            // Tell everyone about the new commit index.
            self.bcast_append();
        } else if was_paused {
            self.send_append(m.from);
        }
        // Pipelining: keep sending while the window has room.
        while self.maybe_send_append(m.from, false) {}
        if self.lead_transferee == Some(m.from) && matched == last_index {
            // Thesis §3.10: the transferee is up to date; tell it to start an election.
            self.send_timeout_now(m.from);
        }
    }

    pub(crate) fn handle_heartbeat_response(&mut self, m: Message) {
        let last_index = self.log.last_index();
        let Some(pr) = self.tracker.progress.get_mut(&m.from) else {
            return;
        };
        pr.recent_active = true;
        pr.probe_sent = false;
        if pr.state == ProgressState::Replicate && pr.inflights.full() {
            // The follower is alive but acknowledges nothing: some appends were lost. Free a
            // slot so replication (and the rejection that repairs it) can go on.
            pr.inflights.free_first_one();
        }
        if pr.matched < last_index {
            self.send_append(m.from);
        }
        if !m.context.is_empty() {
            self.handle_read_index_ack(m.from, &m.context);
        }
    }

    // ------------------------------------------------------------------ followers

    /// AppendEntries receiver implementation (§5.3, Figure 2).
    pub(crate) fn handle_append(&mut self, m: Message) {
        let mut resp = Message::new(MessageType::AppendResponse, self.id, m.from);
        if m.index < self.log.committed {
            // Everything up to our commit index is known to match; say so.
            resp.index = self.log.committed;
            self.send(resp);
            return;
        }
        match self
            .log
            .maybe_append(m.index, m.log_term, m.commit, m.entries)
        {
            Some(last_new) => {
                resp.index = last_new;
                self.send(resp);
            }
            None => {
                // §5.3: "Reply false if log doesn't contain an entry at prevLogIndex whose term
                // matches prevLogTerm", with a hint: the last index at or before it whose term
                // is not greater than the leader's (fast backtracking).
                let hint = m.index.min(self.log.last_index());
                let (hint_index, hint_term) = self.log.find_conflict_by_term(hint, m.log_term);
                resp.index = m.index;
                resp.reject = true;
                resp.reject_hint = hint_index;
                resp.log_term = hint_term;
                self.send(resp);
            }
        }
    }

    pub(crate) fn handle_heartbeat(&mut self, m: Message) {
        self.log.commit_to(m.commit);
        let mut resp = Message::new(MessageType::HeartbeatResponse, self.id, m.from);
        resp.context = m.context;
        self.send(resp);
    }

    /// InstallSnapshot receiver (§7): if the snapshot is news, discard the log and adopt it.
    pub(crate) fn handle_snapshot(&mut self, m: Message) {
        let Some(snap) = m.snapshot else { return };
        let mut resp = Message::new(MessageType::AppendResponse, self.id, m.from);
        let (index, term) = (snap.meta.index, snap.meta.term);
        if index <= self.log.committed {
            // Old news.
            resp.index = self.log.committed;
        } else if self.log.match_term(index, term) {
            // §7: "If existing log entry has same index and term as snapshot's last included
            // entry, retain log entries following it" — just fast-forward the commit index.
            self.log.commit_to(index);
            resp.index = self.log.committed;
        } else if self.log.applying > self.log.applied {
            // Committed entries are out for applying (a Ready is in flight) and may contain
            // membership changes, which the application will apply on top of the configuration
            // in force (thesis §4.1: changes take effect when applied). Installing the
            // snapshot's configuration now would have them applied on top of a *later*
            // configuration (resurrecting a removed member, say). Drop the snapshot as if it
            // were lost; the leader sends it again (§7).
            return;
        } else {
            let last = index + 1;
            self.tracker.set_conf(&snap.meta.conf_state, last);
            self.log.restore(snap);
            resp.index = self.log.last_index();
        }
        self.send(resp);
    }
}
