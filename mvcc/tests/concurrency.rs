//! Reads and watches while batches are applied from another thread: reads never see a torn
//! txn, revisions never go backwards, and a read does not wait for a batch's fsync.

mod common;

use common::*;
use keel_mvcc::backend::{BackendRead, WriteBatch};
use keel_mvcc::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn pair_txn(v: &str) -> Request {
    Request::Txn(TxnRequest {
        success: vec![
            RequestOp::Put(PutRequest {
                key: b"p/1".to_vec(),
                value: v.into(),
                ..Default::default()
            }),
            RequestOp::Put(PutRequest {
                key: b"p/2".to_vec(),
                value: v.into(),
                ..Default::default()
            }),
        ],
        ..Default::default()
    })
}

#[test]
fn readers_see_whole_txns_and_monotonic_revisions() {
    let dir = TempDir::new("conc");
    let store = open(&dir);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut last_rev = 0;
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = store.range(&prefix("p/")).unwrap();
                    assert!(r.revision >= last_rev, "revision went back");
                    last_rev = r.revision;
                    if r.kvs.len() == 2 {
                        assert_eq!(r.kvs[0].value, r.kvs[1].value, "torn txn");
                        assert_eq!(r.kvs[0].mod_revision, r.kvs[1].mod_revision);
                    } else {
                        assert!(r.kvs.is_empty());
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let mut idx = 0;
    for b in 0..200 {
        let entries: Vec<(u64, Request)> = (0..5)
            .map(|j| {
                idx += 1;
                (idx, pair_txn(&format!("{b}-{j}")))
            })
            .collect();
        for r in store.apply_batch(&entries) {
            r.unwrap();
        }
        if b % 50 == 49 {
            let rev = store.current_revision();
            store
                .apply(
                    idx + 1,
                    Request::Compact(CompactionRequest {
                        revision: rev - 3,
                        physical: true,
                    }),
                )
                .unwrap();
            idx += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}

/// A backend whose commits wait for a go-ahead, to hold a batch "in fsync".
struct GatedBackend {
    inner: MemBackend,
    entered: Mutex<mpsc::Sender<()>>,
    release: Mutex<mpsc::Receiver<()>>,
    gate: Arc<AtomicBool>,
}

impl Backend for GatedBackend {
    fn read(&self) -> Result<Box<dyn BackendRead + '_>, Error> {
        self.inner.read()
    }
    fn commit(&self, batch: &WriteBatch) -> Result<(), Error> {
        if self.gate.load(Ordering::SeqCst) {
            self.entered.lock().unwrap().send(()).unwrap();
            self.release.lock().unwrap().recv().unwrap();
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
fn a_read_does_not_wait_for_a_batch_being_committed() {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let gate = Arc::new(AtomicBool::new(false));
    let backend = GatedBackend {
        inner: MemBackend::new(),
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
        gate: gate.clone(),
    };
    let store = Store::open(Box::new(backend), StoreConfig::default()).unwrap();
    store
        .apply(1, Request::LeaseGrant(LeaseGrantRequest { id: 5, ttl: 10 }))
        .unwrap();
    store.lease_promote(0);
    gate.store(true, Ordering::SeqCst);
    let stream = store.watch_stream(|| {});
    stream
        .watch(&WatchCreateRequest {
            key: b"p/".to_vec(),
            range_end: b"p0".to_vec(),
            ..Default::default()
        })
        .unwrap();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || store.apply(2, pair_txn("x")).unwrap())
    };
    entered_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("commit started");
    // The commit is blocked "in fsync". A read completes, and sees the batch (the entry is
    // committed in the Raft log already).
    let (tx, rx) = mpsc::channel();
    {
        let store = store.clone();
        std::thread::spawn(move || tx.send(store.range(&prefix("p/"))).unwrap());
    }
    let r = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("read blocked by the commit")
        .unwrap();
    assert_eq!(r.kvs.len(), 2);
    assert_eq!(r.kvs[0].value, b"x");
    // keep-alives and lease queries do not wait either
    let (tx, rx) = mpsc::channel();
    {
        let store = store.clone();
        std::thread::spawn(move || tx.send(store.lease_renew(5, 1_000)).unwrap());
    }
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10))
            .expect("renew blocked by the commit")
            .unwrap()
            .ttl,
        10
    );
    // events are published only once the batch is durable
    let mut out = vec![];
    stream.drain_into(&mut out);
    assert!(out.iter().all(|r| r.events.is_empty()));
    release_tx.send(()).unwrap();
    writer.join().unwrap();
    out.clear();
    stream.drain_into(&mut out);
    assert_eq!(out.iter().map(|r| r.events.len()).sum::<usize>(), 2);
}

#[test]
fn reads_go_on_while_deferred_batches_are_committed() {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let gate = Arc::new(AtomicBool::new(true));
    let backend = GatedBackend {
        inner: MemBackend::new(),
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
        gate: gate.clone(),
    };
    let store = Store::open(Box::new(backend), StoreConfig::default()).unwrap();
    let stream = store.watch_stream(|| {});
    stream
        .watch(&WatchCreateRequest {
            key: b"p/".to_vec(),
            range_end: b"p0".to_vec(),
            ..Default::default()
        })
        .unwrap();
    // deferred batches never reach the (gated) backend: they return at once
    for (i, v) in ["a", "b", "c"].into_iter().enumerate() {
        let r = store.apply_batch_deferred(&[(i as u64 + 1, pair_txn(v))]);
        assert!(r[0].is_ok());
    }
    assert!(entered_rx.try_recv().is_err(), "a deferred batch committed");
    // their events are published at once
    let mut out = vec![];
    stream.drain_into(&mut out);
    assert_eq!(out.iter().map(|r| r.events.len()).sum::<usize>(), 6);
    let committer = {
        let store = store.clone();
        std::thread::spawn(move || store.commit_pending().unwrap())
    };
    entered_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("commit started");
    // the commit is blocked "in fsync": reads complete and see every batch
    let (tx, rx) = mpsc::channel();
    {
        let store = store.clone();
        std::thread::spawn(move || {
            tx.send((store.range(&prefix("p/")), store.durable_index()))
                .unwrap()
        });
    }
    let (r, durable) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("read blocked by the commit");
    let r = r.unwrap();
    assert_eq!(r.kvs.len(), 2);
    assert_eq!(r.kvs[0].value, b"c");
    assert_eq!(durable, 0, "durable before the commit returned");
    release_tx.send(()).unwrap();
    let stats = committer.join().unwrap();
    assert_eq!(stats.entries, 3);
    assert_eq!(store.durable_index(), 3);
    gate.store(false, Ordering::SeqCst);
    assert_eq!(store.range(&prefix("p/")).unwrap().kvs[1].value, b"c");
}
