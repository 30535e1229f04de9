//! The writer thread: group commit.
//!
//! Producers push [`Request`]s onto a shared queue and return immediately. The writer thread
//! loops: take *everything* queued, encode it into one buffer, one `write`, one `fdatasync`,
//! then run every completion callback. While it sits in `fdatasync`, new requests pile up in
//! the queue and become the next group. Under load a group therefore covers every producer that
//! arrived during the previous fsync, and the number of fsyncs per second stays roughly constant
//! while the number of records per fsync grows with the load.
//!
//! If a write or fsync fails, the WAL is *poisoned*: the error goes to every producer in the
//! failed group, every queued and future request fails with [`WalError::Poisoned`], and nothing
//! is written any more. After a failed fsync the kernel may have dropped the dirty pages (the
//! 2018 "fsyncgate"), so neither retrying nor carrying on could guarantee there is no hole in
//! the log; only a reopen, whose recovery reads what actually reached the disk, can.

use std::collections::VecDeque;
use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::codec::{frame_len, Encoder, FLAG_GROUP_START, FLAG_HEADER_END};
use crate::error::WalError;
use crate::pipeline::Pipeline;
use crate::record::{HardState, Metadata, Record, SnapshotMarker};
use crate::recovery::SegmentInfo;
use crate::segment::{Disk, SegmentName};
use crate::wal::{Batch, Callback, Logger};

/// A unit of work for the writer thread.
pub(crate) enum Request {
    /// Make a batch durable.
    Append(Batch, Callback),
    /// Delete segments wholly covered by snapshots up to this index.
    Release(u64, Callback),
}

impl Request {
    /// Roughly the bytes this request will write (for the queue and group bounds).
    pub(crate) fn size(&self) -> u64 {
        match self {
            Request::Append(b, _) => {
                let entries: usize = b.entries.iter().map(|e| frame_len(16 + e.data.len())).sum();
                (entries + 3 * frame_len(24)) as u64
            }
            Request::Release(..) => 0,
        }
    }
}

/// State shared between producers and the writer thread, behind one mutex.
pub(crate) struct Queue {
    pub(crate) requests: VecDeque<Request>,
    /// Sum of [`Request::size`] over `requests`.
    pub(crate) queued_bytes: u64,
    pub(crate) shutdown: bool,
    /// Set (with the cause) once an I/O error has poisoned the WAL.
    pub(crate) poisoned: Option<String>,
    /// Next entry index a submitted batch may use (last submitted index + 1).
    pub(crate) next_index: u64,
    /// Highest snapshot marker index submitted.
    pub(crate) snapshot_index: u64,
}

pub(crate) struct Shared {
    pub(crate) queue: Mutex<Queue>,
    pub(crate) wake: Condvar,
}

/// Everything the writer thread owns.
pub(crate) struct Writer {
    pub(crate) dir: PathBuf,
    pub(crate) disk: Disk,
    pub(crate) shared: Arc<Shared>,
    pub(crate) logger: Logger,
    pub(crate) segment_size: u64,
    /// Most bytes one group takes from the queue (at least one request is always taken).
    pub(crate) max_group_bytes: u64,
    pub(crate) pipeline: Pipeline,
    pub(crate) encoder: Encoder,
    /// The segment being appended to (`None` only before the first one is opened).
    pub(crate) file: Option<(File, PathBuf)>,
    pub(crate) offset: u64,
    /// All live segments, oldest first; the last is the current one.
    pub(crate) segments: Vec<SegmentInfo>,
    pub(crate) metadata: Metadata,
    pub(crate) hard_state: Option<HardState>,
    pub(crate) snapshot: Option<SnapshotMarker>,
    /// Index the next entry will have (for naming the next segment).
    pub(crate) next_index: u64,
    /// Encoded frames of the group being built.
    buf: Vec<u8>,
    /// Records in `buf`.
    group_records: u64,
}

fn run_callback(cb: Callback, r: Result<(), WalError>, logger: &Logger) {
    if catch_unwind(AssertUnwindSafe(|| cb(r))).is_err() {
        logger("wal: a completion callback panicked (ignored)");
    }
}

impl Writer {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        dir: &Path,
        disk: Disk,
        shared: Arc<Shared>,
        logger: Logger,
        segment_size: u64,
        max_group_bytes: u64,
        prev_crc: u32,
        segments: Vec<SegmentInfo>,
        metadata: Metadata,
        hard_state: Option<HardState>,
        snapshot: Option<SnapshotMarker>,
        next_index: u64,
    ) -> Writer {
        Writer {
            dir: dir.to_path_buf(),
            pipeline: Pipeline::start(dir, segment_size, disk.clone()),
            disk,
            shared,
            logger,
            segment_size,
            max_group_bytes,
            encoder: Encoder::new(prev_crc),
            file: None,
            offset: 0,
            segments,
            metadata,
            hard_state,
            snapshot,
            next_index,
            buf: Vec::new(),
            group_records: 0,
        }
    }

    /// Encode one batch into `self.buf` and update the state it changes. The order — snapshot
    /// marker, truncation, entries, hard state — is the order recovery replays.
    fn encode_batch(&mut self, b: &Batch, group_start: &mut bool) {
        // Only the first record of the whole group carries the group-start flag.
        let mut flags = || {
            let f = if *group_start { FLAG_GROUP_START } else { 0 };
            *group_start = false;
            f
        };
        if let Some(s) = b.snapshot {
            self.encoder
                .encode(&Record::Snapshot(s), flags(), &mut self.buf);
            self.group_records += 1;
            self.snapshot = Some(s);
            self.next_index = self.next_index.max(s.index + 1);
            if let Some(cur) = self.segments.last_mut() {
                cur.max_marker = cur.max_marker.max(s.index);
            }
        }
        if let Some(t) = b.truncate_from {
            let r = Record::Truncate { from_index: t };
            self.encoder.encode(&r, flags(), &mut self.buf);
            self.group_records += 1;
            self.next_index = t;
        }
        for e in &b.entries {
            self.encoder.encode_entry(e, flags(), &mut self.buf);
            self.group_records += 1;
            self.next_index = e.index + 1;
        }
        if let Some(hs) = b.hard_state {
            self.encoder
                .encode(&Record::HardState(hs), flags(), &mut self.buf);
            self.group_records += 1;
            self.hard_state = Some(hs);
        }
    }

    /// Write `self.buf` at the current offset and fdatasync it.
    fn write_and_sync(&mut self) -> Result<(), WalError> {
        let (file, path) = self.file.as_ref().expect("a segment is open");
        self.disk.write_at(file, path, &self.buf, self.offset)?;
        self.disk.sync_data(file, path)?;
        self.offset += self.buf.len() as u64;
        self.disk
            .counters
            .bytes
            .fetch_add(self.buf.len() as u64, Relaxed);
        Ok(())
    }

    /// Open segment `seq`: take a preallocated file, write the header records (metadata, hard
    /// state, snapshot marker: enough to recover from this segment onward), fdatasync, rename
    /// it into place and fsync the directory.
    pub(crate) fn open_segment(&mut self, seq: u64) -> Result<(), WalError> {
        let (tmp, file) = self.pipeline.take()?;
        let name = SegmentName {
            seq,
            first_index: self.next_index,
        };
        self.buf.clear();
        self.group_records = 0;
        let mut header = vec![Record::Metadata(self.metadata)];
        header.extend(self.hard_state.map(Record::HardState));
        header.extend(self.snapshot.map(Record::Snapshot));
        for (i, r) in header.iter().enumerate() {
            let mut flags = if i == 0 { FLAG_GROUP_START } else { 0 };
            if i == header.len() - 1 {
                flags |= FLAG_HEADER_END;
            }
            self.encoder.encode(r, flags, &mut self.buf);
        }
        self.disk.write_at(&file, &tmp, &self.buf, 0)?;
        self.disk.sync_data(&file, &tmp)?;
        let path = self.dir.join(name.file_name());
        self.disk.rename(&tmp, &path)?;
        self.disk.sync_dir(&self.dir)?;
        let c = &self.disk.counters;
        c.bytes.fetch_add(self.buf.len() as u64, Relaxed);
        c.records.fetch_add(header.len() as u64, Relaxed);
        c.segments_created.fetch_add(1, Relaxed);
        self.offset = self.buf.len() as u64;
        self.file = Some((file, path.clone()));
        self.segments.push(SegmentInfo {
            name,
            path,
            max_marker: self.snapshot.map_or(0, |s| s.index),
        });
        Ok(())
    }

    /// Finish the current segment (cut off its unused preallocated space, fsync) and open the
    /// next one.
    fn cut(&mut self) -> Result<(), WalError> {
        {
            let (file, path) = self.file.as_ref().expect("a segment is open");
            self.disk.set_len(file, path, self.offset)?;
            self.disk.sync_all(file, path)?;
        }
        let seq = self.segments.last().map_or(0, |s| s.name.seq + 1);
        self.open_segment(seq)
    }

    /// Delete the oldest segments whose every entry is covered by a durable snapshot marker
    /// `<= index`, keeping enough for recovery: with segments `S_0..S_n` (`S_n` current), the
    /// prefix `S_0..S_{k-1}` may go if `F = max(first_index(S_1..S_k)) - 1` — the highest index
    /// any of them can hold — is `<= index` and `<=` some snapshot marker recorded in
    /// `S_k..S_n`. (The marker must survive, or the entries between it and `S_k` would be lost.)
    fn release(&mut self, index: u64) -> Result<(), WalError> {
        let n = self.segments.len();
        let mut suffix_marker = vec![0u64; n + 1];
        for i in (0..n).rev() {
            suffix_marker[i] = suffix_marker[i + 1].max(self.segments[i].max_marker);
        }
        let mut k_best = 0;
        let mut highest_below = 0u64;
        for (k, seg) in self.segments.iter().enumerate().skip(1) {
            highest_below = highest_below.max(seg.name.first_index.saturating_sub(1));
            if highest_below <= index && highest_below <= suffix_marker[k] {
                k_best = k;
            }
        }
        if k_best == 0 {
            return Ok(());
        }
        for seg in &self.segments[..k_best] {
            self.disk.remove(&seg.path)?;
        }
        self.disk.sync_dir(&self.dir)?;
        self.segments.drain(..k_best);
        self.disk
            .counters
            .segments_released
            .fetch_add(k_best as u64, Relaxed);
        Ok(())
    }

    /// Mark the WAL poisoned and fail every queued request with [`WalError::Poisoned`].
    fn poison(&mut self, err: &WalError) {
        let drained = {
            let mut q = self.shared.queue.lock();
            if q.poisoned.is_none() {
                q.poisoned = Some(err.to_string());
            }
            q.queued_bytes = 0;
            std::mem::take(&mut q.requests)
        };
        (self.logger)(&format!("wal: poisoned, refusing further appends: {err}"));
        let cause = err.to_string();
        for r in drained {
            let cb = match r {
                Request::Append(_, cb) | Request::Release(_, cb) => cb,
            };
            run_callback(
                cb,
                Err(WalError::Poisoned {
                    cause: cause.clone(),
                }),
                &self.logger,
            );
        }
    }

    /// The writer thread's main loop.
    pub(crate) fn run(mut self) {
        let mut poisoned: Option<String> = None;
        loop {
            let requests = {
                let mut q = self.shared.queue.lock();
                while q.requests.is_empty() && !q.shutdown {
                    self.shared.wake.wait(&mut q);
                }
                if q.requests.is_empty() {
                    return; // shutdown, and everything queued has been handled
                }
                // Everything queued, up to the group byte budget.
                let mut taken = Vec::new();
                let mut bytes = 0;
                while let Some(front) = q.requests.front() {
                    let size = front.size();
                    if !taken.is_empty() && bytes + size > self.max_group_bytes {
                        break;
                    }
                    bytes += size;
                    q.queued_bytes -= size;
                    taken.extend(q.requests.pop_front());
                }
                taken
            };
            if let Some(cause) = &poisoned {
                for r in requests {
                    let cb = match r {
                        Request::Append(_, cb) | Request::Release(_, cb) => cb,
                    };
                    run_callback(
                        cb,
                        Err(WalError::Poisoned {
                            cause: cause.clone(),
                        }),
                        &self.logger,
                    );
                }
                continue;
            }

            // 1. Encode every queued batch into one buffer.
            self.buf.clear();
            self.group_records = 0;
            let mut group_start = true;
            let mut appends = Vec::new();
            let mut releases = Vec::new();
            for r in requests {
                match r {
                    Request::Append(b, cb) => {
                        self.encode_batch(&b, &mut group_start);
                        appends.push(cb);
                    }
                    Request::Release(i, cb) => releases.push((i, cb)),
                }
            }

            // 2. One write + one fdatasync for all of them.
            let result = if self.buf.is_empty() {
                Ok(())
            } else {
                self.write_and_sync()
            };
            if let Err(e) = result {
                poisoned = Some(e.to_string());
                self.poison(&e);
                for cb in appends {
                    run_callback(cb, Err(e.clone()), &self.logger);
                }
                for (_, cb) in releases {
                    run_callback(cb, Err(e.clone()), &self.logger);
                }
                continue;
            }
            let c = &self.disk.counters;
            if !self.buf.is_empty() {
                c.group_commits.fetch_add(1, Relaxed);
            }
            c.batches.fetch_add(appends.len() as u64, Relaxed);
            c.records.fetch_add(self.group_records, Relaxed);
            c.max_batches_per_group
                .fetch_max(appends.len() as u64, Relaxed);

            // 3. Durable: tell the producers.
            for cb in appends {
                run_callback(cb, Ok(()), &self.logger);
            }

            // 4. Housekeeping that must follow the durable records.
            let mut failure = None;
            let mut released = Vec::new();
            for (index, cb) in releases {
                let r = match &failure {
                    Some(e) => Err(WalError::clone(e)),
                    None => self.release(index),
                };
                if let Err(e) = &r {
                    failure.get_or_insert(e.clone());
                }
                released.push((cb, r));
            }
            if failure.is_none() && self.offset >= self.segment_size {
                if let Err(e) = self.cut() {
                    failure = Some(e);
                }
            }
            // Poison before reporting, so that a producer told about the failure already sees
            // the WAL refusing appends.
            if let Some(e) = failure {
                poisoned = Some(e.to_string());
                self.poison(&e);
            }
            for (cb, r) in released {
                run_callback(cb, r, &self.logger);
            }
        }
    }
}
