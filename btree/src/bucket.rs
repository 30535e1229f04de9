//! Buckets: named, independent ordered keyspaces inside one database.
//!
//! A [`Bucket`] is a read view (from a [`crate::ReadTxn`], or from a [`crate::WriteTxn`] where it
//! includes the transaction's own uncommitted changes). A [`BucketMut`] adds `put` and `delete`.
//! Keys compare as byte strings (lexicographically, shorter prefix first).

use std::ops::Bound;

use crate::cursor::{Cursor, Range};
use crate::error::{Error, PageId, Result};
use crate::mapping::PageSource;
use crate::node::{self, RootRef};
use crate::tree::{self, Ctx, Tree};
use crate::{MAX_KEY_LEN, MAX_VALUE_LEN};

/// Read access to one bucket; cheap to copy. Returned slices live as long as the transaction
/// borrow and point straight into the memory map for committed data (zero-copy).
#[derive(Clone, Copy)]
pub struct Bucket<'a> {
    pub(crate) src: PageSource<'a>,
    pub(crate) root: RootRef<'a>,
    pub(crate) count: u64,
}

impl<'a> Bucket<'a> {
    /// The value stored under `key`, if any.
    pub fn get(&self, key: &[u8]) -> Result<Option<&'a [u8]>> {
        node::get(self.root, &self.src, key)
    }

    /// Number of keys in the bucket (kept in the catalog, O(1)).
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True if the bucket holds no keys.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// A cursor, not yet positioned: call `first`, `last`, `seek` or `seek_for_prev`.
    pub fn cursor(&self) -> Cursor<'a> {
        Cursor::new(self.src, self.root)
    }

    /// Entries with `start <= key <= end` per the bounds, in key order; use `.rev()` (or
    /// `next_back`) for descending order.
    pub fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Range<'a> {
        Range::new(self.src, self.root, start, end)
    }

    /// All entries in key order.
    pub fn iter(&self) -> Range<'a> {
        self.range(Bound::Unbounded, Bound::Unbounded)
    }

    /// All entries whose key starts with `prefix`.
    pub fn prefix(&self, prefix: &[u8]) -> Range<'a> {
        match prefix_end(prefix) {
            Some(end) => Range::new(
                self.src,
                self.root,
                Bound::Included(prefix),
                Bound::Excluded(&end),
            ),
            None => Range::new(
                self.src,
                self.root,
                Bound::Included(prefix),
                Bound::Unbounded,
            ),
        }
    }
}

/// The smallest key greater than every key starting with `prefix` (None: no such key).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Read and write access to one bucket of a [`crate::WriteTxn`].
pub struct BucketMut<'a> {
    pub(crate) tree: &'a mut Tree,
    pub(crate) src: PageSource<'a>,
    pub(crate) freed: &'a mut Vec<(PageId, u64)>,
}

impl<'a> BucketMut<'a> {
    /// A read view including this transaction's changes so far.
    pub fn as_bucket(&self) -> Bucket<'_> {
        Bucket {
            src: self.src,
            root: RootRef::of_child(self.tree.root.as_ref()),
            count: self.tree.count,
        }
    }

    /// The value stored under `key`, if any.
    pub fn get(&self, key: &[u8]) -> Result<Option<&[u8]>> {
        self.as_bucket().get(key)
    }

    /// Number of keys in the bucket.
    pub fn len(&self) -> u64 {
        self.tree.count
    }

    /// True if the bucket holds no keys.
    pub fn is_empty(&self) -> bool {
        self.tree.count == 0
    }

    /// A cursor over the bucket including this transaction's changes.
    pub fn cursor(&self) -> Cursor<'_> {
        self.as_bucket().cursor()
    }

    /// A bounded range including this transaction's changes (see [`Bucket::range`]).
    pub fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Range<'_> {
        self.as_bucket().range(start, end)
    }

    /// Insert `key` with `value`, replacing any previous value.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if key.len() > MAX_KEY_LEN {
            return Err(Error::KeyTooLarge {
                len: key.len(),
                max: MAX_KEY_LEN,
            });
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        let mut ctx = Ctx {
            src: self.src,
            freed: self.freed,
        };
        tree::put(self.tree, key, value.to_vec(), &mut ctx)?;
        Ok(())
    }

    /// Remove `key`. Returns true if it was present.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool> {
        if self.get(key)?.is_none() {
            return Ok(false);
        }
        let mut ctx = Ctx {
            src: self.src,
            freed: self.freed,
        };
        tree::delete(self.tree, key, &mut ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_cases() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}
