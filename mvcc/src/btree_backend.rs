//! The production backend: keel-btree, one file, copy-on-write, crash-safe commits.
//!
//! Each store bucket is a btree bucket of the same name. A read view is a btree read
//! transaction (a snapshot of the last commit); a commit is one btree write transaction.

use crate::backend::{Backend, BackendRead, Bucket, WriteBatch, WriteOp};
use crate::error::Error;
use keel_btree::{Db, Options, ReadTxn};
use std::ops::Bound;
use std::path::Path;

pub(crate) fn storage_err(e: keel_btree::Error) -> Error {
    use keel_btree::Error as B;
    match e {
        B::NotADatabase
        | B::UnsupportedVersion(_)
        | B::Truncated { .. }
        | B::BothMetasCorrupt { .. }
        | B::Corrupt { .. }
        | B::CheckFailed(_) => Error::Corrupt(e.to_string()),
        other => Error::Storage(other.to_string()),
    }
}

/// A store backend on a keel-btree database file.
pub struct BtreeBackend {
    db: Db,
}

impl std::fmt::Debug for BtreeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BtreeBackend").finish()
    }
}

impl BtreeBackend {
    /// Opens (or creates) the database file at `path` and makes sure the buckets exist.
    pub fn open(path: &Path) -> Result<BtreeBackend, Error> {
        BtreeBackend::open_with(path, Options::default())
    }

    /// Opens with explicit btree options (e.g. `commit_mode: CommitMode::OneFsync`, one
    /// fdatasync per commit instead of two). Use with [`crate::Store::open`].
    pub fn open_with(path: &Path, options: Options) -> Result<BtreeBackend, Error> {
        let db = Db::open(path, options).map_err(storage_err)?;
        BtreeBackend::from_db(db)
    }

    /// Wraps an open database (e.g. an in-memory one for tests).
    pub fn from_db(db: Db) -> Result<BtreeBackend, Error> {
        let mut tx = db.begin_write().map_err(storage_err)?;
        for b in Bucket::ALL {
            tx.create_bucket_if_missing(b.name()).map_err(storage_err)?;
        }
        tx.commit().map_err(storage_err)?;
        Ok(BtreeBackend { db })
    }

    /// The underlying database (for snapshots, defragmentation and integrity checks).
    pub fn db(&self) -> &Db {
        &self.db
    }
}

struct BtreeRead {
    tx: ReadTxn,
}

impl BackendRead for BtreeRead {
    fn get(&self, bucket: Bucket, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let b = self.tx.bucket(bucket.name()).map_err(storage_err)?;
        Ok(b.get(key).map_err(storage_err)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        bucket: Bucket,
        start: &[u8],
        end: Option<&[u8]>,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Error> {
        if end.is_some_and(|e| e <= start) {
            return Ok(());
        }
        let b = self.tx.bucket(bucket.name()).map_err(storage_err)?;
        let upper = match end {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        for item in b.range(Bound::Included(start), upper) {
            let (k, v) = item.map_err(storage_err)?;
            if !f(k, v) {
                break;
            }
        }
        Ok(())
    }
}

impl Backend for BtreeBackend {
    fn read(&self) -> Result<Box<dyn BackendRead + '_>, Error> {
        Ok(Box::new(BtreeRead {
            tx: self.db.begin_read(),
        }))
    }

    fn commit(&self, batch: &WriteBatch) -> Result<(), Error> {
        let mut tx = self.db.begin_write().map_err(storage_err)?;
        // One bucket handle per bucket; ops keep their order within a bucket (a put then a
        // delete of the same key in one batch must end deleted).
        for bucket in Bucket::ALL {
            let mut bm = tx.bucket_mut(bucket.name()).map_err(storage_err)?;
            for op in batch.iter() {
                match op {
                    WriteOp::Put(b, k, v) if b == bucket => bm.put(k, v).map_err(storage_err)?,
                    WriteOp::Delete(b, k) if b == bucket => {
                        bm.delete(k).map_err(storage_err)?;
                    }
                    _ => {}
                }
            }
        }
        tx.commit().map_err(storage_err)
    }

    fn size(&self) -> (u64, u64) {
        let s = self.db.stats();
        (s.file_size, s.size_in_use)
    }

    fn snapshot_to(&self, w: &mut dyn std::io::Write) -> Result<u64, Error> {
        self.db.snapshot_to(w).map_err(storage_err)
    }

    fn defragment(&self) -> Result<(), Error> {
        self.db.defragment().map_err(storage_err)
    }
}

/// Installs a snapshot stream (written by [`Backend::snapshot_to`] of a btree backend) as the
/// database file at `path`, verifying it, and returns the backend on it.
pub fn restore(r: &mut dyn std::io::Read, path: &Path) -> Result<BtreeBackend, Error> {
    let db = Db::restore(r, path, Options::default()).map_err(storage_err)?;
    BtreeBackend::from_db(db)
}
