//! The consensus half of a member: a [`RawNode`] plus the discipline of its Ready loop, with
//! the WAL as the only I/O, and nothing blocking.
//!
//! ```text
//!   tick / propose / step ──► RawNode ──ready()──► Ready
//!                                                   │ messages ───────────────► send now (§10.2.1)
//!                                                   │ entries + hard state ───► WAL.submit (group commit)
//!                                                   ▼                              │ callback on the WAL thread
//!                                        [one Ready in flight]  ◄──wal_done()──────┘
//!                                                   │ storage.append, set_hard_state
//!                                                   │ persisted messages ─────► send (votes, append acks)
//!                                                   │ committed entries ──────► apply thread
//!                                                   ▼ advance()
//! ```
//!
//! While one Ready's WAL write is in flight, proposals keep accumulating in the leader's log;
//! the next Ready carries all of them and the WAL writes them with one fdatasync. That is where
//! batching comes from. A leader's messages leave before its own fsync (thesis §10.2.1): the
//! consensus crate counts the leader towards the majority only after `advance`.
//!
//! [`RaftCore`] is deliberately sans-threads: the caller (the member's loop) feeds it inputs and
//! forwards its [`Output`]. The WAL callback only needs to wake that loop.

use keel_consensus::Storage as _;
use keel_consensus::{
    ConfChange, ConfState, Config as RaftConfig, Entry, Error as RaftError, HardState, MemStorage,
    Message, RawNode, ReadState, Role,
};
use keel_wal as wal;

use crate::raft_log::ready_batch;

/// What the member loop must do after feeding the core.
#[derive(Debug, Default)]
pub struct Output {
    /// Messages to hand to the peer transport.
    pub send: Vec<Message>,
    /// Committed entries, in order, for the apply thread.
    pub apply: Vec<Entry>,
    /// Confirmed read points (ReadIndex).
    pub read_states: Vec<ReadState>,
    /// Set when the leader or the role changed: (leader id or 0, role, term).
    pub leadership: Option<(u64, Role, u64)>,
}

impl Output {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.send.is_empty()
            && self.apply.is_empty()
            && self.read_states.is_empty()
            && self.leadership.is_none()
    }
}

/// A Ready whose entries/hard state are being written by the WAL.
#[derive(Debug)]
struct InFlight {
    /// A snapshot Raft adopted from the leader (§7): its state machine image is already in
    /// place (see `Member::receive_snapshot`); the WAL records its marker, the storage restarts
    /// from it.
    snapshot: Option<keel_consensus::Snapshot>,
    entries: Vec<Entry>,
    hard_state: Option<HardState>,
    persisted_messages: Vec<Message>,
    committed_entries: Vec<Entry>,
    read_states: Vec<ReadState>,
}

/// A Raft member's consensus state and its persistence discipline.
pub struct RaftCore {
    node: RawNode<MemStorage>,
    in_flight: Option<InFlight>,
    term: u64,
    leader: u64,
}

impl std::fmt::Debug for RaftCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftCore")
            .field("term", &self.term)
            .field("leader", &self.leader)
            .finish()
    }
}

impl RaftCore {
    /// A core over `storage` (rebuilt from the WAL, see `raft_log::open_log`).
    ///
    /// `election_ticks` and `heartbeat_ticks` are in units of `--heartbeat-interval` (etcd:
    /// heartbeat 1 tick, election = election-timeout / heartbeat-interval ticks). `applied` is the
    /// last index the state machine already holds (mvcc's consistent index), so that a restart
    /// does not hand those entries out again.
    pub fn new(
        id: u64,
        storage: MemStorage,
        election_ticks: usize,
        pre_vote: bool,
        applied: u64,
        rng_seed: u64,
    ) -> Result<RaftCore, RaftError> {
        let mut cfg = RaftConfig::new(id);
        cfg.election_tick = election_ticks.max(2);
        cfg.heartbeat_tick = 1;
        cfg.pre_vote = pre_vote;
        cfg.check_quorum = true;
        cfg.applied = applied;
        // etcd: MaxSizePerMsg 1 MiB, MaxInflightMsgs 512.
        cfg.max_size_per_msg = 1024 * 1024;
        cfg.max_inflight_msgs = 512;
        // Entries up to `applied` were applied, so they were committed; the WAL's commit index
        // may lag (it is written without waiting, see `poll`).
        let mut storage = storage;
        let mut hs = storage.hard_state();
        let last = keel_consensus::Storage::last_index(&storage).unwrap_or(0);
        if hs.commit < applied && applied <= last {
            hs.commit = applied;
            storage.set_hard_state(hs);
        }
        let node = RawNode::new(&cfg, storage, rng_seed)?;
        let term = node.status().hard_state.term;
        Ok(RaftCore {
            node,
            in_flight: None,
            term,
            leader: 0,
        })
    }

    /// The configuration Raft starts from.
    pub fn conf_state(&self) -> ConfState {
        self.node.status().conf_state
    }

    /// If this member is the only voter, campaign at once instead of waiting an election
    /// timeout (etcd fast-forwards its election ticks at boot for the same reason).
    pub fn campaign_if_alone(&mut self, id: u64) {
        let conf = self.node.status().conf_state;
        if conf.voters == [id] && self.node.status().soft_state.role != Role::Leader {
            self.node.campaign();
        }
    }

    /// One tick of the logical clock (every `--heartbeat-interval`).
    pub fn tick(&mut self) {
        self.node.tick();
    }

    /// Propose one request payload (an encoded [`crate::envelope::Envelope`]).
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(), RaftError> {
        self.node.propose(data)
    }

    /// Propose several payloads as one append.
    pub fn propose_batch(&mut self, data: Vec<Vec<u8>>) -> Result<(), RaftError> {
        self.node.propose_batch(data)
    }

    /// Propose a membership change (thesis §4.1); it takes effect when applied, through
    /// [`RaftCore::apply_conf_change`].
    pub fn propose_conf_change(&mut self, cc: &ConfChange) -> Result<(), RaftError> {
        self.node.propose_conf_change(cc)
    }

    /// A committed membership change was applied to the membership table: Raft's
    /// configuration follows it now.
    pub fn apply_conf_change(&mut self, cc: &ConfChange) -> Result<ConfState, RaftError> {
        self.node.apply_conf_change(cc)
    }

    /// Replace Raft's configuration with the membership table's, after an installed snapshot
    /// whose database is newer than its metadata (see `MembershipEvent::SyncConf`).
    pub fn restore_conf_state(&mut self, cs: &ConfState) -> ConfState {
        self.node.restore_conf_state(cs)
    }

    /// Hand leadership to `to` (thesis §3.10; etcd's MoveLeader).
    pub fn transfer_leader(&mut self, to: u64) -> Result<(), RaftError> {
        self.node.transfer_leader(to)
    }

    /// Ask for a linearizable read point (ReadIndex, thesis §6.4); the answer comes back as a
    /// [`ReadState`] with the same `context` in a later [`Output`].
    pub fn read_index(&mut self, context: Vec<u8>) -> Result<(), RaftError> {
        self.node.read_index(context)
    }

    /// Log compaction (Raft §7): everything up to `index` is applied and durable in the state
    /// machine (mvcc's consistent index), so Raft's in-memory log drops it and the WAL records a
    /// snapshot marker at `index` and releases the segments below it. The state machine *is*
    /// the snapshot's data (the btree file), as in etcd.
    ///
    /// Returns false (doing nothing) if `index` is not above the current snapshot or not in the
    /// log.
    pub fn compact_log(&mut self, index: u64, wal: &wal::Wal) -> Result<bool, wal::WalError> {
        let conf = self.node.status().conf_state;
        let storage = self.node.store_mut();
        let (Ok(first), Ok(last)) = (storage.first_index(), storage.last_index()) else {
            return Ok(false);
        };
        if index < first || index > last {
            return Ok(false);
        }
        let Ok(term) = storage.term(index) else {
            return Ok(false);
        };
        if storage.create_snapshot(index, conf, Vec::new()).is_err() {
            return Ok(false);
        }
        let log_err = |what: &'static str| -> wal::Callback {
            Box::new(move |r: Result<(), wal::WalError>| {
                if let Err(e) = r {
                    crate::log_error!("wal {what} failed: {e}");
                }
            })
        };
        let marker = wal::Batch {
            snapshot: Some(wal::SnapshotMarker { index, term }),
            ..wal::Batch::default()
        };
        wal.submit(marker, log_err("snapshot marker"))?;
        wal.submit_release(index, log_err("segment release"))?;
        Ok(true)
    }

    /// Raft's storage (entries and hard state known durable).
    pub fn storage(&self) -> &MemStorage {
        self.node.store()
    }

    /// First index still in Raft's log.
    pub fn first_index(&self) -> u64 {
        self.node.first_index()
    }

    /// The transport could not reach `id`: Raft slows replication to it down (probe state).
    pub fn report_unreachable(&mut self, id: u64) {
        self.node.report_unreachable(id);
    }

    /// Outcome of sending a snapshot to `id`.
    pub fn report_snapshot(&mut self, id: u64, ok: bool) {
        self.node.report_snapshot(id, ok);
    }

    /// Deliver a message from a peer.
    pub fn step(&mut self, m: Message) -> Result<(), RaftError> {
        self.node.step(m)
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The known leader (0 if none).
    pub fn leader(&self) -> u64 {
        self.leader
    }

    /// True while a Ready waits for the WAL.
    pub fn is_persisting(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Consensus status (for Maintenance.Status and metrics).
    pub fn status(&self) -> keel_consensus::Status {
        self.node.status()
    }

    /// Take the next Ready if none is in flight. Its WAL write is submitted with `on_durable`
    /// as the callback (which must make the loop call [`RaftCore::wal_done`]); a Ready with
    /// nothing to persist completes at once.
    pub fn poll(
        &mut self,
        wal: &wal::Wal,
        on_durable: impl FnOnce() -> wal::Callback,
        out: &mut Output,
    ) -> Result<(), wal::WalError> {
        if self.in_flight.is_some() || !self.node.has_ready() {
            return Ok(());
        }
        let rd = self.node.ready();
        let old_term = self.term;
        if let Some(hs) = &rd.hard_state {
            self.term = hs.term;
        }
        if let Some(ss) = rd.soft_state {
            self.leader = ss.leader_id;
            out.leadership = Some((ss.leader_id, ss.role, self.term));
        } else if self.term != old_term {
            out.leadership = Some((self.leader, self.node.status().soft_state.role, self.term));
        }
        out.send.extend(rd.messages);
        let in_flight = InFlight {
            snapshot: rd.snapshot,
            entries: rd.entries,
            hard_state: rd.hard_state,
            persisted_messages: rd.persisted_messages,
            committed_entries: rd.committed_entries,
            read_states: rd.read_states,
        };
        if in_flight.entries.is_empty()
            && in_flight.hard_state.is_none()
            && in_flight.snapshot.is_none()
        {
            self.in_flight = Some(in_flight);
            self.finish(out);
            return Ok(());
        }
        let mut batch = ready_batch(&in_flight.entries, in_flight.hard_state.as_ref());
        if let Some(snap) = &in_flight.snapshot {
            // The log restarts after the snapshot: the WAL marks it and drops what it holds
            // beyond it (replay ignores the entries it covers).
            let index = snap.meta.index;
            let last = keel_consensus::Storage::last_index(self.node.store()).unwrap_or(0);
            batch.snapshot = Some(wal::SnapshotMarker {
                index,
                term: snap.meta.term,
            });
            batch.truncate_from = (last > index).then_some(index + 1);
        }
        if !rd.must_sync {
            // Only the commit index changed: it need not be durable before we go on (etcd does
            // not fsync for it either). Queue the write and complete the Ready now; this saves a
            // second fsync round trip per write. After a crash the commit index is recomputed,
            // and never below what was applied (see `RaftCore::new`).
            wal.submit(
                batch,
                Box::new(|r: Result<(), wal::WalError>| {
                    if let Err(e) = r {
                        crate::log_error!("wal write of the commit index failed: {e}");
                    }
                }),
            )?;
            self.in_flight = Some(in_flight);
            self.finish(out);
            return Ok(());
        }
        self.in_flight = Some(in_flight);
        wal.submit(batch, on_durable())
    }

    /// The WAL made the in-flight Ready durable: complete it.
    pub fn wal_done(&mut self, out: &mut Output) {
        self.finish(out);
    }

    fn finish(&mut self, out: &mut Output) {
        let Some(f) = self.in_flight.take() else {
            return;
        };
        let storage = self.node.store_mut();
        if let Some(snap) = f.snapshot {
            if let Err(e) = storage.apply_snapshot(snap) {
                crate::log::panic(format_args!("raft adopted a stale snapshot: {e}"));
            }
        }
        storage.append(&f.entries);
        if let Some(hs) = f.hard_state {
            storage.set_hard_state(hs);
        }
        out.send.extend(f.persisted_messages);
        out.apply.extend(f.committed_entries);
        out.read_states.extend(f.read_states);
        self.node.advance();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft_log::{open_log, OpenedLog};
    use keel_consensus::{EntryKind, Storage};
    use std::sync::mpsc;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "keel-server-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Drive the core like the member loop does, until `until` holds or 200 rounds pass.
    fn drive(
        core: &mut RaftCore,
        wal: &wal::Wal,
        applied: &mut Vec<Entry>,
        mut until: impl FnMut(&RaftCore, &[Entry]) -> bool,
    ) {
        let (tx, rx) = mpsc::channel::<Result<(), wal::WalError>>();
        for _ in 0..200 {
            let mut out = Output::default();
            let tx2 = tx.clone();
            core.poll(
                wal,
                move || Box::new(move |r| tx2.send(r).unwrap()),
                &mut out,
            )
            .unwrap();
            if core.is_persisting() {
                rx.recv().unwrap().unwrap();
                core.wal_done(&mut out);
            }
            assert!(
                out.send.is_empty(),
                "a single member sends nothing: {:?}",
                out.send
            );
            applied.extend(out.apply);
            if until(core, applied) {
                return;
            }
            core.tick();
        }
        panic!("condition not reached");
    }

    #[test]
    fn single_member_elects_itself_commits_and_recovers() {
        let dir = temp_dir("raftcore");
        let id = 0x8e9e05c52164694d;
        let meta = wal::Metadata {
            member_id: id,
            cluster_id: 1,
        };
        let conf = ConfState::with_voters(&[id]);
        let OpenedLog {
            wal,
            storage,
            fresh,
        } = open_log(&dir, meta, conf.clone(), wal::WalOptions::default()).unwrap();
        assert!(fresh);
        let mut core = RaftCore::new(id, storage, 10, true, 0, 1).unwrap();
        core.campaign_if_alone(id);
        let mut applied = Vec::new();
        drive(&mut core, &wal, &mut applied, |c, _| c.leader() == id);
        assert!(core.term() >= 1);
        // The leader's empty entry of its term commits first (§5.4.2, thesis §6.4).
        drive(&mut core, &wal, &mut applied, |_, a| !a.is_empty());
        assert!(applied[0].data.is_empty());

        for i in 0..5u8 {
            core.propose(vec![b'p', i]).unwrap();
        }
        core.propose_batch(vec![b"q0".to_vec(), b"q1".to_vec()])
            .unwrap();
        drive(&mut core, &wal, &mut applied, |_, a| a.len() >= 8);
        let datas: Vec<&[u8]> = applied.iter().skip(1).map(|e| e.data.as_slice()).collect();
        assert_eq!(
            datas,
            vec![
                &b"p\0"[..],
                b"p\x01",
                b"p\x02",
                b"p\x03",
                b"p\x04",
                b"q0",
                b"q1"
            ]
        );
        assert!(applied.windows(2).all(|w| w[1].index == w[0].index + 1));
        assert!(applied.iter().all(|e| e.kind == EntryKind::Normal));
        let last = applied.last().unwrap().index;
        let term = core.term();
        drop(core);
        wal.close().unwrap();

        // Restart: everything acknowledged is back, and with applied = last nothing is re-applied.
        let OpenedLog {
            wal,
            storage,
            fresh,
        } = open_log(&dir, meta, conf, wal::WalOptions::default()).unwrap();
        assert!(!fresh);
        let mut core = RaftCore::new(id, storage, 10, true, last, 2).unwrap();
        assert_eq!(core.term(), term);
        core.campaign_if_alone(id);
        let mut again = Vec::new();
        drive(&mut core, &wal, &mut again, |c, a| {
            c.leader() == id && !a.is_empty()
        });
        assert!(core.term() > term);
        assert_eq!(
            again[0].index,
            last + 1,
            "only the new term's empty entry is applied"
        );
        // ReadIndex (thesis §6.4): the read point covers everything applied so far.
        core.read_index(b"ctx-1".to_vec()).unwrap();
        let mut states = Vec::new();
        for _ in 0..10 {
            let mut out = Output::default();
            let (tx, rx) = mpsc::channel::<Result<(), wal::WalError>>();
            core.poll(
                &wal,
                move || Box::new(move |r| tx.send(r).unwrap()),
                &mut out,
            )
            .unwrap();
            if core.is_persisting() {
                rx.recv().unwrap().unwrap();
                core.wal_done(&mut out);
            }
            again.extend(out.apply);
            states.extend(out.read_states);
            if !states.is_empty() {
                break;
            }
        }
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].context, b"ctx-1");
        assert!(states[0].index >= again.last().unwrap().index);
        core.propose(b"after".to_vec()).unwrap();
        drive(&mut core, &wal, &mut again, |_, a| {
            a.iter().any(|e| e.data == b"after")
        });

        // Log compaction (§7): drop everything up to an applied index; the log restarts after it.
        let upto = again.last().unwrap().index - 1;
        assert!(core.compact_log(upto, &wal).unwrap());
        assert_eq!(core.first_index(), upto + 1);
        assert!(
            !core.compact_log(upto, &wal).unwrap(),
            "not above the snapshot"
        );
        assert!(
            !core.compact_log(upto + 100, &wal).unwrap(),
            "beyond the log"
        );
        core.propose(b"post-compaction".to_vec()).unwrap();
        drive(&mut core, &wal, &mut again, |_, a| {
            a.iter().any(|e| e.data == b"post-compaction")
        });
        let last = again.last().unwrap().index;
        drop(core);
        wal.close().unwrap();

        // Restart over the snapshot marker: only the entries after it are in the log.
        let OpenedLog { wal, storage, .. } = open_log(
            &dir,
            meta,
            ConfState::with_voters(&[id]),
            wal::WalOptions::default(),
        )
        .unwrap();
        assert_eq!(storage.first_index().unwrap(), upto + 1);
        assert_eq!(storage.last_index().unwrap(), last);
        let mut core = RaftCore::new(id, storage, 10, true, last, 3).unwrap();
        core.campaign_if_alone(id);
        let mut third = Vec::new();
        drive(&mut core, &wal, &mut third, |c, a| {
            c.leader() == id && !a.is_empty()
        });
        assert_eq!(third[0].index, last + 1);
        wal.close().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn restart_raises_a_lagging_commit_index_to_the_applied_index() {
        // The commit index is written without waiting for the disk, so after a crash the WAL's
        // may be below what mvcc applied. Raft must not start with applied > committed.
        let dir = temp_dir("raftcommit");
        let id = 7;
        let meta = wal::Metadata {
            member_id: id,
            cluster_id: 1,
        };
        let conf = ConfState::with_voters(&[id]);
        let OpenedLog { wal, .. } =
            open_log(&dir, meta, conf.clone(), wal::WalOptions::default()).unwrap();
        let ents: Vec<Entry> = (1..=3)
            .map(|i| Entry {
                term: 1,
                index: i,
                kind: EntryKind::Normal,
                data: vec![],
            })
            .collect();
        let hs = HardState {
            term: 1,
            vote: id,
            commit: 1,
        };
        wal.append_sync(crate::raft_log::ready_batch(&ents, Some(&hs)))
            .unwrap();
        wal.close().unwrap();
        let OpenedLog { wal, storage, .. } =
            open_log(&dir, meta, conf.clone(), wal::WalOptions::default()).unwrap();
        let core = RaftCore::new(id, storage, 10, true, 3, 1).unwrap();
        assert_eq!(core.status().hard_state.commit, 3);
        drop(core);
        wal.close().unwrap();
        // But never beyond the log.
        let OpenedLog { wal, storage, .. } =
            open_log(&dir, meta, conf, wal::WalOptions::default()).unwrap();
        let core = RaftCore::new(id, storage, 10, true, 9, 1);
        assert!(core.is_err() || core.unwrap().status().hard_state.commit <= 3);
        wal.close().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
