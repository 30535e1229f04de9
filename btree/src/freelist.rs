//! Free pages, and when a freed page may be reused.
//!
//! A page becomes garbage when a write transaction replaces it (copy-on-write) or deletes it. It
//! cannot be reused at once: readers that started before that commit still walk the old tree. So
//! pages freed by transaction `t` go to `pending[t]`; they move to `free` only when every open
//! reader's snapshot is at least `t` (such a reader's tree no longer contains them). This is
//! bbolt's scheme (`freelist.pending` / `release`).
//!
//! The freelist stored in the file (one run of pages named by the meta) lists `free` and
//! `pending` together: after a restart there are no readers, so all of it is free.

use std::collections::BTreeMap;

use crate::error::PageId;

/// Free and pending pages, as extents `(first page, number of pages)`.
#[derive(Debug, Clone, Default)]
pub(crate) struct FreeList {
    /// Reusable now: start -> length, non-overlapping, adjacent extents merged.
    free: BTreeMap<PageId, u64>,
    /// Freed by transaction `txid`, reusable once no reader older than `txid` is open.
    pending: BTreeMap<u64, Vec<(PageId, u64)>>,
}

impl FreeList {
    /// A freelist where all `extents` are free (as loaded at open).
    pub(crate) fn from_extents(extents: &[(PageId, u64)]) -> FreeList {
        let mut f = FreeList::default();
        for &(s, n) in extents {
            f.insert_free(s, n);
        }
        f
    }

    /// Add `n` pages starting at `start` to `free`, merging with neighbours.
    pub(crate) fn insert_free(&mut self, start: PageId, n: u64) {
        if n == 0 {
            return;
        }
        let (mut s, mut len) = (start, n);
        if let Some((&ps, &pl)) = self.free.range(..start).next_back() {
            if ps + pl == start {
                self.free.remove(&ps);
                s = ps;
                len += pl;
            }
        }
        if let Some(&nl) = self.free.get(&(start + n)) {
            self.free.remove(&(start + n));
            len += nl;
        }
        self.free.insert(s, len);
    }

    /// Record pages freed by transaction `txid`.
    pub(crate) fn add_pending(&mut self, txid: u64, pages: Vec<(PageId, u64)>) {
        if !pages.is_empty() {
            self.pending.entry(txid).or_default().extend(pages);
        }
    }

    /// Move to `free` every pending list whose transaction is `<= oldest_reader` (all of them when
    /// no reader is open).
    pub(crate) fn release(&mut self, oldest_reader: Option<u64>) {
        let keep = match oldest_reader {
            None => BTreeMap::new(),
            Some(r) => self.pending.split_off(&(r + 1)),
        };
        let ready = std::mem::replace(&mut self.pending, keep);
        for (_, pages) in ready {
            for (s, n) in pages {
                self.insert_free(s, n);
            }
        }
    }

    /// Take `n` contiguous free pages (first fit, lowest address).
    pub(crate) fn alloc(&mut self, n: u64) -> Option<PageId> {
        let (&s, &len) = self.free.iter().find(|(_, &len)| len >= n)?;
        self.free.remove(&s);
        if len > n {
            self.free.insert(s + n, len - n);
        }
        Some(s)
    }

    /// Number of pages in `free`.
    pub(crate) fn free_pages(&self) -> u64 {
        self.free.values().sum()
    }

    /// Number of pages in `pending`.
    pub(crate) fn pending_pages(&self) -> u64 {
        self.pending.values().flatten().map(|e| e.1).sum()
    }

    /// `free`, `pending` and `extra` as sorted, merged extents (what goes to disk).
    pub(crate) fn all_extents(&self, extra: &[(PageId, u64)]) -> Vec<(PageId, u64)> {
        let mut v: Vec<(PageId, u64)> = self.free.iter().map(|(&s, &n)| (s, n)).collect();
        v.extend(self.pending.values().flatten().copied());
        v.extend(extra.iter().copied());
        v.sort_unstable();
        let mut out: Vec<(PageId, u64)> = Vec::with_capacity(v.len());
        for (s, n) in v {
            if n == 0 {
                continue;
            }
            if let Some(last) = out.last_mut() {
                if last.0 + last.1 == s {
                    last.1 += n;
                    continue;
                }
            }
            out.push((s, n));
        }
        out
    }
}

/// Hands out pages for one commit: from the freelist first, else from the end of the file.
/// Remembers what it took so a failed commit can give it back.
pub(crate) struct Allocator<'a> {
    pub(crate) freelist: &'a mut FreeList,
    pub(crate) page_count: u64,
    taken: Vec<(PageId, u64)>,
}

impl<'a> Allocator<'a> {
    pub(crate) fn new(freelist: &'a mut FreeList, page_count: u64) -> Allocator<'a> {
        Allocator {
            freelist,
            page_count,
            taken: Vec::new(),
        }
    }

    /// `n` contiguous pages.
    pub(crate) fn alloc(&mut self, n: u64) -> PageId {
        if let Some(p) = self.freelist.alloc(n) {
            self.taken.push((p, n));
            return p;
        }
        let p = self.page_count;
        self.page_count += n;
        p
    }

    /// Return every page taken from the freelist (the commit failed before its meta was written).
    pub(crate) fn undo(self) {
        for (s, n) in self.taken {
            self.freelist.insert_free(s, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_allocates_first_fit() {
        let mut f = FreeList::from_extents(&[(10, 2), (12, 3), (20, 1)]);
        assert_eq!(f.all_extents(&[]), vec![(10, 5), (20, 1)]);
        assert_eq!(f.alloc(2), Some(10));
        assert_eq!(f.all_extents(&[]), vec![(12, 3), (20, 1)]);
        assert_eq!(f.alloc(4), None);
        f.insert_free(15, 5);
        assert_eq!(f.all_extents(&[]), vec![(12, 9)]);
    }

    #[test]
    fn pending_waits_for_readers() {
        let mut f = FreeList::default();
        f.add_pending(5, vec![(100, 1)]);
        f.add_pending(7, vec![(200, 1)]);
        f.release(Some(4));
        assert_eq!(f.free_pages(), 0);
        f.release(Some(5));
        assert_eq!(f.free_pages(), 1);
        assert_eq!(f.pending_pages(), 1);
        f.release(None);
        assert_eq!(f.free_pages(), 2);
        assert_eq!(
            f.all_extents(&[(300, 2)]),
            vec![(100, 1), (200, 1), (300, 2)]
        );
    }
}
