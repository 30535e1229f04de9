#![allow(dead_code)]
pub mod model;

use keel_mvcc::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "keel-mvcc-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn db(&self) -> PathBuf {
        self.0.join("db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens (or reopens) the store persisted in `dir`.
pub fn open(dir: &TempDir) -> Store {
    Store::open_path(dir.db(), StoreConfig::default()).expect("open store")
}

pub fn put(key: &str, value: &str) -> Request {
    Request::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    })
}

pub fn get(key: &str) -> RangeRequest {
    RangeRequest {
        key: key.into(),
        ..Default::default()
    }
}

pub fn prefix(key: &str) -> RangeRequest {
    let mut end = key.as_bytes().to_vec();
    *end.last_mut().unwrap() += 1;
    RangeRequest {
        key: key.into(),
        range_end: end,
        ..Default::default()
    }
}

/// Applies requests one per entry, starting at raft index `*idx + 1`.
pub fn apply_all(store: &Store, idx: &mut u64, reqs: Vec<Request>) -> Vec<Result<Response, Error>> {
    let entries: Vec<(u64, Request)> = reqs
        .into_iter()
        .map(|r| {
            *idx += 1;
            (*idx, r)
        })
        .collect();
    store.apply_batch(&entries)
}
