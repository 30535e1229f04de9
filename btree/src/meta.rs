//! The two meta pages: the root of every committed state.
//!
//! Page 0 and page 1 each hold a [`Meta`]. Transaction `t` writes its meta to page `t % 2`, so the
//! previous committed state's meta is never overwritten by the next commit. A meta carries a
//! CRC-32 over its bytes; a torn or lost meta write fails the check and `open` falls back to the
//! other one, which describes the previous commit (whose pages are intact, see the crate docs).

use crate::error::PageId;
use crate::page::{self, rd_u32, rd_u64, wr_u32, wr_u64, Header, Kind, HEADER};

/// Magic number at the start of every meta body.
pub const MAGIC: [u8; 8] = *b"KEELBTR\x01";
/// On-disk format version.
pub const VERSION: u32 = 1;
/// Bytes of the meta body after the page header.
pub const META_LEN: usize = 56;

/// The contents of a meta page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Page size of the file.
    pub page_size: u32,
    /// Transaction id of the commit this meta describes.
    pub txid: u64,
    /// Root page of the bucket catalog tree (0 = no buckets).
    pub catalog_root: PageId,
    /// First page of the freelist run (0 = no free pages).
    pub freelist: PageId,
    /// High-water mark: pages `0..page_count` are in use or free; beyond is unallocated.
    pub page_count: u64,
    /// First page of the commit record run listing every run this commit wrote with its
    /// checksum (0 = none: the commit used two fsyncs and needs no verification on open).
    pub commit_record: PageId,
}

/// Why a meta page was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaError {
    /// No magic number: probably not a keel file at all.
    BadMagic,
    /// Magic present but another format version.
    Version(u32),
    /// Magic present but the checksum or a field is wrong.
    Invalid(String),
    /// The file ends before this meta page does.
    TooShort,
}

impl std::fmt::Display for MetaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetaError::BadMagic => write!(f, "bad magic number"),
            MetaError::Version(v) => write!(f, "unsupported version {v}"),
            MetaError::Invalid(m) => write!(f, "{m}"),
            MetaError::TooShort => write!(f, "file ends before this meta page"),
        }
    }
}

impl Meta {
    /// Encode into a full page buffer for meta slot `slot` (0 or 1).
    pub fn encode(&self, slot: u64) -> Vec<u8> {
        let mut buf = vec![0u8; self.page_size as usize];
        page::write_header(&mut buf, Kind::Meta, 0, 0, slot, self.txid);
        let b = HEADER;
        buf[b..b + 8].copy_from_slice(&MAGIC);
        wr_u32(&mut buf, b + 8, VERSION);
        wr_u32(&mut buf, b + 12, self.page_size);
        wr_u64(&mut buf, b + 16, self.txid);
        wr_u64(&mut buf, b + 24, self.catalog_root);
        wr_u64(&mut buf, b + 32, self.freelist);
        wr_u64(&mut buf, b + 40, self.page_count);
        wr_u64(&mut buf, b + 48, self.commit_record);
        let c = crc32fast::hash(&buf[4..HEADER + META_LEN]);
        wr_u32(&mut buf, 0, c);
        buf
    }

    /// Only the magic and page size, for finding the page size of a file before validating.
    pub fn peek_page_size(buf: &[u8]) -> Option<u32> {
        if buf.get(HEADER..HEADER + 8)? != MAGIC {
            return None;
        }
        rd_u32(buf, HEADER + 12)
    }

    /// Decode and validate the meta in `buf` (at least `HEADER + META_LEN` bytes), expected in
    /// slot `slot`.
    pub fn decode(buf: &[u8], slot: u64) -> Result<Meta, MetaError> {
        if buf.len() < HEADER + META_LEN {
            return Err(MetaError::Invalid(
                "meta page shorter than its header".into(),
            ));
        }
        if buf[HEADER..HEADER + 8] != MAGIC {
            return Err(MetaError::BadMagic);
        }
        let b = HEADER;
        let version = rd_u32(buf, b + 8).unwrap_or(0);
        let stored = rd_u32(buf, 0).unwrap_or(0);
        let computed = crc32fast::hash(&buf[4..HEADER + META_LEN]);
        if stored != computed {
            return Err(MetaError::Invalid(format!(
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            )));
        }
        if version != VERSION {
            return Err(MetaError::Version(version));
        }
        let h = Header::parse(buf).ok_or_else(|| MetaError::Invalid("short header".into()))?;
        if h.kind != Kind::Meta as u8 || h.id != slot {
            return Err(MetaError::Invalid(format!(
                "header says kind {} id {}, expected meta in slot {slot}",
                h.kind, h.id
            )));
        }
        let m = Meta {
            page_size: rd_u32(buf, b + 12).unwrap_or(0),
            txid: rd_u64(buf, b + 16).unwrap_or(0),
            catalog_root: rd_u64(buf, b + 24).unwrap_or(0),
            freelist: rd_u64(buf, b + 32).unwrap_or(0),
            page_count: rd_u64(buf, b + 40).unwrap_or(0),
            commit_record: rd_u64(buf, b + 48).unwrap_or(0),
        };
        if !crate::db::valid_page_size(m.page_size) {
            return Err(MetaError::Invalid(format!(
                "invalid page size {}",
                m.page_size
            )));
        }
        if m.page_count < 2
            || (m.catalog_root != 0 && (m.catalog_root < 2 || m.catalog_root >= m.page_count))
            || (m.freelist != 0 && (m.freelist < 2 || m.freelist >= m.page_count))
            || (m.commit_record != 0 && (m.commit_record < 2 || m.commit_record >= m.page_count))
        {
            return Err(MetaError::Invalid(format!("inconsistent fields: {m:?}")));
        }
        Ok(m)
    }
}
