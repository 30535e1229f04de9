//! The write path: applying replicated requests inside one backend batch.
//!
//! A `Batch` applies requests in memory. It appends the backend writes to an `Unwritten`
//! buffer (a `CommitBuffer`: ops not yet committed, whose history records later requests and
//! readers find there before the backend has them; and the history keys they write) and
//! collects the watch events. The in-memory index and lease table are updated as each request
//! applies. The buffer belongs to the store and outlives one batch: with
//! `Store::apply_batch` they are committed at the end of the call, with
//! `Store::apply_batch_deferred` they accumulate over many calls until `Store::commit_pending`.
//!
//! Every request is checked completely *before* it changes anything, so a request either
//! applies fully or fails with no effect, as in etcd. An error from the backend itself in the
//! middle of a request leaves memory ahead of disk; the store then poisons itself.

use crate::backend::{BackendRead, Bucket, WriteBatch};
use crate::codec::{decode_kv, encode_lease, KvRef};
use crate::commit_buffer::{CommitBuffer, Pending};
use crate::error::Error;
use crate::key_index::TreeIndex;
use crate::lease::{id_candidate, Lease, LeaseClock, LeaseTable, MAX_LEASE_TTL};
use crate::read::{kvs_in, range};
use crate::revision::Revision;
use crate::types::*;
use parking_lot::Mutex;
use std::sync::Arc;

/// Meta-bucket keys.
pub(crate) const META_CONSISTENT_INDEX: &[u8] = b"consistent_index";
pub(crate) const META_COMPACT_REV: &[u8] = b"compact_rev";
pub(crate) const META_CURRENT_REV: &[u8] = b"current_rev";

/// Tunables that affect applied results (identical on every member).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Minimum lease TTL in seconds (etcd: ceil(1.5 x election timeout)).
    pub min_lease_ttl: i64,
    /// etcd's `--max-txn-ops`.
    pub max_txn_ops: usize,
    /// Capacity of each watch stream's queue, in responses.
    pub watch_stream_capacity: usize,
    /// Most revisions sent to a catching-up watcher per sync round (etcd: 1000).
    pub watch_batch_max_revs: i64,
    /// Most unsynced watchers handled per sync round (etcd: 512).
    pub watch_sync_batch: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            min_lease_ttl: crate::lease::DEFAULT_MIN_LEASE_TTL,
            max_txn_ops: crate::validate::DEFAULT_MAX_TXN_OPS,
            watch_stream_capacity: 1024,
            watch_batch_max_revs: 1000,
            watch_sync_batch: 512,
        }
    }
}

/// The in-memory state of the store.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub index: TreeIndex,
    pub current_rev: i64,
    /// Revision of the last compaction; -1 = never compacted (etcd's initial compactMainRev).
    pub compact_rev: i64,
    pub consistent_index: u64,
    pub leases: LeaseTable,
}

/// Backend writes applied in memory but not yet committed, accumulated over one or more
/// batches (several with `Store::apply_batch_deferred`). Committed in order, in one backend
/// commit, followed by the meta writes of `push_close_ops`.
#[derive(Debug, Default)]
pub(crate) struct Unwritten {
    /// The writes, in apply order (a put then a delete of the same key must end deleted), and
    /// the values they put, readable until committed.
    pub buffer: CommitBuffer,
    /// History keys put by `buffer` and not doomed by a compaction since (a compaction must also
    /// drop revisions the backend does not have yet).
    pub written: Vec<[u8; crate::revision::REV_KEY_LEN]>,
    /// Raft entries applied (not skipped) since the last commit.
    pub entries: usize,
}

/// The writes a `Store::commit_pending` is committing right now, outside the store's locks.
/// Their buffer has left `Unwritten`; it is shared with the committing thread and stays
/// readable here until the commit is done.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    /// The buffer being committed (None: no commit in flight).
    pub buffer: Option<Arc<CommitBuffer>>,
    /// History keys the commit puts and that no compaction doomed since: revisions a
    /// compaction applied meanwhile must consider (they are neither in the backend's read view
    /// nor in `Unwritten::written`).
    pub written: Vec<[u8; crate::revision::REV_KEY_LEN]>,
    /// Raft entries in the commit (0: no commit in flight).
    pub entries: usize,
    /// Consistent index the commit ends at (`durable_index` once it is done).
    pub consistent_index: u64,
}

/// Number of meta writes [`push_close_ops`] appends.
pub(crate) const CLOSE_OPS: usize = 2;

/// Appends the meta writes closing a commit: consistent index and current revision.
pub(crate) fn push_close_ops(st: &State, batch: &mut WriteBatch) {
    batch.put(
        Bucket::Meta,
        META_CONSISTENT_INDEX,
        &st.consistent_index.to_be_bytes(),
    );
    batch.put(
        Bucket::Meta,
        META_CURRENT_REV,
        &(st.current_rev as u64).to_be_bytes(),
    );
}

/// Fetches a put revision's key-value from the uncommitted buffers or the backend.
pub(crate) fn fetch_kv(
    reader: &dyn BackendRead,
    pending: Pending<'_>,
    rev: Revision,
) -> Result<KeyValue, Error> {
    if let Some(record) = pending.get(rev) {
        return decode_kv(record);
    }
    match reader.get(Bucket::Key, &rev.to_key(false))? {
        Some(bytes) => decode_kv(&bytes),
        None => Err(Error::Corrupt(format!(
            "index names revision {rev:?} missing from the backend"
        ))),
    }
}

/// One write request in progress: its base revision and the number of changes so far.
struct TxnWrite {
    begin: i64,
    changes: i64,
}

impl TxnWrite {
    /// Revision reads inside the request see (its own changes included).
    fn visible(&self) -> i64 {
        if self.changes > 0 {
            self.begin + 1
        } else {
            self.begin
        }
    }
}

/// Requests being applied in memory; their writes join the store's `Unwritten` buffer.
pub(crate) struct Batch<'a> {
    pub st: &'a mut State,
    pub reader: &'a dyn BackendRead,
    pub config: &'a StoreConfig,
    pub clock: &'a Mutex<LeaseClock>,
    /// The uncommitted writes (this batch's are appended) and their values.
    pub unwritten: &'a mut Unwritten,
    /// A commit in flight: its values, and its history keys (see [`InFlight::written`]).
    pub in_flight: &'a mut InFlight,
    /// Watch events of this batch.
    pub events: Vec<Event>,
    /// Whether anyone could receive this batch's events: false while no watcher is synced
    /// (unsynced watchers catch up from history), which spares a copy of every value.
    pub collect_events: bool,
}

impl<'a> Batch<'a> {
    pub fn new(
        st: &'a mut State,
        reader: &'a dyn BackendRead,
        config: &'a StoreConfig,
        clock: &'a Mutex<LeaseClock>,
        unwritten: &'a mut Unwritten,
        in_flight: &'a mut InFlight,
    ) -> Batch<'a> {
        Batch {
            st,
            reader,
            config,
            clock,
            unwritten,
            in_flight,
            events: Vec::new(),
            collect_events: true,
        }
    }

    fn fetch(&self, rev: Revision) -> Result<KeyValue, Error> {
        let pending = Pending {
            queued: &self.unwritten.buffer,
            in_flight: self.in_flight.buffer.as_deref(),
        };
        fetch_kv(self.reader, pending, rev)
    }

    /// Applies one request. It is taken by value: a put's key and value move into the new
    /// revision's record instead of being copied (the hot path of every write).
    pub fn apply(&mut self, raft_index: u64, req: Request) -> Result<Response, Error> {
        crate::validate::validate_request(&req, self.config.max_txn_ops)?;
        match req {
            Request::Range(r) => {
                let cur = self.st.current_rev;
                let fetch = |rev| self.fetch(rev);
                range(&self.st.index, &fetch, &r, cur, self.st.compact_rev, cur)
                    .map(Response::Range)
            }
            Request::Put(p) => {
                self.check_put(&p)?;
                let mut tw = TxnWrite {
                    begin: self.st.current_rev,
                    changes: 0,
                };
                let resp = self.put(&mut tw, p)?;
                self.finish(&tw);
                Ok(Response::Put(resp))
            }
            Request::DeleteRange(d) => {
                let mut tw = TxnWrite {
                    begin: self.st.current_rev,
                    changes: 0,
                };
                let resp = self.delete_range(&mut tw, &d)?;
                self.finish(&tw);
                Ok(Response::DeleteRange(resp))
            }
            Request::Txn(t) => {
                let mut path = Vec::new();
                self.compare_path(&t, &mut path)?;
                let mut it = path.iter().copied();
                self.check_txn(&t, &mut it)?;
                let mut tw = TxnWrite {
                    begin: self.st.current_rev,
                    changes: 0,
                };
                let mut it = path.iter().copied();
                let mut resp = self.exec_txn(&mut tw, &t, &mut it)?;
                self.finish(&tw);
                resp.revision = self.st.current_rev;
                Ok(Response::Txn(resp))
            }
            Request::Compact(c) => self.compact(c.revision).map(Response::Compact),
            Request::LeaseGrant(g) => self.lease_grant(raft_index, &g).map(Response::LeaseGrant),
            Request::LeaseRevoke(r) => self.lease_revoke(r.id).map(Response::LeaseRevoke),
            Request::LeaseCheckpoint(cps) => {
                for cp in &cps {
                    if let Some(l) = self.st.leases.leases.get_mut(&cp.id) {
                        l.remaining_ttl = cp.remaining_ttl.max(0);
                        let rec = encode_lease(l.ttl, l.remaining_ttl);
                        self.unwritten
                            .buffer
                            .batch
                            .put(Bucket::Lease, &cp.id.to_be_bytes(), &rec);
                    }
                }
                Ok(Response::LeaseCheckpoint(LeaseCheckpointResponse {
                    revision: self.st.current_rev,
                }))
            }
            Request::Noop => Ok(Response::Noop {
                revision: self.st.current_rev,
            }),
            Request::SetMembership(blob) | Request::SetMeta(MetaKey::Membership, blob) => {
                self.unwritten
                    .buffer
                    .batch
                    .put(Bucket::Meta, MetaKey::Membership.key(), &blob);
                Ok(Response::Noop {
                    revision: self.st.current_rev,
                })
            }
            Request::SetMeta(key, blob) => {
                self.unwritten
                    .buffer
                    .batch
                    .put(Bucket::Meta, key.key(), &blob);
                Ok(Response::Noop {
                    revision: self.st.current_rev,
                })
            }
        }
    }

    fn finish(&mut self, tw: &TxnWrite) {
        if tw.changes > 0 {
            self.st.current_rev = tw.begin + 1;
        }
    }

    /// etcd's `checkRequestPut`, against the state before the request.
    fn check_put(&self, p: &PutRequest) -> Result<(), Error> {
        if (p.ignore_value || p.ignore_lease)
            && self.st.index.get(&p.key, self.st.current_rev).is_none()
        {
            return Err(Error::KeyNotFound);
        }
        if p.lease != 0 && !self.st.leases.leases.contains_key(&p.lease) {
            return Err(Error::LeaseNotFound);
        }
        Ok(())
    }

    fn put(&mut self, tw: &mut TxnWrite, p: PutRequest) -> Result<PutResponse, Error> {
        let visible = tw.visible();
        let prev = if p.prev_kv || p.ignore_value || p.ignore_lease {
            match self.st.index.get(&p.key, visible) {
                Some(found) => Some(self.fetch(found.modified)?),
                None => None,
            }
        } else {
            None
        };
        // A put with ignore_* whose key a from-key delete earlier in the same txn removed (the
        // only way to get here without the key, see validate.rs) keeps empty value / no lease.
        let value = if p.ignore_value {
            prev.as_ref().map(|kv| kv.value.clone()).unwrap_or_default()
        } else {
            p.value
        };
        let lease = if p.ignore_lease {
            prev.as_ref().map_or(0, |kv| kv.lease)
        } else {
            p.lease
        };
        let rev = Revision::new(tw.begin + 1, tw.changes);
        tw.changes += 1;
        let (create_revision, version) = self.st.index.put(&p.key, rev);
        self.st.leases.attach(lease, &p.key);
        self.unwritten.written.push(rev.to_key(false));
        // The record is encoded once, into the commit buffer, where reads find it until the
        // backend has it; the request's key and value are needed only for a watch event.
        self.unwritten.buffer.put_kv(
            rev,
            KvRef {
                key: &p.key,
                value: &value,
                create_revision,
                mod_revision: rev.main,
                version,
                lease,
            },
        );
        if self.collect_events {
            self.events.push(Event {
                kind: EventType::Put,
                kv: KeyValue {
                    key: p.key,
                    create_revision,
                    mod_revision: rev.main,
                    version,
                    value,
                    lease,
                },
                prev_kv: None,
            });
        }
        Ok(PutResponse {
            revision: tw.begin + 1,
            prev_kv: if p.prev_kv { prev } else { None },
        })
    }

    fn delete_key(&mut self, tw: &mut TxnWrite, key: &[u8]) {
        let rev = Revision::new(tw.begin + 1, tw.changes);
        if !self.st.index.tombstone(key, rev) {
            return;
        }
        tw.changes += 1;
        self.st.leases.detach(key);
        self.unwritten.written.push(rev.to_key(true));
        self.unwritten.buffer.put_tombstone(rev, key);
        if self.collect_events {
            self.events.push(Event {
                kind: EventType::Delete,
                kv: KeyValue {
                    key: key.to_vec(),
                    mod_revision: rev.main,
                    ..Default::default()
                },
                prev_kv: None,
            });
        }
    }

    fn delete_range(
        &mut self,
        tw: &mut TxnWrite,
        d: &DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, Error> {
        let visible = tw.visible();
        let mut found = Vec::new();
        self.st.index.range(&d.key, &d.range_end, visible, |k, f| {
            found.push((k.to_vec(), f.modified));
            true
        });
        let mut prev_kvs = Vec::new();
        if d.prev_kv {
            for (_, rev) in &found {
                prev_kvs.push(self.fetch(*rev)?);
            }
        }
        for (k, _) in &found {
            self.delete_key(tw, k);
        }
        Ok(DeleteRangeResponse {
            revision: tw.visible(),
            deleted: found.len() as i64,
            prev_kvs,
        })
    }

    fn compare_holds(&self, c: &Compare) -> Result<bool, Error> {
        let fetch = |rev| self.fetch(rev);
        let kvs = kvs_in(
            &self.st.index,
            &fetch,
            &c.key,
            &c.range_end,
            self.st.current_rev,
        )?;
        if kvs.is_empty() {
            if matches!(c.target, CompareTarget::Value(_)) {
                return Ok(false);
            }
            return Ok(compare_kv(c, &KeyValue::default()));
        }
        Ok(kvs.iter().all(|kv| compare_kv(c, kv)))
    }

    /// etcd's `compareToPath`: every compare, nested ones included, is evaluated against the
    /// state before the txn; the result is the branch taken at each txn in depth-first order.
    fn compare_path(&self, t: &TxnRequest, path: &mut Vec<bool>) -> Result<(), Error> {
        let mut ok = true;
        for c in &t.compare {
            if !self.compare_holds(c)? {
                ok = false;
                break;
            }
        }
        path.push(ok);
        let ops = if ok { &t.success } else { &t.failure };
        for op in ops {
            if let RequestOp::Txn(nested) = op {
                self.compare_path(nested, path)?;
            }
        }
        Ok(())
    }

    /// etcd's `checkTxn`: puts and ranges of the branches that will run, against the state
    /// before the txn.
    fn check_txn(
        &self,
        t: &TxnRequest,
        path: &mut impl Iterator<Item = bool>,
    ) -> Result<(), Error> {
        let ok = path.next().unwrap_or(false);
        let ops = if ok { &t.success } else { &t.failure };
        for op in ops {
            match op {
                RequestOp::Put(p) => self.check_put(p)?,
                RequestOp::Range(r) => {
                    if r.revision > self.st.current_rev {
                        return Err(Error::FutureRevision);
                    }
                    if r.revision != 0 && r.revision < self.st.compact_rev {
                        return Err(Error::Compacted);
                    }
                }
                RequestOp::Txn(nested) => self.check_txn(nested, path)?,
                RequestOp::DeleteRange(_) => {}
            }
        }
        Ok(())
    }

    fn exec_txn(
        &mut self,
        tw: &mut TxnWrite,
        t: &TxnRequest,
        path: &mut impl Iterator<Item = bool>,
    ) -> Result<TxnResponse, Error> {
        let ok = path.next().unwrap_or(false);
        let ops = if ok { &t.success } else { &t.failure };
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            let resp = match op {
                RequestOp::Range(r) => {
                    let visible = tw.visible();
                    let fetch = |rev| self.fetch(rev);
                    let mut r = r.clone();
                    if r.revision < 0 {
                        r.revision = 0;
                    }
                    ResponseOp::Range(range(
                        &self.st.index,
                        &fetch,
                        &r,
                        visible,
                        self.st.compact_rev,
                        visible,
                    )?)
                }
                RequestOp::Put(p) => ResponseOp::Put(self.put(tw, p.clone())?),
                RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(self.delete_range(tw, d)?),
                RequestOp::Txn(nested) => {
                    // etcd leaves a nested txn's header empty (revision 0); checked on 3.4.
                    let mut resp = self.exec_txn(tw, nested, path)?;
                    resp.revision = 0;
                    ResponseOp::Txn(resp)
                }
            };
            responses.push(resp);
        }
        Ok(TxnResponse {
            revision: tw.visible(),
            succeeded: ok,
            responses,
        })
    }

    fn compact(&mut self, rev: i64) -> Result<CompactionResponse, Error> {
        if rev <= self.st.compact_rev {
            return Err(Error::Compacted);
        }
        if rev > self.st.current_rev {
            return Err(Error::FutureRevision);
        }
        let keep = self.st.index.compact(rev);
        let mut doomed = Vec::new();
        let end = Revision::main_lower_bound(rev + 1);
        let mut bad = None;
        self.reader
            .scan(Bucket::Key, &[], Some(&end), &mut |k, _| {
                match Revision::from_key(k) {
                    Ok((r, _)) if !keep.contains(&r) => doomed.push(k.to_vec()),
                    Ok(_) => {}
                    Err(e) => {
                        bad = Some(e);
                        return false;
                    }
                }
                true
            })?;
        if let Some(e) = bad {
            return Err(e);
        }
        // Revisions applied but not in the backend's read view: those of a commit in flight
        // (the deletes queued here go into the next commit, which follows it) and those not
        // committed yet (this batch's, or earlier deferred ones'). A revision both in flight
        // and in the read view (the commit landed before this batch took its view) is deleted
        // twice, which is harmless.
        // Their values stay readable in the commit buffers (nothing looks them up: the index
        // no longer names them) and leave with their buffer.
        for list in [&mut self.in_flight.written, &mut self.unwritten.written] {
            let mut still_written = Vec::with_capacity(list.len());
            for k in std::mem::take(list) {
                let (r, _) = Revision::from_key(&k)?;
                if r.main <= rev && !keep.contains(&r) {
                    doomed.push(k.to_vec());
                } else {
                    still_written.push(k);
                }
            }
            *list = still_written;
        }
        for k in doomed {
            self.unwritten.buffer.batch.delete(Bucket::Key, &k);
        }
        self.st.compact_rev = rev;
        self.unwritten.buffer.batch.put(
            Bucket::Meta,
            META_COMPACT_REV,
            &(rev as u64).to_be_bytes(),
        );
        Ok(CompactionResponse {
            revision: self.st.current_rev,
        })
    }

    fn lease_grant(
        &mut self,
        raft_index: u64,
        g: &LeaseGrantRequest,
    ) -> Result<LeaseGrantResponse, Error> {
        if g.ttl > MAX_LEASE_TTL {
            return Err(Error::LeaseTtlTooLarge);
        }
        let id = if g.id == 0 {
            let mut id = id_candidate(raft_index);
            while id == 0 || self.st.leases.leases.contains_key(&id) {
                id = id.wrapping_add(1) & i64::MAX;
            }
            id
        } else {
            g.id
        };
        if self.st.leases.leases.contains_key(&id) {
            return Err(Error::LeaseExists);
        }
        let ttl = g.ttl.max(self.config.min_lease_ttl);
        self.st.leases.leases.insert(id, Lease::new(ttl, 0));
        self.clock.lock().granted(id, ttl);
        self.unwritten
            .buffer
            .batch
            .put(Bucket::Lease, &id.to_be_bytes(), &encode_lease(ttl, 0));
        Ok(LeaseGrantResponse {
            revision: self.st.current_rev,
            id,
            ttl,
        })
    }

    fn lease_revoke(&mut self, id: i64) -> Result<LeaseRevokeResponse, Error> {
        let Some(lease) = self.st.leases.leases.get(&id) else {
            return Err(Error::LeaseNotFound);
        };
        let keys: Vec<Vec<u8>> = lease.keys.iter().cloned().collect();
        let mut tw = TxnWrite {
            begin: self.st.current_rev,
            changes: 0,
        };
        for k in &keys {
            self.delete_key(&mut tw, k);
        }
        self.finish(&tw);
        self.st.leases.remove(id);
        self.unwritten
            .buffer
            .batch
            .delete(Bucket::Lease, &id.to_be_bytes());
        Ok(LeaseRevokeResponse {
            revision: self.st.current_rev,
        })
    }
}

/// etcd's `compareKV`.
pub fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    use std::cmp::Ordering;
    let ord: Ordering = match &c.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::Create(v) => kv.create_revision.cmp(v),
        CompareTarget::Mod(v) => kv.mod_revision.cmp(v),
        CompareTarget::Value(v) => kv.value.as_slice().cmp(v.as_slice()),
        CompareTarget::Lease(v) => kv.lease.cmp(v),
    };
    match c.result {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::NotEqual => ord != Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
    }
}
