//! # keel-consensus: Raft as a pure, deterministic state machine
//!
//! This crate is keel's consensus layer: the Raft algorithm (Ongaro & Ousterhout, "In Search
//! of an Understandable Consensus Algorithm"; Ongaro's PhD thesis "Consensus: Bridging Theory
//! and Practice") written as a state machine that performs **no I/O, spawns no threads, reads
//! no clock and draws no randomness of its own**. Messages, clock ticks and client requests go
//! in; a [`Ready`] batch comes out, telling the application what to write to disk, what to
//! send, and what to apply. The server crate supplies the disk (its write-ahead log, through
//! the [`Storage`] trait) and the network. Because the core is a pure function of its inputs,
//! a whole cluster can be simulated in one thread from one seed (see `tests/sim/`), and every
//! failure replays exactly.
//!
//! ## Where things are
//!
//! | file | what |
//! |---|---|
//! | `types.rs` | entries, hard state, messages, snapshots, configurations |
//! | `raft.rs` | the member: [`raft::Raft::step`] (all messages), [`raft::Raft::tick`], role changes |
//! | `election.rs` | elections (§5.2, §5.4.1) and pre-vote (thesis §9.6) |
//! | `replication.rs` | log replication (§5.3), commitment (§5.4.2), snapshots (§7), proposals |
//! | `read_index.rs`, `read_only.rs` | linearizable reads without log writes (thesis §6.4) |
//! | `membership.rs`, `confchange.rs` | one-at-a-time membership changes, learners (thesis §4), leadership transfer (§3.10) |
//! | `progress.rs`, `tracker.rs`, `quorum.rs` | what the leader knows about each follower; flow control; majorities |
//! | `log.rs`, `storage.rs` | the log: durable [`Storage`] + in-memory unstable tail |
//! | `raw_node.rs` | [`RawNode`] and the [`Ready`] contract |
//! | `codec.rs` | dependency-free binary encoding of every type |
//! | `rng.rs` | SplitMix64, seeded by the caller, for election timeouts |
//!
//! ## A walk through one election and one replicated write
//!
//! Three members, ids 1, 2 and 3, start as followers in term 0 (§5.2). Normally a follower's
//! randomized election timer fires after 10–19 ticks without hearing from a leader; here we
//! call [`RawNode::campaign`] on member 1 to start at once.
//!
//! 1. **Pre-vote** (thesis §9.6). Member 1 becomes a *pre-candidate* and asks 2 and 3
//!    `RequestPreVote{term: 1, index: 0, log_term: 0}` — "would you vote for me in term 1?" —
//!    without changing its own term. Both logs are empty, so 1's log is as up-to-date as
//!    theirs (§5.4.1) and both grant.
//! 2. **Election** (§5.2). With a majority of pre-votes, 1 becomes a *candidate*: term 1, vote
//!    for itself. Term and vote must be durable before anything is sent, so its Ready carries
//!    the `hard_state` and the `RequestVote` messages in `persisted_messages`. Members 2 and 3
//!    adopt term 1, record their vote for 1 (persisted before the `RequestVoteResponse`
//!    leaves), and 1 becomes **leader** as soon as it holds a majority (its own vote and one more).
//! 3. **The leader's first entry** (thesis §6.4). The new leader appends an empty entry at
//!    index 1, term 1, and sends `Append{index: 0, log_term: 0, entries: [1@1], commit: 0}`.
//!    The followers' logs match at index 0, so they append, persist, and answer
//!    `AppendResponse{index: 1}`. The leader counts its own copy once its disk write is done
//!    (thesis §10.2.1) and now has a majority: index 1 is committed (§5.3), and because it is of
//!    the leader's current term, counting replicas is allowed (§5.4.2).
//! 4. **A replicated write.** A client proposes `b"hello"`. The leader appends it at index 2
//!    and sends `Append{index: 1, log_term: 1, entries: [2@1], commit: 1}` to both followers,
//!    *before* or *while* writing it to its own disk. Each follower checks that its entry at
//!    index 1 has term 1 (the consistency check, §5.3), appends, persists and acknowledges.
//!    The leader commits index 2 on the first acknowledgement plus its own write, applies it,
//!    and tells the followers `commit: 2` with its next message; they apply it too.
//!
//! The same steps as code, with a toy "disk and network" loop:
//!
//! ```
//! use keel_consensus::{Config, ConfState, MemStorage, RawNode, Role};
//!
//! let voters = [1, 2, 3];
//! let mut nodes: Vec<RawNode<MemStorage>> = voters
//!     .iter()
//!     .map(|&id| {
//!         let disk = MemStorage::new_with_conf_state(ConfState::with_voters(&voters));
//!         RawNode::new(&Config::new(id), disk, /* rng seed */ id).unwrap()
//!     })
//!     .collect();
//!
//! /// Handles every Ready and delivers every message until the cluster is quiet; returns
//! /// (member, data) for each non-empty entry applied.
//! fn pump(nodes: &mut [RawNode<MemStorage>]) -> Vec<(u64, Vec<u8>)> {
//!     let mut applied = Vec::new();
//!     loop {
//!         let mut network = Vec::new();
//!         for node in nodes.iter_mut() {
//!             while node.has_ready() {
//!                 let mut rd = node.ready();
//!                 network.append(&mut rd.messages); // may leave before the disk write
//!                 node.store_mut().append(&rd.entries); // "write to disk"
//!                 if let Some(hs) = rd.hard_state {
//!                     node.store_mut().set_hard_state(hs);
//!                 }
//!                 network.append(&mut rd.persisted_messages); // only after the write
//!                 for e in rd.committed_entries {
//!                     if !e.data.is_empty() {
//!                         applied.push((node.raft().id, e.data));
//!                     }
//!                 }
//!                 node.advance();
//!             }
//!         }
//!         if network.is_empty() {
//!             return applied;
//!         }
//!         for m in network {
//!             let to = m.to as usize - 1;
//!             nodes[to].step(m).unwrap();
//!         }
//!     }
//! }
//!
//! nodes[0].campaign(); // steps 1 and 2
//! pump(&mut nodes); // step 3 happens as part of the same exchange
//! assert_eq!(nodes[0].raft().role, Role::Leader);
//! assert_eq!(nodes[1].leader(), Some(1));
//!
//! nodes[0].propose(b"hello".to_vec()).unwrap(); // step 4
//! let applied = pump(&mut nodes);
//! assert_eq!(applied.len(), 3, "applied on every member: {applied:?}");
//! assert!(applied.iter().all(|(_, data)| data == b"hello"));
//! ```
//!
//! ## The Ready contract in one paragraph
//!
//! Persist `snapshot`, `entries`, then `hard_state`; `messages` may be sent at any time
//! (a leader's appends go out in parallel with its own write, thesis §10.2.1);
//! `persisted_messages` only once the write is durable; apply `committed_entries` (calling
//! [`RawNode::apply_conf_change`] for membership changes) and answer `read_states`; then call
//! [`RawNode::advance`]. Details on [`Ready`].
//!
//! ## Testing
//!
//! `tests/paper_tests.rs` has one test per claim of the paper; `tests/features.rs` covers the
//! thesis features; `tests/sim/` is a deterministic simulator that checks Raft's safety
//! properties after every step under message loss, delay, duplication, partitions and crashes,
//! and proves it can catch bugs by running cores with one rule deliberately broken
//! ([`Config::mutations`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod confchange;
pub mod config;
mod election;
pub mod errors;
pub mod log;
mod membership;
pub mod progress;
pub mod quorum;
pub mod raft;
pub mod raw_node;
mod read_index;
pub mod read_only;
mod replication;
pub mod rng;
pub mod storage;
pub mod tracker;
pub mod types;

pub use codec::DecodeError;
pub use config::{Config, Mutations};
pub use errors::{Error, StorageError};
pub use progress::ProgressState;
pub use raw_node::{conf_change_of, ProgressStatus, RawNode, Ready, Status};
pub use rng::SplitMix64;
pub use storage::{MemStorage, Storage};
pub use types::*;
