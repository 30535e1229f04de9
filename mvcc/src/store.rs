//! [`Store`]: the public face of the crate. Opening (rebuilding memory from the backend),
//! batched apply, reads at a revision, watch streams, leases, hashes and status.

use crate::apply::{
    fetch_kv, push_close_ops, Batch, InFlight, State, StoreConfig, Unwritten, CLOSE_OPS,
    META_COMPACT_REV, META_CONSISTENT_INDEX, META_CURRENT_REV,
};
use crate::backend::{Backend, BackendRead, Bucket};
use crate::codec::{decode_kv, decode_lease, decode_lease_id, decode_u64};
use crate::commit_buffer::{clear_written, CommitBuffer, Pending};
use crate::crc32c::Crc32c;
use crate::error::Error;
use crate::etcd_hash::KvHasher;
use crate::lease::{Lease, LeaseClock};
use crate::read::range;
use crate::revision::Revision;
use crate::types::*;
use crate::watch::{StreamQueue, WatchHub};
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::collections::HashMap;
use std::sync::Arc;

mod install;
pub use install::PreparedSnapshot;

struct Core {
    /// In-memory state: everything applied, committed or not.
    st: State,
    /// Writes applied but not committed (by [`Store::apply_batch_deferred`]), and not yet
    /// handed to a commit either, with their values: the index already names them, reads
    /// fetch them from here (or from `in_flight`) until the backend has them.
    unwritten: Unwritten,
    /// The commit [`Store::commit_pending`] is writing right now without the core lock
    /// (empty when none): its buffer (values readable), history keys, entry count and
    /// consistent index.
    in_flight: InFlight,
    /// The buffers of the last finished commit, emptied, for the next hand-over to reuse (so
    /// the queued buffer does not grow from nothing after each commit).
    spare: Spare,
    /// Consistent index of the last backend commit (<= `st.consistent_index`).
    durable_index: u64,
    poisoned: Option<String>,
}

impl Core {
    /// The core of a store whose backend holds everything in `st` (just opened, or just
    /// installed from a snapshot): nothing pending, nothing in flight, not poisoned.
    fn new(st: State) -> Core {
        let durable_index = st.consistent_index;
        Core {
            st,
            unwritten: Unwritten::default(),
            in_flight: InFlight::default(),
            spare: Spare::default(),
            durable_index,
            poisoned: None,
        }
    }

    /// The uncommitted values reads must see: queued and in flight.
    fn pending(&self) -> Pending<'_> {
        Pending {
            queued: &self.unwritten.buffer,
            in_flight: self.in_flight.buffer.as_deref(),
        }
    }

    fn check(&self) -> Result<(), Error> {
        match &self.poisoned {
            Some(m) => Err(Error::Storage(format!(
                "store poisoned by an earlier failure: {m}"
            ))),
            None => Ok(()),
        }
    }
}

/// Empty buffers kept from a finished commit for the next one (see [`CommitBuffer::clear`]).
#[derive(Default)]
struct Spare {
    buffer: CommitBuffer,
    written: Vec<[u8; crate::revision::REV_KEY_LEN]>,
}

struct Inner {
    /// The storage engine. Outside `core` so that [`Store::commit_pending`] can write it while
    /// batches apply (backends are `Sync`: reads and one commit may run concurrently). Behind
    /// a lock only so that [`Store::install_snapshot`] can replace it: users take a clone of
    /// the `Arc` ([`Inner::backend`]) and keep it no longer than they hold `core` (read or
    /// write) or `commit_lock`, which the install holds all of while it swaps; so the old
    /// backend is dropped (its file closed) right there.
    backend: RwLock<Arc<dyn Backend>>,
    /// Serializes backend commits: at most one in flight. Held by [`Store::commit_pending`]
    /// during its write, and by every call that commits or needs the backend to hold
    /// everything applied. Lock order: `commit_lock` before `apply_lock` before `core`.
    commit_lock: Mutex<()>,
    /// Serializes applies (deferred or not) and watcher catch-up rounds.
    apply_lock: Mutex<()>,
    /// Leader-local lease deadlines (lock order: after `core`).
    lease_clock: Mutex<LeaseClock>,
    core: RwLock<Core>,
    hub: Mutex<WatchHub>,
    config: StoreConfig,
}

impl Inner {
    /// The current backend (see the field's doc for how long a caller may keep it).
    fn backend(&self) -> Arc<dyn Backend> {
        self.backend.read().clone()
    }
}

/// The MVCC store. Cheap to clone (a shared handle); safe to use from several threads: one
/// thread applies, others read, watch and query leases.
///
/// Lock order, for readers of the code: `core` (RwLock) before `hub` before a stream's queue.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.status();
        f.debug_struct("Store").field("status", &st).finish()
    }
}

fn lookup_prev(core: &Core, reader: &dyn BackendRead, key: &[u8], at: i64) -> Option<KeyValue> {
    if at < core.st.compact_rev || at <= 0 {
        return None;
    }
    let found = core.st.index.get(key, at)?;
    fetch_kv(reader, core.pending(), found.modified).ok()
}

/// Rebuilds the in-memory state (key index, leases, revisions, consistent index) from a
/// backend's committed contents: what [`Store::open`] does, and what installing a snapshot
/// does with the new database before it replaces the old one. Fails with [`Error::Corrupt`]
/// on a record that does not decode.
pub(crate) fn load_state(reader: &dyn BackendRead) -> Result<State, Error> {
    let mut st = State::default();
    let meta = |k: &[u8]| -> Result<u64, Error> {
        match reader.get(Bucket::Meta, k)? {
            Some(v) => decode_u64(&v),
            None => Ok(0),
        }
    };
    st.consistent_index = meta(META_CONSISTENT_INDEX)?;
    // etcd's compactMainRev starts at -1: "never compacted" (so compacting at 0 works).
    st.compact_rev = match reader.get(Bucket::Meta, META_COMPACT_REV)? {
        Some(v) => decode_u64(&v)? as i64,
        None => -1,
    };
    let stored_current = meta(META_CURRENT_REV)? as i64;
    let mut bad = None;
    reader.scan(Bucket::Lease, &[], None, &mut |k, v| {
        match (decode_lease_id(k), decode_lease(v)) {
            (Ok(id), Ok((ttl, rem))) => {
                st.leases.leases.insert(id, Lease::new(ttl, rem));
            }
            (Err(e), _) | (_, Err(e)) => {
                bad = Some(e);
                return false;
            }
        }
        true
    })?;
    let mut max_rev = 0;
    let mut key_lease: HashMap<Vec<u8>, i64> = HashMap::new();
    reader.scan(Bucket::Key, &[], None, &mut |k, v| {
        let decoded = Revision::from_key(k).and_then(|(rev, tomb)| Ok((rev, tomb, decode_kv(v)?)));
        match decoded {
            Ok((rev, tomb, kv)) => {
                max_rev = max_rev.max(rev.main);
                if tomb {
                    st.index.tombstone(&kv.key, rev);
                    key_lease.remove(&kv.key);
                } else {
                    st.index
                        .restore_put(&kv.key, rev, kv.create_revision, kv.version);
                    if kv.lease != 0 {
                        key_lease.insert(kv.key, kv.lease);
                    } else {
                        key_lease.remove(&kv.key);
                    }
                }
                true
            }
            Err(e) => {
                bad = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = bad {
        return Err(e);
    }
    for (key, id) in key_lease {
        st.leases.attach(id, &key);
    }
    // A fresh etcd store is at revision 1 (the first write gets revision 2).
    st.current_rev = stored_current.max(max_rev).max(st.compact_rev).max(1);
    Ok(st)
}

impl Store {
    /// Opens a store on keel-btree at `path` (created if missing).
    pub fn open_path(
        path: impl AsRef<std::path::Path>,
        config: StoreConfig,
    ) -> Result<Store, Error> {
        let backend = crate::btree_backend::BtreeBackend::open(path.as_ref())?;
        Store::open(Box::new(backend), config)
    }

    /// Opens a store on any backend, rebuilding the key index, leases and revisions from it.
    pub fn open(backend: Box<dyn Backend>, config: StoreConfig) -> Result<Store, Error> {
        let st = load_state(&*backend.read()?)?;
        Ok(Store {
            inner: Arc::new(Inner {
                backend: RwLock::new(Arc::from(backend)),
                commit_lock: Mutex::new(()),
                apply_lock: Mutex::new(()),
                lease_clock: Mutex::new(LeaseClock::default()),
                core: RwLock::new(Core::new(st)),
                hub: Mutex::new(WatchHub::default()),
                config,
            }),
        })
    }

    /// Applies a batch of raft entries in one backend commit, and returns one result per entry.
    ///
    /// Entries whose index is <= the consistent index were applied before (e.g. replayed
    /// from the WAL after a restart) and are skipped with [`Error::AlreadyApplied`]. The new
    /// consistent index is written in the same commit as the data, so a crash either keeps both
    /// or neither. Watch events are published after the commit is durable.
    ///
    /// Writes left uncommitted by earlier [`Store::apply_batch_deferred`] calls are part of this
    /// commit (after a [`Store::commit_pending`] in flight, which it waits for): on return,
    /// everything applied so far is durable.
    pub fn apply_batch(&self, entries: &[(u64, Request)]) -> Vec<Result<Response, Error>> {
        self.apply_batch_owned(entries.to_vec())
    }

    /// [`Store::apply_batch`] taking the requests by value: their keys and values move into
    /// the store instead of being copied.
    pub fn apply_batch_owned(&self, entries: Vec<(u64, Request)>) -> Vec<Result<Response, Error>> {
        let count = entries.len();
        // Commits are serialized: wait for a commit_pending in flight (ours must follow it).
        let _committing = self.inner.commit_lock.lock();
        // One batch at a time; catch-up rounds also wait for a batch to be durable.
        let _applying = self.inner.apply_lock.lock();
        let mut guard = self.inner.core.write();
        let (results, events) = match self.apply_in_memory(&mut guard, entries) {
            Ok(applied) => applied,
            Err(poisoned) => return poisoned,
        };
        if guard.unwritten.entries == 0 {
            return results; // nothing applied, now or before
        }
        // Readers may go on while the batch is written and fsynced: the index already shows
        // the batch and its values are served from the commit buffer until the backend has
        // them. (The
        // entries are durable in the Raft log already, as in etcd, whose reads see its
        // uncommitted backend buffer.)
        let (guard, outcome) = self.commit_unwritten(guard);
        if let Err(e) = outcome {
            return vec![Err(e); count];
        }
        self.publish(&guard, &events);
        // The backend has the batch now: empty the buffer (a brief, I/O-free write lock).
        drop(guard);
        self.release_committed();
        results
    }

    /// Applies a batch of raft entries **in memory only**, and returns one result per entry:
    /// the same results as [`Store::apply_batch`] would give, but without writing the backend.
    ///
    /// Everything else happens at once: reads, txns, leases and later batches see the new
    /// state (the key index and lease table are updated, values are served from an in-memory
    /// commit buffer), [`Store::consistent_index`] advances, and watch events are published. The
    /// backend writes accumulate until [`Store::commit_pending`] (or the next
    /// [`Store::apply_batch`], or a call that reads the backend's own state, such as
    /// [`Store::hash_kv`] or [`Store::snapshot_to`]) writes them all in one commit.
    ///
    /// This is how etcd applies (into bbolt's write buffer, committed every 100 ms): an
    /// acknowledged write waits for the Raft log's fsync only. It is safe because the entries
    /// are in the Raft log: after a crash, the store reopens at [`Store::durable_index`] and the
    /// server re-applies the log entries after it. **Memory grows with the uncommitted writes
    /// (their encoded ops, which hold the values) until the caller commits**, so call
    /// [`Store::commit_pending`] regularly (e.g. every 100 ms or 10,000 entries, like etcd),
    /// and before a clean shutdown: dropping the store does not commit (it behaves like a
    /// crash, which the log replay repairs).
    ///
    /// A backend failure while applying (a failed read of an older value) poisons the store
    /// as in [`Store::apply_batch`]; the uncommitted writes are then lost with it.
    pub fn apply_batch_deferred(&self, entries: &[(u64, Request)]) -> Vec<Result<Response, Error>> {
        self.apply_batch_deferred_owned(entries.to_vec())
    }

    /// [`Store::apply_batch_deferred`] taking the requests by value: their keys and values
    /// move into the store instead of being copied (what a server applying decoded Raft
    /// entries wants).
    pub fn apply_batch_deferred_owned(
        &self,
        entries: Vec<(u64, Request)>,
    ) -> Vec<Result<Response, Error>> {
        let _applying = self.inner.apply_lock.lock();
        let mut guard = self.inner.core.write();
        let (results, events) = match self.apply_in_memory(&mut guard, entries) {
            Ok(applied) => applied,
            Err(poisoned) => return poisoned,
        };
        let guard = RwLockWriteGuard::downgrade(guard);
        self.publish(&guard, &events);
        results
    }

    /// Writes everything applied by [`Store::apply_batch_deferred`] and not yet committed in
    /// **one** backend commit (with the consistent index and current revision), then drops the
    /// committed buffer and advances [`Store::durable_index`].
    ///
    /// **Applies and reads go on during the backend write and its fsyncs**, so the server can
    /// call this from a committer thread of its own:
    /// 1. briefly under the locks, the queued writes move to an "in-flight" commit, which ends
    ///    at the current consistent index;
    /// 2. the backend commit runs without the store's locks (batches applied meanwhile queue
    ///    up for the next commit; reads find the in-flight values in the buffer being
    ///    committed, shared with this thread);
    /// 3. briefly under the write lock, the committed buffer is released as a whole (emptied
    ///    and kept for a later commit; values applied meanwhile are in the queued buffer and
    ///    stay) and `durable_index` is set to the index the commit ended at.
    ///
    /// Commits are serialized: while one is in flight, a second caller (and
    /// [`Store::apply_batch`], [`Store::hash_kv`], [`Store::snapshot_to`], ...) waits for it,
    /// then commits what accumulated since.
    ///
    /// Returns what was committed; `entries == 0` means nothing was pending and the backend was
    /// not touched. A backend failure poisons the store (every later call, applies included,
    /// fails until it is reopened; the lost entries are re-applied from the Raft log after
    /// [`Store::durable_index`]).
    pub fn commit_pending(&self) -> Result<CommitStats, Error> {
        let _committing = self.inner.commit_lock.lock();
        // 1. Hand the queued writes to the in-flight slot (apply_lock: between two batches).
        let (ops, stats): (Arc<CommitBuffer>, CommitStats) = {
            let _applying = self.inner.apply_lock.lock();
            let mut core = self.inner.core.write();
            core.check()?;
            let entries = core.unwritten.entries;
            if entries == 0 {
                return Ok(CommitStats::default());
            }
            let core = &mut *core;
            // The queued buffer goes in flight; the spare one (empty) takes its place.
            let mut buffer = std::mem::replace(
                &mut core.unwritten.buffer,
                std::mem::take(&mut core.spare.buffer),
            );
            push_close_ops(&core.st, &mut buffer.batch);
            let consistent_index = core.st.consistent_index;
            let stats = CommitStats {
                entries,
                ops: buffer.batch.len(),
                consistent_index,
            };
            let buffer = Arc::new(buffer);
            core.in_flight = InFlight {
                buffer: Some(buffer.clone()),
                written: std::mem::replace(
                    &mut core.unwritten.written,
                    std::mem::take(&mut core.spare.written),
                ),
                entries,
                consistent_index,
            };
            core.unwritten.entries = 0;
            (buffer, stats)
        };
        // 2. Write and fsync with no store lock held: applies and reads go on (reads find the
        // in-flight values in the same buffer, shared).
        let outcome = self.inner.backend().commit(&ops.batch);
        // 3. Release what the commit wrote (or poison the store): the in-flight buffer goes
        // as a whole.
        let mut core = self.inner.core.write();
        let done = std::mem::take(&mut core.in_flight);
        if let Err(e) = outcome {
            let m = e.storage_message();
            core.poisoned = Some(m.clone());
            return Err(Error::Storage(m));
        }
        drop(done.buffer); // the store's handle: ours is now the only one
        if let Ok(mut buffer) = Arc::try_unwrap(ops) {
            buffer.clear();
            core.spare.buffer = buffer;
        }
        let mut written = done.written;
        clear_written(&mut written);
        core.spare.written = written;
        core.durable_index = done.consistent_index;
        Ok(stats)
    }

    /// Raft entries applied and not yet durable in the backend: those applied by
    /// [`Store::apply_batch_deferred`] and still queued, plus those of a
    /// [`Store::commit_pending`] in flight ([`Store::in_flight_entries`]).
    pub fn pending_entries(&self) -> usize {
        let core = self.inner.core.read();
        core.unwritten.entries + core.in_flight.entries
    }

    /// Raft entries being written by a [`Store::commit_pending`] in flight (0 when no commit
    /// is running).
    pub fn in_flight_entries(&self) -> usize {
        self.inner.core.read().in_flight.entries
    }

    /// The consistent index of the last completed backend commit: after a crash the store
    /// reopens here, and the Raft log entries after it must be applied again. It advances when
    /// a commit has finished (not when it starts). Equal to [`Store::consistent_index`] when
    /// nothing is pending or in flight.
    pub fn durable_index(&self) -> u64 {
        self.inner.core.read().durable_index
    }

    /// Commits what is pending inline, with `commit_lock` and `apply_lock` already held by the
    /// caller (so no commit is in flight and no batch applies): on return the backend holds
    /// everything applied.
    fn commit_pending_locked(&self) -> Result<CommitStats, Error> {
        let guard = self.inner.core.write();
        guard.check()?;
        debug_assert_eq!(
            guard.in_flight.entries, 0,
            "commit_lock held: none in flight"
        );
        let entries = guard.unwritten.entries;
        if entries == 0 {
            return Ok(CommitStats::default());
        }
        let ops = guard.unwritten.buffer.batch.len() + CLOSE_OPS;
        let (guard, outcome) = self.commit_unwritten(guard);
        outcome?;
        let consistent_index = guard.st.consistent_index;
        drop(guard);
        self.release_committed();
        Ok(CommitStats {
            entries,
            ops,
            consistent_index,
        })
    }

    /// Applies `entries` in memory (apply_lock held, core write-locked): their writes join
    /// `unwritten` (which serves their values). Returns the results and the watch events, or, if
    /// the store is (or became) poisoned, the results to return.
    #[allow(clippy::type_complexity)]
    fn apply_in_memory(
        &self,
        guard: &mut RwLockWriteGuard<'_, Core>,
        entries: Vec<(u64, Request)>,
    ) -> Result<(Vec<Result<Response, Error>>, Vec<Event>), Vec<Result<Response, Error>>> {
        let count = entries.len();
        if let Err(e) = guard.check() {
            return Err(vec![Err(e); count]);
        }
        let core = &mut **guard;
        let backend = self.inner.backend();
        let reader = match backend.read() {
            Ok(r) => r,
            Err(e) => return Err(vec![Err(e); count]),
        };
        let mut results = Vec::with_capacity(count);
        let mut batch = Batch::new(
            &mut core.st,
            &*reader,
            &self.inner.config,
            &self.inner.lease_clock,
            &mut core.unwritten,
            &mut core.in_flight,
        );
        // Holding the core write lock, no watcher can be created meanwhile; one created
        // before this batch's events are published starts after them (see `WatchHub::create`),
        // and an unsynced one catches up from history, so none needs them.
        batch.collect_events = self.inner.hub.lock().has_synced_watchers();
        let mut fatal = None;
        for (index, req) in entries {
            if index <= batch.st.consistent_index {
                results.push(Err(Error::AlreadyApplied {
                    index,
                    consistent_index: batch.st.consistent_index,
                }));
                continue;
            }
            let res = batch.apply(index, req);
            if let Err(Error::Corrupt(m) | Error::Storage(m)) = &res {
                fatal = Some(m.clone());
                results.push(res);
                break;
            }
            batch.st.consistent_index = index;
            batch.unwritten.entries += 1;
            results.push(res);
        }
        let events = std::mem::take(&mut batch.events);
        drop(batch);
        drop(reader);
        if let Some(m) = fatal {
            core.poisoned = Some(m.clone());
            while results.len() < count {
                results.push(Err(Error::Storage(m.clone())));
            }
            return Err(results);
        }
        Ok((results, events))
    }

    /// Commits `unwritten` (plus the meta writes) with the core lock downgraded to read, so
    /// readers go on during the fsyncs (finding the values in the buffer being committed). On
    /// failure the store is poisoned and the error returned. The caller holds `commit_lock`
    /// and `apply_lock` (so nothing is in flight and nothing applies meanwhile) and must call
    /// `release_committed` after dropping the returned guard.
    fn commit_unwritten<'a>(
        &'a self,
        mut guard: RwLockWriteGuard<'a, Core>,
    ) -> (RwLockReadGuard<'a, Core>, Result<(), Error>) {
        let core = &mut *guard;
        push_close_ops(&core.st, &mut core.unwritten.buffer.batch);
        clear_written(&mut core.unwritten.written);
        core.unwritten.entries = 0;
        let guard = RwLockWriteGuard::downgrade(guard);
        match self.inner.backend().commit(&guard.unwritten.buffer.batch) {
            Ok(()) => (guard, Ok(())),
            Err(e) => {
                drop(guard);
                let m = e.storage_message();
                self.inner.core.write().poisoned = Some(m.clone());
                (self.inner.core.read(), Err(Error::Storage(m)))
            }
        }
    }

    /// After an inline commit (`commit_unwritten`, nothing in flight): the backend has every
    /// applied value, so the committed buffer is emptied (kept for reuse) and the durable index
    /// catches up (a brief, I/O-free write lock).
    fn release_committed(&self) {
        let mut core = self.inner.core.write();
        core.unwritten.buffer.clear();
        core.durable_index = core.st.consistent_index;
    }

    /// Publishes a batch's watch events (core locked for reading).
    fn publish(&self, core: &Core, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let backend = self.inner.backend();
        if let Ok(reader) = backend.read() {
            let mut prev = |k: &[u8], at: i64| lookup_prev(core, &*reader, k, at);
            self.inner
                .hub
                .lock()
                .publish(events, core.st.current_rev, &mut prev);
        };
    }

    /// The membership blob last stored by [`Request::SetMembership`] and committed to the
    /// backend (None if never set). It belongs to [`Store::consistent_index`] as of the same
    /// commit; the server reads it when it opens the store. Pending deferred writes are
    /// committed first.
    pub fn membership(&self) -> Result<Option<Vec<u8>>, Error> {
        self.meta(MetaKey::Membership)
    }

    /// The blob last stored under `key` by [`Request::SetMeta`] (or
    /// [`Request::SetMembership`]) and committed to the backend (None if never set), as of the
    /// same commit as [`Store::consistent_index`]. Pending deferred writes are committed first.
    pub fn meta(&self, key: MetaKey) -> Result<Option<Vec<u8>>, Error> {
        // The blob may be in a deferred batch: commit it first.
        let _committing = self.inner.commit_lock.lock(); // no commit in flight
        let _applying = self.inner.apply_lock.lock();
        self.commit_pending_locked()?;
        let core = self.inner.core.read();
        core.check()?;
        let backend = self.inner.backend();
        let reader = backend.read()?;
        reader.get(Bucket::Meta, key.key())
    }

    /// Applies one entry (a batch of one).
    pub fn apply(&self, index: u64, req: Request) -> Result<Response, Error> {
        self.apply_batch(&[(index, req)]).pop().expect("one result")
    }

    /// A read-only range at a revision, served from local state (serializable reads, and
    /// linearizable ones once the server has waited for the read index to be applied).
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, Error> {
        crate::validate::validate_request(&Request::Range(req.clone()), usize::MAX)?;
        let core = self.inner.core.read();
        core.check()?;
        let backend = self.inner.backend();
        let reader = backend.read()?;
        let fetch = |rev| fetch_kv(&*reader, core.pending(), rev);
        let cur = core.st.current_rev;
        range(&core.st.index, &fetch, req, cur, core.st.compact_rev, cur)
    }

    /// A read-only txn (compares and ranges only) evaluated locally without going through the
    /// log, as etcd serves serializable read-only txns. Returns None if the txn writes.
    pub fn read_only_txn(&self, req: &TxnRequest) -> Option<Result<TxnResponse, Error>> {
        fn writes(ops: &[RequestOp]) -> bool {
            ops.iter().any(|op| match op {
                RequestOp::Put(_) | RequestOp::DeleteRange(_) => true,
                RequestOp::Txn(t) => writes(&t.success) || writes(&t.failure),
                RequestOp::Range(_) => false,
            })
        }
        if writes(&req.success) || writes(&req.failure) {
            return None;
        }
        // A read-only txn changes nothing, so evaluating it as an apply on a scratch batch
        // that is never committed gives exactly etcd's answer.
        let result = (|| {
            crate::validate::validate_request(
                &Request::Txn(req.clone()),
                self.inner.config.max_txn_ops,
            )?;
            let mut core = self.inner.core.write();
            core.check()?;
            let core = &mut *core;
            let backend = self.inner.backend();
            let reader = backend.read()?;
            // Reads see uncommitted values in the commit buffers; the txn writes nothing, so
            // the queued buffer is left as it was.
            let queued_ops = core.unwritten.buffer.batch.len();
            let mut batch = Batch::new(
                &mut core.st,
                &*reader,
                &self.inner.config,
                &self.inner.lease_clock,
                &mut core.unwritten,
                &mut core.in_flight,
            );
            let resp = batch.apply(0, Request::Txn(req.clone()));
            debug_assert_eq!(batch.unwritten.buffer.batch.len(), queued_ops);
            match resp? {
                Response::Txn(t) => Ok(t),
                _ => unreachable!("txn request yields txn response"),
            }
        })();
        Some(result)
    }

    /// Current revision, compaction revision, consistent index, sizes and counters.
    pub fn status(&self) -> Status {
        let core = self.inner.core.read();
        let (db_size, db_size_in_use) = self.inner.backend().size();
        let (watchers_synced, watchers_unsynced) = self.inner.hub.lock().counts();
        Status {
            revision: core.st.current_rev,
            compact_revision: core.st.compact_rev,
            consistent_index: core.st.consistent_index,
            keys: core.st.index.live_keys(),
            index_revisions: core.st.index.revision_count(),
            db_size,
            db_size_in_use,
            leases: core.st.leases.leases.len() as u64,
            watchers_synced,
            watchers_unsynced,
        }
    }

    /// Streams a consistent copy of the backend (the state machine part of a Raft snapshot, and
    /// etcd's Maintenance/Snapshot); returns the bytes written. Pending deferred writes are
    /// committed first, so the copy holds everything applied ([`Store::consistent_index`]).
    pub fn snapshot_to(&self, w: &mut dyn std::io::Write) -> Result<u64, Error> {
        let _committing = self.inner.commit_lock.lock(); // no commit in flight
        let _applying = self.inner.apply_lock.lock(); // no batch applying
        self.commit_pending_locked()?; // backend = memory
        let core = self.inner.core.read();
        core.check()?;
        self.inner.backend().snapshot_to(w)
    }

    /// Installs a snapshot made by [`Store::snapshot_to`] as the database at `path` and opens a
    /// store on it (a follower receiving a Raft snapshot: close the old store first).
    pub fn restore_path(
        r: &mut dyn std::io::Read,
        path: impl AsRef<std::path::Path>,
        config: StoreConfig,
    ) -> Result<Store, Error> {
        let backend = crate::btree_backend::restore(r, path.as_ref())?;
        Store::open(Box::new(backend), config)
    }

    /// Defragments the backend (etcd's Maintenance/Defragment), after committing pending
    /// deferred writes. Blocks applies while it runs.
    pub fn defragment(&self) -> Result<(), Error> {
        let _committing = self.inner.commit_lock.lock(); // no commit in flight
        let _applying = self.inner.apply_lock.lock(); // no batch applying
        self.commit_pending_locked()?; // backend = memory
        let core = self.inner.core.write();
        core.check()?;
        self.inner.backend().defragment()
    }

    /// The current revision.
    pub fn current_revision(&self) -> i64 {
        self.inner.core.read().st.current_rev
    }

    /// The last raft index applied (in memory; persisted with the data by the commit that
    /// includes it, see [`Store::durable_index`]).
    pub fn consistent_index(&self) -> u64 {
        self.inner.core.read().st.consistent_index
    }

    /// HashKV, the value etcd computes for the same history (`etcdctl endpoint hashkv` gives
    /// the same number on keel and etcd): CRC-32C (Castagnoli) over `"key"`, then each stored
    /// history entry with main revision <= `revision` (0 = current), in revision order, as
    /// etcd's bytes (its revision key and the protobuf `mvccpb.KeyValue`); entries at or below
    /// the compaction revision only if the index keeps them at `revision`. See
    /// [`crate::etcd_hash`]. Like etcd 3.4, a `revision` at or below the compaction revision is
    /// [`Error::Compacted`], one above the current revision [`Error::FutureRevision`].
    /// Pending deferred writes are committed first.
    pub fn hash_kv(&self, revision: i64) -> Result<HashKv, Error> {
        let _committing = self.inner.commit_lock.lock(); // no commit in flight
        let _applying = self.inner.apply_lock.lock(); // no batch applying
        self.commit_pending_locked()?; // backend = memory
        let core = self.inner.core.read();
        core.check()?;
        let (cur, compact) = (core.st.current_rev, core.st.compact_rev);
        if revision > 0 && revision <= compact {
            return Err(Error::Compacted);
        }
        if revision > cur {
            return Err(Error::FutureRevision);
        }
        let rev = if revision <= 0 { cur } else { revision };
        let mut hasher = KvHasher::new(compact, rev, core.st.index.keep(rev));
        let backend = self.inner.backend();
        let reader = backend.read()?;
        let mut failure = None;
        reader.scan(
            Bucket::Key,
            &[],
            Some(&Revision::main_lower_bound(rev + 1)),
            &mut |k, v| {
                let entry = Revision::from_key(k)
                    .and_then(|(r, tombstone)| Ok((r, tombstone, decode_kv(v)?)));
                match entry {
                    Ok((r, tombstone, kv)) => {
                        hasher.write(r, tombstone, &kv);
                        true
                    }
                    Err(e) => {
                        failure = Some(e);
                        false
                    }
                }
            },
        )?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(HashKv {
            hash: hasher.finish(),
            compact_revision: compact,
            hash_revision: rev,
        })
    }

    /// Hash of the whole store: CRC-32C over every bucket (name, then each key and value) of
    /// keel's own storage format. Members that applied the same log agree; unlike HashKV it
    /// cannot equal etcd's `Hash` (that one checksums etcd's whole bbolt file). Pending
    /// deferred writes are committed first.
    pub fn hash(&self) -> Result<u32, Error> {
        let _committing = self.inner.commit_lock.lock(); // no commit in flight
        let _applying = self.inner.apply_lock.lock(); // no batch applying
        self.commit_pending_locked()?; // backend = memory
        let core = self.inner.core.read();
        core.check()?;
        let backend = self.inner.backend();
        let reader = backend.read()?;
        let mut h = Crc32c::new();
        for b in Bucket::ALL {
            h.update(b.name());
            reader.scan(b, &[], None, &mut |k, v| {
                h.update(k);
                h.update(v);
                true
            })?;
        }
        Ok(h.finish())
    }

    // ---------------------------------------------------------------- watches

    /// Opens a watch stream. `notify` is called whenever responses were queued on it.
    pub fn watch_stream(&self, notify: impl Fn() + Send + Sync + 'static) -> WatchStream {
        let queue = Arc::new(StreamQueue {
            items: Mutex::new(Default::default()),
            capacity: self.inner.config.watch_stream_capacity,
            notify: Box::new(notify),
        });
        let id = self.inner.hub.lock().add_stream(queue.clone());
        WatchStream {
            store: self.clone(),
            id,
            queue,
        }
    }

    /// Runs one catch-up round for watchers that are behind (at most 512 watchers and 1000
    /// revisions). The server calls this periodically (etcd: every 100 ms) and after clients
    /// drained their queues. Returns the number of watchers still catching up.
    pub fn sync_watchers(&self) -> Result<usize, Error> {
        // The history scan reads the backend, which must then hold every revision up to the
        // current one: never during apply_batch's commit (apply_lock), and if a watcher will
        // scan history while revisions are queued or in flight, wait for the in-flight commit
        // (commit_lock) and commit the rest first. Checked with the hub locked and the hub kept
        // locked through the round, so no watcher can start between the check and the scan
        // (and apply_lock keeps new batches and commit hand-overs out until the round is over).
        // Without a behind watcher, a round never waits for a commit.
        let mut committing = None;
        let (_applying, core, mut hub) = loop {
            let applying = self.inner.apply_lock.lock();
            let core = self.inner.core.read();
            core.check()?;
            let hub = self.inner.hub.lock();
            let backend_behind = core.unwritten.entries + core.in_flight.entries > 0;
            if !backend_behind || hub.counts().1 == 0 {
                break (applying, core, hub);
            }
            drop(hub);
            drop(core);
            if committing.is_some() {
                // commit_lock and apply_lock held: nothing in flight, commit inline
                self.commit_pending_locked()?;
            } else {
                // lock order: commit_lock before apply_lock
                drop(applying);
                committing = Some(self.inner.commit_lock.lock());
            }
        };
        let backend = self.inner.backend();
        let reader = backend.read()?;
        let reader = &*reader;
        let mut history = |lo: i64, hi: i64| -> Result<Vec<Event>, Error> {
            let mut out = Vec::new();
            let mut bad = None;
            reader.scan(
                Bucket::Key,
                &Revision::main_lower_bound(lo),
                Some(&Revision::main_lower_bound(hi + 1)),
                &mut |k, v| {
                    match Revision::from_key(k).and_then(|(r, t)| Ok((r, t, decode_kv(v)?))) {
                        Ok((rev, tomb, mut kv)) => {
                            let kind = if tomb {
                                kv = KeyValue {
                                    key: kv.key,
                                    mod_revision: rev.main,
                                    ..Default::default()
                                };
                                EventType::Delete
                            } else {
                                EventType::Put
                            };
                            out.push(Event {
                                kind,
                                kv,
                                prev_kv: None,
                            });
                        }
                        Err(e) => {
                            bad = Some(e);
                            return false;
                        }
                    }
                    true
                },
            )?;
            match bad {
                Some(e) => Err(e),
                None => Ok(out),
            }
        };
        let mut prev = |k: &[u8], at: i64| lookup_prev(&core, reader, k, at);
        let cfg = &self.inner.config;
        hub.sync(
            core.st.current_rev,
            core.st.compact_rev,
            cfg.watch_sync_batch,
            cfg.watch_batch_max_revs,
            &mut history,
            &mut prev,
        )
    }

    // ---------------------------------------------------------------- leases (leader-local)

    /// Becomes the lease primary (the member is now leader): every lease gets a deadline of
    /// `now_ms` + its checkpointed remaining TTL, or its full TTL.
    pub fn lease_promote(&self, now_ms: u64) {
        let core = self.inner.core.read();
        let mut clock = self.inner.lease_clock.lock();
        clock.observe(now_ms);
        clock.primary = true;
        clock.deadlines = core
            .st
            .leases
            .leases
            .iter()
            .map(|(id, l)| {
                (
                    *id,
                    now_ms.saturating_add(l.refresh_ttl().max(0) as u64 * 1000),
                )
            })
            .collect();
    }

    /// Stops being primary (leadership lost): deadlines are forgotten.
    pub fn lease_demote(&self) {
        let mut clock = self.inner.lease_clock.lock();
        clock.primary = false;
        clock.deadlines.clear();
    }

    /// Renews a lease (LeaseKeepAlive, on the leader): the deadline restarts from the full TTL.
    /// Returns the TTL. If the lease had a checkpoint, the caller should propose a
    /// `LeaseCheckpoint { id, remaining_ttl: 0 }` so a future leader does not use a stale one.
    /// Never waits for a batch being committed.
    ///
    /// Unknown or expired leases give `Err(LeaseNotFound)`; on the wire etcd answers a
    /// keep-alive for them with `TTL = 0` and no error (checked on 3.4), so the server maps it.
    pub fn lease_renew(&self, id: i64, now_ms: u64) -> Result<LeaseRenewal, Error> {
        let core = self.inner.core.read();
        let mut clock = self.inner.lease_clock.lock();
        clock.observe(now_ms);
        let l = core.st.leases.leases.get(&id).ok_or(Error::LeaseNotFound)?;
        if clock.primary {
            if clock.deadlines.get(&id).is_some_and(|d| *d <= now_ms) {
                return Err(Error::LeaseNotFound); // expired, revoke pending (etcd: ErrLeaseNotFound)
            }
            clock
                .deadlines
                .insert(id, now_ms.saturating_add(l.ttl.max(0) as u64 * 1000));
        }
        Ok(LeaseRenewal {
            ttl: l.ttl,
            clear_checkpoint: l.remaining_ttl > 0,
        })
    }

    /// Leases whose deadline is at or before `now_ms` (empty unless primary). The leader
    /// proposes a `LeaseRevoke` for each.
    pub fn lease_expired(&self, now_ms: u64) -> Vec<i64> {
        let core = self.inner.core.read();
        let mut clock = self.inner.lease_clock.lock();
        clock.observe(now_ms);
        let mut out: Vec<i64> = clock
            .deadlines
            .iter()
            .filter(|(id, d)| **d <= now_ms && core.st.leases.leases.contains_key(id))
            .map(|(id, _)| *id)
            .collect();
        out.sort_unstable();
        out
    }

    /// Remaining TTLs to checkpoint (leader only): one entry per lease with a deadline, with
    /// its remaining seconds (at least 1). Propose them as `Request::LeaseCheckpoint`.
    pub fn lease_checkpoints(&self, now_ms: u64) -> Vec<LeaseCheckpoint> {
        let core = self.inner.core.read();
        let clock = self.inner.lease_clock.lock();
        core.st
            .leases
            .leases
            .keys()
            .filter_map(|id| {
                let d = clock.deadlines.get(id)?;
                let remaining = (d.saturating_sub(now_ms) / 1000).max(1) as i64;
                Some(LeaseCheckpoint {
                    id: *id,
                    remaining_ttl: remaining,
                })
            })
            .collect()
    }

    /// LeaseTimeToLive: remaining seconds (truncated; -1 once expired) on the primary; on
    /// other members the checkpointed remaining TTL, or the granted TTL.
    ///
    /// An unknown lease gives `Err(LeaseNotFound)`; on the wire etcd answers it with
    /// `{ID, TTL: -1}` and no error (checked on 3.4), so the server maps it.
    pub fn lease_time_to_live(
        &self,
        id: i64,
        keys: bool,
        now_ms: u64,
    ) -> Result<LeaseTimeToLiveResponse, Error> {
        let core = self.inner.core.read();
        let mut clock = self.inner.lease_clock.lock();
        clock.observe(now_ms);
        let l = core.st.leases.leases.get(&id).ok_or(Error::LeaseNotFound)?;
        let ttl = match clock.deadlines.get(&id) {
            Some(d) if *d > now_ms => ((d - now_ms) / 1000) as i64,
            Some(_) => -1,
            None => l.refresh_ttl(),
        };
        Ok(LeaseTimeToLiveResponse {
            id,
            ttl,
            granted_ttl: l.ttl,
            keys: if keys {
                l.keys.iter().cloned().collect()
            } else {
                Vec::new()
            },
        })
    }

    /// LeaseLeases: every lease ID, ascending.
    pub fn lease_list(&self) -> Vec<i64> {
        self.inner
            .core
            .read()
            .st
            .leases
            .leases
            .keys()
            .copied()
            .collect()
    }
}

/// Result of [`Store::commit_pending`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Raft entries committed (applied by [`Store::apply_batch_deferred`] since the last
    /// commit). 0: nothing was pending and the backend was not written.
    pub entries: usize,
    /// Backend writes in the commit (puts and deletes, the meta writes included).
    pub ops: usize,
    /// The consistent index now durable ([`Store::durable_index`]); 0 if nothing was committed.
    pub consistent_index: u64,
}

/// Result of [`Store::lease_renew`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRenewal {
    /// The lease's TTL in seconds (the keep-alive response's TTL).
    pub ttl: i64,
    /// The lease had a checkpointed remaining TTL; propose a checkpoint with 0 to clear it.
    pub clear_checkpoint: bool,
}

/// One client watch stream (etcd's `Watch` bidi stream): create and cancel watchers, ask for
/// progress, and drain the responses in the order they must be sent.
pub struct WatchStream {
    store: Store,
    id: u64,
    queue: Arc<StreamQueue>,
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream")
            .field("id", &self.id)
            .field("queued", &self.len())
            .finish()
    }
}

impl WatchStream {
    /// Creates a watcher and queues its `created` response. A watcher starting in the past is
    /// caught up by [`Store::sync_watchers`] (and cancelled there if its start is compacted).
    pub fn watch(&self, req: &WatchCreateRequest) -> Result<i64, Error> {
        let core = self.store.inner.core.read();
        let current = core.st.current_rev;
        self.store.inner.hub.lock().create(self.id, req, current)
    }

    /// Cancels a watcher and queues its `canceled` response; false if it does not exist.
    pub fn cancel(&self, watch_id: i64) -> bool {
        let core = self.store.inner.core.read();
        let current = core.st.current_rev;
        self.store
            .inner
            .hub
            .lock()
            .cancel(self.id, watch_id, current)
    }

    /// A progress request: queues a `watch_id = -1` response with the current revision once
    /// every watcher of the stream is synced.
    pub fn request_progress(&self) {
        let core = self.store.inner.core.read();
        let current = core.st.current_rev;
        self.store
            .inner
            .hub
            .lock()
            .request_progress(self.id, current)
    }

    /// The periodic progress notification for watchers created with `progress_notify`.
    pub fn progress_notify(&self) {
        let core = self.store.inner.core.read();
        let current = core.st.current_rev;
        self.store
            .inner
            .hub
            .lock()
            .progress_notify(self.id, current)
    }

    /// Takes the next queued response.
    pub fn try_recv(&self) -> Option<WatchResponse> {
        self.queue.items.lock().pop_front()
    }

    /// Moves every queued response into `out`; returns how many.
    pub fn drain_into(&self, out: &mut Vec<WatchResponse>) -> usize {
        let mut q = self.queue.items.lock();
        let n = q.len();
        out.extend(q.drain(..));
        n
    }

    /// Number of queued responses.
    pub fn len(&self) -> usize {
        self.queue.items.lock().len()
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        self.store.inner.hub.lock().remove_stream(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemBackend;
    use crate::commit_buffer::MAX_REUSED_OPS;

    fn puts(first_index: u64, n: usize) -> Vec<(u64, Request)> {
        (0..n as u64)
            .map(|i| {
                let req = Request::Put(PutRequest {
                    key: format!("k{}", i % 64).into_bytes(),
                    value: b"v".to_vec(),
                    ..Default::default()
                });
                (first_index + i, req)
            })
            .collect()
    }

    /// The capacity (in history keys) of every list of history keys the store keeps.
    fn written_capacities(store: &Store) -> [usize; 3] {
        let core = store.inner.core.read();
        [
            core.unwritten.written.capacity(),
            core.in_flight.written.capacity(),
            core.spare.written.capacity(),
        ]
    }

    /// A burst of writes between two commits (a stalled committer, a big replay) must not
    /// keep its memory once committed: the lists of history keys are bounded like the commit
    /// buffers (freed past `MAX_REUSED_OPS`), on the deferred path and on the inline one.
    #[test]
    fn a_burst_does_not_keep_its_history_key_lists() {
        let store = Store::open(Box::new(MemBackend::new()), StoreConfig::default()).unwrap();
        let burst = MAX_REUSED_OPS + MAX_REUSED_OPS / 2;
        let mut index = 1;
        while index <= burst as u64 {
            for r in store.apply_batch_deferred_owned(puts(index, 1000)) {
                r.unwrap();
            }
            index += 1000;
        }
        assert!(written_capacities(&store)[0] > MAX_REUSED_OPS);
        let stats = store.commit_pending().unwrap();
        assert!(stats.entries > MAX_REUSED_OPS);
        for cap in written_capacities(&store) {
            assert!(
                cap <= MAX_REUSED_OPS,
                "kept {cap} history keys after the commit"
            );
        }
        // the next commit still works from the freed lists
        store.apply_batch_deferred_owned(puts(index, 10));
        index += 10;
        assert_eq!(store.commit_pending().unwrap().entries, 10);

        // inline: one big apply_batch
        for r in store.apply_batch_owned(puts(index, burst)) {
            r.unwrap();
        }
        for cap in written_capacities(&store) {
            assert!(
                cap <= MAX_REUSED_OPS,
                "kept {cap} history keys after apply_batch"
            );
        }
        assert_eq!(store.pending_entries(), 0);
        assert_eq!(store.durable_index(), store.consistent_index());
    }
}
