//! On-disk page layout: encoding and bounds-checked decoding.
//!
//! Every page (or run of contiguous pages) starts with the same 32-byte header:
//!
//! ```text
//! offset size field
//!      0    4 checksum   CRC-32 of bytes 4..end of the run (meta: 4..HEADER+META_LEN)
//!      4    1 kind       1 meta, 2 branch, 3 leaf, 4 overflow, 5 freelist, 6 commit record
//!      5    3 reserved   zero
//!      8    4 count      branch/leaf: number of elements; overflow: value length;
//!                        freelist: number of extents; commit record: number of runs
//!     12    4 overflow   number of pages in the run after the first one
//!     16    8 id         the page's own number (catches misdirected writes)
//!     24    8 txid       the transaction that wrote the page
//! ```
//!
//! Branch and leaf pages continue with an array of 16-byte elements, sorted by key, followed by
//! the key and value bytes they point to:
//!
//! ```text
//! leaf element:   key_off u32 | key_len u32 | val_len u32 | flags u32
//!                 (flags bit 0: the value lives in an overflow run whose first page id is the
//!                  8 bytes after the key; otherwise the value bytes follow the key)
//! branch element: key_off u32 | key_len u32 | child page id u64
//!                 (the key is the smallest key of the child's subtree when it was written)
//! ```
//!
//! Offsets are from the start of the run. Every accessor checks offsets against the run's length,
//! so a page full of garbage yields [`Error::Corrupt`], never an out-of-bounds access.

use crate::error::{Error, PageId, Result};

/// Bytes of the common page header.
pub const HEADER: usize = 32;
/// Bytes of one branch or leaf element.
pub const ELEM: usize = 16;

/// What a page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// One of the two meta pages (0 and 1).
    Meta = 1,
    /// Interior node: keys and child page ids.
    Branch = 2,
    /// Leaf node: keys and values (or references to overflow runs).
    Leaf = 3,
    /// A large value, stored in a run of contiguous pages.
    Overflow = 4,
    /// The list of free page extents.
    Freelist = 5,
    /// The pages one commit wrote, with their checksums (single-fsync commits only).
    CommitRecord = 6,
}

impl Kind {
    pub(crate) fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Meta,
            2 => Kind::Branch,
            3 => Kind::Leaf,
            4 => Kind::Overflow,
            5 => Kind::Freelist,
            6 => Kind::CommitRecord,
            _ => return None,
        })
    }
}

/// Leaf element flag: value stored in an overflow run.
pub const FLAG_OVERFLOW: u32 = 1;

#[inline]
pub(crate) fn rd_u32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off + 4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

#[inline]
pub(crate) fn rd_u64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

#[inline]
pub(crate) fn wr_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

#[inline]
pub(crate) fn wr_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Byte-string order of keys (the same as `<[u8]>::cmp`), with a fast path for keys of at
/// least 8 bytes: their first 8 bytes compare as one big-endian integer. Revision keys are
/// 8-byte big-endian numbers, so most comparisons end there without a `memcmp` call.
#[inline]
pub(crate) fn cmp_keys(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    if let (Some(x), Some(y)) = (a.first_chunk::<8>(), b.first_chunk::<8>()) {
        let (x, y) = (u64::from_be_bytes(*x), u64::from_be_bytes(*y));
        if x != y {
            return x.cmp(&y);
        }
        return a[8..].cmp(&b[8..]);
    }
    a.cmp(b)
}

/// The parsed common header of a page.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub checksum: u32,
    pub kind: u8,
    pub count: u32,
    pub overflow: u32,
    pub id: PageId,
    #[allow(dead_code)]
    pub txid: u64,
}

impl Header {
    pub(crate) fn parse(b: &[u8]) -> Option<Header> {
        if b.len() < HEADER {
            return None;
        }
        Some(Header {
            checksum: rd_u32(b, 0)?,
            kind: b[4],
            count: rd_u32(b, 8)?,
            overflow: rd_u32(b, 12)?,
            id: rd_u64(b, 16)?,
            txid: rd_u64(b, 24)?,
        })
    }
}

/// Write the common header into `buf` (checksum left zero; see [`seal`]).
pub(crate) fn write_header(
    buf: &mut [u8],
    kind: Kind,
    count: u32,
    overflow: u32,
    id: PageId,
    txid: u64,
) {
    buf[0..4].fill(0);
    buf[4] = kind as u8;
    buf[5..8].fill(0);
    wr_u32(buf, 8, count);
    wr_u32(buf, 12, overflow);
    wr_u64(buf, 16, id);
    wr_u64(buf, 24, txid);
}

/// Checksum of a run: CRC-32 over everything after the checksum field.
pub(crate) fn checksum(run: &[u8]) -> u32 {
    crc32fast::hash(&run[4..])
}

/// Store the checksum of `run` in its header.
pub(crate) fn seal(run: &mut [u8]) {
    let c = checksum(run);
    wr_u32(run, 0, c);
}

/// Number of pages a run of `bytes` bytes needs.
pub(crate) fn pages_for(bytes: usize, page_size: usize) -> u64 {
    bytes.div_ceil(page_size).max(1) as u64
}

/// Pages needed for an overflow run holding a value of `len` bytes.
pub(crate) fn overflow_pages(len: usize, page_size: usize) -> u64 {
    pages_for(HEADER + len, page_size)
}

/// A validated run of pages in the map: a branch or leaf node, an overflow value or a freelist.
#[derive(Clone, Copy)]
pub struct Page<'a> {
    pub(crate) id: PageId,
    pub(crate) data: &'a [u8],
    pub(crate) kind: Kind,
    pub(crate) count: usize,
}

impl<'a> Page<'a> {
    fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::corrupt(self.id, reason)
    }

    /// Key of element `i` (branch or leaf).
    #[inline]
    pub(crate) fn key(&self, i: usize) -> Result<&'a [u8]> {
        let e = HEADER + i * ELEM;
        let (off, len) = match (rd_u32(self.data, e), rd_u32(self.data, e + 4)) {
            (Some(o), Some(l)) if i < self.count => (o as usize, l as usize),
            _ => return Err(self.corrupt(format!("element {i} out of bounds"))),
        };
        self.data
            .get(off..off.wrapping_add(len))
            .filter(|_| off.checked_add(len).is_some())
            .ok_or_else(|| self.corrupt(format!("key of element {i} out of bounds")))
    }

    /// Child page id of branch element `i`.
    #[inline]
    pub(crate) fn child(&self, i: usize) -> Result<PageId> {
        let e = HEADER + i * ELEM;
        if i >= self.count {
            return Err(self.corrupt(format!("child {i} out of bounds")));
        }
        rd_u64(self.data, e + 8).ok_or_else(|| self.corrupt(format!("child {i} out of bounds")))
    }

    /// Value of leaf element `i`: inline bytes or an overflow reference `(page, len)`.
    #[inline]
    pub(crate) fn leaf_value(&self, i: usize) -> Result<LeafValue<'a>> {
        let e = HEADER + i * ELEM;
        let parsed = (|| {
            if i >= self.count {
                return None;
            }
            let off = rd_u32(self.data, e)? as usize;
            let klen = rd_u32(self.data, e + 4)? as usize;
            let vlen = rd_u32(self.data, e + 8)? as usize;
            let flags = rd_u32(self.data, e + 12)?;
            let voff = off.checked_add(klen)?;
            if flags & FLAG_OVERFLOW != 0 {
                Some(LeafValue::Overflow(rd_u64(self.data, voff)?, vlen))
            } else {
                Some(LeafValue::Inline(
                    self.data.get(voff..voff.checked_add(vlen)?)?,
                ))
            }
        })();
        parsed.ok_or_else(|| self.corrupt(format!("value of element {i} out of bounds")))
    }

    /// Index of the first key `>= key` and whether it is equal (binary search).
    #[inline]
    pub(crate) fn lower_bound(&self, key: &[u8]) -> Result<(usize, bool)> {
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match cmp_keys(self.key(mid)?, key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Equal => return Ok((mid, true)),
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok((lo, false))
    }

    /// Branch: index of the child whose subtree may hold `key`.
    #[inline]
    pub(crate) fn child_index(&self, key: &[u8]) -> Result<usize> {
        let (i, eq) = self.lower_bound(key)?;
        Ok(if eq { i } else { i.saturating_sub(1) })
    }

    /// Overflow run: the value bytes.
    pub(crate) fn overflow_value(&self, len: usize) -> Result<&'a [u8]> {
        if self.count != len {
            return Err(self.corrupt(format!(
                "overflow run holds {} bytes, leaf says {len}",
                self.count
            )));
        }
        self.data
            .get(HEADER..HEADER + len)
            .ok_or_else(|| self.corrupt("overflow value out of bounds"))
    }

    /// Freelist run: the extents `(first page, number of pages)`.
    pub(crate) fn freelist_extents(&self) -> Result<Vec<(PageId, u64)>> {
        let mut out = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let o = HEADER + i * 16;
            match (rd_u64(self.data, o), rd_u64(self.data, o + 8)) {
                (Some(s), Some(n)) => out.push((s, n)),
                _ => return Err(self.corrupt("freelist extent out of bounds")),
            }
        }
        Ok(out)
    }
}

/// A leaf value as stored in a page.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LeafValue<'a> {
    Inline(&'a [u8]),
    Overflow(PageId, usize),
}

/// Encoded size of a leaf element with this key and stored value size.
#[inline]
pub(crate) fn leaf_elem_size(klen: usize, stored_vlen: usize) -> usize {
    ELEM + klen + stored_vlen
}

/// Encoded size of a branch element with this key.
#[inline]
pub(crate) fn branch_elem_size(klen: usize) -> usize {
    ELEM + klen
}

/// What a leaf element stores when encoded.
pub(crate) enum EncValue<'a> {
    Inline(&'a [u8]),
    Overflow(PageId, usize),
}

/// Encode a leaf run. `buf` must be zeroed and exactly the run length.
pub(crate) fn encode_leaf<'a>(
    buf: &mut [u8],
    id: PageId,
    txid: u64,
    page_size: usize,
    entries: impl ExactSizeIterator<Item = (&'a [u8], EncValue<'a>)>,
) {
    let n = entries.len();
    let overflow = (buf.len() / page_size - 1) as u32;
    write_header(buf, Kind::Leaf, n as u32, overflow, id, txid);
    let mut data = HEADER + n * ELEM;
    for (i, (k, v)) in entries.enumerate() {
        let e = HEADER + i * ELEM;
        wr_u32(buf, e, data as u32);
        wr_u32(buf, e + 4, k.len() as u32);
        buf[data..data + k.len()].copy_from_slice(k);
        data += k.len();
        match v {
            EncValue::Inline(v) => {
                wr_u32(buf, e + 8, v.len() as u32);
                wr_u32(buf, e + 12, 0);
                buf[data..data + v.len()].copy_from_slice(v);
                data += v.len();
            }
            EncValue::Overflow(pg, len) => {
                wr_u32(buf, e + 8, len as u32);
                wr_u32(buf, e + 12, FLAG_OVERFLOW);
                wr_u64(buf, data, pg);
                data += 8;
            }
        }
    }
    seal(buf);
}

/// Encode a branch run. `buf` must be zeroed and exactly the run length.
pub(crate) fn encode_branch<'a>(
    buf: &mut [u8],
    id: PageId,
    txid: u64,
    page_size: usize,
    entries: impl ExactSizeIterator<Item = (&'a [u8], PageId)>,
) {
    let n = entries.len();
    let overflow = (buf.len() / page_size - 1) as u32;
    write_header(buf, Kind::Branch, n as u32, overflow, id, txid);
    let mut data = HEADER + n * ELEM;
    for (i, (k, child)) in entries.enumerate() {
        let e = HEADER + i * ELEM;
        wr_u32(buf, e, data as u32);
        wr_u32(buf, e + 4, k.len() as u32);
        wr_u64(buf, e + 8, child);
        buf[data..data + k.len()].copy_from_slice(k);
        data += k.len();
    }
    seal(buf);
}

/// Encode an overflow run holding `value`.
pub(crate) fn encode_overflow(id: PageId, txid: u64, page_size: usize, value: &[u8]) -> Vec<u8> {
    let pages = overflow_pages(value.len(), page_size) as usize;
    let mut buf = vec![0u8; pages * page_size];
    write_header(
        &mut buf,
        Kind::Overflow,
        value.len() as u32,
        (pages - 1) as u32,
        id,
        txid,
    );
    buf[HEADER..HEADER + value.len()].copy_from_slice(value);
    seal(&mut buf);
    buf
}

/// Encode a freelist run of exactly `pages` pages holding `extents`.
pub(crate) fn encode_freelist(
    id: PageId,
    txid: u64,
    page_size: usize,
    pages: u64,
    extents: &[(PageId, u64)],
) -> Vec<u8> {
    let mut buf = vec![0u8; pages as usize * page_size];
    write_header(
        &mut buf,
        Kind::Freelist,
        extents.len() as u32,
        (pages - 1) as u32,
        id,
        txid,
    );
    for (i, (s, n)) in extents.iter().enumerate() {
        wr_u64(&mut buf, HEADER + i * 16, *s);
        wr_u64(&mut buf, HEADER + i * 16 + 8, *n);
    }
    seal(&mut buf);
    buf
}

/// Encode a commit record run of exactly `pages` pages listing `runs` as
/// `(first page, pages, stored checksum)`.
pub(crate) fn encode_commit_record(
    id: PageId,
    txid: u64,
    page_size: usize,
    pages: u64,
    runs: &[(PageId, u32, u32)],
) -> Vec<u8> {
    let mut buf = vec![0u8; pages as usize * page_size];
    write_header(
        &mut buf,
        Kind::CommitRecord,
        runs.len() as u32,
        (pages - 1) as u32,
        id,
        txid,
    );
    for (i, (p, n, c)) in runs.iter().enumerate() {
        wr_u64(&mut buf, HEADER + i * 16, *p);
        wr_u32(&mut buf, HEADER + i * 16 + 8, *n);
        wr_u32(&mut buf, HEADER + i * 16 + 12, *c);
    }
    seal(&mut buf);
    buf
}

impl Page<'_> {
    /// Commit record run: the `(first page, pages, checksum)` runs it lists.
    pub(crate) fn commit_record_runs(&self) -> Result<Vec<(PageId, u32, u32)>> {
        let mut out = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let o = HEADER + i * 16;
            match (
                rd_u64(self.data, o),
                rd_u32(self.data, o + 8),
                rd_u32(self.data, o + 12),
            ) {
                (Some(p), Some(n), Some(c)) => out.push((p, n, c)),
                _ => return Err(self.corrupt("commit record entry out of bounds")),
            }
        }
        Ok(out)
    }

    /// The txid stored in the header.
    pub(crate) fn txid(&self) -> u64 {
        rd_u64(self.data, 24).unwrap_or(0)
    }

    /// The checksum stored in the header.
    pub(crate) fn stored_checksum(&self) -> u32 {
        rd_u32(self.data, 0).unwrap_or(0)
    }
}

/// Bytes a freelist with `n` extents needs (a commit record with `n` runs needs the same).
pub(crate) fn freelist_bytes(n: usize) -> usize {
    HEADER + n * 16
}

#[cfg(test)]
mod tests {
    use super::cmp_keys;

    #[test]
    fn cmp_keys_is_byte_order() {
        let keys: Vec<&[u8]> = vec![
            b"",
            b"a",
            b"abcdefg",
            b"abcdefgh",
            b"abcdefgh\x00",
            b"abcdefgi",
            b"\xff\xff\xff\xff\xff\xff\xff\xff",
            b"abcdefghij",
            b"abcdefgha",
            b"b",
        ];
        for a in &keys {
            for b in &keys {
                assert_eq!(cmp_keys(a, b), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }
}
