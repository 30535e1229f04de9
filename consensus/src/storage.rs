//! The durable log as Raft sees it: a trait the server implements over its write-ahead log,
//! and [`MemStorage`], an in-memory implementation for tests, the simulator and benchmarks.
//!
//! Raft only *reads* storage. The application writes to it while handling a
//! [`crate::Ready`]: append `entries`, save `hard_state`, install `snapshot`.

use crate::errors::StorageError;
use crate::types::{ConfState, Entry, HardState, Snapshot, SnapshotMeta};

/// Read access to the persisted log, hard state and latest snapshot.
///
/// Indexes: entries `first_index()..=last_index()` are available; the entry just before
/// `first_index()` is covered by the snapshot and only its term is known (`term(first-1)`).
pub trait Storage {
    /// The persisted hard state and the configuration of the latest snapshot.
    fn initial_state(&self) -> Result<(HardState, ConfState), StorageError>;
    /// Entries in `lo..hi`, stopping early once their payload exceeds `max_size` bytes (at
    /// least one entry is returned if any is available). `Compacted` if `lo < first_index()`.
    fn entries(&self, lo: u64, hi: u64, max_size: u64) -> Result<Vec<Entry>, StorageError>;
    /// The term of entry `index`, for `first_index()-1 ..= last_index()`.
    fn term(&self, index: u64) -> Result<u64, StorageError>;
    /// The index of the first entry still in the log (snapshot index + 1).
    fn first_index(&self) -> Result<u64, StorageError>;
    /// The index of the last entry (the snapshot index when the log is empty).
    fn last_index(&self) -> Result<u64, StorageError>;
    /// The most recent snapshot, sent to followers that fell behind the compacted log (§7).
    fn snapshot(&self) -> Result<Snapshot, StorageError>;
}

/// An in-memory [`Storage`]. `Clone` copies the whole state: the simulator uses that to keep
/// a member's durable state across a crash.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    hard_state: HardState,
    snapshot: Snapshot,
    /// `entries[i]` has index `snapshot.meta.index + 1 + i`.
    entries: Vec<Entry>,
}

impl MemStorage {
    /// An empty log whose configuration is `conf_state` (a brand-new cluster).
    pub fn new_with_conf_state(conf_state: ConfState) -> MemStorage {
        MemStorage {
            hard_state: HardState::default(),
            snapshot: Snapshot {
                meta: SnapshotMeta {
                    index: 0,
                    term: 0,
                    conf_state,
                },
                data: Vec::new(),
            },
            entries: Vec::new(),
        }
    }

    fn offset(&self) -> u64 {
        self.snapshot.meta.index
    }

    /// The saved hard state.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Saves the hard state.
    pub fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    /// Appends entries, first discarding any persisted entries at or after the first new index
    /// (they conflict with the leader's log, §5.3).
    ///
    /// # Panics
    /// If the new entries would leave a gap after the last entry, or start before the snapshot.
    pub fn append(&mut self, ents: &[Entry]) {
        if self.prepare_append(ents) {
            self.entries.extend_from_slice(ents);
        }
    }

    /// Like [`MemStorage::append`], taking ownership (no copy of the payloads).
    pub fn append_owned(&mut self, ents: Vec<Entry>) {
        if self.prepare_append(&ents) {
            self.entries.extend(ents);
        }
    }

    /// Checks placement and truncates the conflicting suffix; false if `ents` is empty.
    fn prepare_append(&mut self, ents: &[Entry]) -> bool {
        let Some(first) = ents.first() else {
            return false;
        };
        let offset = self.offset();
        assert!(
            first.index > offset,
            "append at index {} overlaps the snapshot at {}",
            first.index,
            offset
        );
        let last = offset + self.entries.len() as u64;
        assert!(
            first.index <= last + 1,
            "append at index {} leaves a gap after last index {}",
            first.index,
            last
        );
        self.entries.truncate((first.index - offset - 1) as usize);
        true
    }

    /// Replaces the whole state with a snapshot received from the leader (§7).
    pub fn apply_snapshot(&mut self, snap: Snapshot) -> Result<(), StorageError> {
        if snap.meta.index <= self.snapshot.meta.index && self.snapshot.meta.index > 0 {
            return Err(StorageError::SnapshotOutOfDate);
        }
        self.hard_state.commit = self.hard_state.commit.max(snap.meta.index);
        if self.hard_state.term < snap.meta.term {
            self.hard_state.term = snap.meta.term;
        }
        self.entries.clear();
        self.snapshot = snap;
        Ok(())
    }

    /// Records a snapshot of the application state at `index` (which must be applied), then
    /// drops the log up to `index` (log compaction, §7).
    pub fn create_snapshot(
        &mut self,
        index: u64,
        conf_state: ConfState,
        data: Vec<u8>,
    ) -> Result<(), StorageError> {
        if index <= self.snapshot.meta.index {
            return Err(StorageError::SnapshotOutOfDate);
        }
        let term = self.term(index)?;
        self.compact(index)?;
        self.snapshot = Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                conf_state,
            },
            data,
        };
        Ok(())
    }

    /// Discards entries up to and including `index` (which the snapshot must cover).
    fn compact(&mut self, index: u64) -> Result<(), StorageError> {
        let offset = self.offset();
        if index <= offset {
            return Err(StorageError::Compacted);
        }
        let last = offset + self.entries.len() as u64;
        if index > last {
            return Err(StorageError::Unavailable);
        }
        self.entries.drain(..(index - offset) as usize);
        Ok(())
    }
}

impl Storage for MemStorage {
    fn initial_state(&self) -> Result<(HardState, ConfState), StorageError> {
        Ok((self.hard_state, self.snapshot.meta.conf_state.clone()))
    }

    fn entries(&self, lo: u64, hi: u64, max_size: u64) -> Result<Vec<Entry>, StorageError> {
        let offset = self.offset();
        if lo <= offset {
            return Err(StorageError::Compacted);
        }
        let last = offset + self.entries.len() as u64;
        if hi > last + 1 || lo > hi {
            return Err(StorageError::Unavailable);
        }
        let slice = &self.entries[(lo - offset - 1) as usize..(hi - offset - 1) as usize];
        Ok(limit_size(slice, max_size).to_vec())
    }

    fn term(&self, index: u64) -> Result<u64, StorageError> {
        let offset = self.offset();
        if index < offset {
            return Err(StorageError::Compacted);
        }
        if index == offset {
            return Ok(self.snapshot.meta.term);
        }
        match self.entries.get((index - offset - 1) as usize) {
            Some(e) => Ok(e.term),
            None => Err(StorageError::Unavailable),
        }
    }

    fn first_index(&self) -> Result<u64, StorageError> {
        Ok(self.offset() + 1)
    }

    fn last_index(&self) -> Result<u64, StorageError> {
        Ok(self.offset() + self.entries.len() as u64)
    }

    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        Ok(self.snapshot.clone())
    }
}

/// The longest prefix of `ents` whose payload fits in `max_size` bytes, but never empty when
/// `ents` is not (a single oversized entry must still make progress).
pub fn limit_size(ents: &[Entry], max_size: u64) -> &[Entry] {
    let mut size = 0u64;
    for (i, e) in ents.iter().enumerate() {
        size += e.payload_size();
        if i > 0 && size > max_size {
            return &ents[..i];
        }
    }
    ents
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ents(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        range.map(|i| Entry::normal(term, i, vec![0; 10])).collect()
    }

    #[test]
    fn append_truncates_conflicting_suffix() {
        let mut s = MemStorage::default();
        s.append(&ents(1..=5, 1));
        s.append(&ents(3..=4, 2));
        assert_eq!(s.last_index().unwrap(), 4);
        assert_eq!(s.term(2).unwrap(), 1);
        assert_eq!(s.term(3).unwrap(), 2);
    }

    #[test]
    fn snapshot_compacts_and_answers_terms() {
        let mut s = MemStorage::default();
        s.append(&ents(1..=5, 1));
        s.create_snapshot(3, ConfState::with_voters(&[1]), b"x".to_vec())
            .unwrap();
        assert_eq!(s.first_index().unwrap(), 4);
        assert_eq!(s.term(3).unwrap(), 1);
        assert_eq!(s.term(2), Err(StorageError::Compacted));
        assert_eq!(s.entries(3, 5, u64::MAX), Err(StorageError::Compacted));
        assert_eq!(s.entries(4, 6, u64::MAX).unwrap().len(), 2);
        assert_eq!(s.entries(4, 6, 0).unwrap().len(), 1);
    }
}
