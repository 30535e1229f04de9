//! The public handle: create/open, submit batches, release segments, stats.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::codec::MAX_PAYLOAD;
use crate::error::WalError;
use crate::record::{Entry, HardState, Metadata, SnapshotMarker};
use crate::recovery::{recover_segments, Recovered};
use crate::segment::{list_segments, Disk, FaultHook, TMP_EXT};
use crate::stats::{Counters, WalStats};
use crate::writer::{Queue, Request, Shared, Writer};

/// Completion callback: run on the WAL's writer thread once the batch is durable (`Ok`) or has
/// failed. It must be quick and must not block (push into a channel and wake your event loop);
/// in particular it must not call [`Wal::append_sync`] or [`Wal::release_to`], which would wait
/// for the very thread running it. Calling [`Wal::submit`] from it is fine.
pub type Callback = Box<dyn FnOnce(Result<(), WalError>) + Send>;

/// Where the WAL's log lines go (torn tails dropped, poisoning).
pub type Logger = Arc<dyn Fn(&str) + Send + Sync>;

/// What one Raft `Ready` asks to persist. Recorded in this order: snapshot marker, truncation,
/// entries, hard state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// A snapshot now covers everything up to this index; entries at or below it are dropped.
    pub snapshot: Option<SnapshotMarker>,
    /// Discard every entry with index >= this (explicit suffix truncation).
    pub truncate_from: Option<u64>,
    /// Entries to append. Entry `i` replaces any older entry at `i` and after (Raft §5.3), so a
    /// follower overwriting a conflicting suffix just appends the leader's entries.
    pub entries: Vec<Entry>,
    /// The new hard state, if it changed.
    pub hard_state: Option<HardState>,
}

impl Batch {
    /// A batch holding only entries.
    pub fn entries(entries: Vec<Entry>) -> Batch {
        Batch {
            entries,
            ..Batch::default()
        }
    }
}

/// Tuning knobs. `Default` is what a server wants.
#[derive(Clone)]
pub struct WalOptions {
    /// Size segments are preallocated to; a new segment is started once this is exceeded.
    /// Default 64 MiB (etcd's size).
    pub segment_size: u64,
    /// Most requests that may wait in the queue; beyond it `submit` returns
    /// [`WalError::QueueFull`]. Default 65,536.
    pub queue_capacity: usize,
    /// Most encoded bytes that may wait in the queue (a single request larger than this is
    /// accepted into an empty queue). Default 256 MiB.
    pub queue_capacity_bytes: u64,
    /// Most bytes one group commit writes (it always takes at least one request). Default
    /// 32 MiB.
    pub max_group_bytes: u64,
    /// Fault injection for tests (see [`FaultHook`]). Default none.
    pub fault_hook: Option<FaultHook>,
    /// Where log lines go. Default: standard error.
    pub logger: Logger,
    /// Told the duration of every fsync (the server's `etcd_disk_wal_fsync_duration_seconds`).
    /// Default none.
    pub fsync_observer: Option<crate::stats::FsyncObserver>,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            segment_size: 64 << 20,
            queue_capacity: 65_536,
            queue_capacity_bytes: 256 << 20,
            max_group_bytes: 32 << 20,
            fault_hook: None,
            logger: Arc::new(|line| eprintln!("{line}")),
            fsync_observer: None,
        }
    }
}

impl std::fmt::Debug for WalOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalOptions")
            .field("segment_size", &self.segment_size)
            .field("queue_capacity", &self.queue_capacity)
            .field("queue_capacity_bytes", &self.queue_capacity_bytes)
            .field("max_group_bytes", &self.max_group_bytes)
            .field("fault_hook", &self.fault_hook.is_some())
            .finish()
    }
}

/// A write-ahead log open for appending. `Wal` is `Sync`: share it (e.g. in an `Arc`) between
/// any number of producer threads. Dropping it writes what is queued and stops the writer.
pub struct Wal {
    dir: PathBuf,
    shared: Arc<Shared>,
    counters: Arc<Counters>,
    capacity: usize,
    capacity_bytes: u64,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal").field("dir", &self.dir).finish()
    }
}

/// Delete leftover `.tmp` files (segments that were being prepared; recovery never reads them),
/// then fsync the directory if any were removed.
/// Queues a request with `submit` and blocks until the writer thread reports its outcome.
fn wait_for(submit: impl FnOnce(Callback) -> Result<(), WalError>) -> Result<(), WalError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    submit(Box::new(move |r| {
        let _ = tx.send(r);
    }))?;
    rx.recv().unwrap_or(Err(WalError::Closed))
}

fn remove_tmp_files(dir: &Path, disk: &Disk) -> Result<(), WalError> {
    let rd = std::fs::read_dir(dir).map_err(|e| WalError::io("read directory", dir, &e))?;
    let mut removed = false;
    for ent in rd.flatten() {
        if ent.path().extension().and_then(|e| e.to_str()) == Some(TMP_EXT) {
            disk.remove(&ent.path())?;
            removed = true;
        }
    }
    if removed {
        disk.sync_dir(dir)?;
    }
    Ok(())
}

impl Wal {
    /// Create a new WAL in `dir` (created if missing; must not already hold segments).
    pub fn create(dir: impl AsRef<Path>, metadata: Metadata) -> Result<Wal, WalError> {
        Wal::create_with(dir, metadata, WalOptions::default())
    }

    /// [`Wal::create`] with options.
    pub fn create_with(
        dir: impl AsRef<Path>,
        metadata: Metadata,
        opts: WalOptions,
    ) -> Result<Wal, WalError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| WalError::io("create directory", dir, &e))?;
        if !list_segments(dir)?.is_empty() {
            return Err(WalError::AlreadyExists {
                dir: dir.to_path_buf(),
            });
        }
        let counters = Arc::new(Counters::with_observer(opts.fsync_observer.clone()));
        let disk = Disk::new(opts.fault_hook.clone(), counters.clone());
        remove_tmp_files(dir, &disk)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            disk.sync_dir(parent)?;
        }
        let writer = Writer::new(
            dir,
            disk,
            Arc::new(Shared {
                queue: Mutex::new(Queue {
                    requests: VecDeque::new(),
                    queued_bytes: 0,
                    shutdown: false,
                    poisoned: None,
                    next_index: 1,
                    snapshot_index: 0,
                }),
                wake: Condvar::new(),
            }),
            opts.logger.clone(),
            opts.segment_size,
            opts.max_group_bytes,
            0,
            Vec::new(),
            metadata,
            None,
            None,
            1,
        );
        Wal::start(writer, 0, counters, &opts)
    }

    /// Open the WAL in `dir` and recover its durable state (see the recovery rule in the crate
    /// docs). A torn tail is cut off (and logged); corruption is an error. Appending continues
    /// in a fresh segment.
    pub fn open(dir: impl AsRef<Path>) -> Result<(Wal, Recovered), WalError> {
        Wal::open_with(dir, WalOptions::default())
    }

    /// [`Wal::open`] with options.
    pub fn open_with(
        dir: impl AsRef<Path>,
        opts: WalOptions,
    ) -> Result<(Wal, Recovered), WalError> {
        let dir = dir.as_ref();
        let names = list_segments(dir)?;
        if names.is_empty() {
            return Err(WalError::NotFound {
                dir: dir.to_path_buf(),
            });
        }
        let counters = Arc::new(Counters::with_observer(opts.fsync_observer.clone()));
        let disk = Disk::new(opts.fault_hook.clone(), counters.clone());
        remove_tmp_files(dir, &disk)?;
        let rec = recover_segments(&names, |i| {
            let path = &names[i].1;
            std::fs::read(path).map_err(|e| WalError::io("read", path, &e))
        })?;

        let segments = rec.segments.clone();
        let last = segments.last().expect("recover saw segments").clone();
        if let Some(t) = &rec.torn_tail {
            (opts.logger)(&format!(
                "wal: {}: torn tail at offset {}: dropped {} bytes ({})",
                t.path.display(),
                t.offset,
                t.dropped_bytes,
                t.reason
            ));
        }
        // The last segment is finished here: cut off the torn tail and the unused preallocated
        // space; appends go to a new segment.
        {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&last.path)
                .map_err(|e| WalError::io("open", &last.path, &e))?;
            let len = f
                .metadata()
                .map_err(|e| WalError::io("stat", &last.path, &e))?
                .len();
            if len != rec.last_valid_end {
                disk.set_len(&f, &last.path, rec.last_valid_end)?;
                disk.sync_all(&f, &last.path)?;
            }
        }
        let next_seq = segments.last().map_or(0, |s| s.name.seq + 1);
        let r = rec.recovered;
        let next_index = r.last_index() + 1;
        let snapshot_index = r.snapshot.map_or(0, |s| s.index);
        let writer = Writer::new(
            dir,
            disk,
            Arc::new(Shared {
                queue: Mutex::new(Queue {
                    requests: VecDeque::new(),
                    queued_bytes: 0,
                    shutdown: false,
                    poisoned: None,
                    next_index,
                    snapshot_index,
                }),
                wake: Condvar::new(),
            }),
            opts.logger.clone(),
            opts.segment_size,
            opts.max_group_bytes,
            rec.end_crc,
            segments,
            r.metadata,
            r.hard_state,
            r.snapshot,
            next_index,
        );
        let wal = Wal::start(writer, next_seq, counters, &opts)?;
        Ok((wal, r))
    }

    fn start(
        mut writer: Writer,
        seq: u64,
        counters: Arc<Counters>,
        opts: &WalOptions,
    ) -> Result<Wal, WalError> {
        writer.open_segment(seq)?;
        let shared = writer.shared.clone();
        let dir = writer.dir.clone();
        let handle = std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| WalError::io("spawn writer thread", &dir, &e))?;
        Ok(Wal {
            dir,
            shared,
            counters,
            capacity: opts.queue_capacity,
            capacity_bytes: opts.queue_capacity_bytes,
            writer: Some(handle),
        })
    }

    /// The WAL's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Check a batch against the append rules, given what has been submitted so far, and
    /// advance the submitted state if it passes.
    fn validate(q: &mut Queue, b: &Batch) -> Result<(), WalError> {
        let bad = |reason: String| Err(WalError::InvalidBatch { reason });
        let (mut next, mut snap) = (q.next_index, q.snapshot_index);
        if let Some(s) = b.snapshot {
            if s.index < snap {
                return bad(format!(
                    "snapshot marker {} is older than marker {snap}",
                    s.index
                ));
            }
            snap = s.index;
            next = next.max(s.index + 1);
        }
        if let Some(t) = b.truncate_from {
            if t <= snap || t > next {
                return bad(format!(
                    "truncate from {t} outside ({snap}, {next}] (snapshot, next index)"
                ));
            }
            next = t;
        }
        for e in &b.entries {
            if e.index <= snap || e.index > next {
                return bad(format!(
                    "entry index {} outside ({snap}, {next}] (snapshot, next index)",
                    e.index
                ));
            }
            if e.data.len() > MAX_PAYLOAD - 16 {
                return bad(format!(
                    "entry {} of {} bytes exceeds the record limit",
                    e.index,
                    e.data.len()
                ));
            }
            next = e.index + 1;
        }
        q.next_index = next;
        q.snapshot_index = snap;
        Ok(())
    }

    fn enqueue(&self, req: Request) -> Result<(), WalError> {
        let mut q = self.shared.queue.lock();
        if let Some(cause) = &q.poisoned {
            return Err(WalError::Poisoned {
                cause: cause.clone(),
            });
        }
        if q.shutdown {
            return Err(WalError::Closed);
        }
        let size = req.size();
        if q.requests.len() >= self.capacity
            || (!q.requests.is_empty() && q.queued_bytes + size > self.capacity_bytes)
        {
            return Err(WalError::QueueFull {
                requests: q.requests.len(),
                bytes: q.queued_bytes,
            });
        }
        if let Request::Append(b, _) = &req {
            Wal::validate(&mut q, b)?;
        }
        q.queued_bytes += size;
        q.requests.push_back(req);
        drop(q);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Queue `batch` without blocking. `done` runs on the writer thread once the batch is on
    /// disk (`Ok`) or has failed. On `Err` here nothing was queued and `done` is not called.
    ///
    /// Entry indexes must continue the log: each entry's index must be above the snapshot
    /// marker and at most one past the previous entry submitted (a lower index replaces the
    /// suffix from there).
    pub fn submit(&self, batch: Batch, done: Callback) -> Result<(), WalError> {
        self.enqueue(Request::Append(batch, done))
    }

    /// Queue `batch` and block until it is durable.
    pub fn append_sync(&self, batch: Batch) -> Result<(), WalError> {
        wait_for(|done| self.submit(batch, done))
    }

    /// Queue a release (see [`Wal::release_to`]) without blocking; `done` reports its outcome.
    pub fn submit_release(&self, index: u64, done: Callback) -> Result<(), WalError> {
        self.enqueue(Request::Release(index, done))
    }

    /// Delete the segments that hold nothing above `index` (log compaction after a snapshot).
    /// Only segments wholly covered by a durable snapshot marker are deleted, so write the
    /// marker for `index` first. The current segment is never deleted. Blocks until done.
    pub fn release_to(&self, index: u64) -> Result<(), WalError> {
        wait_for(|done| self.submit_release(index, done))
    }

    /// Counters for monitoring and tests.
    pub fn stats(&self) -> WalStats {
        self.counters.snapshot()
    }

    /// The cause, if an I/O error has poisoned the WAL.
    pub fn poisoned(&self) -> Option<String> {
        self.shared.queue.lock().poisoned.clone()
    }

    /// Write everything queued, stop the writer thread. Same as dropping, but reports poisoning.
    pub fn close(mut self) -> Result<(), WalError> {
        self.shutdown();
        match self.poisoned() {
            Some(cause) => Err(WalError::Poisoned { cause }),
            None => Ok(()),
        }
    }

    fn shutdown(&mut self) {
        self.shared.queue.lock().shutdown = true;
        self.shared.wake.notify_all();
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.shutdown();
    }
}
