//! Bad input: files that are not databases, truncated files, corrupt metas, corrupt pages, and
//! random byte soups. Always a typed error, never a panic, never wrong data.

use std::collections::BTreeMap;
use std::sync::Arc;

use keel_btree::{Db, Error, MemStorage, Options, ReadTxn};
use proptest::prelude::*;

const PS: usize = 1024;

fn opts() -> Options {
    Options {
        page_size: PS as u32,
        ..Options::default()
    }
}

type Model = BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>>;

/// A database with two commits; returns (image, state after commit 1, state after commit 2).
fn sample_db() -> (Vec<u8>, Model, Model) {
    let s = MemStorage::new();
    let db = Db::open_storage(Arc::new(s.clone()), opts()).unwrap();
    let mut states = Vec::new();
    let mut model = Model::new();
    for round in 0..2u32 {
        let mut w = db.begin_write().unwrap();
        for b in [&b"a"[..], b"b"] {
            w.create_bucket_if_missing(b).unwrap();
            for i in 0..300u32 {
                let k = format!("key{:05}", i * 3 + round).into_bytes();
                let v = vec![(i + round) as u8; if i % 50 == 0 { 2500 } else { 40 }];
                w.bucket_mut(b).unwrap().put(&k, &v).unwrap();
                model.entry(b.to_vec()).or_default().insert(k, v);
            }
        }
        w.commit().unwrap();
        states.push(model.clone());
    }
    drop(db);
    (s.live_bytes(), states[0].clone(), states[1].clone())
}

/// Read everything; return the model, or the first error.
fn read_all(r: &ReadTxn) -> Result<Model, Error> {
    let mut m = Model::new();
    for name in r.bucket_names()? {
        let b = r.bucket(&name)?;
        let mut bm = BTreeMap::new();
        for e in b.iter() {
            let (k, v) = e?;
            bm.insert(k.to_vec(), v.to_vec());
        }
        // Reverse iteration and point reads must agree (or fail) too.
        for e in b.iter().rev() {
            let (k, v) = e?;
            if bm.get(k).map(Vec::as_slice) != Some(v) {
                panic!("reverse iteration disagrees with forward iteration");
            }
        }
        for (k, v) in bm.iter().step_by(7) {
            assert_eq!(b.get(k)?, Some(v.as_slice()));
        }
        m.insert(name, bm);
    }
    Ok(m)
}

fn open_bytes(b: Vec<u8>) -> Result<Db, Error> {
    Db::open_storage(Arc::new(MemStorage::from_bytes(b)), opts())
}

#[test]
fn not_a_database() {
    let junk = b"this is certainly not a keel database, just some text\n".repeat(100);
    assert!(matches!(open_bytes(junk), Err(Error::NotADatabase)), "junk");
    let path = std::env::temp_dir().join(format!("keel-btree-notdb-{}", std::process::id()));
    std::fs::write(&path, vec![7u8; 10_000]).unwrap();
    let e = Db::open(&path, Options::default()).unwrap_err();
    assert!(matches!(e, Error::NotADatabase), "{e}");
    assert!(e.to_string().contains("not a keel database"));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn truncated_file() {
    let (img, _, _) = sample_db();
    let e = open_bytes(img[..img.len() / 2].to_vec()).unwrap_err();
    assert!(matches!(e, Error::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("truncated"));
    let e = open_bytes(img[..40].to_vec()).unwrap_err();
    assert!(
        matches!(e, Error::Truncated { .. } | Error::NotADatabase),
        "{e}"
    );
}

#[test]
fn both_metas_corrupt() {
    let (mut img, _, _) = sample_db();
    img[50] ^= 0xff; // inside meta 0's checksummed bytes
    img[PS + 50] ^= 0xff; // meta 1
    let e = open_bytes(img).unwrap_err();
    assert!(matches!(e, Error::BothMetasCorrupt { .. }), "{e}");
    assert!(e.to_string().contains("both meta pages are corrupt"));
}

#[test]
fn newest_meta_corrupt_falls_back_to_previous_commit() {
    let (mut img, first, second) = sample_db();
    let db = open_bytes(img.clone()).unwrap();
    let newest = db.begin_read().txid();
    assert_eq!(read_all(&db.begin_read()).unwrap(), second);
    drop(db);
    let slot = (newest % 2) as usize;
    img[slot * PS + 60] ^= 0x01;
    let db = open_bytes(img).unwrap();
    assert_eq!(db.begin_read().txid(), newest - 1);
    assert_eq!(read_all(&db.begin_read()).unwrap(), first);
    db.check().unwrap();
}

#[test]
fn corrupt_page_is_an_error_not_wrong_data() {
    let (img, _, second) = sample_db();
    let pages = img.len() / PS;
    let mut errors = 0;
    for p in 2..pages {
        let mut bad = img.clone();
        bad[p * PS + 40] ^= 0x55;
        // Open reads the freelist run: corrupting it fails the open with a typed error.
        let db = match open_bytes(bad) {
            Ok(db) => db,
            Err(e) => {
                assert!(matches!(e, Error::Corrupt { .. }), "{e}");
                errors += 1;
                continue;
            }
        };
        match read_all(&db.begin_read()) {
            Ok(m) => assert_eq!(m, second, "page {p} corrupted yet different data returned"),
            Err(e) => {
                assert!(matches!(e, Error::Corrupt { .. }), "{e}");
                errors += 1;
                assert!(db.check().is_err(), "check missed corrupt page {p}");
            }
        }
    }
    assert!(errors > 10, "only {errors} corruptions detected");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Random bytes never panic: they are rejected, or (if the soup happens to contain a valid
    /// file) read without panicking.
    #[test]
    fn byte_soup_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..8192)) {
        if let Ok(db) = open_bytes(bytes) {
            let _ = read_all(&db.begin_read());
            let _ = db.check();
        }
    }

    /// Random byte flips in a valid file: an error, or exactly the last (or, if the newest meta
    /// was hit, the previous) committed state. Never anything else, never a panic.
    #[test]
    fn random_flips_never_return_wrong_data(flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6)) {
        let (mut img, first, second) = sample_db();
        let n = img.len();
        for (i, x) in flips {
            img[i.index(n)] ^= x;
        }
        if let Ok(db) = open_bytes(img) {
            let r = db.begin_read();
            if let Ok(m) = read_all(&r) {
                prop_assert!(m == second || m == first, "wrong data returned");
            }
            let _ = db.check();
        }
    }

    /// Garbage that passes the checksum (forged): bounds-checked decoding must still never panic
    /// or read out of bounds.
    #[test]
    fn forged_checksums_never_panic(page in 2usize..40, kind in 2u8..=5, count in 0u32..400, seed in any::<u64>()) {
        let (mut img, _, _) = sample_db();
        let pages = img.len() / PS;
        let p = page % pages.max(3);
        if p < 2 { return Ok(()); }
        let mut x = seed | 1;
        let pg = &mut img[p * PS..(p + 1) * PS];
        for b in pg.iter_mut().skip(32) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            *b = x as u8;
        }
        pg[4] = kind;
        pg[8..12].copy_from_slice(&count.to_le_bytes());
        pg[12..16].copy_from_slice(&0u32.to_le_bytes());
        pg[16..24].copy_from_slice(&(p as u64).to_le_bytes());
        let c = crc32fast::hash(&pg[4..]);
        pg[0..4].copy_from_slice(&c.to_le_bytes());
        if let Ok(db) = open_bytes(img) {
            let _ = read_all(&db.begin_read());
            let _ = db.check();
            // Writes over a forged page must fail cleanly too.
            if let Ok(mut w) = db.begin_write() {
                if let Ok(mut b) = w.bucket_mut(b"a") {
                    let _ = b.put(b"key00001", b"x");
                    let _ = b.delete(b"key00003");
                }
                let _ = w.commit();
            }
        }
    }
}
