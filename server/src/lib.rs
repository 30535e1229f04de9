//! # keel-server: the `keel` member and the `keelctl` CLI
//!
//! This crate is the top of keel's layer cake. The layers below it are pure or self-contained:
//! `consensus` decides *what* is committed, `wal` makes it durable, `mvcc` (over `btree`) turns
//! committed requests into etcd's data model, and `net` moves bytes (HTTP/2 + gRPC for clients,
//! the peer transport for Raft). The server wires them into one **member** of a cluster:
//!
//! ```text
//!  etcdctl ──gRPC──► net event loop ──propose──► consensus ──Ready──► WAL thread (fsync)
//!                        ▲                           │                    │
//!                        │                           └─messages──► peers  │
//!                        └──── answer client ◄── apply thread (mvcc) ◄────┘ committed entries
//! ```
//!
//! What lives here, one concept per file:
//! * [`bootstrap`]: who a member is at start (new cluster, joining one, or restarting).
//! * [`membership`]: the membership table, its checks, and how changes apply to it.
//! * [`member`]: a running member — the `net` event loop as the handler of client calls and
//!   timers, the apply thread, the etcd v3 services served so far, `/health` `/version`
//!   `/metrics`.
//! * [`raft_core`]: the Raft Ready loop discipline around `keel_consensus::RawNode`: messages
//!   out at once, entries and hard state to the WAL (group commit), committed entries to the
//!   apply thread only after they are durable; sans threads, driven by [`member`].
//! * [`raft_log`]: Raft entries and hard state in the WAL, and the storage rebuilt from it at
//!   restart.
//! * [`envelope`]: what a Raft entry carries (request id + etcd's protobuf request), and
//!   cluster-unique request ids.
//! * [`wait`]: clients waiting for their entry to be applied, with etcd's timeout error.
//! * [`compactor`]: `--auto-compaction-*` as a pure state machine asked on every tick.
//! * [`convert`]: etcd wire messages ↔ the store's types; store errors → gRPC statuses.
//! * [`config`]: every flag of `keel`, with etcd's names, meanings and defaults, parsed by hand
//!   from the command line and `ETCD_*` environment variables; member/cluster IDs as etcd
//!   computes them.
//! * [`url`]: the `http://host:port` lists those flags take.
//! * [`errors`]: etcd's gRPC error table (code + exact message), which clients match on.
//! * [`heap`]: handing freed heap memory back to the kernel (`malloc_trim`).
//! * [`health`], [`version`]: the bodies of `GET /health` and `GET /version`.
//! * [`metrics`]: a Prometheus text-format registry for `GET /metrics`, with etcd's metric names.
//! * [`log`]: leveled, one-line-per-event logging to stderr (`--log-level`).
//! * [`sha256`], [`sha1`]: hand-written digests (the snapshot stream's trailing checksum; etcd's
//!   ID derivation).
//!
//! A member runs alone or in a static cluster given by `--initial-cluster`: Raft messages go
//! through `keel_net::peer` (followers forward proposals and ReadIndex requests to the leader
//! inside consensus), and a member that fell behind the leader's compacted log is caught up by
//! a snapshot of mvcc's database. Members are added (as learners or voters), promoted,
//! updated and removed at run time (`member/cluster_service.rs`). See README.md for what is
//! served and what is not.

pub mod bootstrap;
pub mod compactor;
pub mod config;
pub mod convert;
pub mod envelope;
pub mod errors;
pub mod forward;
pub mod health;
pub mod heap;
pub mod log;
pub mod member;
pub mod membership;
pub mod metrics;
pub mod raft_core;
pub mod raft_log;
pub mod sha1;
pub mod sha256;
pub mod url;
pub mod version;
pub mod wait;
