//! # keel-mvcc: etcd's data model over the btree
//!
//! This crate is what etcd clients see of keel: keys with values and a history. Every write
//! request that changes something advances one store-wide **revision**; each key-value records
//! the revision that created it (`create_revision`), last modified it (`mod_revision`), how many
//! times it was put since creation (`version`) and its `lease`. Deleting a key writes a
//! *tombstone*; a later put starts a new life (version 1 again). Old revisions stay readable
//! until they are **compacted**.
//!
//! ## How it is stored
//! The backend (keel-btree in production, see [`btree_backend`]) holds three buckets:
//! * `key`: the history, keyed by revision (`main`, `sub`, put/tombstone marker, see
//!   [`revision`]) with the full key-value as value. Reading key K at revision R therefore needs
//!   to know *which* revision of K was visible at R; that is the job of
//! * the in-memory **key index** ([`key_index`]): key -> generations of revisions. It is
//!   rebuilt by scanning the history bucket when the store opens.
//! * `meta`: the **consistent index** (the last Raft log index applied), the compaction point
//!   and the current revision, written in the *same* backend commit as the data. After a crash,
//!   the server replays the Raft log; entries at or below the stored consistent index are
//!   skipped, so nothing is applied twice and nothing committed is lost.
//! * `lease`: granted leases with their TTL and checkpointed remaining TTL.
//!
//! ## How requests flow
//! The server hands committed Raft entries to [`Store::apply_batch`], many at once: they are
//! applied in order in memory ([`apply`]), then written in **one** backend commit, and only
//! then are watch events published ([`watch`]). Reads ([`Store::range`]) take a read lock,
//! look up revisions in the index and fetch values from a backend snapshot. The semantics of
//! Range, Put, DeleteRange, Txn and Compact follow etcd's `server/etcdserver/txn` exactly,
//! including its quirks (documented where they occur); errors carry etcd's wire messages
//! ([`Error::etcd_message`]).
//!
//! ## Deferred commits
//! Waiting for the btree's fsyncs on every batch is not needed for safety: the entries are
//! already durable in the Raft log. [`Store::apply_batch_deferred`] applies a batch in memory
//! only (same results as `apply_batch`; the index, leases and consistent index advance, each
//! new history record is encoded once into a commit buffer, from which reads decode the values
//! the backend does not have yet; watch events go out at once) and
//! [`Store::commit_pending`] later writes everything accumulated in **one** backend commit, as
//! etcd's backend commits its write buffer every 100 ms. That commit does not block applies or
//! reads: the queued writes move to an "in-flight" slot, the backend write and fsyncs run with
//! no store lock held, and only then is the committed buffer released (as a whole, and reused
//! for a later commit: a put allocates nothing for the commit once the buffers have grown), so the
//! server calls it from a committer thread of its own (commits are serialized, one in flight).
//! [`Store::durable_index`] is the consistent index of the last completed commit: after a
//! crash the store reopens there and the server re-applies the log after it. Calls that read
//! the backend's own state (hashes, snapshots, defragment, membership, watcher catch-up) wait
//! for an in-flight commit and commit what is pending first. Memory grows with
//! the uncommitted writes, so the caller must commit regularly.
//!
//! ## Installing a snapshot
//! A follower that fell behind receives the leader's state machine (the stream
//! [`Store::snapshot_to`] writes) and installs it into the open store with
//! [`Store::install_snapshot`] (or its two steps, [`Store::prepare_snapshot`] without any lock
//! and [`Store::install_prepared`] under all of them): the file is verified and the new state
//! rebuilt beside the live store, then swapped in atomically, on disk and in memory; watchers
//! catch up from the new history as etcd's do.
//!
//! ## Leases without a clock
//! The store never reads a clock. Lease deadlines are kept only by the leader, from times the
//! caller passes in ([`Store::lease_promote`], [`Store::lease_renew`],
//! [`Store::lease_expired`]); an expired lease is revoked by proposing a normal
//! `LeaseRevoke` through consensus, so every member deletes the same keys at the same revision.
//!
//! ## Module map
//! [`types`] (etcd-shaped requests and responses), [`error`], [`revision`], [`codec`] (byte
//! formats), [`key_index`], [`read`] (range semantics), [`validate`] (pre-log request checks),
//! `apply` (the write path), `commit_buffer` (uncommitted writes and their values),
//! [`write_batch`] (a commit's ops in one byte buffer), [`lease`], [`watch`] + [`interval`]
//! (watchers), [`backend`] (the storage trait and an in-memory backend), [`btree_backend`], `store` ([`Store`]; its
//! `install` submodule: snapshot install),
//! [`etcd_hash`] (HashKV computed over etcd's byte formats, so it equals etcd's).

pub mod apply;
pub mod backend;
pub mod btree_backend;
pub mod codec;
mod commit_buffer;
pub mod crc32c;
pub mod error;
pub mod etcd_hash;
pub mod interval;
pub mod key_index;
pub mod lease;
pub mod read;
pub mod revision;
mod store;
pub mod types;
pub mod validate;
pub mod watch;
pub mod write_batch;

pub use apply::StoreConfig;
pub use backend::{Backend, MemBackend, WriteBatch};
pub use error::{Error, GrpcCode};
pub use lease::{DEFAULT_MIN_LEASE_TTL, MAX_LEASE_TTL};
pub use revision::Revision;
pub use store::{CommitStats, LeaseRenewal, PreparedSnapshot, Store, WatchStream};
pub use types::*;
pub use validate::validate_request;

#[cfg(test)]
mod thread_safety {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn store_and_streams_cross_threads() {
        assert_send_sync::<crate::Store>();
        assert_send_sync::<crate::WatchStream>();
        assert_send_sync::<crate::Error>();
    }
}
