//! A small, dependency-free binary format for everything Raft sends or persists.
//!
//! Integers are unsigned LEB128 varints; byte strings and lists are prefixed by their length.
//! Decoding never panics and never allocates more than the input could describe: every
//! length is checked against the bytes that remain before anything is allocated.
//!
//! ```text
//! Entry      = term index kind:u8 data:bytes
//! HardState  = term vote commit
//! ConfState  = voters:list<varint> learners:list<varint>
//! ConfChange = type:u8 node_id context:bytes
//! SnapshotMeta = index term ConfState          Snapshot = SnapshotMeta data:bytes
//! Message    = type:u8 from to term log_term index commit reject:u8 reject_hint
//!              context:bytes entries:list<Entry> has_snapshot:u8 [Snapshot]
//! ```

use std::fmt;

use crate::types::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryKind, HardState, Message, MessageType,
    Snapshot, SnapshotMeta,
};

/// Why bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    Truncated,
    /// A varint is longer than 10 bytes or overflows 64 bits.
    VarintOverflow,
    /// A length prefix claims more data than the input holds.
    LengthTooLarge {
        /// The claimed length.
        claimed: u64,
        /// Bytes that remain.
        remaining: usize,
    },
    /// An enum tag or flag has no meaning.
    InvalidTag {
        /// Which field.
        field: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// Bytes remain after a complete value.
    TrailingBytes(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "input truncated"),
            DecodeError::VarintOverflow => write!(f, "varint overflows 64 bits"),
            DecodeError::LengthTooLarge { claimed, remaining } => write!(
                f,
                "length prefix {claimed} exceeds the {remaining} bytes remaining"
            ),
            DecodeError::InvalidTag { field, tag } => write!(f, "invalid {field} tag {tag}"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} trailing bytes after value"),
        }
    }
}

impl std::error::Error for DecodeError {}

// ------------------------------------------------------------------------------ writing

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_ids(out: &mut Vec<u8>, ids: &[u64]) {
    put_varint(out, ids.len() as u64);
    for &id in ids {
        put_varint(out, id);
    }
}

// ------------------------------------------------------------------------------ reading

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::InvalidTag { field, tag }),
        }
    }

    /// A length prefix for items of at least `min_item_size` bytes each, checked against the
    /// remaining input so a hostile length cannot trigger a huge allocation.
    fn len(&mut self, min_item_size: usize) -> Result<usize, DecodeError> {
        let claimed = self.varint()?;
        let remaining = self.remaining();
        if claimed.saturating_mul(min_item_size as u64) > remaining as u64 {
            return Err(DecodeError::LengthTooLarge { claimed, remaining });
        }
        Ok(claimed as usize)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let n = self.len(1)?;
        let v = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(v)
    }

    fn ids(&mut self) -> Result<Vec<u64>, DecodeError> {
        let n = self.len(1)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.varint()?);
        }
        Ok(v)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

// ------------------------------------------------------------------------------ types

fn decode_all<T>(
    buf: &[u8],
    f: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut r = Reader::new(buf);
    let v = f(&mut r)?;
    r.finish()?;
    Ok(v)
}

impl Entry {
    /// Appends the encoding of this entry to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.term);
        put_varint(out, self.index);
        out.push(match self.kind {
            EntryKind::Normal => 0,
            EntryKind::ConfChange => 1,
        });
        put_bytes(out, &self.data);
    }

    /// Decodes an entry that fills `buf` exactly.
    pub fn decode(buf: &[u8]) -> Result<Entry, DecodeError> {
        decode_all(buf, Entry::read)
    }

    const MIN_SIZE: usize = 4;

    fn read(r: &mut Reader<'_>) -> Result<Entry, DecodeError> {
        let term = r.varint()?;
        let index = r.varint()?;
        let kind = match r.u8()? {
            0 => EntryKind::Normal,
            1 => EntryKind::ConfChange,
            tag => {
                return Err(DecodeError::InvalidTag {
                    field: "entry kind",
                    tag,
                })
            }
        };
        let data = r.bytes()?;
        Ok(Entry {
            term,
            index,
            kind,
            data,
        })
    }
}

impl HardState {
    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.term);
        put_varint(out, self.vote);
        put_varint(out, self.commit);
    }

    /// Decodes a hard state that fills `buf` exactly.
    pub fn decode(buf: &[u8]) -> Result<HardState, DecodeError> {
        decode_all(buf, |r| {
            Ok(HardState {
                term: r.varint()?,
                vote: r.varint()?,
                commit: r.varint()?,
            })
        })
    }
}

impl ConfState {
    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_ids(out, &self.voters);
        put_ids(out, &self.learners);
    }

    /// Decodes a configuration that fills `buf` exactly.
    pub fn decode(buf: &[u8]) -> Result<ConfState, DecodeError> {
        decode_all(buf, ConfState::read)
    }

    fn read(r: &mut Reader<'_>) -> Result<ConfState, DecodeError> {
        Ok(ConfState {
            voters: r.ids()?,
            learners: r.ids()?,
        })
    }
}

impl ConfChange {
    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(match self.change_type {
            ConfChangeType::AddNode => 0,
            ConfChangeType::AddLearner => 1,
            ConfChangeType::RemoveNode => 2,
        });
        put_varint(out, self.node_id);
        put_bytes(out, &self.context);
    }

    /// The encoding as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// Decodes a membership change that fills `buf` exactly.
    pub fn decode(buf: &[u8]) -> Result<ConfChange, DecodeError> {
        decode_all(buf, |r| {
            let change_type = match r.u8()? {
                0 => ConfChangeType::AddNode,
                1 => ConfChangeType::AddLearner,
                2 => ConfChangeType::RemoveNode,
                tag => {
                    return Err(DecodeError::InvalidTag {
                        field: "conf change type",
                        tag,
                    })
                }
            };
            Ok(ConfChange {
                change_type,
                node_id: r.varint()?,
                context: r.bytes()?,
            })
        })
    }
}

/// Decodes the [`ConfChange`] carried by a `ConfChange` entry.
pub fn decode_conf_change_entry(e: &Entry) -> Result<ConfChange, DecodeError> {
    ConfChange::decode(&e.data)
}

impl SnapshotMeta {
    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.index);
        put_varint(out, self.term);
        self.conf_state.encode(out);
    }

    /// Decodes snapshot metadata that fills `buf` exactly.
    pub fn decode(buf: &[u8]) -> Result<SnapshotMeta, DecodeError> {
        decode_all(buf, SnapshotMeta::read)
    }

    fn read(r: &mut Reader<'_>) -> Result<SnapshotMeta, DecodeError> {
        Ok(SnapshotMeta {
            index: r.varint()?,
            term: r.varint()?,
            conf_state: ConfState::read(r)?,
        })
    }
}

impl Snapshot {
    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.meta.encode(out);
        put_bytes(out, &self.data);
    }

    /// Decodes a snapshot that fills `buf` exactly.
    pub fn decode(buf: &[u8]) -> Result<Snapshot, DecodeError> {
        decode_all(buf, Snapshot::read)
    }

    fn read(r: &mut Reader<'_>) -> Result<Snapshot, DecodeError> {
        Ok(Snapshot {
            meta: SnapshotMeta::read(r)?,
            data: r.bytes()?,
        })
    }
}

const MESSAGE_TYPES: [MessageType; 13] = [
    MessageType::Propose,
    MessageType::Append,
    MessageType::AppendResponse,
    MessageType::RequestVote,
    MessageType::RequestVoteResponse,
    MessageType::RequestPreVote,
    MessageType::RequestPreVoteResponse,
    MessageType::Heartbeat,
    MessageType::HeartbeatResponse,
    MessageType::Snapshot,
    MessageType::ReadIndex,
    MessageType::ReadIndexResponse,
    MessageType::TimeoutNow,
];

impl Message {
    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let tag = MESSAGE_TYPES
            .iter()
            .position(|&t| t == self.msg_type)
            .expect("every message type has a tag") as u8;
        out.push(tag);
        for v in [
            self.from,
            self.to,
            self.term,
            self.log_term,
            self.index,
            self.commit,
        ] {
            put_varint(out, v);
        }
        out.push(self.reject as u8);
        put_varint(out, self.reject_hint);
        put_bytes(out, &self.context);
        put_varint(out, self.entries.len() as u64);
        for e in &self.entries {
            e.encode(out);
        }
        match &self.snapshot {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                s.encode(out);
            }
        }
    }

    /// Decodes a message that fills `buf` exactly.
    pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
        decode_all(buf, |r| {
            let tag = r.u8()?;
            let msg_type = *MESSAGE_TYPES
                .get(tag as usize)
                .ok_or(DecodeError::InvalidTag {
                    field: "message type",
                    tag,
                })?;
            let from = r.varint()?;
            let to = r.varint()?;
            let term = r.varint()?;
            let log_term = r.varint()?;
            let index = r.varint()?;
            let commit = r.varint()?;
            let reject = r.bool("reject")?;
            let reject_hint = r.varint()?;
            let context = r.bytes()?;
            let n = r.len(Entry::MIN_SIZE)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push(Entry::read(r)?);
            }
            let snapshot = if r.bool("has snapshot")? {
                Some(Snapshot::read(r)?)
            } else {
                None
            };
            Ok(Message {
                msg_type,
                from,
                to,
                term,
                log_term,
                index,
                entries,
                commit,
                reject,
                reject_hint,
                context,
                snapshot,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_edges() {
        for v in [0, 1, 127, 128, 300, u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(decode_all(&out, |r| r.varint()), Ok(v));
        }
        assert_eq!(
            decode_all(&[0xff; 11], |r| r.varint()),
            Err(DecodeError::VarintOverflow)
        );
        assert_eq!(
            decode_all(
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
                |r| r.varint()
            ),
            Err(DecodeError::VarintOverflow)
        );
    }

    #[test]
    fn huge_length_prefix_is_rejected_before_allocating() {
        let mut buf = vec![1u8, 1, 0]; // term 1, index 1, kind normal
        put_varint(&mut buf, u64::MAX / 2); // data length
        assert!(matches!(
            Entry::decode(&buf),
            Err(DecodeError::LengthTooLarge { .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut buf = Vec::new();
        HardState {
            term: 1,
            vote: 2,
            commit: 3,
        }
        .encode(&mut buf);
        buf.push(0);
        assert_eq!(HardState::decode(&buf), Err(DecodeError::TrailingBytes(1)));
    }
}
