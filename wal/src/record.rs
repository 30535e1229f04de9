//! The logical records the WAL stores, and their payload encoding.
//!
//! A record is what Raft needs back after a restart: log entries, the hard state, the snapshot
//! marker, the member metadata and suffix truncations. This module only turns a [`Record`] into
//! payload bytes and back; framing, CRCs and padding live in [`crate::codec`].
//!
//! Payloads are little-endian fixed-width integers, followed (for entries) by the opaque data:
//!
//! | type | name        | payload                                   |
//! |------|-------------|-------------------------------------------|
//! | 1    | Entry       | index u64, term u64, data (rest)          |
//! | 2    | HardState   | term u64, vote u64, commit u64            |
//! | 3    | Snapshot    | index u64, term u64                       |
//! | 4    | Metadata    | member_id u64, cluster_id u64             |
//! | 5    | Truncate    | from_index u64                            |
//!
//! Type 0 is never used, so that a zeroed header can never look like a record.

use byteorder::{ByteOrder, LittleEndian};

/// One Raft log entry. The WAL does not look inside `data` (the entry kind is encoded there by
/// the server).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Position in the Raft log (starts at 1).
    pub index: u64,
    /// Term of the leader that created the entry.
    pub term: u64,
    /// Opaque payload.
    pub data: Vec<u8>,
}

/// Raft's persistent state besides the log (Raft paper §5, Figure 2: currentTerm, votedFor) plus
/// the commit index, as etcd persists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct HardState {
    /// Latest term the member has seen.
    pub term: u64,
    /// Candidate voted for in `term` (0 = none).
    pub vote: u64,
    /// Highest index known to be committed.
    pub commit: u64,
}

/// "Everything at or below `index` is in a snapshot": entries up to here are no longer needed
/// and the log restarts after it (Raft paper §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct SnapshotMarker {
    /// Last index covered by the snapshot.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
}

/// Identity of the member that owns the WAL. Written at the start of every segment, so that any
/// suffix of segments is self-describing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Metadata {
    /// This member's ID.
    pub member_id: u64,
    /// The cluster's ID.
    pub cluster_id: u64,
}

/// One logical WAL record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A log entry. Appending index `i` also discards every older entry at or after `i`
    /// (Raft §5.3: a conflicting suffix is replaced).
    Entry(Entry),
    /// The latest hard state.
    HardState(HardState),
    /// A snapshot marker.
    Snapshot(SnapshotMarker),
    /// Member metadata.
    Metadata(Metadata),
    /// Discard every entry with index >= `from_index`.
    Truncate {
        /// First discarded index.
        from_index: u64,
    },
}

/// Record type byte for [`Record::Entry`].
pub const TYPE_ENTRY: u8 = 1;
/// Record type byte for [`Record::HardState`].
pub const TYPE_HARD_STATE: u8 = 2;
/// Record type byte for [`Record::Snapshot`].
pub const TYPE_SNAPSHOT: u8 = 3;
/// Record type byte for [`Record::Metadata`].
pub const TYPE_METADATA: u8 = 4;
/// Record type byte for [`Record::Truncate`].
pub const TYPE_TRUNCATE: u8 = 5;

/// Why a payload could not be decoded (its CRC was fine, so this is a format error, not a torn
/// write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError(pub String);

impl Record {
    /// The type byte stored in the frame header.
    pub fn type_byte(&self) -> u8 {
        match self {
            Record::Entry(_) => TYPE_ENTRY,
            Record::HardState(_) => TYPE_HARD_STATE,
            Record::Snapshot(_) => TYPE_SNAPSHOT,
            Record::Metadata(_) => TYPE_METADATA,
            Record::Truncate { .. } => TYPE_TRUNCATE,
        }
    }

    /// Length of the payload in bytes.
    pub fn payload_len(&self) -> usize {
        match self {
            Record::Entry(e) => 16 + e.data.len(),
            Record::HardState(_) => 24,
            Record::Snapshot(_) => 16,
            Record::Metadata(_) => 16,
            Record::Truncate { .. } => 8,
        }
    }

    /// Append the payload bytes to `out`.
    pub fn encode_payload(&self, out: &mut Vec<u8>) {
        let mut put = |v: u64| out.extend_from_slice(&v.to_le_bytes());
        match self {
            Record::Entry(e) => {
                put(e.index);
                put(e.term);
                out.extend_from_slice(&e.data);
            }
            Record::HardState(hs) => {
                put(hs.term);
                put(hs.vote);
                put(hs.commit);
            }
            Record::Snapshot(s) => {
                put(s.index);
                put(s.term);
            }
            Record::Metadata(m) => {
                put(m.member_id);
                put(m.cluster_id);
            }
            Record::Truncate { from_index } => put(*from_index),
        }
    }

    /// Decode a payload of type `ty`.
    pub fn decode_payload(ty: u8, p: &[u8]) -> Result<Record, PayloadError> {
        let exact = |n: usize| {
            if p.len() == n {
                Ok(())
            } else {
                Err(PayloadError(format!(
                    "record type {ty} needs a {n}-byte payload, found {}",
                    p.len()
                )))
            }
        };
        let u = |i: usize| LittleEndian::read_u64(&p[i * 8..i * 8 + 8]);
        match ty {
            TYPE_ENTRY => {
                if p.len() < 16 {
                    return Err(PayloadError(format!(
                        "entry payload of {} bytes is shorter than 16",
                        p.len()
                    )));
                }
                Ok(Record::Entry(Entry {
                    index: u(0),
                    term: u(1),
                    data: p[16..].to_vec(),
                }))
            }
            TYPE_HARD_STATE => {
                exact(24)?;
                Ok(Record::HardState(HardState {
                    term: u(0),
                    vote: u(1),
                    commit: u(2),
                }))
            }
            TYPE_SNAPSHOT => {
                exact(16)?;
                Ok(Record::Snapshot(SnapshotMarker {
                    index: u(0),
                    term: u(1),
                }))
            }
            TYPE_METADATA => {
                exact(16)?;
                Ok(Record::Metadata(Metadata {
                    member_id: u(0),
                    cluster_id: u(1),
                }))
            }
            TYPE_TRUNCATE => {
                exact(8)?;
                Ok(Record::Truncate { from_index: u(0) })
            }
            other => Err(PayloadError(format!("unknown record type {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_roundtrip_every_type() {
        let records = [
            Record::Entry(Entry {
                index: 7,
                term: 3,
                data: b"hello".to_vec(),
            }),
            Record::Entry(Entry {
                index: u64::MAX,
                term: 0,
                data: vec![],
            }),
            Record::HardState(HardState {
                term: 1,
                vote: 2,
                commit: 3,
            }),
            Record::Snapshot(SnapshotMarker { index: 9, term: 4 }),
            Record::Metadata(Metadata {
                member_id: 11,
                cluster_id: 12,
            }),
            Record::Truncate { from_index: 5 },
        ];
        for r in records {
            let mut buf = Vec::new();
            r.encode_payload(&mut buf);
            assert_eq!(buf.len(), r.payload_len());
            assert_eq!(Record::decode_payload(r.type_byte(), &buf).unwrap(), r);
        }
    }

    #[test]
    fn wrong_payload_lengths_are_errors() {
        assert!(Record::decode_payload(TYPE_HARD_STATE, &[0; 23]).is_err());
        assert!(Record::decode_payload(TYPE_SNAPSHOT, &[0; 17]).is_err());
        assert!(Record::decode_payload(TYPE_ENTRY, &[0; 15]).is_err());
        assert!(Record::decode_payload(0, &[]).is_err());
        assert!(Record::decode_payload(99, &[0; 8]).is_err());
    }
}
