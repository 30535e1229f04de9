//! `commit_pending` from a committer thread: while its backend commit is in flight (blocked
//! here on a gate), deferred applies and reads go on, a compaction applied meanwhile also
//! drops the in-flight revisions, calls that need the backend complete wait for it, and a
//! failure poisons the store. The end state equals a store that applied durably.

mod common;

use common::*;
use keel_mvcc::backend::{Backend, BackendRead, MemBackend, WriteBatch};
use keel_mvcc::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How long a step that must not block may take before the test calls it blocked.
const PATIENCE: Duration = Duration::from_secs(20);

/// A backend whose commits can be held at a gate (a slow fsync), slowed down, or failed.
#[derive(Clone)]
struct Gated {
    inner: MemBackend,
    gate: Arc<AtomicBool>,
    entered: Arc<Mutex<Option<mpsc::Sender<()>>>>,
    release: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
    fail: Arc<AtomicBool>,
    delay: Arc<Mutex<Duration>>,
    committing: Arc<AtomicBool>,
    commits: Arc<AtomicUsize>,
}

impl Gated {
    fn new(inner: MemBackend) -> Gated {
        Gated {
            inner,
            gate: Arc::new(AtomicBool::new(false)),
            entered: Arc::new(Mutex::new(None)),
            release: Arc::new(Mutex::new(None)),
            fail: Arc::new(AtomicBool::new(false)),
            delay: Arc::new(Mutex::new(Duration::ZERO)),
            committing: Arc::new(AtomicBool::new(false)),
            commits: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Holds the next commit at the gate: returns (entered, release).
    fn arm(&self) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (etx, erx) = mpsc::channel();
        let (rtx, rrx) = mpsc::channel();
        *self.entered.lock().unwrap() = Some(etx);
        *self.release.lock().unwrap() = Some(rrx);
        self.gate.store(true, Ordering::SeqCst);
        (erx, rtx)
    }
}

impl Backend for Gated {
    fn read(&self) -> Result<Box<dyn BackendRead + '_>, Error> {
        self.inner.read()
    }
    fn commit(&self, batch: &WriteBatch) -> Result<(), Error> {
        self.committing.store(true, Ordering::SeqCst);
        if self.gate.swap(false, Ordering::SeqCst) {
            let entered = self.entered.lock().unwrap().take().unwrap();
            let release = self.release.lock().unwrap().take().unwrap();
            entered.send(()).unwrap();
            release.recv().unwrap();
        }
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            thread::sleep(delay);
        }
        let out = if self.fail.load(Ordering::SeqCst) {
            Err(Error::Storage("injected commit failure".into()))
        } else {
            self.commits.fetch_add(1, Ordering::SeqCst);
            self.inner.commit(batch)
        };
        self.committing.store(false, Ordering::SeqCst);
        out
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

fn everything(rev: i64) -> RangeRequest {
    RangeRequest {
        key: vec![0],
        range_end: vec![0],
        revision: rev,
        ..Default::default()
    }
}

fn compact(rev: i64) -> Request {
    Request::Compact(CompactionRequest {
        revision: rev,
        physical: true,
    })
}

fn numbered(reqs: Vec<Request>, idx: &mut u64) -> Vec<(u64, Request)> {
    reqs.into_iter()
        .map(|r| {
            *idx += 1;
            (*idx, r)
        })
        .collect()
}

fn value(store: &Store, key: &str) -> Option<Vec<u8>> {
    let r = store.range(&get(key)).unwrap();
    r.kvs.first().map(|kv| kv.value.clone())
}

/// Runs `f` on a thread and waits for it at most `PATIENCE`: a step that must not block.
fn must_finish<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("{what} blocked behind the in-flight commit"))
}

#[test]
fn applies_and_reads_go_on_while_a_commit_is_in_flight() {
    let backend = Gated::new(MemBackend::new());
    let store = Store::open(Box::new(backend.clone()), StoreConfig::default()).unwrap();
    let durable = Store::open(Box::new(MemBackend::new()), StoreConfig::default()).unwrap();
    let mut idx = 0;
    let first = numbered(
        (0..5).map(|i| put(&format!("k{i}"), "v0")).collect(),
        &mut idx,
    );
    for r in store.apply_batch_deferred(&first) {
        r.unwrap();
    }
    durable.apply_batch(&first);
    let (entered, release) = backend.arm();
    let committer = {
        let store = store.clone();
        thread::spawn(move || store.commit_pending())
    };
    entered.recv_timeout(PATIENCE).unwrap();
    assert_eq!(store.in_flight_entries(), 5);
    assert_eq!(store.pending_entries(), 5);
    assert_eq!(
        store.durable_index(),
        0,
        "durable only once the commit is done"
    );

    // ten batches apply (and return) while the commit is held in its fsync
    let mut later = Vec::new();
    for b in 0..10 {
        let batch = numbered(
            vec![
                put(&format!("k{}", b % 5), &format!("v{}", b + 1)),
                put(&format!("new{b}"), "x"),
            ],
            &mut idx,
        );
        later.push(batch.clone());
        let s = store.clone();
        let results = must_finish("apply_batch_deferred", move || {
            s.apply_batch_deferred(&batch)
        });
        for r in results {
            r.unwrap();
        }
    }
    // reads see every applied value: in-flight ones and later ones
    let s = store.clone();
    must_finish("a read", move || s.range(&everything(0)).unwrap());
    assert_eq!(value(&store, "k0").as_deref(), Some(&b"v6"[..]));
    assert_eq!(value(&store, "new9").as_deref(), Some(&b"x"[..]));
    // an old revision whose value is only in the in-flight commit
    let old = store.range(&everything(2)).unwrap();
    assert_eq!(old.kvs.len(), 1);
    assert_eq!(old.kvs[0].value, b"v0");
    assert_eq!(store.pending_entries(), 25);
    assert_eq!(store.in_flight_entries(), 5);

    // a second commit and hash_kv wait for the in-flight one
    let (second_tx, second_rx) = mpsc::channel();
    {
        let store = store.clone();
        thread::spawn(move || second_tx.send(store.commit_pending()).unwrap());
    }
    let (hash_tx, hash_rx) = mpsc::channel();
    {
        let store = store.clone();
        thread::spawn(move || hash_tx.send(store.hash_kv(0)).unwrap());
    }
    thread::sleep(Duration::from_millis(50));
    assert!(second_rx.try_recv().is_err(), "two commits in flight");
    assert!(hash_rx.try_recv().is_err(), "hash_kv ran during a commit");

    release.send(()).unwrap();
    let stats = committer.join().unwrap().unwrap();
    assert_eq!(stats.entries, 5);
    assert_eq!(stats.consistent_index, 5);
    let second = second_rx.recv_timeout(PATIENCE).unwrap().unwrap();
    let hash = hash_rx.recv_timeout(PATIENCE).unwrap().unwrap();
    // whichever of the two ran first committed the 20 later entries
    assert!(second.entries == 20 || second.entries == 0, "{second:?}");
    assert_eq!(store.pending_entries(), 0);
    assert_eq!(store.durable_index(), idx);
    assert_eq!(backend.commits.load(Ordering::SeqCst), 2);

    for batch in &later {
        durable.apply_batch(batch);
    }
    assert_eq!(hash, durable.hash_kv(0).unwrap());
    assert_eq!(store.hash().unwrap(), durable.hash().unwrap());
    assert_eq!(
        store.range(&everything(0)).unwrap(),
        durable.range(&everything(0)).unwrap()
    );
}

/// Values of uncommitted revisions are read from the commit buffers: the queued one and the
/// in-flight one, which is reused (emptied) for a later commit once its commit is done. Over
/// several rounds, with one commit held in flight each time, every revision reads the same as
/// on a store that applied durably: before, during and after each commit; prev_kv and
/// compares of the batches applied meanwhile see the in-flight values too.
#[test]
fn every_revision_reads_the_same_across_in_flight_commits_and_reused_buffers() {
    let backend = Gated::new(MemBackend::new());
    let store = Store::open(Box::new(backend.clone()), StoreConfig::default()).unwrap();
    let durable = Store::open(Box::new(MemBackend::new()), StoreConfig::default()).unwrap();
    let mut idx = 0;
    let val =
        |round: usize, i: usize| format!("{round}-{i}-{}", "x".repeat((round * 7 + i * 131) % 700));
    let put_prev = |key: &str, value: &str| {
        Request::Put(PutRequest {
            key: key.into(),
            value: value.into(),
            prev_kv: true,
            ..Default::default()
        })
    };
    let same_everywhere = |store: &Store, durable: &Store, when: &str| {
        let current = durable.current_revision();
        assert_eq!(store.current_revision(), current, "{when}");
        for rev in 1..=current {
            assert_eq!(
                store.range(&everything(rev)).unwrap(),
                durable.range(&everything(rev)).unwrap(),
                "{when}: revision {rev}"
            );
        }
    };
    for round in 0..5 {
        // queued, then in flight
        let mut reqs: Vec<Request> = (0..4)
            .map(|i| put_prev(&format!("k{i}"), &val(round, i)))
            .collect();
        reqs.push(Request::DeleteRange(DeleteRangeRequest {
            key: format!("k{}", round % 4).into_bytes(),
            prev_kv: true,
            ..Default::default()
        }));
        let first = numbered(reqs, &mut idx);
        assert_eq!(
            store.apply_batch_deferred(&first),
            durable.apply_batch(&first),
            "round {round}"
        );
        same_everywhere(&store, &durable, "queued");
        let (entered, release) = backend.arm();
        let committer = {
            let store = store.clone();
            thread::spawn(move || store.commit_pending())
        };
        entered.recv_timeout(PATIENCE).unwrap();
        same_everywhere(&store, &durable, "in flight");
        // applied while the first batch is in flight: prev values and compares read it
        let deleted = format!("k{}", round % 4);
        let overwritten = format!("k{}", (round + 1) % 4);
        let txn = Request::Txn(TxnRequest {
            compare: vec![Compare {
                key: overwritten.clone().into_bytes(),
                range_end: Vec::new(),
                target: CompareTarget::Value(val(round, (round + 1) % 4).into_bytes()),
                result: CompareResult::Equal,
            }],
            success: vec![RequestOp::Put(PutRequest {
                key: b"txn".to_vec(),
                value: val(round, 9).into_bytes(),
                prev_kv: true,
                ..Default::default()
            })],
            failure: Vec::new(),
        });
        let second = numbered(
            vec![
                txn,
                put_prev(&overwritten, &val(round, 5)),
                put_prev(&deleted, &val(round, 6)),
            ],
            &mut idx,
        );
        let s = store.clone();
        let batch = second.clone();
        let results = must_finish("apply_batch_deferred", move || {
            s.apply_batch_deferred(&batch)
        });
        assert_eq!(results, durable.apply_batch(&second), "round {round}");
        match &results[1] {
            Ok(Response::Put(p)) => {
                let prev = p
                    .prev_kv
                    .as_ref()
                    .expect("prev_kv from the in-flight batch");
                assert_eq!(prev.value, val(round, (round + 1) % 4).into_bytes());
            }
            other => panic!("{other:?}"),
        }
        match &results[0] {
            Ok(Response::Txn(t)) => assert!(t.succeeded, "the compare read the in-flight value"),
            other => panic!("{other:?}"),
        }
        same_everywhere(&store, &durable, "in flight + queued");
        release.send(()).unwrap();
        committer.join().unwrap().unwrap();
        same_everywhere(&store, &durable, "after the commit");
    }
    store.commit_pending().unwrap();
    same_everywhere(&store, &durable, "all committed");
    assert_eq!(store.hash_kv(0).unwrap(), durable.hash_kv(0).unwrap());
    assert_eq!(store.hash().unwrap(), durable.hash().unwrap());
}

#[test]
fn a_compaction_during_an_in_flight_commit_drops_its_revisions_too() {
    let mem = MemBackend::new();
    let backend = Gated::new(mem.clone());
    let store = Store::open(Box::new(backend.clone()), StoreConfig::default()).unwrap();
    let durable = Store::open(Box::new(MemBackend::new()), StoreConfig::default()).unwrap();
    let mut idx = 0;
    let mut all = Vec::new();
    // rewrite a few keys many times (and delete one): old revisions the compaction dooms
    let mut reqs = Vec::new();
    for round in 0..6 {
        for k in ["a", "b", "c"] {
            reqs.push(put(k, &format!("{k}{round}")));
        }
    }
    reqs.push(Request::DeleteRange(DeleteRangeRequest {
        key: b"c".to_vec(),
        ..Default::default()
    }));
    let first = numbered(reqs, &mut idx);
    all.push(first.clone());
    store.apply_batch_deferred(&first);
    let (entered, release) = backend.arm();
    let committer = {
        let store = store.clone();
        thread::spawn(move || store.commit_pending())
    };
    entered.recv_timeout(PATIENCE).unwrap();
    // compact while every doomed revision is in flight (in neither the backend nor the queue)
    let rev = store.current_revision();
    let batch = numbered(vec![put("d", "d0"), compact(rev), put("a", "a9")], &mut idx);
    all.push(batch.clone());
    let s = store.clone();
    for r in must_finish("a compaction", move || s.apply_batch_deferred(&batch)) {
        r.unwrap();
    }
    assert!(matches!(
        store.range(&everything(rev - 1)),
        Err(Error::Compacted)
    ));
    assert_eq!(value(&store, "b").as_deref(), Some(&b"b5"[..]));
    release.send(()).unwrap();
    committer.join().unwrap().unwrap();
    store.commit_pending().unwrap();
    assert_eq!(store.durable_index(), idx);
    for batch in &all {
        for r in durable.apply_batch(batch) {
            r.unwrap();
        }
    }
    // the backend holds exactly what a durable store holds (no doomed revision left over)
    assert_eq!(store.hash().unwrap(), durable.hash().unwrap());
    drop(store);
    let reopened = Store::open(Box::new(mem), StoreConfig::default()).unwrap();
    assert_eq!(reopened.consistent_index(), idx);
    assert_eq!(reopened.hash_kv(0).unwrap(), durable.hash_kv(0).unwrap());
    assert_eq!(reopened.hash().unwrap(), durable.hash().unwrap());
    assert_eq!(
        reopened.range(&everything(0)).unwrap(),
        durable.range(&everything(0)).unwrap()
    );
}

#[test]
fn a_failed_in_flight_commit_poisons_the_store() {
    let mem = MemBackend::new();
    let backend = Gated::new(mem.clone());
    let store = Store::open(Box::new(backend.clone()), StoreConfig::default()).unwrap();
    store.apply_batch(&[(1, put("a", "1"))]);
    store.apply_batch_deferred(&[(2, put("b", "2"))]);
    let (entered, release) = backend.arm();
    backend.fail.store(true, Ordering::SeqCst);
    let committer = {
        let store = store.clone();
        thread::spawn(move || store.commit_pending())
    };
    entered.recv_timeout(PATIENCE).unwrap();
    // applied while in flight: accepted in memory (the Raft log has it)
    store.apply_batch_deferred(&[(3, put("c", "3"))])[0]
        .clone()
        .unwrap();
    release.send(()).unwrap();
    let failed = committer.join().unwrap();
    assert!(matches!(failed, Err(Error::Storage(_))), "{failed:?}");
    let said = failed.unwrap_err().etcd_message();
    assert_eq!(
        said.matches("storage error").count(),
        1,
        "said once: {said}"
    );
    backend.fail.store(false, Ordering::SeqCst);
    assert!(matches!(
        store.apply_batch_deferred(&[(4, put("d", "4"))])[0],
        Err(Error::Storage(_))
    ));
    assert!(matches!(store.commit_pending(), Err(Error::Storage(_))));
    assert!(matches!(store.hash_kv(0), Err(Error::Storage(_))));
    assert_eq!(store.durable_index(), 1);
    drop(store);
    let reopened = Store::open(Box::new(mem), StoreConfig::default()).unwrap();
    assert_eq!(reopened.consistent_index(), 1);
    assert_eq!(reopened.range(&get("b")).unwrap().count, 0);
}

/// Batch `b` of a mixed workload: puts over a small key space, a txn, a delete, and every
/// 40th batch a compaction of all but the last few revisions.
fn workload(b: u64, current_rev: i64) -> Vec<Request> {
    let mut reqs = vec![
        put(&format!("key{}", b % 17), &format!("value-{b}")),
        put(&format!("other{}", b % 5), &format!("o{b}")),
        Request::Txn(TxnRequest {
            compare: vec![Compare {
                key: format!("key{}", (b + 1) % 17).into_bytes(),
                range_end: vec![],
                target: CompareTarget::Version(0),
                result: CompareResult::Greater,
            }],
            success: vec![RequestOp::Put(PutRequest {
                key: b"txn".to_vec(),
                value: format!("t{b}").into_bytes(),
                ..Default::default()
            })],
            failure: vec![RequestOp::Range(get("txn"))],
        }),
    ];
    if b % 7 == 3 {
        reqs.push(Request::DeleteRange(DeleteRangeRequest {
            key: format!("other{}", b % 5).into_bytes(),
            ..Default::default()
        }));
    }
    if b % 40 == 39 && current_rev > 10 {
        reqs.push(compact(current_rev - 5));
    }
    reqs
}

#[test]
fn a_committer_thread_and_an_applier_thread_end_where_durable_applies_end() {
    let mem = MemBackend::new();
    let backend = Gated::new(mem.clone());
    *backend.delay.lock().unwrap() = Duration::from_millis(2);
    let store = Store::open(Box::new(backend.clone()), StoreConfig::default()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let committer = {
        let (store, stop) = (store.clone(), stop.clone());
        thread::spawn(move || {
            let mut commits = 0;
            while !stop.load(Ordering::SeqCst) {
                if store.commit_pending().unwrap().entries > 0 {
                    commits += 1;
                }
                thread::yield_now();
            }
            commits
        })
    };
    // the applier: every batch's results are what the durable store gives
    let durable = Store::open(Box::new(MemBackend::new()), StoreConfig::default()).unwrap();
    let mut idx = 0;
    let mut overlapped = 0;
    for b in 0..400 {
        let batch = numbered(workload(b, store.current_revision()), &mut idx);
        let got = store.apply_batch_deferred(&batch);
        if backend.committing.load(Ordering::SeqCst) {
            overlapped += 1; // this apply returned while a commit was being written
        }
        let want = durable.apply_batch(&batch);
        // a server's applier waits for the Raft log between batches: let the committer run
        thread::sleep(Duration::from_micros(500));
        assert_eq!(got, want, "batch {b}");
        if b % 50 == 0 {
            assert_eq!(
                store.range(&everything(0)).unwrap(),
                durable.range(&everything(0)).unwrap()
            );
        }
    }
    stop.store(true, Ordering::SeqCst);
    let commits = committer.join().unwrap();
    store.commit_pending().unwrap();
    assert!(commits > 1, "the committer committed {commits} times");
    assert!(overlapped > 0, "no apply ran during a commit");
    assert_eq!(store.durable_index(), idx);
    assert_eq!(store.pending_entries(), 0);
    assert_eq!(store.hash().unwrap(), durable.hash().unwrap());
    drop(store);
    let reopened = Store::open(Box::new(mem), StoreConfig::default()).unwrap();
    assert_eq!(reopened.hash_kv(0).unwrap(), durable.hash_kv(0).unwrap());
    assert_eq!(
        reopened.range(&everything(0)).unwrap(),
        durable.range(&everything(0)).unwrap()
    );
}

#[test]
fn sync_watchers_waits_for_an_in_flight_commit_only_for_a_behind_watcher() {
    let backend = Gated::new(MemBackend::new());
    let store = Store::open(Box::new(backend.clone()), StoreConfig::default()).unwrap();
    let mut idx = 0;
    let batch = numbered(
        (0..4).map(|i| put(&format!("w{i}"), "v")).collect(),
        &mut idx,
    );
    store.apply_batch_deferred(&batch);
    let (entered, release) = backend.arm();
    let committer = {
        let store = store.clone();
        thread::spawn(move || store.commit_pending())
    };
    entered.recv_timeout(PATIENCE).unwrap();
    // no watcher behind: a round completes during the in-flight commit
    let s = store.clone();
    assert_eq!(
        must_finish("sync_watchers", move || s.sync_watchers()).unwrap(),
        0
    );
    // a watcher from revision 2 must scan history the backend does not have yet: it waits
    let stream = store.watch_stream(|| {});
    stream
        .watch(&WatchCreateRequest {
            key: b"w".to_vec(),
            range_end: b"x".to_vec(),
            start_revision: 2,
            ..Default::default()
        })
        .unwrap();
    let (tx, rx) = mpsc::channel();
    {
        let store = store.clone();
        thread::spawn(move || tx.send(store.sync_watchers()).unwrap());
    }
    thread::sleep(Duration::from_millis(50));
    assert!(rx.try_recv().is_err(), "history scanned during the commit");
    release.send(()).unwrap();
    committer.join().unwrap().unwrap();
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap().unwrap(), 0);
    let mut got = Vec::new();
    stream.drain_into(&mut got);
    let events: Vec<_> = got.iter().flat_map(|r| r.events.iter()).collect();
    assert_eq!(events.len(), 4, "{got:?}");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.kv.key, format!("w{i}").into_bytes());
        assert_eq!(e.kv.mod_revision, 2 + i as i64);
    }
}

/// The same race on keel-btree files (real fsyncs): a committer thread's commits land while
/// batches apply and compact through older read views.
#[test]
fn a_committer_thread_on_keel_btree_ends_where_durable_applies_end() {
    let dir = TempDir::new("in-flight-btree");
    let store = open(&dir);
    let stop = Arc::new(AtomicBool::new(false));
    let committer = {
        let (store, stop) = (store.clone(), stop.clone());
        thread::spawn(move || {
            let mut commits = 0;
            while !stop.load(Ordering::SeqCst) {
                if store.commit_pending().unwrap().entries > 0 {
                    commits += 1;
                }
                thread::sleep(Duration::from_micros(200));
            }
            commits
        })
    };
    let durable = Store::open(Box::new(MemBackend::new()), StoreConfig::default()).unwrap();
    let mut idx = 0;
    for b in 0..300 {
        let batch = numbered(workload(b, store.current_revision()), &mut idx);
        let got = store.apply_batch_deferred(&batch);
        assert_eq!(got, durable.apply_batch(&batch), "batch {b}");
        if b % 25 == 0 {
            assert_eq!(
                store.range(&everything(0)).unwrap(),
                durable.range(&everything(0)).unwrap()
            );
        }
        thread::sleep(Duration::from_micros(300));
    }
    stop.store(true, Ordering::SeqCst);
    let commits = committer.join().unwrap();
    assert!(commits > 1, "the committer committed {commits} times");
    store.commit_pending().unwrap();
    assert_eq!(store.durable_index(), idx);
    drop(store);
    let reopened = open(&dir);
    assert_eq!(reopened.hash_kv(0).unwrap(), durable.hash_kv(0).unwrap());
    assert_eq!(
        reopened.range(&everything(0)).unwrap(),
        durable.range(&everything(0)).unwrap()
    );
}
