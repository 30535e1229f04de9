//! # keel-btree: a copy-on-write B+tree in one file
//!
//! This crate is keel's storage engine, the role bbolt plays for etcd. The `mvcc` layer keeps
//! every revision of every key here; a Raft snapshot sent to a lagging member is a consistent copy
//! of this file. Its promises: a committed transaction is never lost, and no reader ever sees half
//! of one.
//!
//! ## Using it
//!
//! ```
//! use keel_btree::{Db, Options};
//! # let dir = std::env::temp_dir().join(format!("keel-btree-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_file(&dir);
//! let db = Db::open(&dir, Options::default())?;
//! let mut w = db.begin_write()?;
//! w.create_bucket(b"key")?;
//! w.bucket_mut(b"key")?.put(b"foo", b"bar")?;
//! w.commit()?;
//!
//! let r = db.begin_read();                // a stable snapshot, Send, many at once
//! assert_eq!(r.bucket(b"key")?.get(b"foo")?, Some(&b"bar"[..]));   // zero-copy from the map
//! for entry in r.bucket(b"key")?.iter().rev() {
//!     let (k, v) = entry?;
//!     # let _ = (k, v);
//! }
//! # drop(r); drop(db); std::fs::remove_file(&dir).unwrap();
//! # Ok::<(), keel_btree::Error>(())
//! ```
//!
//! ## The file
//!
//! One file of fixed-size pages (4 KiB by default, see [`Options::page_size`]). Page `n` lives at
//! byte `n * page_size`. Every page or run of contiguous pages starts with a 32-byte header
//! (checksum, kind, element count, run length, its own page id, the writing txid; see the `page`
//! module). The kinds:
//!
//! | kind | what it holds |
//! |---|---|
//! | meta (pages 0 and 1) | magic, version, page size, txid, root of the bucket catalog, first page of the freelist, `page_count` (high-water mark), commit record page (0 if none), CRC-32 |
//! | branch | sorted `(key, child page)` elements; the key is the smallest key of that child's subtree |
//! | leaf | sorted `(key, value)` elements; a value longer than about a quarter page lives in an overflow run and the leaf stores its page id |
//! | overflow | one large value in a run of contiguous pages |
//! | freelist | the free pages as `(first, count)` extents |
//! | commit record | (one-fsync commits only) the runs the commit wrote, with their checksums |
//!
//! A node normally fills one page; a node holding one key too big for a page becomes a run of
//! several pages. The **catalog** is itself a B+tree mapping bucket names to `(root page, key
//! count)`; each bucket is a separate B+tree. Every run carries a CRC-32 over its bytes, checked
//! the first time a mapping reads it (a per-mapping bitset remembers verified pages, so hot pages
//! are not re-hashed). Decoding checks every offset against the run's length, so garbage yields
//! [`Error::Corrupt`], never a panic or an out-of-bounds read.
//!
//! ## The commit protocol, and why a crash is safe
//!
//! A write transaction never modifies a page that a committed meta can reach. It copies the nodes
//! on the path to every change into memory (copy-on-write) and lists the pages it replaced as
//! *freed*. [`WriteTxn::commit`] then does the following:
//!
//! 1. It writes every dirty node, every new large value and a new freelist into pages that are
//!    free in the last committed state (or beyond its high-water mark, growing the file first).
//!    The writes use `pwrite`.
//! 2. `fdatasync`.
//! 3. It writes the new meta (txid `t`, new roots, new freelist, new high-water mark) into meta
//!    slot `t % 2`. The other slot still holds meta `t - 1`.
//! 4. `fdatasync`.
//!
//! Now consider a crash at each point:
//! * **Before or during step 2.** Only free pages were written. Meta `t - 1` is intact, and so is
//!   every page it reaches, so the file reopens at state `t - 1`. The half-written pages are free
//!   in that state and are simply reused later.
//! * **During step 3 or 4 (a torn or lost meta write).** Slot `t % 2` fails its CRC, or still
//!   holds the older meta `t - 2`. Open picks the *newest valid* meta. That is `t - 1` (slot
//!   `(t-1) % 2` was not touched), or `t` if the meta write reached the disk intact. Either state
//!   is complete: the pages of `t` were durable before its meta was written, because step 2 comes
//!   before step 3.
//! * **After step 4.** State `t` is durable.
//!
//! The meta written at `t` must not destroy what `t - 1` needs. Slot `t % 2` held meta `t - 2`,
//! which is no longer needed. The pages that `t` overwrote were free at `t - 1`. A page counts as
//! free at `t - 1` only once no state from `t - 1` on can reach it. Those are the pages *freed* by
//! `t - 1` or earlier. So the crash test requires that a page freed by transaction `f` (pending
//! `f`) is written only after `f` has committed. The next rule gives exactly that.
//!
//! ### The one-fsync variant ([`CommitMode::OneFsync`])
//!
//! Steps 1 and 3 can be merged under one `fdatasync`, as redb's default "1PC+C" does. The commit
//! also writes a *commit record*, a run listing every page run the commit wrote together with
//! that run's checksum, and the meta names it. The disk may now persist the meta before some of
//! the pages. So on open, the newest meta is trusted only if its commit record and every listed
//! run are present with the recorded checksum and the commit's txid. Otherwise `open` uses the
//! other meta. That fallback is safe for the same reason as above: the previous commit finished
//! its fsync before this one started, and this one wrote only pages that were free in it. A
//! stale page left over from an earlier use of the same page id carries an older txid and a
//! different checksum, so it cannot pass for a page of the new commit. The default remains the
//! two-fsync protocol, where a meta never reaches the disk before its pages.
//!
//! ## Readers, page reuse, and the memory map
//!
//! Readers read through a read-only `mmap` of the file (`memmap2`). Nothing is ever written
//! through the map. A [`ReadTxn`] copies the current meta, registers its txid, and holds an
//! `Arc` to the current mapping. Pages freed by transaction `f` stay *pending* until every open
//! reader's txid is `>= f`. Only such readers' trees no longer contain those pages. Then the
//! pages move to the free set and a later writer may overwrite them (bbolt's rule).
//!
//! The soundness argument for handing out `&[u8]` slices of the map:
//! * **The bytes stay mapped.** A mapping is never unmapped while a transaction holds its `Arc`.
//!   When the file grows, the writer extends the file first (`set_len`) and creates a *new*
//!   mapping for later transactions. Old mappings are dropped with their last reader. The file
//!   never shrinks. Defragmentation replaces it by rename, and old readers keep the old inode
//!   mapped.
//! * **The bytes do not change while borrowed.** A slice is created only for a page reachable
//!   from the reader's snapshot (the page id comes from a checksummed parent in that snapshot). By
//!   copy-on-write and the pending rule above, the writer never writes such a page while the
//!   reader lives. No slice ever spans the whole map. The only `unsafe` blocks are the map
//!   creation (`storage.rs`) and the slice creation (`mapping.rs`), and each states this.
//! * **Other processes.** The file is opened once per process (a registry refuses a second
//!   [`Db::open`] of the same path). Other processes must not write it, the same assumption bbolt
//!   and LMDB make.
//!
//! ## Free pages
//!
//! The freelist on disk lists the free and the pending pages together, since no reader survives a
//! restart. It is rewritten at every commit into a new run, and the old run is freed. Allocation
//! takes the lowest free extent that is large enough (first fit), else it extends the high-water
//! mark.
//!
//! ## Node splitting and filling
//!
//! Nodes split at commit ("spill"), not on insert. Consecutive dirty siblings are merged and
//! repacked. Along the right edge of a tree, where increasing keys such as revisions land, pages
//! are packed *full*. Elsewhere the packing is even. A dirty node below a quarter page merges with
//! a neighbour.
//!
//! ## Other features
//!
//! * [`Db::snapshot_to`] streams a consistent copy while writes go on. [`Db::restore`] writes one
//!   back and opens it.
//! * [`Db::defragment`] rewrites the live data into a compact new file and renames it into place.
//! * [`Db::check`] is a full integrity check.
//! * [`storage::MemStorage`] is an in-memory file with fault injection for crash tests.

#![warn(missing_docs)]

mod bucket;
mod check;
mod cursor;
mod db;
mod error;
mod freelist;
mod mapping;
mod meta;
mod node;
mod page;
mod snapshot;
pub mod storage;
mod tree;
mod txn;

pub use bucket::{prefix_end, Bucket, BucketMut};
pub use check::{BucketReport, Report};
pub use cursor::{Cursor, Entry, Range};
pub use db::{valid_page_size, CommitMode, Db, Options, Stats, DEFAULT_PAGE_SIZE};
pub use error::{Error, PageId, Result};
pub use storage::{CrashMode, FileStorage, MemStorage, Storage};
pub use txn::{ReadTxn, WriteTxn};

/// Longest key accepted by `put` (and longest bucket name).
pub const MAX_KEY_LEN: usize = 1 << 20;
/// Longest value accepted by `put`.
pub const MAX_VALUE_LEN: usize = 1 << 30;
/// No valid tree is deeper than this; a deeper walk means a corrupt file (a cycle).
pub(crate) const MAX_DEPTH: usize = 64;
