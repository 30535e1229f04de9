//! [`RawNode`]: the application's handle on a Raft member, and the [`Ready`] contract.
//!
//! The application drives a member with a loop like this:
//!
//! ```text
//! loop {
//!     // inputs: node.tick() every tick; node.step(msg) for every message received;
//!     //         node.propose(data), node.read_index(ctx), ... for client requests
//!     if node.has_ready() {
//!         let rd = node.ready();
//!         send(rd.messages);                       // may go out at once (§10.2.1)
//!         persist(rd.snapshot, rd.entries, rd.hard_state); fsync if rd.must_sync
//!         send(rd.persisted_messages);             // only now: they promise durable state
//!         apply(rd.snapshot, rd.committed_entries); // call apply_conf_change for ConfChange
//!         serve(rd.read_states);                    // once applied >= read_state.index
//!         node.advance();
//!     }
//! }
//! ```

use std::collections::BTreeMap;

use crate::codec::decode_conf_change_entry;
use crate::config::Config;
use crate::errors::Error;
use crate::progress::ProgressState;
use crate::raft::Raft;
use crate::storage::Storage;
use crate::types::{
    ConfChange, ConfState, Entry, EntryKind, HardState, Message, MessageType, NodeId, ReadState,
    Role, Snapshot, SoftState, NONE,
};

/// One batch of work for the application. See the module documentation for the order in
/// which to handle the fields.
///
/// **Contract.**
/// 1. Persist `snapshot` (if any), then `entries` — when writing entry *i*, discard any
///    persisted entries with index ≥ *i* — then `hard_state`. Sync to disk if `must_sync`.
/// 2. `messages` may be sent before or while step 1 happens. In particular a leader's appends
///    go out in parallel with its own disk write (thesis §10.2.1): the leader counts itself
///    towards a majority only after [`RawNode::advance`]. Whenever this Ready changes the term
///    or the vote, every message is in `persisted_messages` instead, because nothing may leave a
///    member before its term and vote are durable (§5.1, Figure 2).
/// 3. `persisted_messages` (append acknowledgements, votes) may be sent only after step 1 is
///    durable: they promise the receiver something about this member's disk.
/// 4. Apply `snapshot`, then `committed_entries` in order; for a `ConfChange` entry call
///    [`RawNode::apply_conf_change`].
/// 5. Call [`RawNode::advance`]. Do not call [`RawNode::ready`] again before that.
#[derive(Debug, Default)]
pub struct Ready {
    /// Leader and role, when they changed since the previous Ready.
    pub soft_state: Option<SoftState>,
    /// Term, vote and commit index, when they changed; persist it.
    pub hard_state: Option<HardState>,
    /// Confirmed linearizable reads (thesis §6.4).
    pub read_states: Vec<ReadState>,
    /// Entries to append to stable storage.
    pub entries: Vec<Entry>,
    /// A snapshot received from the leader, to persist and install.
    pub snapshot: Option<Snapshot>,
    /// Committed entries to apply to the state machine.
    pub committed_entries: Vec<Entry>,
    /// Messages that may be sent immediately.
    pub messages: Vec<Message>,
    /// Messages to send only after this Ready's state is durable.
    pub persisted_messages: Vec<Message>,
    /// True if the hard state's term or vote, the entries or a snapshot must reach the disk
    /// before `persisted_messages` are sent (a commit-index-only change need not be synced).
    pub must_sync: bool,
}

/// What a handed-out Ready contained, to acknowledge on advance.
#[derive(Debug)]
struct InFlight {
    last_entry: Option<(u64, u64)>,
    snapshot_index: Option<u64>,
    last_committed: Option<u64>,
    persisted: bool,
}

/// A follower's progress as the leader sees it (for [`Status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressStatus {
    /// Highest index known replicated on the member.
    pub matched: u64,
    /// Next index to send.
    pub next: u64,
    /// Flow-control state.
    pub state: ProgressState,
    /// Non-voting member.
    pub is_learner: bool,
    /// Heard from since the last check-quorum round.
    pub recent_active: bool,
    /// Append messages in flight.
    pub inflight: usize,
}

/// A snapshot of a member's state for monitoring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Member id.
    pub id: NodeId,
    /// Term, vote, commit.
    pub hard_state: HardState,
    /// Leader and role.
    pub soft_state: SoftState,
    /// Highest applied index.
    pub applied: u64,
    /// Last log index.
    pub last_index: u64,
    /// Per-member progress (leaders only; empty otherwise).
    pub progress: BTreeMap<NodeId, ProgressStatus>,
    /// Leadership transfer target, if a transfer is in progress.
    pub lead_transferee: Option<NodeId>,
    /// Current configuration.
    pub conf_state: ConfState,
}

/// The application's handle on one Raft member: thread-unsafe and synchronous, like etcd-raft's
/// `RawNode`.
#[derive(Debug)]
pub struct RawNode<S: Storage> {
    raft: Raft<S>,
    prev_soft: SoftState,
    prev_hard: HardState,
    max_committed_size_per_ready: u64,
    in_flight: Option<InFlight>,
}

impl<S: Storage> RawNode<S> {
    /// Creates (or restarts, from what `storage` holds) a member. `rng_seed` seeds the only
    /// randomness Raft uses, the election timeouts.
    pub fn new(config: &Config, storage: S, rng_seed: u64) -> Result<RawNode<S>, Error> {
        let raft = Raft::new(config, storage, rng_seed)?;
        let prev_soft = raft.soft_state();
        let prev_hard = raft.hard_state();
        Ok(RawNode {
            raft,
            prev_soft,
            prev_hard,
            max_committed_size_per_ready: config.max_committed_size_per_ready,
            in_flight: None,
        })
    }

    /// Advances the logical clock by one tick (election and heartbeat timeouts are counted in
    /// ticks).
    pub fn tick(&mut self) {
        self.raft.tick();
    }

    /// Starts an election now (with pre-vote if configured).
    pub fn campaign(&mut self) {
        self.raft.hup(false);
    }

    /// Delivers a message from a peer.
    pub fn step(&mut self, m: Message) -> Result<(), Error> {
        if m.to != self.raft.id {
            return Err(Error::InvalidMessage("message addressed to another member"));
        }
        self.raft.step(m)
    }

    /// Proposes application data to be appended to the log. Succeeds once the entry is in the
    /// leader's log (or forwarded to it); it is committed later, or lost if leadership changes.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(), Error> {
        let mut m = Message::new(MessageType::Propose, self.raft.id, self.raft.id);
        m.entries.push(Entry::normal(0, 0, data));
        self.raft.step(m)
    }

    /// Proposes several data items as one batch (one append).
    pub fn propose_batch(&mut self, data: Vec<Vec<u8>>) -> Result<(), Error> {
        let mut m = Message::new(MessageType::Propose, self.raft.id, self.raft.id);
        m.entries = data.into_iter().map(|d| Entry::normal(0, 0, d)).collect();
        self.raft.step(m)
    }

    /// Proposes a membership change (one at a time; see [`crate::confchange`]).
    pub fn propose_conf_change(&mut self, cc: &ConfChange) -> Result<(), Error> {
        let mut m = Message::new(MessageType::Propose, self.raft.id, self.raft.id);
        m.entries.push(Entry {
            term: 0,
            index: 0,
            kind: EntryKind::ConfChange,
            data: cc.to_bytes(),
        });
        self.raft.step(m)
    }

    /// Applies a committed membership change and returns the new configuration.
    pub fn apply_conf_change(&mut self, cc: &ConfChange) -> Result<ConfState, Error> {
        self.raft.apply_conf_change(cc)
    }

    /// Replaces the configuration outright (for a member whose state machine came from a snapshot image newer than the snapshot's metadata: the configuration the skipped membership changes lead to, as a restart derives it); returns
    /// the configuration now in force.
    pub fn restore_conf_state(&mut self, cs: &ConfState) -> ConfState {
        self.raft.restore_conf_state(cs);
        self.raft.tracker.conf_state()
    }

    /// Requests a linearizable read point; the answer arrives as a [`ReadState`] with the same
    /// `context` in a later Ready. Contexts must be unique among pending requests.
    pub fn read_index(&mut self, context: Vec<u8>) -> Result<(), Error> {
        let mut m = Message::new(MessageType::ReadIndex, self.raft.id, self.raft.id);
        m.context = context;
        self.raft.step(m)
    }

    /// Asks the leader (this member) to hand leadership to `to`.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), Error> {
        self.raft.transfer_leader(to)
    }

    /// The transport could not reach `id`: stop pipelining to it and probe instead.
    pub fn report_unreachable(&mut self, id: NodeId) {
        if self.raft.role != Role::Leader {
            return;
        }
        if let Some(pr) = self.raft.tracker.progress.get_mut(&id) {
            if pr.state == ProgressState::Replicate {
                pr.become_probe();
            }
        }
    }

    /// The transport finished sending a snapshot to `id` (`ok`) or failed to.
    pub fn report_snapshot(&mut self, id: NodeId, ok: bool) {
        if self.raft.role != Role::Leader {
            return;
        }
        if let Some(pr) = self.raft.tracker.progress.get_mut(&id) {
            if pr.state != ProgressState::Snapshot {
                return;
            }
            if !ok {
                pr.pending_snapshot = 0;
            }
            // Wait for the follower's next heartbeat response before probing again.
            pr.become_probe();
            pr.probe_sent = true;
        }
    }

    /// True if there is something to do, i.e. [`RawNode::ready`] would return a non-empty
    /// batch. Always false while a Ready is outstanding (not yet advanced).
    pub fn has_ready(&self) -> bool {
        if self.in_flight.is_some() {
            return false;
        }
        let r = &self.raft;
        r.soft_state() != self.prev_soft
            || r.hard_state() != self.prev_hard
            || !r.log.unstable_entries().is_empty()
            || r.log.unstable_snapshot().is_some()
            || !r.msgs.is_empty()
            || !r.msgs_after_append.is_empty()
            || !r.read_states.is_empty()
            || r.log.has_next_committed_entries()
    }

    /// Takes the next batch of work. See [`Ready`] for the contract.
    ///
    /// # Panics
    /// If the previous Ready was not acknowledged with [`RawNode::advance`].
    pub fn ready(&mut self) -> Ready {
        assert!(
            self.in_flight.is_none(),
            "ready() called again before advance()"
        );
        let r = &mut self.raft;
        let soft = r.soft_state();
        let hard = r.hard_state();
        let entries = r.log.unstable_entries().to_vec();
        let snapshot = r.log.unstable_snapshot().cloned();
        let committed_entries = r
            .log
            .next_committed_entries(self.max_committed_size_per_ready);
        r.reduce_uncommitted_size(&committed_entries);
        if let Some(last) = committed_entries.last() {
            // Out for applying: a snapshot must not be installed underneath them (see
            // `Raft::handle_snapshot`).
            r.log.applying = r.log.applying.max(last.index);
        }
        let mut messages = std::mem::take(&mut r.msgs);
        let mut persisted_messages = std::mem::take(&mut r.msgs_after_append);
        let durable_changed = hard.term != self.prev_hard.term || hard.vote != self.prev_hard.vote;
        if durable_changed && !messages.is_empty() {
            messages.append(&mut persisted_messages);
            persisted_messages = messages;
            messages = Vec::new();
        }
        let rd = Ready {
            soft_state: (soft != self.prev_soft).then_some(soft),
            hard_state: (hard != self.prev_hard).then_some(hard),
            read_states: std::mem::take(&mut r.read_states),
            must_sync: durable_changed || !entries.is_empty() || snapshot.is_some(),
            entries,
            snapshot,
            committed_entries,
            messages,
            persisted_messages,
        };
        self.in_flight = Some(InFlight {
            last_entry: rd.entries.last().map(|e| (e.index, e.term)),
            snapshot_index: rd.snapshot.as_ref().map(|s| s.meta.index),
            last_committed: rd.committed_entries.last().map(|e| e.index),
            persisted: false,
        });
        self.prev_soft = soft;
        self.prev_hard = hard;
        rd
    }

    /// Acknowledges that the last Ready's snapshot, entries and hard state are durable.
    pub fn advance_append(&mut self) {
        let Some(f) = self.in_flight.as_mut() else {
            return;
        };
        if f.persisted {
            return;
        }
        f.persisted = true;
        if let Some(si) = f.snapshot_index {
            self.raft.log.stable_snap_to(si);
        }
        if let Some((i, t)) = f.last_entry {
            self.raft.log.stable_to(i, t);
        }
        self.raft.on_persisted();
    }

    /// Acknowledges that the last Ready's snapshot and committed entries are applied (implies
    /// [`RawNode::advance_append`]), and ends the Ready.
    pub fn advance_apply(&mut self) {
        self.advance_append();
        let Some(f) = self.in_flight.take() else {
            return;
        };
        if let Some(si) = f.snapshot_index {
            self.raft.log.applied_to(si);
        }
        if let Some(i) = f.last_committed {
            self.raft.log.applied_to(i);
        }
    }

    /// Acknowledges the whole last Ready: persisted and applied.
    pub fn advance(&mut self) {
        self.advance_apply();
    }

    /// The member's current state.
    pub fn status(&self) -> Status {
        let r = &self.raft;
        let progress = if r.role == Role::Leader {
            r.tracker
                .progress
                .iter()
                .map(|(&id, p)| {
                    (
                        id,
                        ProgressStatus {
                            matched: p.matched,
                            next: p.next,
                            state: p.state,
                            is_learner: p.is_learner,
                            recent_active: p.recent_active,
                            inflight: p.inflights.count(),
                        },
                    )
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        Status {
            id: r.id,
            hard_state: r.hard_state(),
            soft_state: r.soft_state(),
            applied: r.log.applied,
            last_index: r.log.last_index(),
            progress,
            lead_transferee: r.lead_transferee,
            conf_state: r.tracker.conf_state(),
        }
    }

    /// The known leader, if any.
    pub fn leader(&self) -> Option<NodeId> {
        (self.raft.leader_id != NONE).then_some(self.raft.leader_id)
    }

    /// The term of the entry at `index` in this member's log (persisted or not), if held.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        self.raft.log.term(index).ok()
    }

    /// Entries `lo..hi` of this member's log, if held.
    pub fn entries(&self, lo: u64, hi: u64) -> Option<Vec<Entry>> {
        if hi > self.raft.log.last_index() + 1 {
            return None;
        }
        self.raft.log.slice(lo, hi, u64::MAX).ok()
    }

    /// First index of the log (snapshot index + 1).
    pub fn first_index(&self) -> u64 {
        self.raft.log.first_index()
    }

    /// Last index of the log.
    pub fn last_index(&self) -> u64 {
        self.raft.log.last_index()
    }

    /// Read access to the storage.
    pub fn store(&self) -> &S {
        &self.raft.log.store
    }

    /// Write access to the storage, for persisting a Ready and creating snapshots.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.raft.log.store
    }

    /// Read access to the underlying state machine (for tests and debugging).
    pub fn raft(&self) -> &Raft<S> {
        &self.raft
    }
}

/// Decodes a committed `ConfChange` entry, for applications handling committed entries.
pub fn conf_change_of(e: &Entry) -> Option<ConfChange> {
    if e.kind != EntryKind::ConfChange {
        return None;
    }
    decode_conf_change_entry(e).ok()
}
