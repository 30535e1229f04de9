//! A static interval index for range watchers: "which ranges contain this key?".
//!
//! Ranges are kept in a map and, when the set changed, rebuilt lazily into an array sorted by
//! start with a max-end augmentation over an implicit balanced binary tree (the middle element
//! of each subarray is the subtree root). A stabbing query visits only subtrees whose max end
//! lies after the key and whose starts can be <= the key: O(log n + k) for k hits. Rebuilding
//! costs O(n log n) once per change burst, not per event.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::Hash;

/// The exclusive end of a range; `Unbounded` is after every key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Exclusive end key.
    Key(Vec<u8>),
    /// No end (etcd's `range_end = "\0"`).
    Unbounded,
}

impl End {
    fn after(&self, key: &[u8]) -> bool {
        match self {
            End::Key(e) => e.as_slice() > key,
            End::Unbounded => true,
        }
    }
}

impl PartialOrd for End {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for End {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (End::Unbounded, End::Unbounded) => Ordering::Equal,
            (End::Unbounded, _) => Ordering::Greater,
            (_, End::Unbounded) => Ordering::Less,
            (End::Key(a), End::Key(b)) => a.cmp(b),
        }
    }
}

/// Ranges `[start, end)` tagged with an ID.
#[derive(Debug)]
pub struct IntervalIndex<T: Copy + Eq + Hash> {
    ranges: HashMap<T, (Vec<u8>, End)>,
    sorted: Vec<(Vec<u8>, End, T)>,
    max_end: Vec<usize>,
    dirty: bool,
}

impl<T: Copy + Eq + Hash> Default for IntervalIndex<T> {
    fn default() -> Self {
        IntervalIndex {
            ranges: HashMap::new(),
            sorted: Vec::new(),
            max_end: Vec::new(),
            dirty: false,
        }
    }
}

impl<T: Copy + Eq + Hash> IntervalIndex<T> {
    /// Adds (or replaces) the range of `id`.
    pub fn insert(&mut self, id: T, start: Vec<u8>, end: End) {
        self.ranges.insert(id, (start, end));
        self.dirty = true;
    }

    /// Removes the range of `id`.
    pub fn remove(&mut self, id: &T) {
        if self.ranges.remove(id).is_some() {
            self.dirty = true;
        }
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// True if there are no ranges.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    fn rebuild(&mut self) {
        self.sorted = self
            .ranges
            .iter()
            .map(|(id, (s, e))| (s.clone(), e.clone(), *id))
            .collect();
        self.sorted.sort_by(|a, b| a.0.cmp(&b.0));
        self.max_end = vec![0; self.sorted.len()];
        Self::build(&self.sorted, &mut self.max_end, 0, self.sorted.len());
        self.dirty = false;
    }

    /// Fills `max_end[mid]` with the index of the largest end in `[lo, hi)`; returns it.
    fn build(
        sorted: &[(Vec<u8>, End, T)],
        max_end: &mut [usize],
        lo: usize,
        hi: usize,
    ) -> Option<usize> {
        if lo >= hi {
            return None;
        }
        let mid = lo + (hi - lo) / 2;
        let mut best = mid;
        for child in [
            Self::build(sorted, max_end, lo, mid),
            Self::build(sorted, max_end, mid + 1, hi),
        ]
        .into_iter()
        .flatten()
        {
            if sorted[child].1 > sorted[best].1 {
                best = child;
            }
        }
        max_end[mid] = best;
        Some(best)
    }

    /// Calls `f(id)` for every range containing `key`.
    pub fn stab(&mut self, key: &[u8], mut f: impl FnMut(T)) {
        if self.dirty {
            self.rebuild();
        }
        self.stab_in(key, 0, self.sorted.len(), &mut f);
    }

    fn stab_in(&self, key: &[u8], lo: usize, hi: usize, f: &mut impl FnMut(T)) {
        if lo >= hi {
            return;
        }
        let mid = lo + (hi - lo) / 2;
        if !self.sorted[self.max_end[mid]].1.after(key) {
            return; // nothing in this subtree ends after the key
        }
        self.stab_in(key, lo, mid, f);
        let (start, end, id) = &self.sorted[mid];
        if start.as_slice() <= key {
            if end.after(key) {
                f(*id);
            }
            self.stab_in(key, mid + 1, hi, f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn stab_matches_linear_scan(
            ranges in proptest::collection::vec((0u8..20, 0u8..22), 0..40),
            probes in proptest::collection::vec(0u8..21, 1..10),
            removals in proptest::collection::vec(0usize..40, 0..10),
        ) {
            let mut idx = IntervalIndex::default();
            let mut model = HashMap::new();
            for (i, (s, e)) in ranges.iter().enumerate() {
                let end = if *e >= 21 { End::Unbounded } else { End::Key(vec![*e]) };
                idx.insert(i, vec![*s], end.clone());
                model.insert(i, (vec![*s], end));
            }
            for r in removals {
                idx.remove(&r);
                model.remove(&r);
            }
            for p in probes {
                let mut got = Vec::new();
                idx.stab(&[p], |id| got.push(id));
                got.sort();
                let mut want: Vec<usize> = model.iter()
                    .filter(|(_, (s, e))| s.as_slice() <= [p].as_slice() && e.after(&[p]))
                    .map(|(id, _)| *id).collect();
                want.sort();
                prop_assert_eq!(got, want);
            }
        }
    }
}
