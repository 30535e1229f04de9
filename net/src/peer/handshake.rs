//! The handshake: the first bytes on every peer connection, before any frame.
//!
//! The connecting side sends a fixed 39-byte [`Hello`]:
//! ```text
//!  magic "KEELPEER" (8) | version u16 LE | lane u8 | cluster id u64 LE |
//!  sender member id u64 LE | receiver member id u64 LE | crc32 of the previous 35 bytes (u32 LE)
//! ```
//! The accepting side checks it against its own identity and answers with a fixed 17-byte
//! [`Reply`]: a status byte ([`Verdict`]) followed by its own cluster id and member id, so a
//! refused sender can log *why* ("cluster id mismatch: peer is in cluster 0x2, we are in
//! 0x1"). After a refusal the acceptor closes the connection. Garbage that does not start with
//! the magic is closed without a reply (it is not a keel peer and would not understand one).
//!
//! This is what makes misdirected and stale connections fail loudly: a member restarted with
//! a new cluster, an address now used by a different member, or a removed member still
//! dialing in.

use std::fmt;
use std::io;

/// First eight bytes of every peer connection.
pub const MAGIC: [u8; 8] = *b"KEELPEER";
/// The only protocol version spoken so far.
pub const PROTOCOL_VERSION: u16 = 1;
/// Encoded length of a [`Hello`].
pub const HELLO_LEN: usize = 39;
/// Encoded length of a [`Reply`].
pub const REPLY_LEN: usize = 17;

/// Which traffic a connection carries. Snapshots get their own connection so that a
/// multi-megabyte snapshot never sits in front of heartbeats and appends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Lane {
    /// Raft messages, one per [`FrameKind::Message`](super::frame::FrameKind::Message) frame.
    Messages = 1,
    /// Snapshot streams (begin, chunks, end; the receiver answers with an ack).
    Snapshots = 2,
}

/// The connecting side's introduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version of the sender.
    pub version: u16,
    /// Traffic on this connection.
    pub lane: Lane,
    /// Cluster the sender belongs to.
    pub cluster_id: u64,
    /// Sender's member id.
    pub from: u64,
    /// Member id the sender believes it is talking to.
    pub to: u64,
}

/// Why a handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    /// I/O error or timeout while exchanging the handshake.
    Io(io::Error),
    /// The connection does not start with [`MAGIC`]: not a keel peer.
    BadMagic,
    /// The hello's checksum is wrong.
    BadCrc,
    /// The lane byte is unknown.
    UnknownLane(u8),
    /// The reply's status byte is unknown.
    UnknownVerdict(u8),
    /// The other side refused the connection.
    Refused {
        /// Why.
        verdict: Verdict,
        /// The refusing side's cluster id.
        their_cluster_id: u64,
        /// The refusing side's member id.
        their_member_id: u64,
    },
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Io(e) => write!(f, "handshake i/o error: {e}"),
            HandshakeError::BadMagic => write!(f, "not a keel peer connection (bad magic)"),
            HandshakeError::BadCrc => write!(f, "handshake checksum mismatch"),
            HandshakeError::UnknownLane(l) => write!(f, "unknown lane {l} in handshake"),
            HandshakeError::UnknownVerdict(v) => write!(f, "unknown handshake reply status {v}"),
            HandshakeError::Refused { verdict, their_cluster_id, their_member_id } => write!(
                f,
                "peer refused the connection: {verdict} (it is member {their_member_id:#x} of cluster {their_cluster_id:#x})"
            ),
        }
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandshakeError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for HandshakeError {
    fn from(e: io::Error) -> Self {
        HandshakeError::Io(e)
    }
}

impl Hello {
    /// Encodes the hello.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut out = [0u8; HELLO_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&self.version.to_le_bytes());
        out[10] = self.lane as u8;
        out[11..19].copy_from_slice(&self.cluster_id.to_le_bytes());
        out[19..27].copy_from_slice(&self.from.to_le_bytes());
        out[27..35].copy_from_slice(&self.to.to_le_bytes());
        let crc = crc32fast::hash(&out[..35]);
        out[35..39].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a hello. The version is returned as sent (the acceptor decides whether it
    /// speaks it).
    pub fn decode(bytes: &[u8; HELLO_LEN]) -> Result<Hello, HandshakeError> {
        if bytes[0..8] != MAGIC {
            return Err(HandshakeError::BadMagic);
        }
        let crc = u32::from_le_bytes([bytes[35], bytes[36], bytes[37], bytes[38]]);
        if crc32fast::hash(&bytes[..35]) != crc {
            return Err(HandshakeError::BadCrc);
        }
        let lane = match bytes[10] {
            1 => Lane::Messages,
            2 => Lane::Snapshots,
            other => return Err(HandshakeError::UnknownLane(other)),
        };
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            u64::from_le_bytes(b)
        };
        Ok(Hello {
            version: u16::from_le_bytes([bytes[8], bytes[9]]),
            lane,
            cluster_id: u64_at(11),
            from: u64_at(19),
            to: u64_at(27),
        })
    }

    /// The acceptor's decision for this hello, given its own identity and whether the sender
    /// is a current member it knows.
    pub fn verdict(&self, cluster_id: u64, local_id: u64, sender_known: bool) -> Verdict {
        if self.version != PROTOCOL_VERSION {
            Verdict::UnsupportedVersion
        } else if self.cluster_id != cluster_id {
            Verdict::ClusterMismatch
        } else if self.to != local_id {
            Verdict::WrongReceiver
        } else if self.from == local_id || !sender_known {
            Verdict::UnknownSender
        } else {
            Verdict::Accepted
        }
    }
}

/// The acceptor's answer to a [`Hello`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Verdict {
    /// Frames may follow.
    Accepted = 0,
    /// The acceptor does not speak the sender's protocol version.
    UnsupportedVersion = 1,
    /// Sender and acceptor belong to different clusters.
    ClusterMismatch = 2,
    /// The acceptor is not the member the sender meant (the address is reused or stale).
    WrongReceiver = 3,
    /// The sender is not a current member known to the acceptor (e.g. it was removed).
    UnknownSender = 4,
    /// The acceptor has too many connections.
    Busy = 5,
    /// The hello was malformed (bad checksum or lane).
    Malformed = 6,
}

impl Verdict {
    fn from_byte(byte: u8) -> Option<Verdict> {
        Some(match byte {
            0 => Verdict::Accepted,
            1 => Verdict::UnsupportedVersion,
            2 => Verdict::ClusterMismatch,
            3 => Verdict::WrongReceiver,
            4 => Verdict::UnknownSender,
            5 => Verdict::Busy,
            6 => Verdict::Malformed,
            _ => return None,
        })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Accepted => "accepted",
            Verdict::UnsupportedVersion => "unsupported protocol version",
            Verdict::ClusterMismatch => "cluster id mismatch",
            Verdict::WrongReceiver => "wrong receiver member id",
            Verdict::UnknownSender => "unknown or removed sender member id",
            Verdict::Busy => "too many connections",
            Verdict::Malformed => "malformed handshake",
        })
    }
}

/// The acceptor's reply: verdict plus its own identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The decision.
    pub verdict: Verdict,
    /// Acceptor's cluster id.
    pub cluster_id: u64,
    /// Acceptor's member id.
    pub member_id: u64,
}

impl Reply {
    /// Encodes the reply.
    pub fn encode(&self) -> [u8; REPLY_LEN] {
        let mut out = [0u8; REPLY_LEN];
        out[0] = self.verdict as u8;
        out[1..9].copy_from_slice(&self.cluster_id.to_le_bytes());
        out[9..17].copy_from_slice(&self.member_id.to_le_bytes());
        out
    }

    /// Decodes a reply and turns a refusal into [`HandshakeError::Refused`].
    pub fn decode(bytes: &[u8; REPLY_LEN]) -> Result<Reply, HandshakeError> {
        let verdict =
            Verdict::from_byte(bytes[0]).ok_or(HandshakeError::UnknownVerdict(bytes[0]))?;
        let mut c = [0u8; 8];
        c.copy_from_slice(&bytes[1..9]);
        let mut m = [0u8; 8];
        m.copy_from_slice(&bytes[9..17]);
        let reply = Reply {
            verdict,
            cluster_id: u64::from_le_bytes(c),
            member_id: u64::from_le_bytes(m),
        };
        if verdict != Verdict::Accepted {
            return Err(HandshakeError::Refused {
                verdict,
                their_cluster_id: reply.cluster_id,
                their_member_id: reply.member_id,
            });
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            lane: Lane::Snapshots,
            cluster_id: 0xc1,
            from: 2,
            to: 3,
        }
    }

    #[test]
    fn hello_round_trips_and_rejects_corruption() {
        let bytes = hello().encode();
        assert_eq!(Hello::decode(&bytes).unwrap(), hello());
        let mut bad = bytes;
        bad[0] = b'G';
        assert!(matches!(Hello::decode(&bad), Err(HandshakeError::BadMagic)));
        let mut bad = bytes;
        bad[20] ^= 1;
        assert!(matches!(Hello::decode(&bad), Err(HandshakeError::BadCrc)));
    }

    #[test]
    fn verdicts() {
        let h = hello();
        assert_eq!(h.verdict(0xc1, 3, true), Verdict::Accepted);
        assert_eq!(h.verdict(0xc2, 3, true), Verdict::ClusterMismatch);
        assert_eq!(h.verdict(0xc1, 4, true), Verdict::WrongReceiver);
        assert_eq!(h.verdict(0xc1, 3, false), Verdict::UnknownSender);
        assert_eq!(
            Hello { version: 9, ..h }.verdict(0xc1, 3, true),
            Verdict::UnsupportedVersion
        );
    }

    #[test]
    fn refusal_reply_is_a_typed_error_with_a_clear_message() {
        let reply = Reply {
            verdict: Verdict::ClusterMismatch,
            cluster_id: 2,
            member_id: 3,
        };
        let err = Reply::decode(&reply.encode()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "peer refused the connection: cluster id mismatch (it is member 0x3 of cluster 0x2)"
        );
        let ok = Reply {
            verdict: Verdict::Accepted,
            cluster_id: 2,
            member_id: 3,
        };
        assert_eq!(Reply::decode(&ok.encode()).unwrap(), ok);
        let mut unknown = ok.encode();
        unknown[0] = 200;
        assert!(matches!(
            Reply::decode(&unknown),
            Err(HandshakeError::UnknownVerdict(200))
        ));
    }
}
