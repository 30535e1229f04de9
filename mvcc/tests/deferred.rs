//! Deferred apply (`apply_batch_deferred` + `commit_pending`): later batches, reads, txns,
//! leases, compactions and watchers see uncommitted batches; the backend is written only by
//! the commit (or by calls that read it: hashes, snapshots, membership, catch-up rounds);
//! the committed result is byte-for-byte what `apply_batch` would have stored.

mod common;

use common::model::Model;
use common::*;
use keel_btree::{Db, MemStorage, Options};
use keel_mvcc::btree_backend::BtreeBackend;
use keel_mvcc::*;
use std::sync::Arc;

fn open_mem(storage: &MemStorage) -> Store {
    let db = Db::open_storage(Arc::new(storage.clone()), Options::default()).unwrap();
    Store::open(
        Box::new(BtreeBackend::from_db(db).unwrap()),
        StoreConfig {
            watch_batch_max_revs: 3,
            ..Default::default()
        },
    )
    .unwrap()
}

fn everything(rev: i64) -> RangeRequest {
    RangeRequest {
        key: vec![0],
        range_end: vec![0],
        revision: rev,
        ..Default::default()
    }
}

fn numbered(reqs: Vec<Request>, idx: &mut u64) -> Vec<(u64, Request)> {
    reqs.into_iter()
        .map(|r| {
            *idx += 1;
            (*idx, r)
        })
        .collect()
}

fn del(key: &str, prev_kv: bool) -> Request {
    Request::DeleteRange(DeleteRangeRequest {
        key: key.into(),
        prev_kv,
        ..Default::default()
    })
}

fn compact(rev: i64) -> Request {
    Request::Compact(CompactionRequest {
        revision: rev,
        physical: true,
    })
}

/// Batch `b` of a workload mixing puts, deletes, txns, leases and compactions of revisions
/// that (in deferred mode) are still only in memory.
fn mixed_batch(b: i64) -> Vec<Request> {
    let mut reqs = vec![];
    for j in 0..5 {
        let k = format!("k{}", (b * 5 + j) % 9);
        reqs.push(match (b + j) % 5 {
            0 => del(&k, true),
            1 => Request::Put(PutRequest {
                key: k.into(),
                value: vec![b as u8; 8],
                lease: if b % 4 == 1 { 500 + b - 1 } else { 0 },
                prev_kv: true,
                ..Default::default()
            }),
            _ => put(&k, &format!("{b}-{j}")),
        });
    }
    match b % 4 {
        0 => reqs.insert(
            0,
            Request::LeaseGrant(LeaseGrantRequest {
                id: 500 + b,
                ttl: 10,
            }),
        ),
        2 => reqs.push(Request::LeaseRevoke(LeaseRevokeRequest { id: 500 + b - 2 })),
        _ => {}
    }
    reqs
}

#[test]
fn deferred_batches_see_each_other_and_leave_the_disk_alone() {
    let storage = MemStorage::new();
    let store = open_mem(&storage);
    let mut model = Model::new();
    let mut idx = 0;
    let ops_at_start = storage.ops();
    let mut check = |store: &Store, reqs: Vec<Request>, idx: &mut u64| {
        let entries = numbered(reqs, idx);
        for ((i, r), got) in entries.iter().zip(store.apply_batch_deferred(&entries)) {
            assert_eq!(got, model.apply(*i, r), "entry {i}: {r:?}");
        }
    };
    // a lease granted in one uncommitted batch, used by the next, revoked by a third
    check(
        &store,
        vec![Request::LeaseGrant(LeaseGrantRequest { id: 7, ttl: 30 })],
        &mut idx,
    );
    check(
        &store,
        vec![
            Request::Put(PutRequest {
                key: b"leased".to_vec(),
                value: b"l".to_vec(),
                lease: 7,
                ..Default::default()
            }),
            put("a", "1"),
        ],
        &mut idx,
    );
    // prev_kv, ignore_value and deletes of keys only in memory
    check(
        &store,
        vec![
            Request::Put(PutRequest {
                key: b"a".to_vec(),
                value: b"2".to_vec(),
                prev_kv: true,
                ..Default::default()
            }),
            Request::Put(PutRequest {
                key: b"leased".to_vec(),
                ignore_value: true,
                ignore_lease: true,
                prev_kv: true,
                ..Default::default()
            }),
            del("a", true),
            put("b", "x"),
        ],
        &mut idx,
    );
    assert_eq!(
        store.lease_time_to_live(7, true, 0).unwrap().keys,
        vec![b"leased".to_vec()]
    );
    check(
        &store,
        vec![Request::LeaseRevoke(LeaseRevokeRequest { id: 7 })],
        &mut idx,
    );
    // a txn whose compares read values that are only in memory
    check(
        &store,
        vec![Request::Txn(TxnRequest {
            compare: vec![Compare {
                key: b"b".to_vec(),
                range_end: vec![],
                result: CompareResult::Equal,
                target: CompareTarget::Value(b"x".to_vec()),
            }],
            success: vec![
                RequestOp::Put(PutRequest {
                    key: b"c".to_vec(),
                    value: b"from-txn".to_vec(),
                    prev_kv: true,
                    ..Default::default()
                }),
                RequestOp::Range(get("b")),
            ],
            failure: vec![],
        })],
        &mut idx,
    );
    // reads and a read-only txn see the uncommitted state
    for rev in [0, 2, 3, 4, model.rev()] {
        assert_eq!(
            store.range(&everything(rev)),
            model.range(&everything(rev), model.rev(), None),
            "read at {rev}"
        );
    }
    let ro = store
        .read_only_txn(&TxnRequest {
            compare: vec![Compare {
                key: b"c".to_vec(),
                range_end: vec![],
                result: CompareResult::Equal,
                target: CompareTarget::Value(b"from-txn".to_vec()),
            }],
            success: vec![RequestOp::Range(get("c"))],
            failure: vec![],
        })
        .unwrap()
        .unwrap();
    assert!(ro.succeeded);
    let ResponseOp::Range(r) = &ro.responses[0] else {
        panic!("{ro:?}")
    };
    assert_eq!(r.kvs[0].value, b"from-txn");
    assert!(store.lease_list().is_empty());

    assert_eq!(
        storage.ops(),
        ops_at_start,
        "a deferred batch wrote the backend"
    );
    assert_eq!(store.durable_index(), 0);
    assert_eq!(store.consistent_index(), idx);
    assert_eq!(store.pending_entries() as u64, idx);
    // re-applying applied (uncommitted) entries skips them
    let again = store.apply_batch_deferred(&[(idx, put("zz", "no"))]);
    assert!(matches!(again[0], Err(Error::AlreadyApplied { .. })));

    let stats = store.commit_pending().unwrap();
    assert_eq!(stats.entries as u64, idx);
    assert_eq!(stats.consistent_index, idx);
    assert!(stats.ops > 2);
    assert_eq!(store.durable_index(), idx);
    assert_eq!(store.pending_entries(), 0);
    let ops_after_commit = storage.ops();
    assert!(ops_after_commit > ops_at_start);
    // nothing pending: no backend commit
    assert_eq!(store.commit_pending().unwrap(), CommitStats::default());
    assert_eq!(
        storage.ops(),
        ops_after_commit,
        "an empty commit wrote the backend"
    );

    drop(store);
    let reopened = open_mem(&storage);
    assert_eq!(reopened.consistent_index(), idx);
    assert_eq!(
        reopened.range(&everything(0)),
        model.range(&everything(0), model.rev(), None)
    );
}

/// The same entries through `apply_batch` (store A) and through deferred batches with
/// occasional commits (store B), compactions of revisions still pending included: equal
/// results, and after commit + reopen equal ranges, HashKV and whole-store hash.
#[test]
fn compacting_pending_revisions_then_commit_and_reopen_matches_a_durable_store() {
    let (da, db) = (TempDir::new("def-a"), TempDir::new("def-b"));
    let (a, b) = (open(&da), open(&db));
    let mut idx = 0;
    for n in 0..30i64 {
        let mut reqs = mixed_batch(n);
        if n % 5 == 4 {
            // compact at a revision written by this or recent uncommitted batches
            reqs.push(compact(b.current_revision() - 2));
        }
        let entries = numbered(reqs, &mut idx);
        let want = a.apply_batch(&entries);
        let got = b.apply_batch_deferred(&entries);
        assert_eq!(got, want, "batch {n}");
        if n % 7 == 6 {
            b.commit_pending().unwrap();
        }
        let rev = a.current_revision();
        for r in [0, rev - 3, rev - 1] {
            assert_eq!(
                b.range(&everything(r)),
                a.range(&everything(r)),
                "batch {n} rev {r}"
            );
        }
    }
    assert_eq!(b.status().compact_revision, a.status().compact_revision);
    assert!(
        b.pending_entries() > 0,
        "the run must end with uncommitted batches"
    );
    b.commit_pending().unwrap();
    drop(b);
    let b = open(&db);
    assert_eq!(b.consistent_index(), idx);
    assert_eq!(b.range(&everything(0)), a.range(&everything(0)));
    assert_eq!(b.hash_kv(0).unwrap(), a.hash_kv(0).unwrap());
    assert_eq!(b.hash().unwrap(), a.hash().unwrap());
    assert_eq!(b.status().index_revisions, a.status().index_revisions);
    assert_eq!(b.lease_list(), a.lease_list());
}

/// A watcher created at an old revision while the newer revisions exist only in memory gets
/// every event exactly once and in order, through catch-up rounds (3 revisions each) while
/// more deferred batches arrive, and then through the synced path. A watcher that is synced
/// gets a deferred batch's events at once, before any commit.
#[test]
fn watcher_from_an_old_revision_over_pending_revisions_gets_every_event_once() {
    let storage = MemStorage::new();
    let store = open_mem(&storage);
    let mut model = Model::new();
    let mut idx = 0;
    let apply = |store: &Store, model: &mut Model, idx: &mut u64, n: i64, deferred: bool| {
        let entries = numbered(mixed_batch(n), idx);
        let got = if deferred {
            store.apply_batch_deferred(&entries)
        } else {
            store.apply_batch(&entries)
        };
        for ((i, r), g) in entries.iter().zip(got) {
            assert_eq!(g, model.apply(*i, r));
        }
    };
    for n in 0..4 {
        apply(&store, &mut model, &mut idx, n, false);
    }
    let durable_rev = store.current_revision();
    let synced = store.watch_stream(|| {});
    synced
        .watch(&WatchCreateRequest {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        })
        .unwrap();
    let mut synced_events = vec![];
    for n in 4..10 {
        apply(&store, &mut model, &mut idx, n, true);
        // published at once, no commit and no catch-up round needed
        let mut out = vec![];
        synced.drain_into(&mut out);
        synced_events.extend(out.into_iter().flat_map(|r| r.events));
        assert_eq!(
            synced_events,
            model.events(&[0], &[0], durable_rev + 1, model.rev())
        );
    }
    assert!(store.pending_entries() > 0);
    assert_eq!(store.current_revision(), model.rev());
    assert!(store.current_revision() > durable_rev + 5);

    // starts in the durable past; everything after durable_rev is only in memory
    let from = durable_rev - 2;
    let stream = store.watch_stream(|| {});
    stream
        .watch(&WatchCreateRequest {
            key: vec![0],
            range_end: vec![0],
            start_revision: from,
            prev_kv: true,
            ..Default::default()
        })
        .unwrap();
    let mut got: Vec<Event> = vec![];
    let drain = |got: &mut Vec<Event>| {
        let mut out = vec![];
        stream.drain_into(&mut out);
        got.extend(out.into_iter().flat_map(|r| r.events));
    };
    for n in 10..20 {
        store.sync_watchers().unwrap();
        drain(&mut got);
        apply(&store, &mut model, &mut idx, n, true);
        drain(&mut got);
    }
    for _ in 0..100 {
        if store.sync_watchers().unwrap() == 0 {
            break;
        }
        drain(&mut got);
    }
    drain(&mut got);
    let mut want = model.events(&[0], &[0], from, model.rev());
    // prev_kv: the key's previous version, if any
    for e in &mut want {
        let before = e.kv.mod_revision - 1;
        e.prev_kv = model.states[before as usize].get(&e.kv.key).cloned();
    }
    assert_eq!(got.len(), want.len(), "events missing or duplicated");
    assert_eq!(got, want);
}

#[test]
fn apply_batch_commits_earlier_deferred_batches_too() {
    let dir = TempDir::new("def-mixed");
    let store = open(&dir);
    let mut idx = 0;
    let first = numbered(vec![put("a", "1"), put("b", "1")], &mut idx);
    store.apply_batch_deferred(&first);
    assert_eq!(store.durable_index(), 0);
    let second = numbered(vec![put("c", "1")], &mut idx);
    store.apply_batch(&second);
    assert_eq!(store.durable_index(), 3);
    assert_eq!(store.pending_entries(), 0);
    // entries all skipped: apply_batch still makes the earlier deferred ones durable
    let third = numbered(vec![del("a", false)], &mut idx);
    store.apply_batch_deferred(&third);
    let skipped = store.apply_batch(&third);
    assert!(matches!(skipped[0], Err(Error::AlreadyApplied { .. })));
    assert_eq!(store.durable_index(), 4);
    drop(store); // no commit_pending: everything must be there anyway
    let store = open(&dir);
    assert_eq!(store.consistent_index(), 4);
    let kvs = store.range(&everything(0)).unwrap().kvs;
    let keys: Vec<&[u8]> = kvs.iter().map(|kv| kv.key.as_slice()).collect();
    assert_eq!(keys, vec![b"b".as_slice(), b"c"]);
}

#[test]
fn snapshot_hash_and_membership_include_pending_writes() {
    let dir = TempDir::new("def-snap");
    let store = open(&dir);
    let mut idx = 0;
    store.apply_batch(&numbered(vec![put("old", "1")], &mut idx));
    let entries = numbered(
        vec![
            put("new", "2"),
            Request::SetMembership(b"members-v2".to_vec()),
            Request::LeaseGrant(LeaseGrantRequest { id: 9, ttl: 20 }),
        ],
        &mut idx,
    );
    store.apply_batch_deferred(&entries);
    assert_eq!(store.membership().unwrap(), Some(b"members-v2".to_vec()));
    store.apply_batch_deferred(&numbered(vec![put("newer", "3")], &mut idx));
    let mut snap = vec![];
    store.snapshot_to(&mut snap).unwrap();
    assert_eq!(
        store.durable_index(),
        idx,
        "the snapshot must hold all applied entries"
    );
    let other = TempDir::new("def-snap-restored");
    let restored =
        Store::restore_path(&mut snap.as_slice(), other.db(), Default::default()).unwrap();
    assert_eq!(restored.consistent_index(), idx);
    assert_eq!(restored.range(&everything(0)), store.range(&everything(0)));
    assert_eq!(restored.lease_list(), vec![9]);
    assert_eq!(restored.membership().unwrap(), Some(b"members-v2".to_vec()));
    // hash / hash_kv commit first too: equal to a store that applied durably
    store.apply_batch_deferred(&numbered(vec![del("old", false)], &mut idx));
    restored.apply_batch(&[(idx, del("old", false))]);
    assert_eq!(store.hash_kv(0).unwrap(), restored.hash_kv(0).unwrap());
    assert_eq!(store.pending_entries(), 0);
    store.apply_batch_deferred(&numbered(vec![put("last", "4")], &mut idx));
    restored.apply_batch(&[(idx, put("last", "4"))]);
    assert_eq!(store.hash().unwrap(), restored.hash().unwrap());
    store.apply_batch_deferred(&numbered(vec![put("defrag", "5")], &mut idx));
    store.defragment().unwrap();
    assert_eq!(store.durable_index(), idx);
}

/// A backend whose reads fail on demand (a disk dying under a deferred batch).
struct FailingReads {
    inner: MemBackend,
    fail: Arc<std::sync::atomic::AtomicBool>,
}

impl Backend for FailingReads {
    fn read(&self) -> Result<Box<dyn keel_mvcc::backend::BackendRead + '_>, Error> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Storage("injected read failure".into()));
        }
        self.inner.read()
    }
    fn commit(&self, batch: &keel_mvcc::backend::WriteBatch) -> Result<(), Error> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Storage("injected commit failure".into()));
        }
        self.inner.commit(batch)
    }
    fn size(&self) -> (u64, u64) {
        self.inner.size()
    }
    fn snapshot_to(&self, w: &mut dyn std::io::Write) -> Result<u64, Error> {
        self.inner.snapshot_to(w)
    }
    fn defragment(&self) -> Result<(), Error> {
        Ok(())
    }
}

#[test]
fn a_failing_backend_poisons_the_store_in_deferred_mode() {
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mem = MemBackend::new();
    let backend = FailingReads {
        inner: mem.clone(),
        fail: fail.clone(),
    };
    let store = Store::open(Box::new(backend), StoreConfig::default()).unwrap();
    store.apply_batch(&[(1, put("a", "1"))]);
    store.apply_batch_deferred(&[(2, put("b", "2"))]);
    // a failing commit poisons: every call fails until reopened, nothing half-written
    fail.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(store.commit_pending(), Err(Error::Storage(_))));
    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(store.range(&get("a")), Err(Error::Storage(_))));
    assert!(matches!(store.commit_pending(), Err(Error::Storage(_))));
    let r = store.apply_batch_deferred(&[(3, put("c", "3"))]);
    assert!(matches!(r[0], Err(Error::Storage(_))));
    assert_eq!(store.durable_index(), 1);
    drop(store);
    let reopened = Store::open(Box::new(mem.clone()), StoreConfig::default()).unwrap();
    assert_eq!(reopened.consistent_index(), 1);
    assert_eq!(reopened.range(&get("b")).unwrap().count, 0);

    // a backend failure while a deferred batch reads (here: opening its read view) poisons too
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let backend = FailingReads {
        inner: mem,
        fail: fail.clone(),
    };
    let store = Store::open(Box::new(backend), StoreConfig::default()).unwrap();
    store.apply_batch_deferred(&[(2, put("b", "2"))]);
    fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = store.apply_batch_deferred(&[(3, put("c", "3")), (4, put("d", "4"))]);
    assert!(
        r.iter().all(|r| matches!(r, Err(Error::Storage(_)))),
        "{r:?}"
    );
    assert_eq!(
        store.consistent_index(),
        2,
        "a failed batch must not count as applied"
    );
}
