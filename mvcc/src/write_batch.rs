//! [`WriteBatch`]: the puts and deletes of one backend commit, in order, with every key and
//! value in **one** byte buffer.
//!
//! The store applies thousands of puts between two backend commits (one every 100 ms or
//! 10,000 entries, like etcd's backend). Keeping each op's key and encoded record in heap
//! blocks of their own costs two allocations per put on the apply thread, and as many frees on
//! the thread that commits, which defeats the allocator's per-thread caches. A `WriteBatch`
//! appends the bytes to one growing buffer and keeps, per op, only where they are; a cleared
//! batch keeps its capacity, so the store reuses two of them (the one filling up and the one
//! being committed) and a put allocates nothing here once they have grown.
//!
//! The backend reads the ops as borrowed [`WriteOp`]s and copies the bytes into its pages.

use crate::backend::Bucket;
use std::ops::Range;

/// One change of a [`WriteBatch`], borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp<'a> {
    /// Insert or overwrite `key` with `value`.
    Put(Bucket, &'a [u8], &'a [u8]),
    /// Remove `key` (no-op if absent).
    Delete(Bucket, &'a [u8]),
}

/// Where one op's bytes are in the batch's buffer: the key is `start..key_end`, the value
/// (empty for a delete) `key_end..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpSpan {
    bucket: Bucket,
    delete: bool,
    start: usize,
    key_end: usize,
    end: usize,
}

/// Ordered puts and deletes for one atomic backend commit (see the module doc).
///
/// Ops keep their order: a put then a delete of the same key leaves it deleted.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    bytes: Vec<u8>,
    ops: Vec<OpSpan>,
}

impl WriteBatch {
    /// An empty batch (allocates nothing until the first op).
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Appends a put of `key` = `value`.
    pub fn put(&mut self, bucket: Bucket, key: &[u8], value: &[u8]) {
        self.put_with(bucket, key, value.len(), |out| out.extend_from_slice(value));
    }

    /// Appends a put of `key` whose value `write_value` appends to the buffer it is given
    /// (`value_len` is a capacity hint): encoders write straight into the batch instead of
    /// into a vector of their own. Returns where the value is, for [`WriteBatch::bytes`].
    pub fn put_with(
        &mut self,
        bucket: Bucket,
        key: &[u8],
        value_len: usize,
        write_value: impl FnOnce(&mut Vec<u8>),
    ) -> Range<usize> {
        self.bytes.reserve(key.len() + value_len);
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        let key_end = self.bytes.len();
        write_value(&mut self.bytes);
        let end = self.bytes.len();
        self.ops.push(OpSpan {
            bucket,
            delete: false,
            start,
            key_end,
            end,
        });
        key_end..end
    }

    /// Appends a delete of `key`.
    pub fn delete(&mut self, bucket: Bucket, key: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        let end = self.bytes.len();
        self.ops.push(OpSpan {
            bucket,
            delete: true,
            start,
            key_end: end,
            end,
        });
    }

    /// Number of ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True if there is no op.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The `i`-th op (None past the end).
    pub fn get(&self, i: usize) -> Option<WriteOp<'_>> {
        self.ops.get(i).map(|s| self.op(s))
    }

    /// The ops in order.
    pub fn iter(&self) -> impl Iterator<Item = WriteOp<'_>> + '_ {
        self.ops.iter().map(|s| self.op(s))
    }

    /// Bytes of the buffer, e.g. a value at the range [`WriteBatch::put_with`] returned.
    /// Panics if the range is outside the buffer (a range from this batch never is, until
    /// [`WriteBatch::clear`]).
    pub fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.bytes[range]
    }

    /// Bytes of keys and values held.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Bytes the buffer can hold before it must grow.
    pub fn byte_capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Ops the batch can hold before its op list must grow.
    pub fn op_capacity(&self) -> usize {
        self.ops.capacity()
    }

    /// Removes every op, keeping the allocated capacity for reuse.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ops.clear();
    }

    fn op(&self, s: &OpSpan) -> WriteOp<'_> {
        let key = &self.bytes[s.start..s.key_end];
        if s.delete {
            WriteOp::Delete(s.bucket, key)
        } else {
            WriteOp::Put(s.bucket, key, &self.bytes[s.key_end..s.end])
        }
    }
}

impl<'a> Extend<WriteOp<'a>> for WriteBatch {
    fn extend<I: IntoIterator<Item = WriteOp<'a>>>(&mut self, ops: I) {
        for op in ops {
            match op {
                WriteOp::Put(b, k, v) => self.put(b, k, v),
                WriteOp::Delete(b, k) => self.delete(b, k),
            }
        }
    }
}

impl<'a> FromIterator<WriteOp<'a>> for WriteBatch {
    fn from_iter<I: IntoIterator<Item = WriteOp<'a>>>(ops: I) -> WriteBatch {
        let mut batch = WriteBatch::new();
        batch.extend(ops);
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bucket(i: u8) -> Bucket {
        Bucket::ALL[i as usize % Bucket::ALL.len()]
    }

    proptest! {
        /// Whatever is appended reads back in order, byte for byte, and a cleared batch that
        /// is filled again reads back the new ops only.
        #[test]
        fn ops_read_back_in_order(
            rounds in proptest::collection::vec(
                proptest::collection::vec(
                    (any::<bool>(), any::<u8>(),
                     proptest::collection::vec(any::<u8>(), 0..20),
                     proptest::collection::vec(any::<u8>(), 0..40)),
                    0..20),
                1..3),
        ) {
            let mut batch = WriteBatch::new();
            for ops in rounds {
                batch.clear();
                prop_assert!(batch.is_empty());
                let mut ranges = Vec::new();
                for (delete, b, k, v) in &ops {
                    if *delete {
                        batch.delete(bucket(*b), k);
                        ranges.push(None);
                    } else {
                        ranges.push(Some(batch.put_with(bucket(*b), k, 0, |out| out.extend_from_slice(v))));
                    }
                }
                prop_assert_eq!(batch.len(), ops.len());
                let got: Vec<WriteOp<'_>> = batch.iter().collect();
                for (i, (delete, b, k, v)) in ops.iter().enumerate() {
                    let want = if *delete {
                        WriteOp::Delete(bucket(*b), k)
                    } else {
                        WriteOp::Put(bucket(*b), k, v)
                    };
                    prop_assert_eq!(got[i], want);
                    prop_assert_eq!(batch.get(i), Some(want));
                    if let Some(r) = &ranges[i] {
                        prop_assert_eq!(batch.bytes(r.clone()), v.as_slice());
                    }
                }
                prop_assert_eq!(batch.get(ops.len()), None);
                // the copy built from the borrowed ops is the same batch
                let copy: WriteBatch = batch.iter().collect();
                prop_assert!(copy.iter().eq(batch.iter()));
            }
        }
    }

    #[test]
    fn clear_keeps_capacity() {
        let mut batch = WriteBatch::new();
        for i in 0..100u32 {
            batch.put(Bucket::Key, &i.to_be_bytes(), &[7; 300]);
        }
        let (bytes, ops) = (batch.byte_capacity(), batch.op_capacity());
        assert!(bytes >= 100 * 304 && ops >= 100);
        batch.clear();
        assert_eq!((batch.len(), batch.byte_len()), (0, 0));
        assert_eq!((batch.byte_capacity(), batch.op_capacity()), (bytes, ops));
        batch.put(Bucket::Meta, b"k", b"v");
        assert_eq!(batch.get(0), Some(WriteOp::Put(Bucket::Meta, b"k", b"v")));
    }
}
