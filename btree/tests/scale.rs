//! Size and shape: large values, a million keys, deep trees, huge keys, delete-all-then-refill,
//! and slices that must stay valid while the file grows and is remapped under them.

use std::ops::Bound;

use keel_btree::{Db, Options};

fn tmp(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("keel-btree-scale-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn fast() -> Options {
    Options {
        sync: false,
        ..Options::default()
    }
}

#[test]
fn large_values() {
    let path = tmp("large");
    let db = Db::open(&path, fast()).unwrap();
    let big: Vec<Vec<u8>> = (0..6u8)
        .map(|i| {
            (0..(1 << 20) + i as usize * 77_777)
                .map(|j| (j % 251) as u8 ^ i)
                .collect()
        })
        .collect();
    let mut w = db.begin_write().unwrap();
    w.create_bucket(b"v").unwrap();
    for (i, v) in big.iter().enumerate() {
        w.bucket_mut(b"v").unwrap().put(&[i as u8], v).unwrap();
    }
    // Visible inside the transaction before commit.
    assert_eq!(
        w.bucket(b"v").unwrap().get(&[3]).unwrap(),
        Some(big[3].as_slice())
    );
    w.commit().unwrap();
    let r = db.begin_read();
    for (i, v) in big.iter().enumerate() {
        assert_eq!(
            r.bucket(b"v").unwrap().get(&[i as u8]).unwrap(),
            Some(v.as_slice())
        );
    }
    drop(r);
    // Overwrite and delete large values: their overflow runs are freed and reused, so after a
    // warm-up (first-fit fragmentation) the file stops growing.
    let churn = |db: &Db, rounds: usize| {
        for _ in 0..rounds {
            let mut w = db.begin_write().unwrap();
            let mut b = w.bucket_mut(b"v").unwrap();
            b.put(&[0], &big[1]).unwrap();
            b.delete(&[2]).unwrap();
            b.put(&[2], &big[2]).unwrap();
            w.commit().unwrap();
        }
    };
    churn(&db, 4);
    let before = db.stats();
    churn(&db, 12);
    let after = db.stats();
    assert!(
        after.page_count < before.page_count + 600,
        "overflow pages are not reused: {before:?} -> {after:?}"
    );
    let rep = db.check().unwrap();
    assert!(rep.buckets[0].overflow_pages >= 6 * 256);
    drop(db);
    let db = Db::open(&path, fast()).unwrap();
    assert_eq!(
        db.begin_read().bucket(b"v").unwrap().get(&[0]).unwrap(),
        Some(big[1].as_slice())
    );
    drop(db);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn million_keys_sequential_and_full_pages() {
    let path = tmp("million");
    let db = Db::open(&path, fast()).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_bucket(b"rev").unwrap();
    w.commit().unwrap();
    let n = 1_000_000u64;
    let val = [0xabu8; 64];
    for batch in 0..(n / 10_000) {
        let mut w = db.begin_write().unwrap();
        let mut b = w.bucket_mut(b"rev").unwrap();
        for i in batch * 10_000..(batch + 1) * 10_000 {
            b.put(&i.to_be_bytes(), &val).unwrap();
        }
        w.commit().unwrap();
    }
    let rep = db.check().unwrap();
    let br = &rep.buckets[0];
    assert_eq!(br.keys, n);
    // Sequential keys must leave leaves full: 88 bytes per entry in 4064 usable bytes = 46 per
    // page, so about 21.7k leaves. Half-empty splits would need about twice as many.
    let ideal = n.div_ceil((4096 - 32) / (16 + 8 + 64));
    assert!(
        br.leaf_pages <= ideal + ideal / 20,
        "leaves {} vs ideal {ideal}",
        br.leaf_pages
    );
    assert!(br.depth >= 3);
    let r = db.begin_read();
    let b = r.bucket(b"rev").unwrap();
    let mut x = 12345u64;
    for _ in 0..10_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let k = (x >> 11) % n;
        assert_eq!(b.get(&k.to_be_bytes()).unwrap(), Some(&val[..]));
    }
    let cnt = b
        .range(Bound::Included(&500_000u64.to_be_bytes()), Bound::Unbounded)
        .count();
    assert_eq!(cnt, 500_000);
    drop(r);
    drop(db);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn deep_tree_with_big_keys_and_small_pages() {
    let db = Db::open_storage(
        std::sync::Arc::new(keel_btree::MemStorage::new()),
        Options {
            page_size: 1024,
            sync: false,
            ..Options::default()
        },
    )
    .unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_bucket(b"k").unwrap();
    let key = |i: u32| {
        let mut k = format!("{:08}", (i as u64 * 2654435761) % 100_000_007).into_bytes();
        k.extend_from_slice(&[b'-'; 150]);
        k
    };
    for i in 0..20_000u32 {
        w.bucket_mut(b"k")
            .unwrap()
            .put(&key(i), &i.to_le_bytes())
            .unwrap();
    }
    w.commit().unwrap();
    let rep = db.check().unwrap();
    assert!(rep.buckets[0].depth >= 5, "depth {}", rep.buckets[0].depth);
    // Keys larger than a page (multi-page branch and leaf runs).
    let mut w = db.begin_write().unwrap();
    for i in 0..30u32 {
        let mut k = vec![b'z'; 5000 + i as usize * 1000];
        k.extend_from_slice(&i.to_be_bytes());
        w.bucket_mut(b"k").unwrap().put(&k, b"huge key").unwrap();
    }
    w.commit().unwrap();
    db.check().unwrap();
    let r = db.begin_read();
    let b = r.bucket(b"k").unwrap();
    assert_eq!(b.len(), 20_030);
    for i in (0..20_000u32).step_by(333) {
        assert_eq!(b.get(&key(i)).unwrap(), Some(&i.to_le_bytes()[..]));
    }
    let mut k = vec![b'z'; 5000 + 7000];
    k.extend_from_slice(&7u32.to_be_bytes());
    assert_eq!(b.get(&k).unwrap(), Some(&b"huge key"[..]));
    assert_eq!(b.iter().count(), 20_030);
}

#[test]
fn delete_everything_then_refill() {
    let path = tmp("refill");
    let db = Db::open(&path, fast()).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_bucket(b"b").unwrap();
    w.commit().unwrap();
    let fill = |db: &Db, offset: u64| {
        for batch in 0..20u64 {
            let mut w = db.begin_write().unwrap();
            let mut b = w.bucket_mut(b"b").unwrap();
            for i in 0..2000u64 {
                let k = (batch * 2000 + i) * 7919 % 40_000 + offset;
                b.put(&k.to_be_bytes(), &[k as u8; 200]).unwrap();
            }
            w.commit().unwrap();
        }
    };
    fill(&db, 0);
    let full = db.stats();
    // Delete everything, in random-ish order over several commits.
    for batch in 0..8u64 {
        let mut w = db.begin_write().unwrap();
        let mut b = w.bucket_mut(b"b").unwrap();
        for i in 0..5000u64 {
            let k = (batch * 5000 + i) * 7919 % 40_000;
            assert!(b.delete(&k.to_be_bytes()).unwrap());
        }
        w.commit().unwrap();
    }
    let r = db.begin_read();
    let b = r.bucket(b"b").unwrap();
    assert!(b.is_empty());
    assert!(b.iter().next().is_none());
    assert!(b.cursor().last().unwrap().is_none());
    drop(r);
    let rep = db.check().unwrap();
    assert_eq!(rep.buckets[0].keys, 0);
    let empty = db.stats();
    assert!(empty.size_in_use < full.size_in_use / 10, "{empty:?}");
    // Refill: the freed pages are reused; the file does not grow much.
    fill(&db, 0);
    let refilled = db.stats();
    assert!(
        refilled.page_count <= full.page_count + full.page_count / 4,
        "file grew on refill: {full:?} -> {refilled:?}"
    );
    db.check().unwrap();
    assert_eq!(db.begin_read().bucket(b"b").unwrap().len(), 40_000);
    drop(db);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn slices_survive_file_growth_and_remap() {
    let path = tmp("remap");
    let db = Db::open(&path, fast()).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_bucket(b"b").unwrap();
    w.bucket_mut(b"b")
        .unwrap()
        .put(b"pinned", &[42u8; 3000])
        .unwrap();
    w.bucket_mut(b"b").unwrap().put(b"small", b"value").unwrap();
    w.commit().unwrap();
    let r = db.begin_read();
    let b = r.bucket(b"b").unwrap();
    let pinned: &[u8] = b.get(b"pinned").unwrap().unwrap();
    let small: &[u8] = b.get(b"small").unwrap().unwrap();
    let size0 = db.stats().file_size;
    // Grow the file many times over (each growth creates a new mapping) and rewrite the keys.
    for round in 0..40u32 {
        let mut w = db.begin_write().unwrap();
        let mut bm = w.bucket_mut(b"b").unwrap();
        bm.put(b"pinned", &[round as u8; 3000]).unwrap();
        bm.put(b"small", b"changed").unwrap();
        for i in 0..200u32 {
            bm.put(&(round * 1000 + i).to_be_bytes(), &[1u8; 900])
                .unwrap();
        }
        w.commit().unwrap();
    }
    assert!(
        db.stats().file_size > 8 * size0,
        "file did not grow enough to force remaps"
    );
    // The old reader's slices still point into its own (old) mapping and still hold its snapshot.
    assert_eq!(pinned, &[42u8; 3000][..]);
    assert_eq!(small, b"value");
    assert_eq!(
        db.begin_read().bucket(b"b").unwrap().get(b"small").unwrap(),
        Some(&b"changed"[..])
    );
    drop(r);
    db.check().unwrap();
    drop(db);
    std::fs::remove_file(&path).unwrap();
}
