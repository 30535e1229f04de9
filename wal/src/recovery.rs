//! Recovery: from segment bytes back to Raft's durable state.
//!
//! [`recover`] is a pure function over the segments' bytes; [`crate::Wal::open`] reads the files,
//! calls it, and then applies its verdict (truncates the torn tail and the unused
//! preallocated space of the last segment). The crash tests call [`recover`] directly on thousands of damaged images.
//!
//! ## The recovery rule
//! Segments are read in sequence order; each record must continue the CRC chain of the one
//! before it (across segment boundaries too). Reading a segment stops at the first offset `X`
//! that does not hold a valid continuation. Then:
//!
//! 1. If every byte from `X` to the end of the file is zero, the segment simply ends there
//!    (preallocated space). Nothing is dropped.
//! 2. Otherwise the bytes at `X` are damaged. They are a **torn tail** — the remains of the last
//!    write group, which was never acknowledged because its fdatasync did not return — if and
//!    only if (a) this is the last segment, (b) `X` lies after the segment's header group and
//!    (c) no intact record that *starts a write group* lies anywhere after `X`. A torn tail is
//!    cut off at `X` and the number of dropped bytes is logged.
//! 3. Otherwise it is **corruption**: [`WalError::Corrupt`] naming the file and `X`. An intact
//!    group start after `X` proves that the damaged bytes had been fdatasynced before a later
//!    group was written, so they held acknowledged records; truncating them would lose data.
//!    (The writer starts a group's write only after the previous group's fdatasync returned,
//!    so at most one group is ever unsynced. Its sectors may reach the disk in any order,
//!    which is why intact records of the *same* group after `X` do not count as evidence.)
//!    Damage in any segment but the last is always corruption, as is a record with a correct CRC
//!    whose contents are malformed.
//!
//! Every segment starts with a *header group* (metadata, hard state, snapshot marker; its last
//! record carries a flag). The writer fdatasyncs it *before* renaming the file to its segment
//! name, so a segment file can never hold a torn header: a segment whose header group is
//! damaged or missing, or whose first record does not continue the previous segment's CRC
//! chain, is corruption (this is what catches a lost tail of a non-last segment).
//!
//! Consequence: damage inside the *last* write group is indistinguishable from a torn write and
//! is treated as one, even if that group had been acknowledged (e.g. a bit flip in the final
//! group). etcd's zero-sector heuristic has the same blind spot; detecting it would need a
//! second copy of the data.
//!
//! ## Replaying records
//! * Metadata: every copy must agree (each segment repeats it).
//! * HardState: the last one wins.
//! * Snapshot marker: the highest wins; entries at or below it are dropped.
//! * Entry `i`: every entry with index >= `i` is discarded first (Raft §5.3 log matching: the
//!   leader overwrote a conflicting suffix), then `i` is appended.
//! * Truncate `i`: every entry with index >= `i` is discarded.
//!
//! At the end, the entries after the snapshot must be contiguous and start right after it.

use std::path::PathBuf;

use crate::codec::{self, Tail};
use crate::error::WalError;
use crate::record::{Entry, HardState, Metadata, Record, SnapshotMarker};
use crate::segment::SegmentName;

/// What [`crate::Wal::open`] hands back: the durable Raft state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The member's identity.
    pub metadata: Metadata,
    /// The latest hard state, if one was ever written.
    pub hard_state: Option<HardState>,
    /// The latest snapshot marker, if any.
    pub snapshot: Option<SnapshotMarker>,
    /// The entries after the snapshot, contiguous, with suffix truncations applied.
    pub entries: Vec<Entry>,
}

impl Recovered {
    /// Index of the last entry (or of the snapshot, or 0).
    pub fn last_index(&self) -> u64 {
        self.entries
            .last()
            .map(|e| e.index)
            .or(self.snapshot.map(|s| s.index))
            .unwrap_or(0)
    }
}

/// One segment file's name and contents, as input to [`recover`].
#[derive(Debug, Clone)]
pub struct SegmentImage {
    /// The file's path (its file name must be a segment name).
    pub path: PathBuf,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// A torn tail that recovery cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub path: PathBuf,
    /// Where the valid records end (the file is truncated here).
    pub offset: u64,
    /// Non-zero bytes dropped (from `offset` to the last non-zero byte).
    pub dropped_bytes: u64,
    /// Why the bytes at `offset` were not a valid record.
    pub reason: String,
}

/// Per-segment facts the writer needs (for naming and for releasing segments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentInfo {
    pub(crate) name: SegmentName,
    pub(crate) path: PathBuf,
    /// Highest snapshot marker index recorded in this segment (0 if none).
    pub(crate) max_marker: u64,
}

/// The full verdict of [`recover`].
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The durable state.
    pub recovered: Recovered,
    /// A torn tail that must be cut off the last segment, if there was one.
    pub torn_tail: Option<TornTail>,
    /// Where the valid records of the last segment end.
    pub last_valid_end: u64,
    /// The CRC of the last valid record: the seed of the next segment.
    pub end_crc: u32,
    pub(crate) segments: Vec<SegmentInfo>,
}

/// The replay state machine (see the module docs).
#[derive(Default)]
struct Replay {
    metadata: Option<Metadata>,
    hard_state: Option<HardState>,
    snapshot: Option<SnapshotMarker>,
    /// Sorted by index; may have gaps until a later snapshot marker covers them.
    entries: Vec<Entry>,
}

impl Replay {
    fn cut_from(&mut self, index: u64) {
        let keep = self.entries.partition_point(|e| e.index < index);
        self.entries.truncate(keep);
    }

    fn apply(&mut self, r: Record) -> Result<(), String> {
        match r {
            Record::Metadata(m) => match self.metadata {
                Some(old) if old != m => {
                    return Err(format!("member metadata conflict: {old:?} then {m:?}"))
                }
                _ => self.metadata = Some(m),
            },
            Record::HardState(hs) => self.hard_state = Some(hs),
            Record::Snapshot(s) => {
                if self.snapshot.is_none_or(|old| s.index >= old.index) {
                    self.snapshot = Some(s);
                    let drop = self.entries.partition_point(|e| e.index <= s.index);
                    self.entries.drain(..drop);
                }
            }
            Record::Truncate { from_index } => self.cut_from(from_index),
            Record::Entry(e) => {
                if self.snapshot.is_some_and(|s| e.index <= s.index) {
                    return Ok(());
                }
                self.cut_from(e.index);
                self.entries.push(e);
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Recovered, WalError> {
        let metadata = self.metadata.ok_or_else(|| WalError::Inconsistent {
            reason: "no member metadata record".into(),
        })?;
        if let (Some(s), Some(first)) = (self.snapshot, self.entries.first()) {
            if first.index != s.index + 1 {
                return Err(WalError::Inconsistent {
                    reason: format!(
                        "entries start at {} but the snapshot ends at {}",
                        first.index, s.index
                    ),
                });
            }
        }
        for w in self.entries.windows(2) {
            if w[1].index != w[0].index + 1 {
                return Err(WalError::Inconsistent {
                    reason: format!("entry gap between {} and {}", w[0].index, w[1].index),
                });
            }
        }
        Ok(Recovered {
            metadata,
            hard_state: self.hard_state,
            snapshot: self.snapshot,
            entries: self.entries,
        })
    }
}

fn corrupt(path: &std::path::Path, offset: u64, reason: String) -> WalError {
    WalError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    }
}

/// Recover the durable state from segment images (in any order; they are sorted by sequence).
/// Applies the recovery rule of the module docs. Never panics on any input bytes.
pub fn recover(images: &[SegmentImage]) -> Result<Recovery, WalError> {
    let mut named = Vec::with_capacity(images.len());
    for (i, img) in images.iter().enumerate() {
        let name = img
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(SegmentName::parse)
            .ok_or_else(|| WalError::Inconsistent {
                reason: format!("{} is not a segment name", img.path.display()),
            })?;
        named.push((name, img.path.clone(), i));
    }
    named.sort_by_key(|(n, _, _)| n.seq);
    let order: Vec<usize> = named.iter().map(|(_, _, i)| *i).collect();
    let named: Vec<(SegmentName, PathBuf)> = named.into_iter().map(|(n, p, _)| (n, p)).collect();
    recover_segments(&named, |k| Ok(images[order[k]].bytes.as_slice()))
}

/// The recovery proper, over segments sorted by sequence number, loading one segment's bytes at
/// a time through `load(position)` (so that [`crate::Wal::open`] never holds more than one
/// segment file in memory).
pub(crate) fn recover_segments<B: AsRef<[u8]>>(
    named: &[(SegmentName, PathBuf)],
    mut load: impl FnMut(usize) -> Result<B, WalError>,
) -> Result<Recovery, WalError> {
    if named.is_empty() {
        return Err(WalError::Inconsistent {
            reason: "no segments".into(),
        });
    }
    for w in named.windows(2) {
        if w[1].0.seq != w[0].0.seq + 1 {
            return Err(WalError::Inconsistent {
                reason: format!(
                    "segment {} is missing (found {} then {})",
                    w[0].0.seq + 1,
                    w[0].1.display(),
                    w[1].1.display()
                ),
            });
        }
    }

    let mut replay = Replay::default();
    let mut seed: Option<u32> = None;
    let mut segments = Vec::new();
    let mut torn_tail = None;
    let mut last_valid_end = 0;
    let last = named.len() - 1;
    for (i, (name, path)) in named.iter().enumerate() {
        let bytes = load(i)?;
        let scan = codec::scan(bytes.as_ref(), seed);
        drop(bytes);
        let header_end = scan
            .records
            .iter()
            .position(|r| r.header_end)
            .map(|i| scan.records[i].offset + scan.records[i].frame_len);
        match &scan.tail {
            Tail::Damaged { offset, reason, .. } if header_end.is_none() => {
                return Err(corrupt(
                    path,
                    *offset,
                    format!("{reason} (inside the segment header, which is never torn)"),
                ))
            }
            _ if header_end.is_none() => {
                return Err(corrupt(
                    path,
                    scan.valid_end,
                    "segment header incomplete".into(),
                ))
            }
            _ => {}
        }
        match scan.tail {
            Tail::Clean => {}
            Tail::BadPayload { offset, reason } => return Err(corrupt(path, offset, reason)),
            Tail::Damaged {
                offset,
                reason,
                nonzero_end,
                later_group_start,
            } => {
                if i != last {
                    return Err(corrupt(
                        path,
                        offset,
                        format!("{reason} (in a segment that is not the last one)"),
                    ));
                }
                if let Some(p) = later_group_start {
                    return Err(corrupt(
                        path,
                        offset,
                        format!(
                            "{reason}; an intact record of a later write group follows at offset {p}, so this is not a torn write"
                        ),
                    ));
                }
                torn_tail = Some(TornTail {
                    path: path.clone(),
                    offset,
                    dropped_bytes: nonzero_end - offset,
                    reason,
                });
            }
        }
        let mut max_marker = 0;
        for r in scan.records {
            if let Record::Snapshot(s) = &r.record {
                max_marker = max_marker.max(s.index);
            }
            let offset = r.offset;
            replay
                .apply(r.record)
                .map_err(|reason| corrupt(path, offset, reason))?;
        }
        if i == last {
            last_valid_end = scan.valid_end;
        }
        seed = Some(scan.end_crc);
        segments.push(SegmentInfo {
            name: name.clone(),
            path: path.clone(),
            max_marker,
        });
    }
    Ok(Recovery {
        recovered: replay.finish()?,
        torn_tail,
        last_valid_end,
        end_crc: seed.unwrap_or(0),
        segments,
    })
}
