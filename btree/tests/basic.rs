//! Basic behaviour: buckets, get/put/delete, cursors, ranges, reopen, snapshots, defragment.

use std::ops::Bound;

use keel_btree::{Db, Error, Options};

fn tmp(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("keel-btree-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn be(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

#[test]
fn put_get_delete_commit_rollback() {
    let db = Db::in_memory().unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_bucket(b"b").unwrap();
    assert!(matches!(w.create_bucket(b"b"), Err(Error::BucketExists(_))));
    {
        let mut b = w.bucket_mut(b"b").unwrap();
        b.put(b"k1", b"v1").unwrap();
        b.put(b"k2", b"v2").unwrap();
        assert_eq!(b.get(b"k1").unwrap(), Some(&b"v1"[..]));
        assert!(b.delete(b"k2").unwrap());
        assert!(!b.delete(b"k2").unwrap());
    }
    w.commit().unwrap();
    let r = db.begin_read();
    let b = r.bucket(b"b").unwrap();
    assert_eq!(b.get(b"k1").unwrap(), Some(&b"v1"[..]));
    assert_eq!(b.get(b"k2").unwrap(), None);
    assert_eq!(b.len(), 1);
    drop(r);
    let mut w = db.begin_write().unwrap();
    w.bucket_mut(b"b").unwrap().put(b"k3", b"v3").unwrap();
    w.rollback();
    let r = db.begin_read();
    assert_eq!(r.bucket(b"b").unwrap().get(b"k3").unwrap(), None);
    assert!(matches!(r.bucket(b"nope"), Err(Error::BucketNotFound(_))));
    drop(r);
    db.check().unwrap();
}

#[test]
fn many_keys_reopen_and_ranges() {
    let path = tmp("many");
    {
        let db = Db::open(&path, Options::default()).unwrap();
        let mut w = db.begin_write().unwrap();
        w.create_bucket(b"rev").unwrap();
        w.commit().unwrap();
        for batch in 0..20u64 {
            let mut w = db.begin_write().unwrap();
            let mut b = w.bucket_mut(b"rev").unwrap();
            for i in batch * 1000..(batch + 1) * 1000 {
                b.put(&be(i), &[i as u8; 100]).unwrap();
            }
            w.commit().unwrap();
        }
        let rep = db.check().unwrap();
        assert_eq!(rep.buckets[0].keys, 20_000);
    }
    let db = Db::open(&path, Options::default()).unwrap();
    let r = db.begin_read();
    let b = r.bucket(b"rev").unwrap();
    assert_eq!(b.len(), 20_000);
    for i in (0..20_000u64).step_by(997) {
        assert_eq!(b.get(&be(i)).unwrap(), Some(&[i as u8; 100][..]));
    }
    let keys: Vec<u64> = b
        .range(Bound::Included(&be(100)), Bound::Excluded(&be(200)))
        .map(|e| u64::from_be_bytes(e.unwrap().0.try_into().unwrap()))
        .collect();
    assert_eq!(keys, (100..200).collect::<Vec<_>>());
    let rev: Vec<u64> = b
        .range(Bound::Excluded(&be(100)), Bound::Included(&be(200)))
        .rev()
        .map(|e| u64::from_be_bytes(e.unwrap().0.try_into().unwrap()))
        .collect();
    assert_eq!(rev, (101..=200).rev().collect::<Vec<_>>());
    let mut c = b.cursor();
    assert_eq!(c.seek(&be(19_999)).unwrap().unwrap().0, &be(19_999));
    assert!(c.next().unwrap().is_none());
    assert_eq!(c.last().unwrap().unwrap().0, &be(19_999));
    assert_eq!(c.prev().unwrap().unwrap().0, &be(19_998));
    assert_eq!(c.first().unwrap().unwrap().0, &be(0));
    assert!(c.prev().unwrap().is_none());
    drop(r);
    drop(db);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn handles_are_send_and_sync_where_needed() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Db>();
    sync::<Db>();
    send::<keel_btree::ReadTxn>();
    sync::<keel_btree::ReadTxn>();
    send::<keel_btree::WriteTxn>();
    send::<keel_btree::Bucket<'static>>();
}

#[test]
fn empty_commit_writes_nothing() {
    let s = keel_btree::MemStorage::new();
    let db = Db::open_storage(std::sync::Arc::new(s.clone()), Options::default()).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_bucket(b"b").unwrap();
    w.commit().unwrap();
    let ops = s.ops();
    let txid = db.stats().txid;
    let w = db.begin_write().unwrap();
    assert!(w.bucket(b"b").unwrap().is_empty());
    w.commit().unwrap();
    assert_eq!(
        s.ops(),
        ops,
        "a read-only write transaction must not touch the disk"
    );
    assert_eq!(db.stats().txid, txid);
}

#[test]
fn stats_track_sizes() {
    let db = Db::in_memory().unwrap();
    let s0 = db.stats();
    let mut w = db.begin_write().unwrap();
    w.create_bucket(b"b").unwrap();
    for i in 0..5000u32 {
        w.bucket_mut(b"b")
            .unwrap()
            .put(&i.to_be_bytes(), &[0; 100])
            .unwrap();
    }
    w.commit().unwrap();
    let s1 = db.stats();
    assert!(s1.size_in_use > s0.size_in_use + 5000 * 100);
    assert!(s1.file_size >= s1.size_in_use);
    let mut w = db.begin_write().unwrap();
    w.delete_bucket(b"b").unwrap();
    w.commit().unwrap();
    let s2 = db.stats();
    assert!(s2.size_in_use < s1.size_in_use / 10, "{s2:?}");
    assert!(s2.free_pages + s2.pending_pages > 100);
    let r = db.begin_read();
    assert_eq!(db.stats().open_read_txns, 1);
    drop(r);
    assert_eq!(db.stats().open_read_txns, 0);
    db.check().unwrap();
}

#[test]
fn reopen_uses_the_files_page_size() {
    let path = tmp("pagesize");
    {
        let db = Db::open(
            &path,
            Options {
                page_size: 8192,
                ..Options::default()
            },
        )
        .unwrap();
        let mut w = db.begin_write().unwrap();
        w.create_bucket(b"b").unwrap();
        for i in 0..3000u32 {
            w.bucket_mut(b"b")
                .unwrap()
                .put(&i.to_be_bytes(), &[1; 50])
                .unwrap();
        }
        w.commit().unwrap();
        assert_eq!(db.stats().page_size, 8192);
    }
    let db = Db::open(&path, Options::default()).unwrap();
    assert_eq!(db.stats().page_size, 8192);
    assert_eq!(db.begin_read().bucket(b"b").unwrap().len(), 3000);
    db.check().unwrap();
    assert!(matches!(
        Db::open(
            tmp("badps"),
            Options {
                page_size: 1000,
                ..Options::default()
            }
        ),
        Err(Error::InvalidOptions(_))
    ));
    drop(db);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn read_txn_moves_to_another_thread_and_outlives_the_db_handle() {
    let db = Db::in_memory().unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_bucket(b"b").unwrap();
    w.bucket_mut(b"b").unwrap().put(b"k", b"old").unwrap();
    w.commit().unwrap();
    let r = db.begin_read();
    let mut w = db.begin_write().unwrap();
    w.bucket_mut(b"b").unwrap().put(b"k", b"new").unwrap();
    w.commit().unwrap();
    drop(db);
    let h = std::thread::spawn(move || {
        assert!(r.bucket(b"k").is_err());
        r.bucket(b"b")
            .unwrap()
            .get(b"k")
            .unwrap()
            .map(<[u8]>::to_vec)
    });
    assert_eq!(h.join().unwrap(), Some(b"old".to_vec()));
}

#[test]
fn prefix_and_seek_for_prev() {
    fn check(b: keel_btree::Bucket<'_>) {
        let p: Vec<&[u8]> = b.prefix(b"ab").map(|e| e.unwrap().0).collect();
        assert_eq!(p, vec![&b"ab"[..], b"abc", b"abd"]);
        let mut c = b.cursor();
        assert_eq!(c.seek_for_prev(b"abcz").unwrap().unwrap().0, b"abc");
        assert_eq!(c.seek_for_prev(b"abd").unwrap().unwrap().0, b"abd");
        assert!(c.seek_for_prev(b"0").unwrap().is_none());
        assert_eq!(c.seek_for_prev(b"zzz").unwrap().unwrap().0, b"ba");
        assert!(c.seek(b"bb").unwrap().is_none());
        assert_eq!(c.seek(b"aa").unwrap().unwrap().0, b"ab");
        assert_eq!(c.current().unwrap().unwrap().1, b"ab");
    }
    let db = Db::in_memory().unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_bucket(b"b").unwrap();
    for k in [&b"a"[..], b"ab", b"abc", b"abd", b"b", b"ba"] {
        w.bucket_mut(b"b").unwrap().put(k, k).unwrap();
    }
    // Inside the write transaction (dirty nodes) and after commit (pages): same answers.
    check(w.bucket(b"b").unwrap());
    w.commit().unwrap();
    check(db.begin_read().bucket(b"b").unwrap());
}
