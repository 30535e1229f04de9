//! Snapshots streamed while writes go on, restore from them, and defragmentation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use keel_btree::{Db, Error, Options};

fn tmp(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("keel-btree-snap-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

type Dump = BTreeMap<Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>>;

fn dump(db: &Db) -> Dump {
    let r = db.begin_read();
    r.bucket_names()
        .unwrap()
        .into_iter()
        .map(|n| {
            let v = r
                .bucket(&n)
                .unwrap()
                .iter()
                .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                .collect();
            (n, v)
        })
        .collect()
}

fn fill(db: &Db, from: u64, to: u64, vlen: usize) {
    let mut w = db.begin_write().unwrap();
    w.create_bucket_if_missing(b"kv").unwrap();
    w.create_bucket_if_missing(b"meta").unwrap();
    for i in from..to {
        w.bucket_mut(b"kv")
            .unwrap()
            .put(&i.to_be_bytes(), &vec![i as u8; vlen])
            .unwrap();
    }
    w.bucket_mut(b"meta")
        .unwrap()
        .put(b"last", &to.to_be_bytes())
        .unwrap();
    w.commit().unwrap();
}

#[test]
fn snapshot_is_consistent_while_writes_go_on() {
    let path = tmp("src");
    let db = Db::open(
        &path,
        Options {
            sync: false,
            ..Options::default()
        },
    )
    .unwrap();
    for b in 0..20 {
        fill(&db, b * 500, (b + 1) * 500, 300);
    }
    // A writer keeps rewriting and deleting while the snapshot streams.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let db = db.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut w = db.begin_write().unwrap();
                let mut b = w.bucket_mut(b"kv").unwrap();
                for i in 0..300u64 {
                    let k = (round * 300 + i) * 7 % 10_000;
                    if i % 3 == 0 {
                        b.delete(&k.to_be_bytes()).unwrap();
                    } else {
                        b.put(&k.to_be_bytes(), &[0xee; 500]).unwrap();
                    }
                }
                w.commit().unwrap();
                round += 1;
            }
            round
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    // The snapshot shows exactly the state of the read transaction it was taken from.
    let r = db.begin_read();
    let expect: Vec<(Vec<u8>, Vec<u8>)> = r
        .bucket(b"kv")
        .unwrap()
        .iter()
        .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect();
    let txid = r.txid();
    let mut snaps = Vec::new();
    // From the held read transaction: exactly its state, however long the stream takes.
    let mut buf = Vec::new();
    let n = r.snapshot_to(&mut buf).unwrap();
    assert_eq!(n as usize, buf.len());
    snaps.push(buf);
    drop(r);
    // From the database: the latest commit at the time.
    for _ in 0..2 {
        let mut buf = Vec::new();
        db.snapshot_to(&mut buf).unwrap();
        snaps.push(buf);
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.join().unwrap();
    assert!(rounds > 0);
    for (i, snap) in snaps.into_iter().enumerate() {
        let p = tmp(&format!("restored{i}"));
        let restored = Db::restore(&mut snap.as_slice(), &p, Options::default()).unwrap();
        restored.check().unwrap();
        let r = restored.begin_read();
        assert!(r.txid() >= txid);
        let got: Vec<_> = r
            .bucket(b"kv")
            .unwrap()
            .iter()
            .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
            .collect();
        if i == 0 {
            assert_eq!(r.txid(), txid);
            assert_eq!(got, expect);
        }
        // Every value is either an original fill value or the writer's marker: no torn pages.
        for (k, v) in &got {
            let i = u64::from_be_bytes(k.as_slice().try_into().unwrap());
            assert!(v == &vec![i as u8; 300] || v == &vec![0xee; 500]);
        }
        drop(r);
        // The restored database accepts writes.
        fill(&restored, 100_000, 100_100, 10);
        restored.check().unwrap();
        drop(restored);
        std::fs::remove_file(&p).unwrap();
    }
    drop(db);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn restore_rejects_garbage() {
    let p = tmp("garbage");
    let junk = vec![3u8; 20_000];
    let e = Db::restore(&mut junk.as_slice(), &p, Options::default()).unwrap_err();
    assert!(matches!(e, Error::NotADatabase), "{e}");
    assert!(
        !p.exists(),
        "a failed restore must not leave a database file"
    );
}

#[test]
fn defragment_shrinks_and_keeps_data_and_readers() {
    let path = tmp("defrag");
    let db = Db::open(
        &path,
        Options {
            sync: false,
            ..Options::default()
        },
    )
    .unwrap();
    for b in 0..40 {
        fill(&db, b * 1000, (b + 1) * 1000, 200);
    }
    // Delete every other key.
    let mut w = db.begin_write().unwrap();
    for i in (0..40_000u64).step_by(2) {
        w.bucket_mut(b"kv")
            .unwrap()
            .delete(&i.to_be_bytes())
            .unwrap();
    }
    w.commit().unwrap();
    let before = db.stats();
    let want = dump(&db);
    let old_reader = db.begin_read();
    let old_val: &[u8] = old_reader
        .bucket(b"kv")
        .unwrap()
        .get(&1u64.to_be_bytes())
        .unwrap()
        .unwrap();
    db.defragment().unwrap();
    let after = db.stats();
    assert!(
        after.file_size < before.file_size * 7 / 10,
        "defragment did not shrink the file: {before:?} -> {after:?}"
    );
    assert_eq!(dump(&db), want);
    db.check().unwrap();
    assert!(
        after.txid > before.txid,
        "txids keep increasing across defragment"
    );
    // The reader that started before still sees its snapshot from the old file.
    assert_eq!(old_val, &[1u8; 200][..]);
    assert_eq!(old_reader.bucket(b"kv").unwrap().len(), 20_000);
    drop(old_reader);
    // Writes continue on the new file, and it reopens.
    fill(&db, 50_000, 51_000, 10);
    db.check().unwrap();
    let want = dump(&db);
    drop(db);
    let db = Db::open(&path, Options::default()).unwrap();
    assert_eq!(dump(&db), want);
    db.check().unwrap();
    drop(db);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn defragment_in_memory_is_unsupported() {
    let db = Db::in_memory().unwrap();
    assert!(matches!(db.defragment(), Err(Error::Unsupported(_))));
    // The writer slot was given back.
    fill(&db, 0, 10, 1);
}

#[test]
fn second_open_of_same_file_is_refused() {
    let path = tmp("twice");
    let db = Db::open(&path, Options::default()).unwrap();
    assert!(matches!(
        Db::open(&path, Options::default()),
        Err(Error::AlreadyOpen(_))
    ));
    drop(db);
    let db = Db::open(&path, Options::default()).unwrap();
    drop(db);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn one_fsync_database_snapshots_restores_and_defragments() {
    let opts = Options {
        commit_mode: keel_btree::CommitMode::OneFsync,
        ..Options::default()
    };
    let path = tmp("onefsync");
    let db = Db::open(&path, opts.clone()).unwrap();
    for b in 0..10 {
        fill(&db, b * 1000, (b + 1) * 1000, 100);
    }
    let want = dump(&db);
    let mut snap = Vec::new();
    db.snapshot_to(&mut snap).unwrap();
    let p2 = tmp("onefsync-restored");
    let restored = Db::restore(&mut snap.as_slice(), &p2, opts.clone()).unwrap();
    assert_eq!(dump(&restored), want);
    drop(restored);
    std::fs::remove_file(&p2).unwrap();
    db.defragment().unwrap();
    assert_eq!(dump(&db), want);
    fill(&db, 20_000, 20_100, 5);
    db.check().unwrap();
    let want = dump(&db);
    drop(db);
    let db = Db::open(&path, opts).unwrap();
    assert_eq!(dump(&db), want);
    drop(db);
    std::fs::remove_file(&path).unwrap();
}

/// Readers in other threads keep reading (and checking) while the main thread writes,
/// defragments (swapping the file and the mapping under them) and takes snapshots.
#[test]
fn defragment_and_snapshots_under_concurrent_readers() {
    let path = tmp("defrag-concurrent");
    let db = Db::open(
        &path,
        Options {
            sync: false,
            ..Options::default()
        },
    )
    .unwrap();
    fill(&db, 0, 5000, 64);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let db = db.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let r = db.begin_read();
                    let b = r.bucket(b"kv").unwrap();
                    let mut n = 0u64;
                    for e in b.iter() {
                        let (k, v) = e.unwrap();
                        let i = u64::from_be_bytes(k.try_into().unwrap());
                        assert!(v.iter().all(|&x| x == i as u8) || v.iter().all(|&x| x == 0xdd));
                        n += 1;
                    }
                    assert_eq!(n, b.len());
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    for round in 0..6u64 {
        let mut w = db.begin_write().unwrap();
        let mut b = w.bucket_mut(b"kv").unwrap();
        for i in (round * 700..round * 700 + 700).step_by(2) {
            b.delete(&i.to_be_bytes()).unwrap();
            b.put(&(i + 1).to_be_bytes(), &[0xdd; 300]).unwrap();
        }
        w.commit().unwrap();
        if round % 2 == 1 {
            db.defragment().unwrap();
        }
        let mut snap = Vec::new();
        db.snapshot_to(&mut snap).unwrap();
        assert!(!snap.is_empty());
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    db.check().unwrap();
    drop(db);
    std::fs::remove_file(&path).unwrap();
}
