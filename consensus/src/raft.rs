//! The Raft state machine of one member: the struct, the single entry point [`Raft::step`],
//! the clock ([`Raft::tick`]) and the role transitions.
//!
//! Inputs arrive as messages or ticks; outputs accumulate in `msgs`, `msgs_after_append`,
//! `read_states` and the unstable part of the log, and [`crate::RawNode`] hands them to the
//! application as a [`crate::Ready`]. Nothing here performs I/O or reads a clock.
//!
//! The rules are split by topic: elections in `election.rs`, log replication and snapshots in
//! `replication.rs`, linearizable reads in `read_index.rs`, membership and leadership transfer
//! in `membership.rs`.

use crate::config::{Config, Mutations};
use crate::errors::Error;
use crate::log::RaftLog;
use crate::read_only::ReadOnly;
use crate::rng::SplitMix64;
use crate::storage::Storage;
use crate::tracker::ProgressTracker;
use crate::types::{
    HardState, Message, MessageType, NodeId, ReadState, Role, SoftState, CAMPAIGN_TRANSFER, NONE,
};

/// One Raft member.
#[derive(Debug)]
pub struct Raft<S: Storage> {
    /// This member's id.
    pub id: NodeId,
    /// Current term (§5.1: terms act as a logical clock).
    pub term: u64,
    /// Whom we voted for in `term` (§5.2: at most one vote per term).
    pub vote: NodeId,
    /// The log.
    pub log: RaftLog<S>,
    /// Configuration, progress of every member and election votes.
    pub tracker: ProgressTracker,
    /// Our role.
    pub role: Role,
    /// The leader we follow in `term`, or [`NONE`].
    pub leader_id: NodeId,
    /// The member leadership is being transferred to (thesis §3.10).
    pub lead_transferee: Option<NodeId>,
    /// Index of the latest membership-change entry; no new change is accepted until it is
    /// applied (one change at a time, thesis §4.1).
    pub pending_conf_index: u64,
    /// Payload bytes of entries proposed but not yet committed (leader only).
    pub(crate) uncommitted_size: u64,
    /// Read requests waiting for their heartbeat round.
    pub(crate) read_only: ReadOnly,
    /// Read requests waiting until this leader has committed an entry of its term (§6.4).
    pub(crate) pending_read_index: Vec<Message>,
    /// Confirmed reads for the application.
    pub read_states: Vec<ReadState>,
    /// Messages that may be sent right away.
    pub msgs: Vec<Message>,
    /// Messages to send only after the current Ready is durable (votes, append acks).
    pub msgs_after_append: Vec<Message>,
    /// Ticks since the last election-timer reset (followers/candidates), or since the last
    /// check-quorum round (leaders).
    pub(crate) election_elapsed: usize,
    pub(crate) heartbeat_elapsed: usize,
    pub(crate) election_timeout: usize,
    pub(crate) heartbeat_timeout: usize,
    pub(crate) randomized_election_timeout: usize,
    pub(crate) check_quorum: bool,
    pub(crate) pre_vote: bool,
    pub(crate) max_msg_size: u64,
    pub(crate) max_uncommitted_size: u64,
    pub(crate) rng: SplitMix64,
    pub(crate) mutations: Mutations,
}

impl<S: Storage> Raft<S> {
    /// Builds a member from its configuration and storage. On a restart the persisted hard
    /// state and configuration are loaded; the member starts as a follower (§5.2: "When
    /// servers start up, they begin as followers").
    pub fn new(config: &Config, store: S, rng_seed: u64) -> Result<Raft<S>, Error> {
        config.validate()?;
        let (hs, cs) = store.initial_state()?;
        let log = RaftLog::new(store);
        let mut tracker = ProgressTracker::new(config.max_inflight_msgs, config.max_inflight_bytes);
        tracker.set_conf(&cs, log.last_index() + 1);
        let mut r = Raft {
            id: config.id,
            term: 0,
            vote: NONE,
            log,
            tracker,
            role: Role::Follower,
            leader_id: NONE,
            lead_transferee: None,
            pending_conf_index: 0,
            uncommitted_size: 0,
            read_only: ReadOnly::default(),
            pending_read_index: Vec::new(),
            read_states: Vec::new(),
            msgs: Vec::new(),
            msgs_after_append: Vec::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            election_timeout: config.election_tick,
            heartbeat_timeout: config.heartbeat_tick,
            randomized_election_timeout: config.election_tick,
            check_quorum: config.check_quorum,
            pre_vote: config.pre_vote,
            max_msg_size: config.max_size_per_msg,
            max_uncommitted_size: config.max_uncommitted_entries_size,
            rng: SplitMix64::new(rng_seed),
            mutations: config.mutations,
        };
        if hs != HardState::default() {
            let last = r.log.last_index();
            // §7: the snapshot covers committed entries only, so a commit index below it is
            // a torn write (snapshot persisted, the hard state after it not), not a lost log.
            if hs.commit > last {
                return Err(Error::ConfigInvalid(format!(
                    "persisted commit {} is out of range [{}, {}]: the log was truncated or lost",
                    hs.commit, r.log.committed, last
                )));
            }
            r.log.commit_to(hs.commit);
            r.term = hs.term;
            r.vote = hs.vote;
        }
        let last_term = r.log.last_term();
        if r.term < last_term {
            // A torn write can persist entries but not the hard state written after them. The
            // member has then seen `last_term` without recording it; it cannot have voted in
            // that term (a vote is durable before it is sent), so adopting the term with no
            // vote is safe, and restores the invariant currentTerm >= last log term.
            r.term = last_term;
            r.vote = NONE;
        }
        if config.applied > 0 {
            // Figure 2: lastApplied <= commitIndex — whatever the application applied was
            // committed, even if the commit index persisted with the hard state lags behind (a
            // commit-only hard state need not be synced). Raise the commit index rather than
            // hand the applied entries out again.
            r.log.commit_to(config.applied.min(r.log.last_index()));
            r.log.applied_to(config.applied.min(r.log.committed));
        }
        r.become_follower(r.term, NONE);
        Ok(r)
    }

    /// The state to persist.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed,
        }
    }

    /// Who leads and what we are.
    pub fn soft_state(&self) -> SoftState {
        SoftState {
            leader_id: self.leader_id,
            role: self.role,
        }
    }

    /// True if this member may become leader: it is a voter (learners never campaign).
    pub fn promotable(&self) -> bool {
        self.tracker.is_voter(self.id)
    }

    // ---------------------------------------------------------------- role transitions

    fn reset(&mut self, term: u64) {
        if self.term != term {
            // §5.1: "If a server receives a request with a higher term, it updates its current
            // term"; its vote belonged to the old term.
            self.term = term;
            self.vote = NONE;
        }
        self.leader_id = NONE;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.reset_randomized_election_timeout();
        self.lead_transferee = None;
        self.tracker.votes.clear();
        self.tracker.reset_progress(self.log.last_index() + 1);
        self.pending_conf_index = 0;
        self.uncommitted_size = 0;
        self.read_only = ReadOnly::default();
        self.pending_read_index.clear();
    }

    /// §5.2: election timeouts are chosen randomly from a fixed interval so that split votes
    /// are rare and resolved quickly: here `[election_tick, 2 * election_tick)`.
    pub(crate) fn reset_randomized_election_timeout(&mut self) {
        let base = self.election_timeout;
        self.randomized_election_timeout = base + self.rng.below(base as u64) as usize;
    }

    /// Becomes a follower of `leader` (or of nobody yet) in `term`.
    pub fn become_follower(&mut self, term: u64, leader: NodeId) {
        self.reset(term);
        self.leader_id = leader;
        self.role = Role::Follower;
    }

    /// §5.2: "To begin an election, a follower increments its current term and transitions to
    /// candidate state. It then votes for itself".
    pub(crate) fn become_candidate(&mut self) {
        assert!(
            self.role != Role::Leader,
            "invalid transition [leader -> candidate]"
        );
        let term = self.term + 1;
        self.reset(term);
        self.vote = self.id;
        self.role = Role::Candidate;
    }

    /// Thesis §9.6: a pre-candidate asks whether it *could* win at `term + 1` without changing
    /// its term or vote, so a partitioned member cannot disrupt the cluster on rejoining.
    pub(crate) fn become_pre_candidate(&mut self) {
        assert!(
            self.role != Role::Leader,
            "invalid transition [leader -> pre-candidate]"
        );
        self.tracker.votes.clear();
        self.leader_id = NONE;
        self.role = Role::PreCandidate;
    }

    /// §5.2: a candidate that wins a majority becomes leader; §5.3 it then initializes
    /// nextIndex for every follower to its last log index + 1. Thesis §6.4: it appends an
    /// empty entry of its own term, whose commit reveals which entries are committed.
    pub(crate) fn become_leader(&mut self) {
        assert!(
            self.role != Role::Follower,
            "invalid transition [follower -> leader]"
        );
        let term = self.term;
        self.reset(term);
        self.leader_id = self.id;
        self.role = Role::Leader;
        let persisted = self.log.persisted_index();
        let id = self.id;
        if let Some(pr) = self.tracker.progress.get_mut(&id) {
            pr.matched = persisted;
            pr.become_replicate();
            pr.next = self.log.last_index() + 1;
            pr.recent_active = true;
        }
        // Conservatively treat every entry we hold as possibly containing a membership change:
        // no new change may be proposed until our first entry is applied (this also closes the
        // single-server-change bug described in Ongaro's raft-dev post of 2015).
        self.pending_conf_index = self.log.last_index();
        let empty = crate::types::Entry::normal(0, 0, Vec::new());
        self.append_entries(vec![empty]);
    }

    // ---------------------------------------------------------------- the clock

    /// Advances the logical clock by one tick.
    pub fn tick(&mut self) {
        match self.role {
            Role::Leader => self.tick_heartbeat(),
            _ => self.tick_election(),
        }
    }

    /// Followers and candidates: §5.2 "If a follower receives no communication over a period of
    /// time called the election timeout, then it ... begins an election".
    fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.promotable() && self.election_elapsed >= self.randomized_election_timeout {
            self.election_elapsed = 0;
            self.hup(false);
        }
    }

    /// Leaders: send heartbeats (§5.2) and, every election timeout, check that a majority is
    /// still reachable (thesis §6.2) and give up a stalled leadership transfer (§3.10).
    fn tick_heartbeat(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.election_timeout {
            self.election_elapsed = 0;
            if self.check_quorum && !self.tracker.quorum_active(self.id) {
                // Thesis §6.2: "a leader steps down if an election timeout elapses without a
                // successful round of heartbeats to a majority of its cluster".
                let term = self.term;
                self.become_follower(term, NONE);
                return;
            }
            if self.lead_transferee.is_some() {
                self.lead_transferee = None;
            }
        }
        if self.role != Role::Leader {
            return;
        }
        if self.heartbeat_elapsed >= self.heartbeat_timeout {
            self.heartbeat_elapsed = 0;
            self.bcast_heartbeat();
        }
    }

    // ---------------------------------------------------------------- messages

    /// Queues a message. Fills in `from` and, except for vote traffic (whose term the caller
    /// chooses) and forwarded client requests (which carry none), our current term.
    pub(crate) fn send(&mut self, mut m: Message) {
        m.from = self.id;
        match m.msg_type {
            MessageType::RequestVote
            | MessageType::RequestPreVote
            | MessageType::RequestVoteResponse
            | MessageType::RequestPreVoteResponse => {
                assert!(
                    m.term != 0,
                    "term should be set when sending {:?}",
                    m.msg_type
                );
            }
            MessageType::Propose | MessageType::ReadIndex => m.term = 0,
            _ => m.term = self.term,
        }
        if m.msg_type.needs_persistence() {
            self.msgs_after_append.push(m);
        } else {
            self.msgs.push(m);
        }
    }

    /// The single entry point for every message (from peers or from the local API).
    ///
    /// First the message's term is compared with ours (§5.1: "If a server receives a request
    /// with a stale term number, it rejects the request"; "If one server's current term is
    /// smaller than the other's, then it updates its current term"), then it is dispatched.
    pub fn step(&mut self, m: Message) -> Result<(), Error> {
        if m.term == 0 {
            if !m.msg_type.is_termless() {
                return Err(Error::InvalidMessage("message without a term"));
            }
        } else if m.term > self.term {
            if matches!(
                m.msg_type,
                MessageType::RequestVote | MessageType::RequestPreVote
            ) {
                let forced = m.context == CAMPAIGN_TRANSFER;
                let in_lease = self.check_quorum
                    && self.leader_id != NONE
                    && self.election_elapsed < self.election_timeout;
                if !forced && in_lease {
                    // Thesis §4.2.3: a member that heard from a leader within the minimum
                    // election timeout ignores vote requests, so a removed or partitioned
                    // member cannot depose a healthy leader.
                    return Ok(());
                }
            }
            match m.msg_type {
                // Thesis §9.6: pre-votes never change anybody's term.
                MessageType::RequestPreVote => {}
                MessageType::RequestPreVoteResponse if !m.reject => {}
                MessageType::Append | MessageType::Heartbeat | MessageType::Snapshot => {
                    self.become_follower(m.term, m.from)
                }
                MessageType::RequestVote => {
                    // Figure 2 (Rules for Servers, Followers): the election timer restarts on
                    // AppendEntries from the current leader or on *granting* a vote, not on
                    // merely seeing a higher term. Keeping it running means a member whose
                    // stale log makes it lose every election, but whose clock runs fast,
                    // cannot starve the up-to-date members of their turn to campaign.
                    let elapsed = self.election_elapsed;
                    self.become_follower(m.term, NONE);
                    self.election_elapsed = elapsed;
                }
                _ => self.become_follower(m.term, NONE),
            }
        } else if m.term < self.term {
            match m.msg_type {
                MessageType::Append | MessageType::Heartbeat => {
                    // Figure 2: a stale AppendEntries is rejected with our current term, "for
                    // leader to update itself". Without this answer a stale leader that no
                    // longer receives our (higher-term) vote requests — say because our
                    // configuration is older than its own — would never step down, and we
                    // would never accept its log.
                    //
                    // The reply acknowledges nothing (a rejection of index 0): by the time it
                    // arrives, its recipient may have become leader of *our* term, and must not
                    // mistake it for an acknowledgement of our log (the simulator found that
                    // bug, seed 4748, when this reply carried our last index).
                    let mut resp = Message::new(MessageType::AppendResponse, self.id, m.from);
                    resp.reject = true;
                    self.send(resp);
                }
                MessageType::RequestVote | MessageType::RequestPreVote => {
                    // §5.1: stale requests are rejected, carrying our term.
                    let resp_type = if m.msg_type == MessageType::RequestVote {
                        MessageType::RequestVoteResponse
                    } else {
                        MessageType::RequestPreVoteResponse
                    };
                    let mut resp = Message::new(resp_type, self.id, m.from);
                    resp.term = self.term;
                    resp.reject = true;
                    self.send(resp);
                }
                _ => {}
            }
            return Ok(());
        }

        match m.msg_type {
            MessageType::RequestVote | MessageType::RequestPreVote => {
                self.handle_vote_request(m);
                Ok(())
            }
            _ => match self.role {
                Role::Leader => self.step_leader(m),
                Role::Candidate | Role::PreCandidate => self.step_candidate(m),
                Role::Follower => self.step_follower(m),
            },
        }
    }

    fn step_leader(&mut self, m: Message) -> Result<(), Error> {
        match m.msg_type {
            MessageType::Propose => self.handle_propose(m),
            MessageType::ReadIndex => {
                self.handle_read_index_as_leader(m);
                Ok(())
            }
            MessageType::AppendResponse => {
                self.handle_append_response(m);
                Ok(())
            }
            MessageType::HeartbeatResponse => {
                self.handle_heartbeat_response(m);
                Ok(())
            }
            // Everything else (late votes, another leader's traffic in our term — impossible
            // by election safety) is ignored.
            _ => Ok(()),
        }
    }

    fn step_follower(&mut self, mut m: Message) -> Result<(), Error> {
        match m.msg_type {
            MessageType::Propose | MessageType::ReadIndex => {
                if self.leader_id == NONE {
                    return Err(Error::ProposalDropped("no leader"));
                }
                // Forward client requests to the leader (§8).
                m.to = self.leader_id;
                self.send(m);
            }
            MessageType::Append => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_append(m);
            }
            MessageType::Heartbeat => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_heartbeat(m);
            }
            MessageType::Snapshot => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_snapshot(m);
            }
            // Thesis §3.10: the transferee starts an election at once, skipping pre-vote, and
            // its vote requests bypass the leader lease.
            MessageType::TimeoutNow if self.promotable() => self.hup(true),
            MessageType::ReadIndexResponse => {
                self.read_states.push(ReadState {
                    index: m.index,
                    context: m.context,
                });
            }
            _ => {}
        }
        Ok(())
    }
}
