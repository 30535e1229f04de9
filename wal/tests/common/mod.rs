//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::collections::BTreeMap;

use keel_wal::{
    Batch, Entry, HardState, Logger, Metadata, Record, Recovered, SnapshotMarker, WalOptions,
};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh, empty directory under the target dir (same filesystem as /work); removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("wal-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub const META: Metadata = Metadata {
    member_id: 0x1111,
    cluster_id: 0x2222,
};

/// A logger that keeps the lines for assertions.
pub fn capture_logger() -> (Logger, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    (
        Arc::new(move |s: &str| l.lock().unwrap().push(s.to_string())),
        lines,
    )
}

/// Small segments so tests exercise rotation.
pub fn small_opts(segment_size: u64) -> WalOptions {
    WalOptions {
        segment_size,
        ..WalOptions::default()
    }
}

/// A deterministic entry whose payload depends on (index, term).
pub fn entry(index: u64, term: u64, len: usize) -> Entry {
    let mut data = Vec::with_capacity(len);
    let mut x =
        index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ term.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.push((x as u8) | 1); // never zero: a zeroed byte is visible damage
    }
    Entry { index, term, data }
}

/// Segment files in `dir`, sorted by name.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

/// An independent model of what a sequence of records means (BTreeMap instead of the crate's
/// sorted Vec).
#[derive(Default, Clone)]
pub struct Model {
    pub meta: Option<Metadata>,
    pub hs: Option<HardState>,
    pub snap: Option<SnapshotMarker>,
    pub entries: BTreeMap<u64, Entry>,
}

impl Model {
    pub fn apply(&mut self, r: &Record) {
        match r {
            Record::Metadata(m) => self.meta = Some(*m),
            Record::HardState(h) => self.hs = Some(*h),
            Record::Snapshot(s) => {
                if self.snap.is_none_or(|o| s.index >= o.index) {
                    self.snap = Some(*s);
                    self.entries = self.entries.split_off(&(s.index + 1));
                }
            }
            Record::Truncate { from_index } => {
                self.entries.split_off(from_index);
            }
            Record::Entry(e) => {
                if self.snap.is_some_and(|s| e.index <= s.index) {
                    return;
                }
                self.entries.split_off(&e.index);
                self.entries.insert(e.index, e.clone());
            }
        }
    }
    pub fn state(&self) -> Recovered {
        Recovered {
            metadata: self.meta.unwrap(),
            hard_state: self.hs,
            snapshot: self.snap,
            entries: self.entries.values().cloned().collect(),
        }
    }
}

impl Model {
    /// Apply a batch in the order the WAL records it.
    pub fn apply_batch(&mut self, b: &Batch) {
        for r in batch_records(b) {
            self.apply(&r);
        }
    }
    /// Index of the last entry, or of the snapshot, or 0.
    pub fn last_index(&self) -> u64 {
        self.entries
            .keys()
            .next_back()
            .copied()
            .or(self.snap.map(|s| s.index))
            .unwrap_or(0)
    }
    pub fn snap_index(&self) -> u64 {
        self.snap.map_or(0, |s| s.index)
    }
}

/// The records of a batch, in the order the WAL writes them.
pub fn batch_records(b: &Batch) -> Vec<Record> {
    let mut v = Vec::new();
    v.extend(b.snapshot.map(Record::Snapshot));
    v.extend(b.truncate_from.map(|t| Record::Truncate { from_index: t }));
    v.extend(b.entries.iter().cloned().map(Record::Entry));
    v.extend(b.hard_state.map(Record::HardState));
    v
}
