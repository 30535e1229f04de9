//! Segment files: names, listing, and every disk operation the WAL performs.
//!
//! A segment is named `SSSSSSSSSSSSSSSS-IIIIIIIIIIIIIIII.wal`: its sequence number and the index
//! of the first entry that was to be appended to it, both as 16 hex digits (etcd's scheme), so
//! `ls` shows the order and which segments lie below a snapshot.
//!
//! All disk access goes through `Disk`, which consults an optional [`FaultHook`] before each
//! operation. Tests use the hook to make a write, an fdatasync or a rename fail and check that
//! the failure reaches every waiting producer.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::WalError;
use crate::stats::Counters;

/// A disk operation, as seen by a [`FaultHook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoOp {
    /// Writing records into a segment.
    Write,
    /// `fdatasync`/`fsync` of a segment file.
    Sync,
    /// Creating and zero-filling a new segment file.
    Preallocate,
    /// Shrinking a segment to its written length.
    Truncate,
    /// Renaming a prepared segment to its final name.
    Rename,
    /// Deleting a released segment.
    Remove,
    /// `fsync` of the WAL directory.
    SyncDir,
}

/// Called before every disk operation; returning an error makes that operation fail with it
/// (without performing it). For fault-injection tests.
pub type FaultHook = Arc<dyn Fn(IoOp, &Path) -> io::Result<()> + Send + Sync>;

/// Suffix of segment files.
pub const SEGMENT_EXT: &str = "wal";
/// Suffix of segment files being prepared (never read by recovery, deleted on open).
pub const TMP_EXT: &str = "tmp";

/// A segment's identity, parsed from its file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentName {
    /// Position in the sequence of segments (consecutive, from 0).
    pub seq: u64,
    /// Index of the first entry that was to be appended to the segment.
    pub first_index: u64,
}

impl SegmentName {
    /// The file name, e.g. `0000000000000003-00000000000004d2.wal`.
    pub fn file_name(&self) -> String {
        format!("{:016x}-{:016x}.{SEGMENT_EXT}", self.seq, self.first_index)
    }

    /// Parse a file name; `None` if it is not a segment name.
    pub fn parse(file_name: &str) -> Option<SegmentName> {
        let stem = file_name.strip_suffix(".wal")?;
        let (seq, first) = stem.split_once('-')?;
        if seq.len() != 16 || first.len() != 16 {
            return None;
        }
        Some(SegmentName {
            seq: u64::from_str_radix(seq, 16).ok()?,
            first_index: u64::from_str_radix(first, 16).ok()?,
        })
    }
}

/// Segments in `dir`, sorted by sequence number.
pub fn list_segments(dir: &Path) -> Result<Vec<(SegmentName, PathBuf)>, WalError> {
    let mut out = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| WalError::io("read directory", dir, &e))?;
    for ent in rd {
        let ent = ent.map_err(|e| WalError::io("read directory", dir, &e))?;
        if let Some(name) = ent.file_name().to_str().and_then(SegmentName::parse) {
            out.push((name, ent.path()));
        }
    }
    out.sort_by_key(|(n, _)| n.seq);
    Ok(out)
}

/// Disk operations, with fault injection and fsync counting.
#[derive(Clone)]
pub(crate) struct Disk {
    hook: Option<FaultHook>,
    pub(crate) counters: Arc<Counters>,
}

impl Disk {
    pub(crate) fn new(hook: Option<FaultHook>, counters: Arc<Counters>) -> Disk {
        Disk { hook, counters }
    }

    fn check(&self, op: IoOp, path: &Path, name: &'static str) -> Result<(), WalError> {
        match &self.hook {
            Some(h) => h(op, path).map_err(|e| WalError::io(name, path, &e)),
            None => Ok(()),
        }
    }

    pub(crate) fn write_at(
        &self,
        file: &File,
        path: &Path,
        buf: &[u8],
        offset: u64,
    ) -> Result<(), WalError> {
        self.check(IoOp::Write, path, "write")?;
        file.write_all_at(buf, offset)
            .map_err(|e| WalError::io("write", path, &e))
    }

    /// `fdatasync`: the data and the metadata needed to read it back.
    pub(crate) fn sync_data(&self, file: &File, path: &Path) -> Result<(), WalError> {
        self.check(IoOp::Sync, path, "fdatasync")?;
        let t = std::time::Instant::now();
        let r = file
            .sync_data()
            .map_err(|e| WalError::io("fdatasync", path, &e));
        self.counters.record_fsync(t.elapsed());
        r
    }

    /// `fsync`: data and all metadata (used after a size change).
    pub(crate) fn sync_all(&self, file: &File, path: &Path) -> Result<(), WalError> {
        self.check(IoOp::Sync, path, "fsync")?;
        let t = std::time::Instant::now();
        let r = file.sync_all().map_err(|e| WalError::io("fsync", path, &e));
        self.counters.record_fsync(t.elapsed());
        r
    }

    pub(crate) fn set_len(&self, file: &File, path: &Path, len: u64) -> Result<(), WalError> {
        self.check(IoOp::Truncate, path, "truncate")?;
        file.set_len(len)
            .map_err(|e| WalError::io("truncate", path, &e))
    }

    pub(crate) fn rename(&self, from: &Path, to: &Path) -> Result<(), WalError> {
        self.check(IoOp::Rename, from, "rename")?;
        fs::rename(from, to).map_err(|e| WalError::io("rename", from, &e))
    }

    pub(crate) fn remove(&self, path: &Path) -> Result<(), WalError> {
        self.check(IoOp::Remove, path, "remove")?;
        fs::remove_file(path).map_err(|e| WalError::io("remove", path, &e))
    }

    /// `fsync` of a directory, so that created, renamed and removed names are durable.
    pub(crate) fn sync_dir(&self, dir: &Path) -> Result<(), WalError> {
        self.check(IoOp::SyncDir, dir, "fsync directory")?;
        let t = std::time::Instant::now();
        let r = File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| WalError::io("fsync directory", dir, &e));
        self.counters.record_fsync(t.elapsed());
        r
    }

    /// Create `path` (which must not exist) and fill it with `size` zero bytes, then fsync it.
    ///
    /// Writing real zeros (rather than a sparse `set_len`) allocates the blocks up front, so a
    /// later `fdatasync` only flushes data and does not have to journal block allocations, and
    /// unwritten space reads back as zeros, which the decoder recognises as "end of data".
    ///
    /// If `cancel` becomes true meanwhile, stops early and returns [`WalError::Closed`] (the
    /// caller deletes the partial file).
    pub(crate) fn create_preallocated(
        &self,
        path: &Path,
        size: u64,
        cancel: &AtomicBool,
    ) -> Result<File, WalError> {
        self.check(IoOp::Preallocate, path, "preallocate")?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| WalError::io("create", path, &e))?;
        let zeros = vec![0u8; 1 << 20];
        let mut off = 0u64;
        while off < size {
            if cancel.load(Ordering::Relaxed) {
                return Err(WalError::Closed);
            }
            let n = (size - off).min(zeros.len() as u64) as usize;
            file.write_all_at(&zeros[..n], off)
                .map_err(|e| WalError::io("preallocate", path, &e))?;
            off += n as u64;
        }
        self.sync_all(&file, path)?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_and_sort_by_sequence() {
        let n = SegmentName {
            seq: 3,
            first_index: 0x1234,
        };
        assert_eq!(n.file_name(), "0000000000000003-0000000000001234.wal");
        assert_eq!(SegmentName::parse(&n.file_name()), Some(n));
        assert_eq!(SegmentName::parse("0.tmp"), None);
        assert_eq!(SegmentName::parse("3-4.wal"), None);
        assert_eq!(
            SegmentName::parse("000000000000000g-0000000000000000.wal"),
            None
        );
    }
}
