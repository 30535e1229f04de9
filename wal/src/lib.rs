//! # keel-wal: the write-ahead log
//!
//! Raft may only answer for something — a vote, an accepted entry — once it is on disk (Raft
//! paper §5, Figure 2: "updated on stable storage before responding to RPCs"). This crate is
//! that disk: an append-only log of Raft entries and hard state that survives crashes, and
//! that makes durability cheap by letting one `fdatasync` cover many writers.
//!
//! ```text
//!  event loop ──submit(batch, callback)──▶ queue ──▶ writer thread: encode all queued batches,
//!  (never blocks)                                     one write, one fdatasync, run callbacks
//! ```
//!
//! ## Records and the CRC chain ([`record`], [`codec`])
//! Five record types: **entry** (index, term, opaque payload), **hard state** (term, vote,
//! commit), **snapshot marker** (index, term: everything at or below it lives in a snapshot),
//! **member metadata** (member ID, cluster ID) and **truncate** (drop entries from an index on).
//! Each record is framed as
//!
//! ```text
//!  crc u32 | prevcrc u32 | len u32 | type u8 | flags u8 | 0u16 | payload | zero pad to 8
//! ```
//!
//! where `crc = CRC32(seed = prevcrc; len, type, flags, payload)` ([`crc32fast`]) and `prevcrc`
//! must equal the previous record's `crc`. The checksum is therefore *chained*: a record is
//! valid only in its place after its predecessor, so a stale record left in reused space or
//! copied from an older segment can never pass. Each record also carries its seed, so it can be
//! checked on its own; recovery uses that to look past a damaged record. Frames are 8-byte
//! aligned and type 0 does not exist: an all-zero header means "end of data".
//!
//! ## Segments ([`segment`])
//! The log is a directory of segment files named `SSSSSSSSSSSSSSSS-IIIIIIIIIIIIIIII.wal`
//! (sequence number and first entry index in hex, as etcd names them). A segment is
//! preallocated (zero-filled by a helper thread ahead of time), and starts with a *header
//! group* — metadata, current hard state, current snapshot marker — whose first record continues
//! the CRC chain of the previous segment. The header group is fdatasynced before the file is
//! renamed to its segment name, and the directory is fsynced after every create, rename and
//! remove. When a segment passes its size (default 64 MiB) the writer trims its unused tail and
//! moves on to the next. [`Wal::release_to`] deletes old segments once a durable snapshot
//! marker covers everything in them (log compaction, Raft §7).
//!
//! ## Group commit ([`Wal::submit`])
//! Producers queue batches without blocking and learn about durability through a callback run
//! on the writer thread. The writer takes *everything* queued, writes it with one `write` and
//! one `fdatasync`, then runs the callbacks; batches arriving during that fsync form the next
//! group. The fsync is never skipped or deferred. `WalStats` counts fsyncs and group sizes.
//!
//! ## Suffix truncation
//! Nothing is ever rewritten in place. Appending entry `i` discards, on replay, every earlier
//! entry at index `i` or above (Raft §5.3: a follower's conflicting suffix is replaced by the
//! leader's), and a truncate record does the same without new entries; the old entries can
//! therefore never reappear after a restart.
//!
//! ## Recovery ([`Wal::open`], [`recovery`])
//! Open reads every segment, verifies every CRC and the chain across segments, and replays the
//! records into [`Recovered`]: hard state, latest snapshot marker, metadata, and the entries
//! after the snapshot. Where the valid records stop:
//!
//! * only zeros follow: the end of the log;
//! * damaged bytes in the **last** segment, after its header group, with **no intact record
//!   starting a later write group** after them: a torn write of the last group (which was
//!   never acknowledged, because its fdatasync never returned). It is cut off, and a log line
//!   says how many bytes were dropped;
//! * anything else — damage in an earlier segment, damage followed by a later intact group,
//!   a broken chain between segments, a valid CRC over a malformed payload — is
//!   [`WalError::Corrupt`] naming the file and offset. Never silently truncated, never a panic.
//!
//! The one ambiguity: damage *inside the last write group* is treated as torn even if that
//! group had been acknowledged (a bit flip there looks exactly like a torn write). See
//! [`recovery`] for the full argument.
//!
//! ## Failures: poisoning
//! If a write, fdatasync, segment cut or release fails (full disk included), the error is
//! delivered to every producer of the failed group, and the WAL is **poisoned**: every queued
//! and later request fails with [`WalError::Poisoned`]. After a failed fdatasync the kernel may
//! have dropped the unwritten pages, so continuing could leave a hole behind acknowledged
//! records; reopening lets recovery decide from what really is on disk. Records acknowledged
//! before the failure are never lost.
//!
//! ## Example
//! ```no_run
//! use keel_wal::{Batch, Entry, HardState, Metadata, Wal};
//!
//! let wal = Wal::create("/tmp/member/wal", Metadata { member_id: 1, cluster_id: 7 })?;
//! wal.submit(
//!     Batch {
//!         entries: vec![Entry { index: 1, term: 1, data: b"put x=1".to_vec() }],
//!         hard_state: Some(HardState { term: 1, vote: 1, commit: 0 }),
//!         ..Batch::default()
//!     },
//!     Box::new(|result| {
//!         // On the WAL thread: push into a channel and wake the event loop's mio::Waker.
//!         result.expect("durable");
//!     }),
//! )?;
//! drop(wal); // writes what is queued, then stops
//!
//! let (wal, recovered) = Wal::open("/tmp/member/wal")?;
//! assert_eq!(recovered.entries.len(), 1);
//! # Ok::<(), keel_wal::WalError>(())
//! ```
#![deny(missing_docs)]

pub mod codec;
mod error;
mod pipeline;
pub mod record;
pub mod recovery;
pub mod segment;
mod stats;
mod wal;
mod writer;

pub use error::WalError;
pub use record::{Entry, HardState, Metadata, Record, SnapshotMarker};
pub use recovery::{recover, Recovered, Recovery, SegmentImage, TornTail};
pub use segment::{FaultHook, IoOp, SegmentName};
pub use stats::{FsyncObserver, WalStats, FSYNC_BUCKET_BOUNDS_US};
pub use wal::{Batch, Callback, Logger, Wal, WalOptions};
