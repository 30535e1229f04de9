//! The Raft log on disk: consensus entries and hard state in the WAL, and recovery of a
//! [`MemStorage`] from it at start-up.
//!
//! The WAL stores opaque entry payloads; the entry *kind* (normal request or configuration
//! change) is the server's business, so each WAL entry's data is
//!
//! ```text
//! | kind: 0 = normal, 1 = conf change | the consensus entry's data |
//! ```
//!
//! Raft only reads its `Storage`; the server writes it after the WAL made each Ready durable
//! (entries appended, hard state saved), exactly as etcd appends to `raft.MemoryStorage` after
//! `wal.Save`. On restart the WAL's recovered entries and hard state rebuild that storage.

use std::fmt;
use std::path::Path;

use keel_consensus::{ConfState, Entry, EntryKind, HardState, MemStorage, Snapshot, SnapshotMeta};
use keel_wal as wal;

/// Kind byte of a normal entry.
pub const KIND_NORMAL: u8 = 0;
/// Kind byte of a configuration-change entry.
pub const KIND_CONF_CHANGE: u8 = 1;

/// A WAL entry that is not a valid Raft entry, or a WAL failure.
#[derive(Debug)]
pub enum RaftLogError {
    /// The WAL failed (I/O, corruption, ...).
    Wal(wal::WalError),
    /// An entry with an empty payload (the kind byte is missing).
    MissingKind {
        /// Raft index of the entry.
        index: u64,
    },
    /// An entry with an unknown kind byte.
    UnknownKind {
        /// Raft index of the entry.
        index: u64,
        /// The byte.
        kind: u8,
    },
    /// The recovered identity does not match the flags.
    WrongMember {
        /// Member id stored in the WAL.
        stored: u64,
        /// Member id computed from the flags.
        expected: u64,
    },
}

impl fmt::Display for RaftLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaftLogError::Wal(e) => write!(f, "wal: {e}"),
            RaftLogError::MissingKind { index } => write!(f, "wal entry {index} has no kind byte"),
            RaftLogError::UnknownKind { index, kind } => write!(f, "wal entry {index} has unknown kind {kind}"),
            RaftLogError::WrongMember { stored, expected } => write!(
                f,
                "the data directory belongs to member {stored:x}, but the flags describe member {expected:x}"
            ),
        }
    }
}

impl std::error::Error for RaftLogError {}

impl From<wal::WalError> for RaftLogError {
    fn from(e: wal::WalError) -> Self {
        RaftLogError::Wal(e)
    }
}

/// A consensus entry as the WAL stores it.
pub fn to_wal_entry(e: &Entry) -> wal::Entry {
    let mut data = Vec::with_capacity(e.data.len() + 1);
    data.push(match e.kind {
        EntryKind::Normal => KIND_NORMAL,
        EntryKind::ConfChange => KIND_CONF_CHANGE,
    });
    data.extend_from_slice(&e.data);
    wal::Entry {
        index: e.index,
        term: e.term,
        data,
    }
}

/// A WAL entry back as a consensus entry.
pub fn from_wal_entry(e: &wal::Entry) -> Result<Entry, RaftLogError> {
    let Some((&kind, data)) = e.data.split_first() else {
        return Err(RaftLogError::MissingKind { index: e.index });
    };
    let kind = match kind {
        KIND_NORMAL => EntryKind::Normal,
        KIND_CONF_CHANGE => EntryKind::ConfChange,
        k => {
            return Err(RaftLogError::UnknownKind {
                index: e.index,
                kind: k,
            })
        }
    };
    Ok(Entry {
        term: e.term,
        index: e.index,
        kind,
        data: data.to_vec(),
    })
}

/// Hard state, consensus → WAL.
pub fn to_wal_hard_state(h: &HardState) -> wal::HardState {
    wal::HardState {
        term: h.term,
        vote: h.vote,
        commit: h.commit,
    }
}

/// Hard state, WAL → consensus.
pub fn from_wal_hard_state(h: &wal::HardState) -> HardState {
    HardState {
        term: h.term,
        vote: h.vote,
        commit: h.commit,
    }
}

/// The WAL batch for one Ready: entries and hard state (snapshots come later).
pub fn ready_batch(entries: &[Entry], hard_state: Option<&HardState>) -> wal::Batch {
    wal::Batch {
        snapshot: None,
        truncate_from: None,
        entries: entries.iter().map(to_wal_entry).collect(),
        hard_state: hard_state.map(to_wal_hard_state),
    }
}

/// What opening the log gives back.
#[derive(Debug)]
pub struct OpenedLog {
    /// The WAL, ready for appends.
    pub wal: wal::Wal,
    /// Raft's storage, rebuilt from the WAL.
    pub storage: MemStorage,
    /// True when the WAL was just created (a brand-new member).
    pub fresh: bool,
}

/// Open the WAL in `dir`, or create it for a new member, and rebuild Raft's storage.
///
/// `conf_state` is the cluster configuration the storage starts from (the initial cluster; a
/// persisted membership is future work, see README).
pub fn open_log(
    dir: &Path,
    metadata: wal::Metadata,
    conf_state: ConfState,
    opts: wal::WalOptions,
) -> Result<OpenedLog, RaftLogError> {
    let has_segments = dir.is_dir() && !wal::segment::list_segments(dir)?.is_empty();
    if !has_segments {
        let wal = wal::Wal::create_with(dir, metadata, opts)?;
        let storage = MemStorage::new_with_conf_state(conf_state);
        return Ok(OpenedLog {
            wal,
            storage,
            fresh: true,
        });
    }
    let (wal, recovered) = wal::Wal::open_with(dir, opts)?;
    if recovered.metadata.member_id != metadata.member_id {
        return Err(RaftLogError::WrongMember {
            stored: recovered.metadata.member_id,
            expected: metadata.member_id,
        });
    }
    let mut storage = MemStorage::new_with_conf_state(conf_state.clone());
    if let Some(s) = recovered.snapshot {
        storage
            .apply_snapshot(Snapshot {
                meta: SnapshotMeta {
                    index: s.index,
                    term: s.term,
                    conf_state,
                },
                data: Vec::new(),
            })
            .map_err(|e| wal::WalError::Inconsistent {
                reason: format!("snapshot marker: {e}"),
            })?;
    }
    let entries: Vec<Entry> = recovered
        .entries
        .iter()
        .map(from_wal_entry)
        .collect::<Result<_, _>>()?;
    storage.append(&entries);
    if let Some(h) = recovered.hard_state {
        let mut hs = from_wal_hard_state(&h);
        // The commit index can never exceed what the log holds (a hard state written before
        // its entries were durable would otherwise point past the end).
        hs.commit = hs.commit.min(recovered.last_index());
        storage.set_hard_state(hs);
    }
    Ok(OpenedLog {
        wal,
        storage,
        fresh: false,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use keel_consensus::Storage;

    pub(crate) fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "keel-server-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn entries_round_trip_with_kind() {
        for kind in [EntryKind::Normal, EntryKind::ConfChange] {
            let e = Entry {
                term: 3,
                index: 9,
                kind,
                data: b"xyz".to_vec(),
            };
            let w = to_wal_entry(&e);
            assert_eq!(w.data.len(), 4);
            assert_eq!(from_wal_entry(&w).unwrap(), e);
        }
        let empty = Entry {
            term: 1,
            index: 1,
            kind: EntryKind::Normal,
            data: vec![],
        };
        assert_eq!(from_wal_entry(&to_wal_entry(&empty)).unwrap(), empty);
        assert!(matches!(
            from_wal_entry(&wal::Entry {
                index: 4,
                term: 1,
                data: vec![]
            }),
            Err(RaftLogError::MissingKind { index: 4 })
        ));
        assert!(matches!(
            from_wal_entry(&wal::Entry {
                index: 4,
                term: 1,
                data: vec![7]
            }),
            Err(RaftLogError::UnknownKind { index: 4, kind: 7 })
        ));
    }

    #[test]
    fn create_then_reopen_restores_entries_and_hard_state() {
        let dir = temp_dir("raftlog");
        let meta = wal::Metadata {
            member_id: 0xabc,
            cluster_id: 0xdef,
        };
        let conf = ConfState::with_voters(&[0xabc]);
        let opened = open_log(&dir, meta, conf.clone(), wal::WalOptions::default()).unwrap();
        assert!(opened.fresh);
        let ents: Vec<Entry> = (1..=3)
            .map(|i| Entry {
                term: 2,
                index: i,
                kind: EntryKind::Normal,
                data: vec![i as u8],
            })
            .collect();
        let hs = HardState {
            term: 2,
            vote: 0xabc,
            commit: 3,
        };
        opened
            .wal
            .append_sync(ready_batch(&ents, Some(&hs)))
            .unwrap();
        opened.wal.close().unwrap();

        let again = open_log(&dir, meta, conf.clone(), wal::WalOptions::default()).unwrap();
        assert!(!again.fresh);
        let (h, c) = again.storage.initial_state().unwrap();
        assert_eq!(h, hs);
        assert_eq!(c, conf);
        assert_eq!(again.storage.last_index().unwrap(), 3);
        assert_eq!(again.storage.entries(1, 4, u64::MAX).unwrap(), ents);
        again.wal.close().unwrap();

        let wrong = open_log(
            &dir,
            wal::Metadata {
                member_id: 1,
                cluster_id: 0xdef,
            },
            conf,
            wal::WalOptions::default(),
        );
        assert!(matches!(
            wrong,
            Err(RaftLogError::WrongMember {
                stored: 0xabc,
                expected: 1
            })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
