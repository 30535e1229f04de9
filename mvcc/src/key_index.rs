//! The in-memory key index: for every key, the revisions at which it changed, grouped into
//! *generations* (one per life of the key, from creation to delete).
//!
//! This is etcd's `keyIndex`/`treeIndex`. The values live in the backend, keyed by revision; the
//! index only answers "which revision of key K is visible at revision R?", so a read is an index
//! lookup plus one backend get per key. It is rebuilt from the history bucket on open.
//!
//! ```text
//! key "foo": generations [ {created 2, revs [2, 5, 7(tombstone)]}, {created 9, revs [9]} ]
//!   at 4 -> rev 2 (version 1); at 6 -> rev 5 (version 2); at 8 -> deleted; at 9 -> rev 9 (v 1)
//! ```
//! The last generation is the open one; after a delete it is empty until the key is put again.

use crate::revision::Revision;
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

/// One life of a key: from its creation to its delete (tombstone, the last rev) if any.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Generation {
    /// Version of the key at the last revision in `revs` (counting the tombstone).
    version: i64,
    /// Revision that created the key in this generation.
    created: Revision,
    /// Revisions of the changes, ascending; for a closed generation the last is the tombstone.
    revs: Vec<Revision>,
}

/// The revisions of one key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyIndex {
    generations: Vec<Generation>,
}

/// What the index knows about a key at a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Revision of the visible change (its mod revision).
    pub modified: Revision,
    /// Creation revision of the generation.
    pub created: Revision,
    /// Version at that revision.
    pub version: i64,
}

impl KeyIndex {
    /// The change visible at `at` (main revision), or None if the key did not exist then.
    pub fn get(&self, at: i64) -> Option<Found> {
        let last = self.generations.len().checked_sub(1)?;
        for (gi, g) in self.generations.iter().enumerate().rev() {
            let Some(first) = g.revs.first() else {
                continue;
            };
            if gi != last {
                // closed generation: its last rev is the tombstone
                let tomb = g.revs.last().expect("non-empty");
                if tomb.main <= at {
                    return None;
                }
            }
            if first.main <= at {
                let n = g.revs.partition_point(|r| r.main <= at) - 1;
                return Some(Found {
                    modified: g.revs[n],
                    created: g.created,
                    version: g.version - (g.revs.len() - n - 1) as i64,
                });
            }
        }
        None
    }

    /// True if the key is live at the newest revision.
    pub fn is_live(&self) -> bool {
        self.generations.last().is_some_and(|g| !g.revs.is_empty())
    }

    /// Records a put at `rev`. Returns (create revision, version) of the new value.
    pub fn put(&mut self, rev: Revision) -> (i64, i64) {
        if self.generations.is_empty() {
            self.push_generation();
        }
        let g = self.generations.last_mut().expect("non-empty");
        if g.revs.is_empty() {
            g.created = rev;
            g.revs.reserve_exact(1);
        }
        g.revs.push(rev);
        g.version += 1;
        (g.created.main, g.version)
    }

    /// Re-inserts a put found in the backend on open (history may start mid-generation after a
    /// compaction, so the creation revision and version come from the stored value).
    pub fn restore_put(&mut self, rev: Revision, created: i64, version: i64) {
        if self.generations.is_empty() {
            self.push_generation();
        }
        let g = self.generations.last_mut().expect("non-empty");
        if g.revs.is_empty() {
            g.created = Revision::new(created, 0);
            g.revs.reserve_exact(1);
        }
        g.revs.push(rev);
        g.version = version;
    }

    /// Records a delete at `rev`; the caller has checked the key is live.
    pub fn tombstone(&mut self, rev: Revision) {
        let g = self
            .generations
            .last_mut()
            .expect("tombstone on a live key");
        g.revs.push(rev);
        g.version += 1;
        self.push_generation();
    }

    /// Appends an empty generation. Most keys have one generation of a few revisions, so
    /// vectors start at exactly one slot (the default growth would allocate four).
    fn push_generation(&mut self) {
        if self.generations.len() == self.generations.capacity() {
            self.generations.reserve_exact(1);
        }
        self.generations.push(Generation::default());
    }

    /// Compacts at `at`: keeps, per generation still relevant, the newest revision <= `at` and
    /// everything after; drops whole generations that ended (tombstone) at or before `at`.
    /// Adds the kept revisions <= `at` to `keep`. Returns true if the key has nothing left.
    ///
    /// This is etcd's `keyIndex.compact`: a tombstone at or below `at` disappears together with
    /// its generation, so history at `at` and later reads exactly as before.
    pub fn compact(&mut self, at: i64, keep: &mut HashSet<Revision>) -> bool {
        let last = self.generations.len().saturating_sub(1);
        // first generation that is open or whose tombstone is after `at`
        let mut gi = 0;
        while gi < last {
            let tomb = self.generations[gi]
                .revs
                .last()
                .expect("closed generation non-empty");
            if tomb.main > at {
                break;
            }
            gi += 1;
        }
        self.generations.drain(..gi);
        if let Some(g) = self.generations.first_mut() {
            let n = g.revs.partition_point(|r| r.main <= at);
            if n > 0 {
                keep.insert(g.revs[n - 1]);
                g.revs.drain(..n - 1);
            }
        }
        self.generations.iter().all(|g| g.revs.is_empty())
    }

    /// Adds to `keep` the revision a compaction at `at` would keep for this key, without
    /// compacting: the newest revision <= `at` of the first generation that is open or ends
    /// (tombstone) after `at`. This is etcd's `keyIndex.keep`, used by HashKV.
    pub fn keep(&self, at: i64, keep: &mut HashSet<Revision>) {
        let last = self.generations.len().saturating_sub(1);
        let mut gi = 0;
        while gi < last {
            match self.generations[gi].revs.last() {
                Some(tomb) if tomb.main > at => break,
                _ => gi += 1,
            }
        }
        let Some(g) = self.generations.get(gi) else {
            return;
        };
        let n = g.revs.partition_point(|r| r.main <= at);
        // etcd drops the kept revision again if it is the generation's tombstone; with the
        // generation chosen above that cannot happen, but the rule is kept as etcd states it.
        if n > 0 && !(n == g.revs.len() && gi != last) {
            keep.insert(g.revs[n - 1]);
        }
    }

    /// Number of revisions held (for statistics).
    pub fn revision_count(&self) -> usize {
        self.generations.iter().map(|g| g.revs.len()).sum()
    }
}

/// The index of all keys, ordered by key for range reads.
#[derive(Debug, Default)]
pub struct TreeIndex {
    keys: BTreeMap<Vec<u8>, KeyIndex>,
    live: u64,
}

/// Converts etcd's `range_end` convention into a key bound: empty = the key only; `[0]` =
/// unbounded; otherwise exclusive end.
pub fn range_bounds<'a>(key: &'a [u8], range_end: &'a [u8]) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    if range_end.is_empty() {
        (Bound::Included(key), Bound::Included(key))
    } else if range_end == [0] {
        (Bound::Included(key), Bound::Unbounded)
    } else {
        (Bound::Included(key), Bound::Excluded(range_end))
    }
}

/// True if `k` is inside the etcd range `[key, range_end)` (same conventions as above).
pub fn in_range(k: &[u8], key: &[u8], range_end: &[u8]) -> bool {
    if range_end.is_empty() {
        k == key
    } else if range_end == [0] {
        k >= key
    } else {
        k >= key && k < range_end
    }
}

/// True if the range is empty by construction (end not after start).
pub fn is_empty_range(key: &[u8], range_end: &[u8]) -> bool {
    !range_end.is_empty() && range_end != [0] && range_end <= key
}

impl TreeIndex {
    /// An empty index.
    pub fn new() -> TreeIndex {
        TreeIndex::default()
    }

    /// The index entry of a key.
    pub fn key(&self, key: &[u8]) -> Option<&KeyIndex> {
        self.keys.get(key)
    }

    /// The change of `key` visible at `at`.
    pub fn get(&self, key: &[u8], at: i64) -> Option<Found> {
        self.keys.get(key)?.get(at)
    }

    /// Calls `f(key, found)` for each key of the range visible at `at`, in key order, until `f`
    /// returns false.
    pub fn range(
        &self,
        key: &[u8],
        range_end: &[u8],
        at: i64,
        mut f: impl FnMut(&[u8], Found) -> bool,
    ) {
        if is_empty_range(key, range_end) {
            return;
        }
        for (k, ki) in self.keys.range::<[u8], _>(range_bounds(key, range_end)) {
            if let Some(found) = ki.get(at) {
                if !f(k, found) {
                    return;
                }
            }
        }
    }

    /// Records a put; returns (create revision, version).
    pub fn put(&mut self, key: &[u8], rev: Revision) -> (i64, i64) {
        let ki = match self.keys.get_mut(key) {
            Some(ki) => ki,
            None => self.keys.entry(key.to_vec()).or_default(),
        };
        if !ki.is_live() {
            self.live += 1;
        }
        ki.put(rev)
    }

    /// Restores a put on open.
    pub fn restore_put(&mut self, key: &[u8], rev: Revision, created: i64, version: i64) {
        let ki = match self.keys.get_mut(key) {
            Some(ki) => ki,
            None => self.keys.entry(key.to_vec()).or_default(),
        };
        if !ki.is_live() {
            self.live += 1;
        }
        ki.restore_put(rev, created, version);
    }

    /// Records a delete of a live key. Returns false (and does nothing) if it is not live.
    pub fn tombstone(&mut self, key: &[u8], rev: Revision) -> bool {
        match self.keys.get_mut(key) {
            Some(ki) if ki.is_live() => {
                ki.tombstone(rev);
                self.live -= 1;
                true
            }
            _ => false,
        }
    }

    /// Compacts every key at `at`; returns the revisions <= `at` that must be kept.
    pub fn compact(&mut self, at: i64) -> HashSet<Revision> {
        let mut keep = HashSet::new();
        self.keys.retain(|_, ki| !ki.compact(at, &mut keep));
        keep
    }

    /// The revisions a compaction at `at` would keep (etcd's `treeIndex.Keep`), without
    /// compacting. HashKV at `at` hashes, of the revisions <= the compaction point, only these.
    pub fn keep(&self, at: i64) -> HashSet<Revision> {
        let mut keep = HashSet::new();
        for ki in self.keys.values() {
            ki.keep(at, &mut keep);
        }
        keep
    }

    /// Number of keys live at the newest revision.
    pub fn live_keys(&self) -> u64 {
        self.live
    }

    /// Number of revisions held by the index.
    pub fn revision_count(&self) -> u64 {
        self.keys.values().map(|k| k.revision_count() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(m: i64) -> Revision {
        Revision::new(m, 0)
    }

    #[test]
    fn generations_and_versions() {
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        ki.put(r(5));
        ki.tombstone(r(7));
        assert_eq!(ki.put(r(9)), (9, 1));
        assert_eq!(ki.get(1), None);
        assert_eq!(ki.get(4).unwrap().version, 1);
        let f = ki.get(6).unwrap();
        assert_eq!((f.modified, f.created, f.version), (r(5), r(2), 2));
        assert_eq!(ki.get(7), None);
        assert_eq!(ki.get(8), None);
        assert_eq!(ki.get(100).unwrap().created, r(9));
    }

    #[test]
    fn compaction_keeps_reads_at_and_after_the_point() {
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        ki.put(r(5));
        ki.tombstone(r(7));
        ki.put(r(9));
        ki.put(r(11));
        let before: Vec<_> = (6..13).map(|at| ki.get(at)).collect();
        let mut keep = HashSet::new();
        assert!(!ki.compact(6, &mut keep));
        assert_eq!(keep, HashSet::from([r(5)]));
        let after: Vec<_> = (6..13).map(|at| ki.get(at)).collect();
        assert_eq!(before, after);
        // compacting past the tombstone drops the first generation entirely
        let mut keep = HashSet::new();
        ki.compact(10, &mut keep);
        assert_eq!(keep, HashSet::from([r(9)]));
        assert_eq!(ki.get(10).unwrap().version, 1);
        assert_eq!(ki.get(11).unwrap().version, 2);
    }

    #[test]
    fn keep_is_what_compaction_would_keep() {
        // foo: put 2, tombstone 5 (etcd's HashKV example: after `del foo2` the key has no
        // revision to keep at 5 or later, but keeps 3 at 3 and 4).
        let mut ki = KeyIndex::default();
        ki.put(r(3));
        ki.tombstone(r(5));
        let keep_at = |ki: &KeyIndex, at| {
            let mut keep = HashSet::new();
            ki.keep(at, &mut keep);
            keep
        };
        assert!(keep_at(&ki, 2).is_empty());
        assert_eq!(keep_at(&ki, 4), HashSet::from([r(3)]));
        assert!(keep_at(&ki, 5).is_empty());
        ki.put(r(8));
        assert!(keep_at(&ki, 7).is_empty());
        assert_eq!(keep_at(&ki, 9), HashSet::from([r(8)]));
        // and `keep` is exactly the set a compaction at the same point returns
        for at in 0..10 {
            let mut compacted = ki.clone();
            let mut keep = HashSet::new();
            compacted.compact(at, &mut keep);
            assert_eq!(keep_at(&ki, at), keep, "at {at}");
        }
    }

    #[test]
    fn compaction_at_tombstone_removes_key() {
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        ki.tombstone(r(3));
        let mut keep = HashSet::new();
        assert!(ki.compact(3, &mut keep));
        assert!(keep.is_empty());
    }
}
