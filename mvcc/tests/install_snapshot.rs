//! Installing a Raft snapshot into a live store (`Store::install_snapshot`, etcd's
//! `kv.Restore`): the store ends up exactly as the snapshot's source (in memory and on disk),
//! watchers follow the new history as etcd's do, a bad stream changes nothing, and threads
//! using the store meanwhile never see a mix of the two histories.

mod common;

use common::*;
use keel_mvcc::btree_backend::BtreeBackend;
use keel_mvcc::*;
use proptest::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

// ------------------------------------------------------------------------------------ helpers

fn everything() -> RangeRequest {
    RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    }
}

fn at(req: RangeRequest, revision: i64) -> RangeRequest {
    RangeRequest { revision, ..req }
}

fn put_lease(key: &str, value: &str, lease: i64) -> Request {
    Request::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        lease,
        ..Default::default()
    })
}

fn del(key: &str) -> Request {
    Request::DeleteRange(DeleteRangeRequest {
        key: key.into(),
        ..Default::default()
    })
}

fn grant(id: i64, ttl: i64) -> Request {
    Request::LeaseGrant(LeaseGrantRequest { id, ttl })
}

fn compact(revision: i64) -> Request {
    Request::Compact(CompactionRequest {
        revision,
        physical: true,
    })
}

fn entries(first: u64, reqs: Vec<Request>) -> Vec<(u64, Request)> {
    reqs.into_iter()
        .enumerate()
        .map(|(i, r)| (first + i as u64, r))
        .collect()
}

fn snapshot_bytes(store: &Store) -> Vec<u8> {
    let mut out = Vec::new();
    store.snapshot_to(&mut out).unwrap();
    out
}

fn installing(dir: &TempDir) -> std::path::PathBuf {
    dir.0.join("db.installing")
}

/// Store A's history (raft indexes 1..=15). Revisions: a/1@2 (lease 7), a/2@3, a/3@4,
/// delete a/2@5, a/1@6 (lease 7), a/4@7, compact 5, a/5@8 (lease 8), delete a/3@9, a/2@10;
/// leases 7 and 8 (8 checkpointed at 20 s), 9 granted and revoked.
/// End: revision 10, compaction 5, consistent index 15.
fn history_a() -> Vec<(u64, Request)> {
    entries(
        1,
        vec![
            grant(7, 100),
            put_lease("a/1", "v1", 7),
            put("a/2", "v1"),
            put("a/3", "v1"),
            del("a/2"),
            put_lease("a/1", "v2", 7),
            put("a/4", "v1"),
            compact(5),
            grant(8, 50),
            put_lease("a/5", "v1", 8),
            del("a/3"),
            put("a/2", "v2"),
            grant(9, 30),
            Request::LeaseRevoke(LeaseRevokeRequest { id: 9 }),
            Request::LeaseCheckpoint(vec![LeaseCheckpoint {
                id: 8,
                remaining_ttl: 20,
            }]),
        ],
    )
}

const A_INDEX: u64 = 15;
const A_REV: i64 = 10;
const A_COMPACT: i64 = 5;

fn make_a(dir: &TempDir) -> Store {
    let a = open(dir);
    for r in a.apply_batch(&history_a()) {
        r.unwrap();
    }
    assert_eq!(a.current_revision(), A_REV);
    assert_eq!(a.status().compact_revision, A_COMPACT);
    a
}

/// Everything a client or a peer can observe of a store's replicated state.
#[derive(Debug, PartialEq)]
struct Observed {
    all: Result<RangeResponse, Error>,
    at_compact: Result<RangeResponse, Error>,
    below_compact: Result<RangeResponse, Error>,
    at_8: Result<RangeResponse, Error>,
    revision: i64,
    compact_revision: i64,
    consistent_index: u64,
    leases: Vec<i64>,
    lease_ttls: Vec<Result<LeaseTimeToLiveResponse, Error>>,
    hash_kv: Result<HashKv, Error>,
    hash_kv_at_8: Result<HashKv, Error>,
    hash: Result<u32, Error>,
}

fn observe(s: &Store) -> Observed {
    let st = s.status();
    let leases = s.lease_list();
    Observed {
        all: s.range(&everything()),
        at_compact: s.range(&at(everything(), st.compact_revision)),
        below_compact: s.range(&at(everything(), st.compact_revision - 1)),
        at_8: s.range(&at(everything(), 8)),
        revision: st.revision,
        compact_revision: st.compact_revision,
        consistent_index: st.consistent_index,
        lease_ttls: leases
            .iter()
            .map(|id| s.lease_time_to_live(*id, true, 0))
            .collect(),
        leases,
        hash_kv: s.hash_kv(0),
        hash_kv_at_8: s.hash_kv(8),
        hash: s.hash(),
    }
}

/// A keel-btree backend whose commits can be held at a gate (a commit "in flight" for as long
/// as a test wants) or made to fail (to poison the store).
struct GatedBackend {
    inner: BtreeBackend,
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    cv: Condvar,
}

#[derive(Default)]
struct GateState {
    armed: bool,
    entered: bool,
    fail: bool,
}

impl Gate {
    fn arm(&self) {
        let mut s = self.state.lock().unwrap();
        s.armed = true;
        s.entered = false;
    }
    fn wait_entered(&self) {
        let mut s = self.state.lock().unwrap();
        while !s.entered {
            s = self.cv.wait(s).unwrap();
        }
    }
    fn open(&self) {
        self.state.lock().unwrap().armed = false;
        self.cv.notify_all();
    }
    fn fail(&self, fail: bool) {
        self.state.lock().unwrap().fail = fail;
    }
}

impl Backend for GatedBackend {
    fn read(&self) -> Result<Box<dyn keel_mvcc::backend::BackendRead + '_>, Error> {
        self.inner.read()
    }
    fn commit(&self, batch: &keel_mvcc::backend::WriteBatch) -> Result<(), Error> {
        let mut s = self.gate.state.lock().unwrap();
        if s.fail {
            return Err(Error::Storage("injected commit failure".into()));
        }
        if s.armed {
            s.entered = true;
            self.gate.cv.notify_all();
            while s.armed {
                s = self.gate.cv.wait(s).unwrap();
            }
        }
        drop(s);
        self.inner.commit(batch)
    }
    fn size(&self) -> (u64, u64) {
        self.inner.size()
    }
    fn snapshot_to(&self, w: &mut dyn std::io::Write) -> Result<u64, Error> {
        self.inner.snapshot_to(w)
    }
    fn defragment(&self) -> Result<(), Error> {
        self.inner.defragment()
    }
}

fn open_gated(dir: &TempDir) -> (Store, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    let backend = GatedBackend {
        inner: BtreeBackend::open(&dir.db()).unwrap(),
        gate: gate.clone(),
    };
    let store = Store::open(Box::new(backend), StoreConfig::default()).unwrap();
    (store, gate)
}

fn watch(s: &Store, key: &str, range_end: &str, start_revision: i64, prev_kv: bool) -> WatchStream {
    let stream = s.watch_stream(|| {});
    stream
        .watch(&WatchCreateRequest {
            key: key.into(),
            range_end: range_end.into(),
            start_revision,
            prev_kv,
            ..Default::default()
        })
        .unwrap();
    stream
}

fn drain(stream: &WatchStream) -> Vec<WatchResponse> {
    let mut out = Vec::new();
    stream.drain_into(&mut out);
    out
}

/// (kind, key, mod_revision, prev_kv's (value, mod_revision)) of every event queued.
type Ev = (EventType, String, i64, Option<(String, i64)>);

fn events(resps: &[WatchResponse]) -> Vec<Ev> {
    resps
        .iter()
        .flat_map(|r| r.events.iter())
        .map(|e| {
            (
                e.kind,
                String::from_utf8(e.kv.key.clone()).unwrap(),
                e.kv.mod_revision,
                e.prev_kv
                    .as_ref()
                    .map(|p| (String::from_utf8(p.value.clone()).unwrap(), p.mod_revision)),
            )
        })
        .collect()
}

fn sync_all(s: &Store) {
    for _ in 0..10 {
        if s.sync_watchers().unwrap() == 0 {
            return;
        }
    }
    panic!("watchers never caught up");
}

// -------------------------------------------------------------------------------------- tests

/// The main scenario: B (another history, watchers in every position, deferred writes, and a
/// commit held in flight) installs A's snapshot and becomes A, in memory and on disk.
#[test]
fn install_replaces_state_watchers_follow_and_disk_matches() {
    use EventType::{Delete, Put};
    let dir_a = TempDir::new("inst-a");
    let a = make_a(&dir_a);
    let snap = snapshot_bytes(&a);
    let want = observe(&a);

    let dir_b = TempDir::new("inst-b");
    let (b, gate) = open_gated(&dir_b);
    // B's own history: revisions b/1@2 (lease 70), b/2@3.
    for r in b.apply_batch(&entries(
        1,
        vec![grant(70, 100), put_lease("b/1", "x", 70), put("b/2", "x")],
    )) {
        r.unwrap();
    }
    // Synced at B's head (next revision 4) on a key nobody writes: it stays at 4, below A's
    // compaction (5), so the install cancels it (etcd's chooseAll does the same).
    let w_low = watch(&b, "a/9", "", 0, false);
    // b/3@4, delete b/1@5, b/4@6, a/1@7 (a key both histories have), compact 3.
    for r in b.apply_batch(&entries(
        4,
        vec![
            put("b/3", "x"),
            del("b/1"),
            put("b/4", "x"),
            put("a/1", "from-b"),
            compact(3),
        ],
    )) {
        r.unwrap();
    }
    // Synced at head (next revision 8), prefix a/, with prev_kv.
    let w_head = watch(&b, "a/", "a0", 0, true);
    // Unsynced from revision 4: B still has it, A compacted it -> cancelled, compact 5.
    let w_old = watch(&b, "a/", "a0", 4, false);
    // Unsynced from revision 6: A still has it -> catches up from A's history.
    let w_mid = watch(&b, "a/", "a0", 6, true);
    // A future start revision (synced, next 100): etcd moves it back to the new head + 1.
    let w_future = watch(&b, "a/", "a0", 100, false);
    // Deferred (uncommitted) writes, two batches: a/1@8 (published to w_head at once, which
    // then waits for revision 9), b/9@9.
    for r in b.apply_batch_deferred(&entries(9, vec![put("a/1", "from-b-2")])) {
        r.unwrap();
    }
    for r in b.apply_batch_deferred(&entries(10, vec![put("b/9", "x")])) {
        r.unwrap();
    }
    let head_before = events(&drain(&w_head));
    assert_eq!(
        head_before,
        vec![(Put, "a/1".into(), 8, Some(("from-b".into(), 7)))]
    );
    for w in [&w_low, &w_old, &w_mid, &w_future] {
        let r = drain(w);
        assert!(r.len() == 1 && r[0].created, "{r:?}");
    }

    // A commit in flight on another thread, held inside the backend write.
    gate.arm();
    let committer = {
        let b = b.clone();
        std::thread::spawn(move || b.commit_pending())
    };
    gate.wait_entered();
    assert_eq!(b.in_flight_entries(), 2);
    // Applies go on while it is in flight: b/10@10, queued for the next commit.
    for r in b.apply_batch_deferred(&entries(11, vec![put("b/10", "x")])) {
        r.unwrap();
    }
    // Preparing takes no store lock: it completes while the commit is held.
    let prepared = Store::prepare_snapshot(&mut &snap[..], dir_b.db()).unwrap();
    assert_eq!(prepared.consistent_index(), A_INDEX);
    assert_eq!(prepared.revision(), A_REV);
    assert_eq!(prepared.compact_revision(), A_COMPACT);
    assert!(installing(&dir_b).exists());
    let installer = {
        let b = b.clone();
        std::thread::spawn(move || b.install_prepared(prepared))
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !installer.is_finished(),
        "the install must wait for the commit in flight"
    );
    // Reads are served while the install waits (it holds no lock yet).
    assert_eq!(b.range(&get("b/10")).unwrap().kvs.len(), 1);
    gate.open();
    assert_eq!(committer.join().unwrap().unwrap().entries, 2);
    assert_eq!(installer.join().unwrap().unwrap(), A_INDEX);
    assert!(!installing(&dir_b).exists());

    // B is A: ranges (current, historical, compacted), revisions, leases, hashes.
    assert_eq!(b.durable_index(), A_INDEX);
    assert_eq!(b.pending_entries(), 0);
    assert_eq!(b.status().keys, a.status().keys);
    assert_eq!(b.status().leases, 2);
    assert_eq!(observe(&b), want);
    assert_eq!(want.below_compact, Err(Error::Compacted));
    assert_eq!(b.range(&get("b/10")).unwrap().kvs, vec![]);
    assert_eq!(b.lease_renew(70, 0), Err(Error::LeaseNotFound));

    // Watchers, as etcd: every one catches up from the new history at its next revision.
    sync_all(&b);
    let low = drain(&w_low);
    assert_eq!(low.len(), 1, "{low:?}");
    assert!(
        low[0].canceled && low[0].compact_revision == A_COMPACT,
        "{low:?}"
    );
    let old = drain(&w_old);
    assert_eq!(old.len(), 1, "{old:?}");
    assert!(
        old[0].canceled && old[0].compact_revision == A_COMPACT,
        "{old:?}"
    );
    assert_eq!(
        events(&drain(&w_mid)),
        vec![
            (Put, "a/1".into(), 6, Some(("v1".into(), 2))),
            (Put, "a/4".into(), 7, None),
            (Put, "a/5".into(), 8, None),
            (Delete, "a/3".into(), 9, Some(("v1".into(), 4))),
            (Put, "a/2".into(), 10, None),
        ]
    );
    // It had seen revision 8 of B's history; it goes on from 9 in A's (as etcd's would).
    assert_eq!(
        events(&drain(&w_head)),
        vec![
            (Delete, "a/3".into(), 9, Some(("v1".into(), 4))),
            (Put, "a/2".into(), 10, None),
        ]
    );
    assert_eq!(events(&drain(&w_future)), vec![]);
    assert_eq!(b.status().watchers_unsynced, 0);
    assert_eq!(b.status().watchers_synced, 3);

    // Later applies continue from A's revision and consistent index (B's old indexes are
    // gone: 12 was never applied in A's history, 15 was).
    let next = entries(16, vec![put("a/6", "after")]);
    assert!(matches!(
        b.apply(A_INDEX, put("a/6", "late")),
        Err(Error::AlreadyApplied { .. })
    ));
    let rb = b.apply_batch(&next);
    let ra = a.apply_batch(&next);
    assert_eq!(rb, ra);
    match &rb[0] {
        Ok(Response::Put(p)) => assert_eq!(p.revision, A_REV + 1),
        other => panic!("{other:?}"),
    }
    // Published to the watchers now synced on A's history (the future one included).
    for w in [&w_head, &w_mid, &w_future] {
        assert_eq!(events(&drain(w)), vec![(Put, "a/6".into(), 11, None)]);
    }
    let want = observe(&a);
    assert_eq!(observe(&b), want);

    // Reopened from disk, B is still A.
    drop((w_low, w_head, w_old, w_mid, w_future));
    drop(b);
    let b = open(&dir_b);
    assert_eq!(observe(&b), want);
    assert_eq!(b.durable_index(), A_INDEX + 1);
}

/// Bad streams are refused before anything is replaced: B keeps its state (its uncommitted
/// writes included), keeps serving and committing, and its file is untouched.
#[test]
fn bad_streams_leave_the_store_untouched() {
    let dir_a = TempDir::new("bad-a");
    let a = make_a(&dir_a);
    let snap = snapshot_bytes(&a);
    drop(a);

    let dir_b = TempDir::new("bad-b");
    let b = open(&dir_b);
    b.apply_batch(&entries(1, vec![put("b/1", "x"), put("b/2", "x")]));
    b.apply_batch_deferred(&entries(3, vec![put("b/3", "pending")]));
    let watcher = watch(&b, "b/", "b0", 0, false);
    drain(&watcher);
    let before_all = b.range(&everything()).unwrap();
    assert_eq!(before_all.kvs.len(), 3);

    // A btree database that is not a keel store (no consistent index).
    let not_keel = {
        let dir = TempDir::new("bad-other");
        let db = keel_btree::Db::open(dir.db(), keel_btree::Options::default()).unwrap();
        let mut tx = db.begin_write().unwrap();
        tx.create_bucket(b"other").unwrap();
        tx.bucket_mut(b"other").unwrap().put(b"k", b"v").unwrap();
        tx.commit().unwrap();
        let mut out = Vec::new();
        db.snapshot_to(&mut out).unwrap();
        out
    };
    let page = keel_btree::DEFAULT_PAGE_SIZE as usize;
    let mut both_metas_torn = snap.clone();
    both_metas_torn[20] ^= 0xff;
    both_metas_torn[page + 20] ^= 0xff;
    let mut pages_torn = snap.clone();
    for i in (2 * page..snap.len()).step_by(page) {
        pages_torn[i + 100] ^= 0x5a; // every data page's checksum breaks
    }
    let garbage: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("garbage", garbage),
        ("truncated", snap[..snap.len() / 2].to_vec()),
        ("one page", snap[..page].to_vec()),
        ("metas torn", both_metas_torn),
        ("pages torn", pages_torn),
        ("not a keel store", not_keel),
    ];
    for (what, bytes) in &cases {
        let r = b.install_snapshot(&mut &bytes[..], dir_b.db());
        assert!(r.is_err(), "{what}: installed");
        assert!(!installing(&dir_b).exists(), "{what}: temp file left");
        assert_eq!(b.range(&everything()).unwrap(), before_all, "{what}");
        assert_eq!(b.pending_entries(), 1, "{what}");
    }

    // A reader that fails part-way (the connection to the leader broke).
    struct Failing<'a>(&'a [u8]);
    impl std::io::Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "peer gone",
                ));
            }
            let n = buf.len().min(self.0.len()).min(1000);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let r = b.install_snapshot(&mut Failing(&snap[..snap.len() - 10]), dir_b.db());
    assert!(
        matches!(&r, Err(Error::Storage(m)) if m.contains("peer gone")),
        "{r:?}"
    );
    assert!(!installing(&dir_b).exists());

    // The temporary file cannot be created (a directory is in the way).
    std::fs::create_dir(installing(&dir_b)).unwrap();
    assert!(b.install_snapshot(&mut &snap[..], dir_b.db()).is_err());
    std::fs::remove_dir(installing(&dir_b)).unwrap();

    // Still serving: the watcher gets new writes, commits work, nothing was lost.
    assert_eq!(b.range(&everything()).unwrap(), before_all);
    b.apply_batch_deferred(&entries(4, vec![put("b/4", "x")]));
    assert_eq!(events(&drain(&watcher)).len(), 1);
    assert_eq!(b.commit_pending().unwrap().entries, 2);
    let want = b.range(&everything()).unwrap();
    assert_eq!(want.kvs.len(), 4);
    drop(watcher);
    drop(b);
    assert_eq!(open(&dir_b).range(&everything()).unwrap(), want);
}

/// Crash safety. A crash while the temporary file is written leaves `<path>.installing`
/// behind and the old database intact: reopening gives the old state, and the next install
/// overwrites the leftover. A crash right after the install (the process dies, nothing more
/// is written) reopens at the snapshot.
#[test]
fn crash_during_or_after_install_reopens_old_or_new_state() {
    let dir_a = TempDir::new("crash-a");
    let a = make_a(&dir_a);
    let snap = snapshot_bytes(&a);
    let want = observe(&a);
    drop(a);

    let dir_b = TempDir::new("crash-b");
    let b = open(&dir_b);
    b.apply_batch(&entries(1, vec![put("b/1", "x")]));
    b.apply_batch_deferred(&entries(2, vec![put("b/2", "lost in the crash")]));
    let old = b.hash_kv(0).unwrap(); // commits b/2
                                     // The crash: the stream was half written to the temporary file.
    std::fs::write(installing(&dir_b), &snap[..snap.len() / 2]).unwrap();
    drop(b);
    let b = open(&dir_b);
    assert_eq!(b.hash_kv(0).unwrap(), old);
    assert_eq!(b.consistent_index(), 2);

    // The next install overwrites the leftover.
    assert_eq!(
        b.install_snapshot(&mut &snap[..], dir_b.db()).unwrap(),
        A_INDEX
    );
    assert!(!installing(&dir_b).exists());
    // Dies at once: the installed file is complete and is what reopens.
    std::mem::forget(b); // no destructor runs, as in a crash (the btree handle stays open)
    let copy = TempDir::new("crash-copy");
    std::fs::copy(dir_b.db(), copy.db()).unwrap();
    assert_eq!(observe(&open(&copy)), want);
}

/// The two failure points of the swap itself. A rename that fails (the target is a
/// non-empty directory) leaves the store untouched. A failure after the rename (here the new
/// file cannot be opened: another handle holds the path) poisons the store; the file at the
/// path is then the complete snapshot, and a reopen (or a later install) recovers.
#[test]
fn failures_at_the_swap_untouched_before_the_rename_poisoned_after() {
    let dir_a = TempDir::new("swap-a");
    let a = make_a(&dir_a);
    let snap = snapshot_bytes(&a);
    let want = observe(&a);
    drop(a);

    let dir = TempDir::new("swap-b");
    let b = Store::open(Box::new(MemBackend::new()), StoreConfig::default()).unwrap();
    b.apply_batch(&entries(1, vec![put("b/1", "x")]));
    b.apply_batch_deferred(&entries(2, vec![put("b/2", "pending")]));
    let before = b.range(&everything()).unwrap();

    // The rename fails.
    let blocked = dir.0.join("blocked");
    std::fs::create_dir_all(blocked.join("inside")).unwrap();
    let r = b.install_snapshot(&mut &snap[..], &blocked);
    assert!(
        matches!(&r, Err(Error::Storage(m)) if m.contains("rename")),
        "{r:?}"
    );
    assert!(!dir.0.join("blocked.installing").exists());
    assert_eq!(b.range(&everything()).unwrap(), before);
    assert_eq!(b.pending_entries(), 1);

    // Opening the renamed file fails: poisoned, the disk holds the snapshot.
    let path = dir.db();
    let holder = keel_btree::Db::open(&path, keel_btree::Options::default()).unwrap();
    let r = b.install_snapshot(&mut &snap[..], &path);
    assert!(r.is_err(), "{r:?}");
    assert!(matches!(b.range(&everything()), Err(Error::Storage(_))));
    assert!(b.apply(3, put("b/3", "x")).is_err());
    drop(holder);
    assert_eq!(
        observe(&Store::open_path(&path, StoreConfig::default()).unwrap()),
        want
    );
    // A later install on the poisoned handle recovers it.
    assert_eq!(b.install_snapshot(&mut &snap[..], &path).unwrap(), A_INDEX);
    assert_eq!(observe(&b), want);
}

/// A store poisoned by a failed commit is replaced wholesale by an install, which clears the
/// poison (the state is rebuilt from a verified file, as reopening would).
#[test]
fn install_clears_poison() {
    let dir_a = TempDir::new("poison-a");
    let a = make_a(&dir_a);
    let snap = snapshot_bytes(&a);
    let want = observe(&a);

    let dir_b = TempDir::new("poison-b");
    let (b, gate) = open_gated(&dir_b);
    b.apply_batch(&entries(1, vec![put("b/1", "x")]));
    gate.fail(true);
    assert!(b
        .apply_batch(&entries(2, vec![put("b/2", "x")]))
        .iter()
        .all(|r| matches!(r, Err(Error::Storage(_)))));
    assert!(matches!(b.range(&everything()), Err(Error::Storage(_))));
    // A bad stream does not clear it.
    assert!(b.install_snapshot(&mut &b"junk"[..], dir_b.db()).is_err());
    assert!(matches!(b.range(&everything()), Err(Error::Storage(_))));

    assert_eq!(
        b.install_snapshot(&mut &snap[..], dir_b.db()).unwrap(),
        A_INDEX
    );
    assert_eq!(observe(&b), want);
    let next = entries(16, vec![put("a/8", "x")]);
    assert_eq!(b.apply_batch(&next), a.apply_batch(&next));
    assert_eq!(b.hash_kv(0), a.hash_kv(0));
}

/// Lease deadlines are leader-local: a primary keeps deadlines of leases that survive, drops
/// those of leases gone, and starts the new ones from its last clock reading.
#[test]
fn install_on_a_primary_restarts_lease_deadlines_from_the_snapshot() {
    let dir_a = TempDir::new("lease-a");
    let a = make_a(&dir_a);
    let snap = snapshot_bytes(&a);

    let dir_b = TempDir::new("lease-b");
    let b = open(&dir_b);
    b.apply_batch(&entries(1, vec![grant(70, 100), grant(7, 5)]));
    b.lease_promote(1_000); // deadlines: 7 at 6_000, 70 at 101_000
    assert_eq!(b.lease_expired(1_500), Vec::<i64>::new());
    b.lease_renew(7, 2_000).unwrap(); // deadline 7_000; last clock reading 2_000
    b.install_snapshot(&mut &snap[..], dir_b.db()).unwrap();
    assert_eq!(b.lease_list(), vec![7, 8]);
    assert_eq!(b.lease_renew(70, 2_000), Err(Error::LeaseNotFound));
    // 7 keeps its deadline (7_000); 8 (checkpointed at 20 s) starts at the last reading.
    assert_eq!(b.lease_expired(6_999), Vec::<i64>::new());
    assert_eq!(b.lease_expired(7_000), vec![7]);
    assert_eq!(b.lease_expired(21_999), vec![7]);
    assert_eq!(b.lease_expired(22_000), vec![7, 8]);
    let ttl = b.lease_time_to_live(8, true, 2_000).unwrap();
    assert_eq!(
        (ttl.ttl, ttl.granted_ttl, ttl.keys),
        (20, 50, vec![b"a/5".to_vec()])
    );
}

/// Readers, an applier, a committer and a watcher-sync loop run on B while A's snapshot is
/// installed. No read ever returns keys of both histories; every operation succeeds; the
/// applier's writes that landed after the install are on top of A's state, exactly as a store
/// restored from A's snapshot applying them would have them.
#[test]
fn concurrent_users_never_see_a_mix_of_histories() {
    let dir_a = TempDir::new("conc-a");
    let a = open(&dir_a);
    // A: 200 puts (revisions 2..=201), consistent index 200.
    a.apply_batch(&entries(
        1,
        (0..200).map(|i| put(&format!("a/{i:03}"), "A")).collect(),
    ));
    let snap = snapshot_bytes(&a);
    drop(a);

    let dir_b = TempDir::new("conc-b");
    let b = open(&dir_b);
    // B: the same indexes with other revisions: 20 puts among 200 entries (revision 21), so
    // the applier's revisions in B's history overlap A's (a value of one history served
    // for a revision of the other would show up as a key out of place).
    b.apply_batch(&entries(
        1,
        (0..200)
            .map(|i| {
                if i % 10 == 0 {
                    put(&format!("b/{i:03}"), "B")
                } else {
                    Request::Noop
                }
            })
            .collect(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let applied = Arc::new(AtomicU64::new(200));
    let reads = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    {
        let (b, stop, applied) = (b.clone(), stop.clone(), applied.clone());
        threads.push(std::thread::spawn(move || {
            let mut idx = 200;
            while !stop.load(Ordering::SeqCst) {
                idx += 1;
                let r = b.apply_batch_deferred(&[(idx, put(&format!("x/{idx:05}"), "X"))]);
                assert!(r[0].is_ok(), "{r:?}");
                applied.store(idx, Ordering::SeqCst);
                if idx % 7 == 0 {
                    std::thread::yield_now();
                }
            }
        }));
    }
    {
        let (b, stop) = (b.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                b.commit_pending().unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        }));
    }
    {
        let (b, stop) = (b.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let stream = watch(&b, "x/", "x0", 2, false);
            while !stop.load(Ordering::SeqCst) {
                b.sync_watchers().unwrap();
                drain(&stream);
                std::thread::sleep(Duration::from_millis(1));
            }
        }));
    }
    let saw = Arc::new(Mutex::new((false, false)));
    for _ in 0..2 {
        let (b, stop, reads, saw) = (b.clone(), stop.clone(), reads.clone(), saw.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let r = b.range(&everything()).unwrap();
                let has = |p: u8| r.kvs.iter().any(|kv| kv.key[0] == p);
                let (has_a, has_b) = (has(b'a'), has(b'b'));
                assert!(!(has_a && has_b), "a read mixed both histories");
                assert!(
                    r.kvs.windows(2).all(|w| w[0].key < w[1].key),
                    "a value of another revision was served"
                );
                let values_match = r
                    .kvs
                    .iter()
                    .all(|kv| kv.value == kv.key[..1].to_ascii_uppercase());
                assert!(values_match, "a key with another history's value");
                assert!(has_a || has_b);
                assert_eq!(r.count as usize, r.kvs.len());
                assert!(r.kvs.iter().all(|kv| kv.mod_revision <= r.revision));
                let mut s = saw.lock().unwrap();
                s.0 |= has_a;
                s.1 |= has_b;
                drop(s);
                reads.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let wait = |cond: &dyn Fn() -> bool| {
        for _ in 0..20_000 {
            if cond() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("timed out");
    };
    wait(&|| applied.load(Ordering::SeqCst) >= 260 && reads.load(Ordering::SeqCst) >= 20);
    assert_eq!(b.install_snapshot(&mut &snap[..], dir_b.db()).unwrap(), 200);
    let (after_applied, after_reads) =
        (applied.load(Ordering::SeqCst), reads.load(Ordering::SeqCst));
    wait(&|| {
        applied.load(Ordering::SeqCst) >= after_applied + 50
            && reads.load(Ordering::SeqCst) >= after_reads + 20
    });
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*saw.lock().unwrap(), (true, true));
    let last = applied.load(Ordering::SeqCst);

    // The x/ keys left are a suffix of the applier's indexes: those applied after the swap.
    let xs = b.range(&prefix("x/")).unwrap();
    let first: u64 = String::from_utf8(xs.kvs[0].key[2..].to_vec())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(xs.kvs.len() as u64, last - first + 1);
    assert!(first > 260 && first <= after_applied + 1, "first {first}");
    // The reference: A's snapshot restored elsewhere, the same entries applied.
    let dir_r = TempDir::new("conc-ref");
    let r = Store::restore_path(&mut &snap[..], dir_r.db(), StoreConfig::default()).unwrap();
    let tail: Vec<(u64, Request)> = (first..=last)
        .map(|i| (i, put(&format!("x/{i:05}"), "X")))
        .collect();
    for res in r.apply_batch(&tail) {
        res.unwrap();
    }
    assert!(
        b.range(&everything()) == r.range(&everything()),
        "B's final state is not A's plus the entries applied after the install"
    );
    assert_eq!(b.hash_kv(0), r.hash_kv(0));
    assert_eq!(b.hash(), r.hash());
    drop(b);
    assert_eq!(open(&dir_b).hash_kv(0), r.hash_kv(0));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Byte soups and single-byte corruptions of a real snapshot: the install either refuses
    /// (and the store is unchanged) or succeeds with exactly the snapshot's state. Never a
    /// panic, never a half state.
    #[test]
    fn random_or_corrupted_streams_install_fully_or_not_at_all(
        soup in proptest::collection::vec(any::<u8>(), 0..9000),
        use_soup in any::<bool>(),
        flip_at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let (snap, want) = snapshot_a();
        let bytes = if use_soup {
            soup
        } else {
            let mut s = snap.clone();
            let i = flip_at.index(s.len());
            s[i] ^= flip;
            s
        };
        let dir = TempDir::new("prop");
        let b = open(&dir);
        b.apply_batch(&entries(1, vec![put("b/1", "x")]));
        let before = b.hash_kv(0).unwrap();
        match b.install_snapshot(&mut &bytes[..], dir.db()) {
            Ok(ci) => {
                prop_assert_eq!(ci, A_INDEX);
                prop_assert_eq!(b.hash_kv(0).unwrap(), want);
            }
            Err(_) => {
                prop_assert_eq!(b.hash_kv(0).unwrap(), before);
                prop_assert!(!installing(&dir).exists());
            }
        }
    }
}

/// A's snapshot and HashKV, made once for the property test.
fn snapshot_a() -> (Vec<u8>, HashKv) {
    static SNAP: std::sync::OnceLock<(Vec<u8>, HashKv)> = std::sync::OnceLock::new();
    SNAP.get_or_init(|| {
        let dir = TempDir::new("prop-a");
        let a = make_a(&dir);
        (snapshot_bytes(&a), a.hash_kv(0).unwrap())
    })
    .clone()
}
