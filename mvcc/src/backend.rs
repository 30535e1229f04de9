//! The storage the store persists into, behind a small trait.
//!
//! The production backend is keel-btree ([`crate::btree_backend`]). [`MemBackend`] keeps the
//! same buckets in ordered maps; it is used by unit tests that do not care about durability,
//! and as a reference when checking the btree backend.
//!
//! The store needs little from its backend: point gets, ordered scans, and an atomic, durable
//! commit of a batch of puts and deletes across buckets.

use crate::error::Error;
use parking_lot::RwLock;
use std::collections::BTreeMap;

/// The buckets (named trees) the store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bucket {
    /// History: revision key -> encoded key-value.
    Key,
    /// Meta: consistent index, compaction point, current revision.
    Meta,
    /// Leases: lease ID -> TTL record.
    Lease,
}

impl Bucket {
    /// All buckets.
    pub const ALL: [Bucket; 3] = [Bucket::Key, Bucket::Meta, Bucket::Lease];

    /// The bucket's name in the backend.
    pub fn name(self) -> &'static [u8] {
        match self {
            Bucket::Key => b"key",
            Bucket::Meta => b"meta",
            Bucket::Lease => b"lease",
        }
    }
}

pub use crate::write_batch::{WriteBatch, WriteOp};

/// A consistent read view of the backend.
pub trait BackendRead {
    /// The value of `key` in `bucket`.
    fn get(&self, bucket: Bucket, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;
    /// Visits entries with `start <= key < end` (`end` None = to the last key) in key order,
    /// until `f` returns false.
    fn scan(
        &self,
        bucket: Bucket,
        start: &[u8],
        end: Option<&[u8]>,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Error>;
}

/// A storage engine for the store.
pub trait Backend: Send + Sync {
    /// A read view of the last committed state.
    fn read(&self) -> Result<Box<dyn BackendRead + '_>, Error>;
    /// Applies the batch's ops, in order, atomically and durably.
    fn commit(&self, batch: &WriteBatch) -> Result<(), Error>;
    /// (file size, bytes in use).
    fn size(&self) -> (u64, u64);
    /// Streams a consistent copy of the committed state (a Raft snapshot of the state
    /// machine); returns the bytes written.
    fn snapshot_to(&self, w: &mut dyn std::io::Write) -> Result<u64, Error>;
    /// Rewrites the storage compactly (etcd's defragment).
    fn defragment(&self) -> Result<(), Error>;
}

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;

/// An in-memory backend (no durability beyond the value's lifetime; cloning a handle shares it).
#[derive(Debug, Default, Clone)]
pub struct MemBackend {
    trees: std::sync::Arc<RwLock<BTreeMap<Bucket, Tree>>>,
}

impl MemBackend {
    /// An empty backend.
    pub fn new() -> MemBackend {
        MemBackend::default()
    }
}

struct MemRead<'a> {
    trees: parking_lot::RwLockReadGuard<'a, BTreeMap<Bucket, Tree>>,
}

impl BackendRead for MemRead<'_> {
    fn get(&self, bucket: Bucket, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.trees.get(&bucket).and_then(|t| t.get(key).cloned()))
    }

    fn scan(
        &self,
        bucket: Bucket,
        start: &[u8],
        end: Option<&[u8]>,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Error> {
        use std::ops::Bound;
        let Some(tree) = self.trees.get(&bucket) else {
            return Ok(());
        };
        let upper = match end {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        if end.is_some_and(|e| e <= start) {
            return Ok(());
        }
        for (k, v) in tree.range::<[u8], _>((Bound::Included(start), upper)) {
            if !f(k, v) {
                break;
            }
        }
        Ok(())
    }
}

impl Backend for MemBackend {
    fn read(&self) -> Result<Box<dyn BackendRead + '_>, Error> {
        Ok(Box::new(MemRead {
            trees: self.trees.read(),
        }))
    }

    fn commit(&self, batch: &WriteBatch) -> Result<(), Error> {
        let mut trees = self.trees.write();
        for op in batch.iter() {
            match op {
                WriteOp::Put(b, k, v) => {
                    trees.entry(b).or_default().insert(k.to_vec(), v.to_vec());
                }
                WriteOp::Delete(b, k) => {
                    if let Some(t) = trees.get_mut(&b) {
                        t.remove(k);
                    }
                }
            }
        }
        Ok(())
    }

    fn size(&self) -> (u64, u64) {
        let trees = self.trees.read();
        let used: usize = trees
            .values()
            .flat_map(|t| t.iter())
            .map(|(k, v)| k.len() + v.len())
            .sum();
        (used as u64, used as u64)
    }

    /// Writes every bucket as `bucket u8 | u32 key len | key | u32 value len | value` records.
    fn snapshot_to(&self, w: &mut dyn std::io::Write) -> Result<u64, Error> {
        let trees = self.trees.read();
        let mut n = 0u64;
        for (b, t) in trees.iter() {
            for (k, v) in t {
                let mut rec = vec![*b as u8];
                rec.extend_from_slice(&(k.len() as u32).to_be_bytes());
                rec.extend_from_slice(k);
                rec.extend_from_slice(&(v.len() as u32).to_be_bytes());
                rec.extend_from_slice(v);
                w.write_all(&rec)
                    .map_err(|e| Error::Storage(e.to_string()))?;
                n += rec.len() as u64;
            }
        }
        Ok(n)
    }

    fn defragment(&self) -> Result<(), Error> {
        Ok(())
    }
}
