//! Model test: random put / delete / commit / rollback / reopen sequences checked against
//! `std::collections::BTreeMap`, with read transactions held open across later commits whose
//! snapshots must never change, and a multi-threaded variant with real concurrent readers.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use keel_btree::{Db, Options, ReadTxn};
use proptest::prelude::*;

type Model = BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>>;

const BUCKETS: [&[u8]; 3] = [b"key", b"meta", b"lease"];

#[derive(Debug, Clone)]
enum Op {
    Put(usize, u16, u8, usize),
    Delete(usize, u16),
    DeleteRange(usize, u16, u16),
    DropBucket(usize),
    Commit,
    Rollback,
    Reopen,
    OpenReader,
    CloseReader(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (0..3usize, 0..400u16, any::<u8>(), prop_oneof![8 => 0..100usize, 1 => 100..1500usize, 1 => 3000..9000usize])
            .prop_map(|(b, k, v, l)| Op::Put(b, k, v, l)),
        10 => (0..3usize, 0..400u16).prop_map(|(b, k)| Op::Delete(b, k)),
        1 => (0..3usize, 0..400u16, 0..100u16).prop_map(|(b, k, n)| Op::DeleteRange(b, k, n)),
        1 => (0..3usize).prop_map(Op::DropBucket),
        8 => Just(Op::Commit),
        2 => Just(Op::Rollback),
        1 => Just(Op::Reopen),
        3 => Just(Op::OpenReader),
        2 => (0..8usize).prop_map(Op::CloseReader),
    ]
}

fn key(k: u16) -> Vec<u8> {
    // Mix of increasing and scattered keys of varying length.
    let mut v = format!("k{:05}", k).into_bytes();
    if k % 7 == 0 {
        v.extend_from_slice(&[b'x'; 40]);
    }
    v
}

fn dump_txn(r: &ReadTxn) -> Model {
    let mut m = Model::new();
    for name in r.bucket_names().unwrap() {
        let b = r.bucket(&name).unwrap();
        let mut bm = BTreeMap::new();
        for e in b.iter() {
            let (k, v) = e.unwrap();
            bm.insert(k.to_vec(), v.to_vec());
        }
        assert_eq!(b.len(), bm.len() as u64, "bucket key count");
        m.insert(name, bm);
    }
    m
}

fn check_reader(r: &ReadTxn, expect: &Model) {
    assert_eq!(
        &dump_txn(r),
        expect,
        "reader snapshot changed (txid {})",
        r.txid()
    );
    // Spot-check point reads, reverse iteration and a bounded range.
    for (name, bm) in expect {
        let b = r.bucket(name).unwrap();
        for (k, v) in bm.iter().step_by(17) {
            assert_eq!(b.get(k).unwrap(), Some(v.as_slice()));
        }
        let rev: Vec<Vec<u8>> = b.iter().rev().map(|e| e.unwrap().0.to_vec()).collect();
        let mut want: Vec<Vec<u8>> = bm.keys().cloned().collect();
        want.reverse();
        assert_eq!(rev, want);
        let lo = key(100);
        let hi = key(200);
        let got: Vec<Vec<u8>> = b
            .range(Bound::Excluded(&lo), Bound::Included(&hi))
            .map(|e| e.unwrap().0.to_vec())
            .collect();
        let want: Vec<Vec<u8>> = bm
            .range::<Vec<u8>, _>((Bound::Excluded(&lo), Bound::Included(&hi)))
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(got, want);
    }
}

fn run(ops: Vec<Op>, one_fsync: bool) {
    let path = std::env::temp_dir().join(format!(
        "keel-btree-model-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&path);
    let opts = Options {
        page_size: 1024,
        sync: false,
        commit_mode: if one_fsync {
            keel_btree::CommitMode::OneFsync
        } else {
            keel_btree::CommitMode::TwoFsyncs
        },
        ..Options::default()
    };
    let mut db = Db::open(&path, opts.clone()).unwrap();
    let mut committed = Model::new();
    let mut pending = committed.clone();
    let mut wtx = None;
    let mut readers: Vec<(ReadTxn, Model)> = Vec::new();
    for op in ops {
        match op {
            Op::Commit => {
                if let Some(w) = wtx.take() {
                    keel_btree::WriteTxn::commit(w).unwrap();
                    committed = pending.clone();
                }
            }
            Op::Rollback => {
                wtx = None;
                pending = committed.clone();
            }
            Op::Reopen => {
                wtx = None;
                pending = committed.clone();
                for (r, m) in readers.drain(..) {
                    check_reader(&r, &m);
                }
                drop(db);
                db = Db::open(&path, opts.clone()).unwrap();
                db.check().unwrap();
                assert_eq!(dump_txn(&db.begin_read()), committed);
            }
            Op::OpenReader => {
                if readers.len() < 8 {
                    readers.push((db.begin_read(), committed.clone()));
                }
            }
            Op::CloseReader(i) => {
                if i < readers.len() {
                    let (r, m) = readers.remove(i);
                    check_reader(&r, &m);
                }
            }
            Op::Put(b, k, v, len) => {
                let w = wtx.get_or_insert_with(|| db.begin_write().unwrap());
                w.create_bucket_if_missing(BUCKETS[b]).unwrap();
                let val = vec![v; len];
                w.bucket_mut(BUCKETS[b])
                    .unwrap()
                    .put(&key(k), &val)
                    .unwrap();
                pending
                    .entry(BUCKETS[b].to_vec())
                    .or_default()
                    .insert(key(k), val);
            }
            Op::Delete(b, k) => {
                let w = wtx.get_or_insert_with(|| db.begin_write().unwrap());
                let existed = pending
                    .get_mut(BUCKETS[b])
                    .and_then(|m| m.remove(&key(k)))
                    .is_some();
                match w.bucket_mut(BUCKETS[b]) {
                    Ok(mut bm) => assert_eq!(bm.delete(&key(k)).unwrap(), existed),
                    Err(_) => assert!(!pending.contains_key(BUCKETS[b])),
                }
            }
            Op::DeleteRange(b, k, n) => {
                let w = wtx.get_or_insert_with(|| db.begin_write().unwrap());
                if let Some(m) = pending.get_mut(BUCKETS[b]) {
                    let doomed: Vec<Vec<u8>> = m
                        .keys()
                        .filter(|x| **x >= key(k))
                        .take(n as usize)
                        .cloned()
                        .collect();
                    let mut bm = w.bucket_mut(BUCKETS[b]).unwrap();
                    for d in doomed {
                        m.remove(&d);
                        assert!(bm.delete(&d).unwrap());
                    }
                }
            }
            Op::DropBucket(b) => {
                let w = wtx.get_or_insert_with(|| db.begin_write().unwrap());
                let existed = pending.remove(BUCKETS[b]).is_some();
                assert_eq!(w.delete_bucket(BUCKETS[b]).is_ok(), existed);
            }
        }
        // The write transaction sees its own changes.
        if let Some(w) = &wtx {
            for (name, bm) in &pending {
                assert_eq!(w.bucket(name).unwrap().len(), bm.len() as u64);
            }
        }
    }
    if let Some(w) = wtx.take() {
        w.commit().unwrap();
        committed = pending.clone();
    }
    for (r, m) in readers.drain(..) {
        check_reader(&r, &m);
    }
    let r = db.begin_read();
    assert_eq!(dump_txn(&r), committed);
    drop(r);
    db.check().unwrap();
    drop(db);
    let db = Db::open(&path, opts).unwrap();
    assert_eq!(dump_txn(&db.begin_read()), committed);
    db.check().unwrap();
    drop(db);
    std::fs::remove_file(&path).unwrap();
}

proptest! {
    // KEEL_SOAK=1 runs many more sequences.
    #![proptest_config(ProptestConfig {
        cases: if std::env::var("KEEL_SOAK").is_ok() { 2000 } else { 64 },
        ..ProptestConfig::default()
    })]
    #[test]
    fn matches_btreemap(ops in proptest::collection::vec(op(), 1..400), one_fsync in any::<bool>()) {
        run(ops, one_fsync);
    }
}

/// Real threads: readers hold snapshots while the writer commits; every committed state has all
/// values equal to its txn number, so a torn view shows up as mixed values.
#[test]
fn concurrent_readers_see_stable_snapshots() {
    // A real file, so readers share the writer's mmap (MemStorage maps copies).
    let path = std::env::temp_dir().join(format!("keel-btree-concurrent-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let db = Db::open(
        &path,
        Options {
            page_size: 1024,
            sync: false,
            ..Options::default()
        },
    )
    .unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_bucket(b"b").unwrap();
    w.commit().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for t in 0..3 {
        let db = db.clone();
        let stop = stop.clone();
        handles.push(std::thread::spawn(move || {
            let mut checked = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let r = db.begin_read();
                let b = r.bucket(b"b").unwrap();
                let first: Vec<(Vec<u8>, Vec<u8>)> = b
                    .iter()
                    .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                    .collect();
                if let Some((_, v0)) = first.first() {
                    assert!(
                        first.iter().all(|(_, v)| v == v0),
                        "thread {t}: torn snapshot"
                    );
                }
                std::thread::yield_now();
                let again: Vec<(Vec<u8>, Vec<u8>)> = b
                    .iter()
                    .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                    .collect();
                assert_eq!(first, again, "thread {t}: snapshot changed while open");
                checked += 1;
            }
            checked
        }));
    }
    for round in 0..300u32 {
        let mut w = db.begin_write().unwrap();
        let mut b = w.bucket_mut(b"b").unwrap();
        let val = round
            .to_be_bytes()
            .repeat(if round % 10 == 0 { 400 } else { 4 });
        for k in 0..200u32 {
            b.put(&(k * 7919 % 1000).to_be_bytes(), &val).unwrap();
        }
        w.commit().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(total > 0);
    db.check().unwrap();
    drop(db);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn one_writer_at_a_time() {
    let db = Db::in_memory().unwrap();
    let w = db.begin_write().unwrap();
    assert!(matches!(
        db.try_begin_write(),
        Err(keel_btree::Error::WriteTxnActive)
    ));
    let db2 = db.clone();
    let h = std::thread::spawn(move || {
        let mut w = db2.begin_write().unwrap();
        w.create_bucket(b"x").unwrap();
        w.commit().unwrap();
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(!h.is_finished(), "second writer must block");
    drop(w);
    h.join().unwrap();
    assert!(db.begin_read().bucket(b"x").is_ok());
}
