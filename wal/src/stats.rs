//! Counters for `/metrics`: fsyncs and their durations, bytes, records, group sizes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (in microseconds) of the fsync duration histogram buckets; the last bucket
/// counts everything slower than the last bound.
pub const FSYNC_BUCKET_BOUNDS_US: [u64; 11] = [
    250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000,
];

/// A snapshot of the WAL's counters (see [`crate::Wal::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Every fdatasync/fsync of a file or the directory (group commits, segment cuts, releases).
    pub fsyncs: u64,
    /// Write groups committed: one `write` + one `fdatasync` each.
    pub group_commits: u64,
    /// Producer batches made durable.
    pub batches: u64,
    /// Records written (including segment header records).
    pub records: u64,
    /// Bytes written to segments (framed).
    pub bytes: u64,
    /// Largest number of producer batches covered by one group commit.
    pub max_batches_per_group: u64,
    /// Sum of all fsync durations, in nanoseconds.
    pub fsync_nanos_total: u64,
    /// Slowest fsync, in nanoseconds.
    pub fsync_nanos_max: u64,
    /// fsync duration histogram; bucket `i` counts durations `<= FSYNC_BUCKET_BOUNDS_US[i]`
    /// (and above the previous bound); the last bucket counts the rest.
    pub fsync_histogram: [u64; 12],
    /// Segments created.
    pub segments_created: u64,
    /// Segments deleted by [`crate::Wal::release_to`].
    pub segments_released: u64,
}

/// Called with the duration of every fsync (e.g. to feed a server's latency histogram).
pub type FsyncObserver = std::sync::Arc<dyn Fn(Duration) + Send + Sync>;

/// The live counters, shared by the writer thread and readers of [`WalStats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) observer: Option<FsyncObserver>,
    fsyncs: AtomicU64,
    pub(crate) group_commits: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) records: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) max_batches_per_group: AtomicU64,
    fsync_nanos_total: AtomicU64,
    fsync_nanos_max: AtomicU64,
    histogram: [AtomicU64; 12],
    pub(crate) segments_created: AtomicU64,
    pub(crate) segments_released: AtomicU64,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("stats", &self.snapshot())
            .finish()
    }
}

impl Counters {
    pub(crate) fn with_observer(observer: Option<FsyncObserver>) -> Counters {
        Counters {
            observer,
            ..Counters::default()
        }
    }

    pub(crate) fn record_fsync(&self, d: Duration) {
        let nanos = d.as_nanos().min(u64::MAX as u128) as u64;
        self.fsyncs.fetch_add(1, Relaxed);
        self.fsync_nanos_total.fetch_add(nanos, Relaxed);
        self.fsync_nanos_max.fetch_max(nanos, Relaxed);
        let us = nanos / 1_000;
        let bucket = FSYNC_BUCKET_BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(FSYNC_BUCKET_BOUNDS_US.len());
        self.histogram[bucket].fetch_add(1, Relaxed);
        if let Some(observe) = &self.observer {
            observe(d);
        }
    }

    pub(crate) fn snapshot(&self) -> WalStats {
        WalStats {
            fsyncs: self.fsyncs.load(Relaxed),
            group_commits: self.group_commits.load(Relaxed),
            batches: self.batches.load(Relaxed),
            records: self.records.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            max_batches_per_group: self.max_batches_per_group.load(Relaxed),
            fsync_nanos_total: self.fsync_nanos_total.load(Relaxed),
            fsync_nanos_max: self.fsync_nanos_max.load(Relaxed),
            fsync_histogram: std::array::from_fn(|i| self.histogram[i].load(Relaxed)),
            segments_created: self.segments_created.load(Relaxed),
            segments_released: self.segments_released.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets() {
        let c = Counters::default();
        c.record_fsync(Duration::from_micros(100));
        c.record_fsync(Duration::from_micros(1_500));
        c.record_fsync(Duration::from_secs(1));
        let s = c.snapshot();
        assert_eq!(s.fsyncs, 3);
        assert_eq!(s.fsync_histogram[0], 1);
        assert_eq!(s.fsync_histogram[3], 1);
        assert_eq!(s.fsync_histogram[11], 1);
        assert_eq!(s.fsync_nanos_max, 1_000_000_000);
    }
}
