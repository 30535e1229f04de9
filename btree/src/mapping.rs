//! Reading pages out of the memory map, soundly.
//!
//! A [`Mapping`] owns one read-only map of the file (an `Arc<dyn PageMap>`) plus a bitset of
//! pages whose checksum was already verified through it. Every read transaction holds an
//! `Arc<Mapping>` for its whole life: when the file grows the database creates a *new* mapping for
//! new transactions, and the old one is unmapped only when the last transaction using it drops its
//! `Arc`. So a slice handed to a reader can never dangle.
//!
//! Why the bytes behind a slice never change while it is borrowed (the other half of soundness):
//! a slice is only created for a page reachable from the snapshot (meta) of the transaction that
//! asks for it. Copy-on-write never writes a page reachable from a committed meta, and a page freed
//! by transaction `t` is reused only when every open reader started at or after `t` (see
//! `freelist.rs`), i.e. when no reader can reach it any more.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{Error, PageId, Result};
use crate::page::{self, Header, Kind, Page, HEADER};
use crate::storage::PageMap;

/// One read-only map of the file, shared by the transactions that started while it was current.
pub(crate) struct Mapping {
    map: Arc<dyn PageMap>,
    page_size: usize,
    /// Bit `i` set: page run starting at `i` passed its checksum through this mapping.
    verified: Box<[AtomicU64]>,
}

impl Mapping {
    pub(crate) fn new(map: Arc<dyn PageMap>, page_size: usize) -> Mapping {
        let pages = map.len() / page_size;
        let words = pages.div_ceil(64);
        Mapping {
            map,
            page_size,
            verified: (0..words).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Number of bytes mapped.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Forget that page `id` was verified (called by the writer before a rewritten page becomes
    /// reachable from a new meta).
    pub(crate) fn unverify(&self, id: PageId) {
        if let Some(w) = self.verified.get((id / 64) as usize) {
            w.fetch_and(!(1u64 << (id % 64)), Ordering::Release);
        }
    }

    fn is_verified(&self, id: PageId) -> bool {
        self.verified
            .get((id / 64) as usize)
            .is_some_and(|w| w.load(Ordering::Acquire) & (1u64 << (id % 64)) != 0)
    }

    fn set_verified(&self, id: PageId) {
        if let Some(w) = self.verified.get((id / 64) as usize) {
            w.fetch_or(1u64 << (id % 64), Ordering::Release);
        }
    }

    /// The bytes `[off, off+len)` of the map, if in range.
    ///
    /// Callers must only ask for pages reachable from the snapshot they read (see module docs).
    fn bytes(&self, off: usize, len: usize) -> Option<&[u8]> {
        let end = off.checked_add(len)?;
        if end > self.map.len() {
            return None;
        }
        // SAFETY: `PageMap` guarantees `as_ptr()..as_ptr()+len()` is mapped and readable for the
        // life of `self.map`, which `self` owns, and we checked `end <= len()`. The returned slice
        // borrows `self`, so it cannot outlive the mapping. The bytes do not change while borrowed
        // because callers only read pages reachable from their own snapshot (module docs); we never
        // create a slice spanning the whole map, only the requested page run.
        Some(unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(off), len) })
    }

    /// Raw bytes of pages `[id, id+n)` without validation (for snapshots of reachable pages).
    pub(crate) fn raw_pages(&self, id: PageId, n: u64) -> Option<&[u8]> {
        let ps = self.page_size;
        self.bytes(
            (id as usize).checked_mul(ps)?,
            (n as usize).checked_mul(ps)?,
        )
    }
}

/// Pages of one snapshot: a mapping plus the snapshot's high-water mark.
#[derive(Clone, Copy)]
pub(crate) struct PageSource<'a> {
    pub(crate) mapping: &'a Mapping,
    pub(crate) page_count: u64,
}

impl<'a> PageSource<'a> {
    pub(crate) fn new(mapping: &'a Mapping, page_count: u64) -> PageSource<'a> {
        PageSource {
            mapping,
            page_count,
        }
    }

    pub(crate) fn page_size(&self) -> usize {
        self.mapping.page_size
    }

    /// Load and validate the run starting at page `id`, expecting `kinds`.
    pub(crate) fn page(&self, id: PageId, kinds: &[Kind]) -> Result<Page<'a>> {
        let ps = self.mapping.page_size;
        if id < 2 || id >= self.page_count {
            return Err(Error::corrupt(
                id,
                format!("page id out of range 2..{}", self.page_count),
            ));
        }
        let first = self
            .mapping
            .bytes(id as usize * ps, ps)
            .ok_or_else(|| Error::corrupt(id, "page lies beyond the end of the mapped file"))?;
        let h = Header::parse(first).ok_or_else(|| Error::corrupt(id, "short header"))?;
        let pages = h.overflow as u64 + 1;
        if id + pages > self.page_count {
            return Err(Error::corrupt(
                id,
                format!("run of {pages} pages exceeds the file"),
            ));
        }
        let data = self
            .mapping
            .bytes(id as usize * ps, pages as usize * ps)
            .ok_or_else(|| Error::corrupt(id, "run lies beyond the end of the mapped file"))?;
        if !self.mapping.is_verified(id) {
            let c = page::checksum(data);
            if c != h.checksum {
                return Err(Error::corrupt(
                    id,
                    format!(
                        "checksum mismatch (stored {:#010x}, computed {c:#010x})",
                        h.checksum
                    ),
                ));
            }
            if h.id != id {
                return Err(Error::corrupt(id, format!("header names page {}", h.id)));
            }
            self.mapping.set_verified(id);
        }
        let kind = Kind::from_u8(h.kind)
            .ok_or_else(|| Error::corrupt(id, format!("unknown page kind {}", h.kind)))?;
        if !kinds.contains(&kind) {
            return Err(Error::corrupt(
                id,
                format!("expected {kinds:?}, found {kind:?}"),
            ));
        }
        let count = h.count as usize;
        if matches!(kind, Kind::Branch | Kind::Leaf)
            && HEADER + count.saturating_mul(page::ELEM) > data.len()
        {
            return Err(Error::corrupt(
                id,
                format!("{count} elements do not fit the page"),
            ));
        }
        Ok(Page {
            id,
            data,
            kind,
            count,
        })
    }
}
