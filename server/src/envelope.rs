//! What a Raft log entry carries: a client request wrapped in a small envelope.
//!
//! Every write (and every linearizable read that goes through the log) becomes one Raft entry.
//! The apply thread must be able to (1) decode the request and apply it to mvcc, and (2) find the
//! client waiting for the result on *this* member, if any. So the entry holds:
//!
//! ```text
//! +---------+-----------------+------+----------------------------------+
//! | version | request id (LE) | kind | protobuf bytes of the etcd request|
//! |  1 byte |     8 bytes     | 1 B  |  (prost encoding of e.g. PutRequest)
//! +---------+-----------------+------+----------------------------------+
//! ```
//!
//! The request id is unique across the cluster (see [`IdGenerator`]); a member answers a client
//! when it applies an entry whose id it handed out. The protobuf bytes are exactly etcd's
//! message, so the format needs no second schema and stays readable with etcd's `.proto` files.
//! (etcd wraps requests the same way, in `InternalRaftRequest{header{ID}, oneof request}`.)
//!
//! Decoding is total: any byte string gives either an [`Envelope`] or a typed
//! [`EnvelopeError`], never a panic (proptested below).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use keel_net::proto::etcdserverpb as pb;
use prost::Message;

/// Format version written in the first byte.
pub const ENVELOPE_VERSION: u8 = 1;

const HEADER_LEN: usize = 1 + 8 + 1;

/// A replicated request.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// KV.Range through the log (linearizable read without ReadIndex).
    Range(pb::RangeRequest),
    /// KV.Put.
    Put(pb::PutRequest),
    /// KV.DeleteRange.
    DeleteRange(pb::DeleteRangeRequest),
    /// KV.Txn.
    Txn(pb::TxnRequest),
    /// KV.Compact.
    Compaction(pb::CompactionRequest),
    /// Lease.LeaseGrant.
    LeaseGrant(pb::LeaseGrantRequest),
    /// Lease.LeaseRevoke (also used by the leader to expire leases).
    LeaseRevoke(pb::LeaseRevokeRequest),
    /// Internal: persist remaining lease TTLs.
    LeaseCheckpoint(pb::LeaseCheckpointRequest),
    /// Internal: a member publishes its name and client URLs (etcd publishes its
    /// `Attributes` through Raft the same way); `peer_urls` is left empty.
    MemberAttributes(pb::Member),
    /// Cluster.MemberUpdate: new peer URLs for a member (no Raft configuration change).
    MemberUpdate(pb::MemberUpdateRequest),
    /// Maintenance.Alarm ACTIVATE / DEACTIVATE, and a member raising NOSPACE when a request
    /// would exceed its space quota (etcd's `InternalRaftRequest.alarm`): every member applies
    /// it to its copy of the cluster's alarms.
    Alarm(pb::AlarmRequest),
}

impl Request {
    fn kind(&self) -> u8 {
        match self {
            Request::Range(_) => 1,
            Request::Put(_) => 2,
            Request::DeleteRange(_) => 3,
            Request::Txn(_) => 4,
            Request::Compaction(_) => 5,
            Request::LeaseGrant(_) => 6,
            Request::LeaseRevoke(_) => 7,
            Request::LeaseCheckpoint(_) => 8,
            Request::MemberAttributes(_) => 9,
            Request::MemberUpdate(_) => 10,
            Request::Alarm(_) => 11,
        }
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        // Encoding into a Vec cannot fail (it grows as needed).
        let _ = match self {
            Request::Range(m) => m.encode(out),
            Request::Put(m) => m.encode(out),
            Request::DeleteRange(m) => m.encode(out),
            Request::Txn(m) => m.encode(out),
            Request::Compaction(m) => m.encode(out),
            Request::LeaseGrant(m) => m.encode(out),
            Request::LeaseRevoke(m) => m.encode(out),
            Request::LeaseCheckpoint(m) => m.encode(out),
            Request::MemberAttributes(m) => m.encode(out),
            Request::MemberUpdate(m) => m.encode(out),
            Request::Alarm(m) => m.encode(out),
        };
    }

    fn body_len(&self) -> usize {
        match self {
            Request::Range(m) => m.encoded_len(),
            Request::Put(m) => m.encoded_len(),
            Request::DeleteRange(m) => m.encoded_len(),
            Request::Txn(m) => m.encoded_len(),
            Request::Compaction(m) => m.encoded_len(),
            Request::LeaseGrant(m) => m.encoded_len(),
            Request::LeaseRevoke(m) => m.encoded_len(),
            Request::LeaseCheckpoint(m) => m.encoded_len(),
            Request::MemberAttributes(m) => m.encoded_len(),
            Request::MemberUpdate(m) => m.encoded_len(),
            Request::Alarm(m) => m.encoded_len(),
        }
    }
}

/// A request with the id of the client call that proposed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// Cluster-unique request id (0 = nobody waits, e.g. an internal lease expiry).
    pub id: u64,
    /// The request.
    pub request: Request,
}

/// Why bytes are not an envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Shorter than the 10-byte header.
    Truncated {
        /// Bytes present.
        len: usize,
    },
    /// Written by an unknown format version.
    UnknownVersion(u8),
    /// Unknown request kind byte.
    UnknownKind(u8),
    /// The protobuf body does not decode.
    Body(String),
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvelopeError::Truncated { len } => write!(
                f,
                "raft entry payload truncated: {len} bytes, header needs {HEADER_LEN}"
            ),
            EnvelopeError::UnknownVersion(v) => {
                write!(f, "raft entry payload has unknown version {v}")
            }
            EnvelopeError::UnknownKind(k) => {
                write!(f, "raft entry payload has unknown request kind {k}")
            }
            EnvelopeError::Body(e) => write!(f, "raft entry payload body does not decode: {e}"),
        }
    }
}

impl std::error::Error for EnvelopeError {}

impl Envelope {
    /// Encode for a Raft entry.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.request.body_len());
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&self.id.to_le_bytes());
        out.push(self.request.kind());
        self.request.encode_body(&mut out);
        out
    }

    /// Decode a Raft entry's payload.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        if bytes.len() < HEADER_LEN {
            return Err(EnvelopeError::Truncated { len: bytes.len() });
        }
        if bytes[0] != ENVELOPE_VERSION {
            return Err(EnvelopeError::UnknownVersion(bytes[0]));
        }
        let id = u64::from_le_bytes(bytes[1..9].try_into().expect("8 bytes"));
        let body = &bytes[HEADER_LEN..];
        let bad = |e: prost::DecodeError| EnvelopeError::Body(e.to_string());
        let request = match bytes[9] {
            1 => Request::Range(pb::RangeRequest::decode(body).map_err(bad)?),
            2 => Request::Put(pb::PutRequest::decode(body).map_err(bad)?),
            3 => Request::DeleteRange(pb::DeleteRangeRequest::decode(body).map_err(bad)?),
            4 => Request::Txn(pb::TxnRequest::decode(body).map_err(bad)?),
            5 => Request::Compaction(pb::CompactionRequest::decode(body).map_err(bad)?),
            6 => Request::LeaseGrant(pb::LeaseGrantRequest::decode(body).map_err(bad)?),
            7 => Request::LeaseRevoke(pb::LeaseRevokeRequest::decode(body).map_err(bad)?),
            8 => Request::LeaseCheckpoint(pb::LeaseCheckpointRequest::decode(body).map_err(bad)?),
            9 => Request::MemberAttributes(pb::Member::decode(body).map_err(bad)?),
            10 => Request::MemberUpdate(pb::MemberUpdateRequest::decode(body).map_err(bad)?),
            11 => Request::Alarm(pb::AlarmRequest::decode(body).map_err(bad)?),
            k => return Err(EnvelopeError::UnknownKind(k)),
        };
        Ok(Envelope { id, request })
    }
}

/// Cluster-unique request ids, as etcd's `idutil.Generator` makes them:
///
/// ```text
/// | low 16 bits of member id | 40 bits of Unix ms at start | 8-bit counter |
///                            \_______ incremented together as 48 bits ______/
/// ```
///
/// Different members differ in the prefix (member ids are hashes, so their low 16 bits differ
/// with high probability); one member never repeats an id unless it restarts within the same
/// millisecond window after issuing more ids than milliseconds elapsed.
#[derive(Debug)]
pub struct IdGenerator {
    prefix: u64,
    suffix: AtomicU64,
}

const SUFFIX_BITS: u32 = 48;
const SUFFIX_MASK: u64 = (1 << SUFFIX_BITS) - 1;

impl IdGenerator {
    /// A generator for `member_id`, seeded with the current time.
    pub fn new(member_id: u64) -> IdGenerator {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        IdGenerator::with_time(member_id, ms)
    }

    /// A generator seeded with `unix_ms` (for tests).
    pub fn with_time(member_id: u64, unix_ms: u64) -> IdGenerator {
        IdGenerator {
            prefix: (member_id & 0xffff) << SUFFIX_BITS,
            suffix: AtomicU64::new((unix_ms & ((1 << 40) - 1)) << 8),
        }
    }

    /// The next id (never 0 in practice: the prefix or the time part is non-zero).
    pub fn next(&self) -> u64 {
        let s = self.suffix.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        self.prefix | (s & SUFFIX_MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::request_op::Request as Op;
    use proptest::prelude::*;

    fn samples() -> Vec<Request> {
        vec![
            Request::Range(pb::RangeRequest {
                key: b"a".to_vec(),
                range_end: b"b".to_vec(),
                limit: 3,
                ..Default::default()
            }),
            Request::Put(pb::PutRequest {
                key: b"foo".to_vec(),
                value: b"bar".to_vec(),
                lease: 7,
                prev_kv: true,
                ..Default::default()
            }),
            Request::Put(pb::PutRequest::default()),
            Request::DeleteRange(pb::DeleteRangeRequest {
                key: b"k".to_vec(),
                range_end: vec![0],
                prev_kv: true,
            }),
            Request::Txn(pb::TxnRequest {
                compare: vec![pb::Compare {
                    key: b"c".to_vec(),
                    target: 2,
                    result: 1,
                    ..Default::default()
                }],
                success: vec![pb::RequestOp {
                    request: Some(Op::RequestPut(pb::PutRequest {
                        key: b"x".to_vec(),
                        ..Default::default()
                    })),
                }],
                failure: vec![pb::RequestOp {
                    request: Some(Op::RequestTxn(pb::TxnRequest::default())),
                }],
            }),
            Request::Compaction(pb::CompactionRequest {
                revision: 42,
                physical: true,
            }),
            Request::LeaseGrant(pb::LeaseGrantRequest { ttl: 10, id: 5 }),
            Request::LeaseRevoke(pb::LeaseRevokeRequest { id: 5 }),
            Request::LeaseCheckpoint(pb::LeaseCheckpointRequest {
                checkpoints: vec![pb::LeaseCheckpoint {
                    id: 1,
                    remaining_ttl: 3,
                }],
            }),
            Request::MemberAttributes(pb::Member {
                id: 7,
                name: "m1".into(),
                client_urls: vec!["http://127.0.0.1:2379".into()],
                ..Default::default()
            }),
            Request::MemberUpdate(pb::MemberUpdateRequest {
                id: 9,
                peer_urls: vec!["http://127.0.0.1:2390".into()],
            }),
            Request::Alarm(pb::AlarmRequest {
                action: pb::alarm_request::AlarmAction::Activate as i32,
                member_id: 0x8e9e_05c5_2164_694d,
                alarm: pb::AlarmType::Nospace as i32,
            }),
            Request::Alarm(pb::AlarmRequest {
                action: pb::alarm_request::AlarmAction::Deactivate as i32,
                member_id: 1,
                alarm: pb::AlarmType::Corrupt as i32,
            }),
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        for (i, request) in samples().into_iter().enumerate() {
            let e = Envelope {
                id: 0xdead_beef_0000 + i as u64,
                request,
            };
            let bytes = e.encode();
            assert_eq!(bytes[0], ENVELOPE_VERSION);
            assert_eq!(Envelope::decode(&bytes).unwrap(), e);
        }
    }

    #[test]
    fn header_errors_are_typed() {
        assert_eq!(
            Envelope::decode(&[]),
            Err(EnvelopeError::Truncated { len: 0 })
        );
        assert_eq!(
            Envelope::decode(&[1; 9]),
            Err(EnvelopeError::Truncated { len: 9 })
        );
        let mut b = Envelope {
            id: 1,
            request: Request::Put(pb::PutRequest::default()),
        }
        .encode();
        b[0] = 2;
        assert_eq!(Envelope::decode(&b), Err(EnvelopeError::UnknownVersion(2)));
        b[0] = 1;
        b[9] = 200;
        assert_eq!(Envelope::decode(&b), Err(EnvelopeError::UnknownKind(200)));
        let mut b = Envelope {
            id: 1,
            request: Request::Put(pb::PutRequest {
                key: b"abc".to_vec(),
                ..Default::default()
            }),
        }
        .encode();
        b.truncate(b.len() - 1);
        assert!(matches!(Envelope::decode(&b), Err(EnvelopeError::Body(_))));
    }

    #[test]
    fn ids_are_unique_and_carry_the_member_prefix() {
        let g = IdGenerator::with_time(0x1234_5678_9abc_def0, 1_700_000_000_000);
        let a = g.next();
        let b = g.next();
        assert_ne!(a, b);
        assert_eq!(a >> 48, 0xdef0);
        assert_eq!(b, a + 1);
        let other = IdGenerator::with_time(0x1111, 1_700_000_000_000);
        assert_ne!(other.next() >> 48, a >> 48);
        // The 48-bit suffix wraps without touching the prefix.
        let w = IdGenerator {
            prefix: 7 << 48,
            suffix: AtomicU64::new(SUFFIX_MASK),
        };
        assert_eq!(w.next(), 7 << 48);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Envelope::decode(&bytes);
        }

        #[test]
        fn random_bodies_after_a_valid_header_never_panic(kind in 0u8..13, body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut b = vec![ENVELOPE_VERSION];
            b.extend_from_slice(&9u64.to_le_bytes());
            b.push(kind);
            b.extend_from_slice(&body);
            if let Ok(e) = Envelope::decode(&b) {
                prop_assert_eq!(e.id, 9);
            }
        }

        #[test]
        fn puts_round_trip(id in any::<u64>(), key in proptest::collection::vec(any::<u8>(), 0..32), value in proptest::collection::vec(any::<u8>(), 0..32), lease in any::<i64>()) {
            let e = Envelope { id, request: Request::Put(pb::PutRequest { key, value, lease, ..Default::default() }) };
            prop_assert_eq!(Envelope::decode(&e.encode()).unwrap(), e);
        }
    }
}
