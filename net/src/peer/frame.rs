//! Frames: the unit the peer transport writes on a TCP connection after the handshake.
//!
//! ```text
//!  0               4     5               9
//!  +---------------+-----+---------------+------------------------+
//!  | payload len   |kind | crc32         | payload (len bytes)    |
//!  | u32 LE        | u8  | u32 LE        |                        |
//!  +---------------+-----+---------------+------------------------+
//! ```
//! The CRC (CRC-32/ISO-HDLC, as computed by `crc32fast`) covers the kind byte and the payload,
//! so a flipped bit anywhere but the length is detected, and a corrupted length either
//! exceeds the lane's cap, runs into the next frame (CRC mismatch) or hits end of stream.
//! The reader checks the length against a cap *before* allocating, so a hostile or corrupt
//! length cannot make it allocate gigabytes.

use std::fmt;
use std::io::{self, Read, Write};

/// Bytes before the payload: length (4), kind (1), CRC (4).
pub const FRAME_HEADER_LEN: usize = 9;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// One opaque Raft message (message lane).
    Message = 1,
    /// Start of a snapshot: [`SnapshotBegin`] (snapshot lane).
    SnapshotBegin = 2,
    /// The next bytes of the snapshot (snapshot lane).
    SnapshotChunk = 3,
    /// End of the snapshot; the receiver verifies length and CRC (snapshot lane).
    SnapshotEnd = 4,
    /// The receiver's verdict on a snapshot: [`SnapshotAck`] (snapshot lane, receiver → sender).
    SnapshotAck = 5,
}

impl FrameKind {
    /// The kind for a wire byte, if it is one.
    pub fn from_byte(byte: u8) -> Option<FrameKind> {
        Some(match byte {
            1 => FrameKind::Message,
            2 => FrameKind::SnapshotBegin,
            3 => FrameKind::SnapshotChunk,
            4 => FrameKind::SnapshotEnd,
            5 => FrameKind::SnapshotAck,
            _ => return None,
        })
    }
}

/// A decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What the payload is.
    pub kind: FrameKind,
    /// The payload bytes (CRC verified).
    pub payload: Vec<u8>,
}

/// Why a frame could not be read. Every variant except [`FrameError::Closed`] means the byte
/// stream can no longer be trusted and the connection must be closed.
#[derive(Debug)]
pub enum FrameError {
    /// The stream ended cleanly at a frame boundary.
    Closed,
    /// An I/O error, including end of stream in the middle of a frame.
    Io(io::Error),
    /// The declared payload length exceeds the lane's cap.
    TooLarge {
        /// Declared length.
        len: u32,
        /// The cap.
        max: u32,
    },
    /// The kind byte is not a known [`FrameKind`].
    UnknownKind(u8),
    /// The CRC in the header does not match the kind and payload received.
    BadCrc {
        /// CRC from the header.
        expected: u32,
        /// CRC computed over what arrived.
        actual: u32,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Closed => write!(f, "connection closed"),
            FrameError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                write!(f, "connection closed in the middle of a frame")
            }
            FrameError::Io(e) => write!(f, "i/o error: {e}"),
            FrameError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max} bytes")
            }
            FrameError::UnknownKind(k) => write!(f, "unknown frame kind {k}"),
            FrameError::BadCrc { expected, actual } => {
                write!(
                    f,
                    "frame crc mismatch (header {expected:#010x}, computed {actual:#010x})"
                )
            }
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(e)
    }
}

fn crc_of(kind: FrameKind, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind as u8]);
    hasher.update(payload);
    hasher.finalize()
}

/// The 9-byte header for a frame of `kind` carrying `payload`.
///
/// # Panics
/// If `payload` is longer than `u32::MAX` bytes (callers cap sizes far below that).
pub fn frame_header(kind: FrameKind, payload: &[u8]) -> [u8; FRAME_HEADER_LEN] {
    let len = u32::try_from(payload.len()).expect("frame payload exceeds u32::MAX bytes");
    let mut header = [0u8; FRAME_HEADER_LEN];
    header[0..4].copy_from_slice(&len.to_le_bytes());
    header[4] = kind as u8;
    header[5..9].copy_from_slice(&crc_of(kind, payload).to_le_bytes());
    header
}

/// Checks a frame header: the payload length against the cap (before anything is allocated or
/// waited for), then the kind. Returns the length, the kind and the CRC the header announces.
fn decode_header(
    header: &[u8; FRAME_HEADER_LEN],
    max_payload: u32,
) -> Result<(u32, FrameKind, u32), FrameError> {
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if len > max_payload {
        return Err(FrameError::TooLarge {
            len,
            max: max_payload,
        });
    }
    let kind = FrameKind::from_byte(header[4]).ok_or(FrameError::UnknownKind(header[4]))?;
    let crc = u32::from_le_bytes([header[5], header[6], header[7], header[8]]);
    Ok((len, kind, crc))
}

/// A frame found at the start of a byte slice by [`parse_frame`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedFrame {
    /// What the payload is.
    pub kind: FrameKind,
    /// Where the payload is in the slice (CRC verified).
    pub payload: std::ops::Range<usize>,
    /// Bytes the whole frame takes (header and payload).
    pub len: usize,
}

/// Decodes the frame at the start of `bytes` without copying, for readers that buffer a
/// non-blocking socket: `Ok(None)` if `bytes` does not hold a whole frame yet. Checks the
/// same things, in the same order, as [`read_frame`]: the length against `max_payload`
/// (before waiting for the payload), the kind, the CRC.
pub fn parse_frame(bytes: &[u8], max_payload: u32) -> Result<Option<ParsedFrame>, FrameError> {
    let Some(header) = bytes.first_chunk::<FRAME_HEADER_LEN>() else {
        return Ok(None);
    };
    let (len, kind, expected) = decode_header(header, max_payload)?;
    let payload = FRAME_HEADER_LEN..FRAME_HEADER_LEN + len as usize;
    let Some(body) = bytes.get(payload.clone()) else {
        return Ok(None);
    };
    let actual = crc_of(kind, body);
    if actual != expected {
        return Err(FrameError::BadCrc { expected, actual });
    }
    Ok(Some(ParsedFrame {
        kind,
        len: payload.end,
        payload,
    }))
}

/// Appends one encoded frame to `out`.
pub fn encode_frame_into(out: &mut Vec<u8>, kind: FrameKind, payload: &[u8]) {
    out.extend_from_slice(&frame_header(kind, payload));
    out.extend_from_slice(payload);
}

/// Writes one frame (header then payload, without copying the payload).
pub fn write_frame<W: Write>(w: &mut W, kind: FrameKind, payload: &[u8]) -> io::Result<()> {
    w.write_all(&frame_header(kind, payload))?;
    w.write_all(payload)
}

/// Reads one frame whose payload may be at most `max_payload` bytes.
///
/// Returns [`FrameError::Closed`] if the stream ends before the first header byte.
pub fn read_frame<R: Read>(r: &mut R, max_payload: u32) -> Result<Frame, FrameError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    // The first read distinguishes a clean close from a truncated frame.
    let first = loop {
        match r.read(&mut header) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FrameError::Io(e)),
        }
    };
    if first == 0 {
        return Err(FrameError::Closed);
    }
    r.read_exact(&mut header[first..])?;
    let (len, kind, expected) = decode_header(&header, max_payload)?;
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    let actual = crc_of(kind, &payload);
    if actual != expected {
        return Err(FrameError::BadCrc { expected, actual });
    }
    Ok(Frame { kind, payload })
}

/// Payload of a [`FrameKind::SnapshotBegin`] frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotBegin {
    /// Sender-chosen identifier, echoed in the ack and the events.
    pub snapshot_id: u64,
    /// Total snapshot length in bytes.
    pub total_len: u64,
    /// CRC32 of the whole snapshot.
    pub crc: u32,
}

impl SnapshotBegin {
    /// Encoded length.
    pub const LEN: usize = 20;

    /// Encodes the payload.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0..8].copy_from_slice(&self.snapshot_id.to_le_bytes());
        out[8..16].copy_from_slice(&self.total_len.to_le_bytes());
        out[16..20].copy_from_slice(&self.crc.to_le_bytes());
        out
    }

    /// Decodes the payload; `None` if it is not exactly [`Self::LEN`] bytes.
    pub fn decode(payload: &[u8]) -> Option<SnapshotBegin> {
        if payload.len() != Self::LEN {
            return None;
        }
        Some(SnapshotBegin {
            snapshot_id: u64::from_le_bytes(payload[0..8].try_into().ok()?),
            total_len: u64::from_le_bytes(payload[8..16].try_into().ok()?),
            crc: u32::from_le_bytes(payload[16..20].try_into().ok()?),
        })
    }
}

/// Payload of a [`FrameKind::SnapshotAck`] frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotAck {
    /// The snapshot acknowledged.
    pub snapshot_id: u64,
    /// `Ok` if the receiver verified and handed over the snapshot, else the reason.
    pub result: Result<(), String>,
}

impl SnapshotAck {
    /// Encodes the payload: id (u64 LE), status (0 ok / 1 failed), reason (UTF-8).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.snapshot_id.to_le_bytes().to_vec();
        match &self.result {
            Ok(()) => out.push(0),
            Err(reason) => {
                out.push(1);
                out.extend_from_slice(reason.as_bytes());
            }
        }
        out
    }

    /// Decodes the payload; `None` if malformed.
    pub fn decode(payload: &[u8]) -> Option<SnapshotAck> {
        if payload.len() < 9 {
            return None;
        }
        let snapshot_id = u64::from_le_bytes(payload[0..8].try_into().ok()?);
        let result = match payload[8] {
            0 if payload.len() == 9 => Ok(()),
            1 => Err(String::from_utf8_lossy(&payload[9..]).into_owned()),
            _ => return None,
        };
        Some(SnapshotAck {
            snapshot_id,
            result,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_clean_close() {
        let mut wire = Vec::new();
        encode_frame_into(&mut wire, FrameKind::Message, b"hello");
        encode_frame_into(&mut wire, FrameKind::SnapshotEnd, b"");
        let mut r = wire.as_slice();
        assert_eq!(
            read_frame(&mut r, 16).unwrap(),
            Frame {
                kind: FrameKind::Message,
                payload: b"hello".to_vec()
            }
        );
        assert_eq!(read_frame(&mut r, 16).unwrap().kind, FrameKind::SnapshotEnd);
        assert!(matches!(read_frame(&mut r, 16), Err(FrameError::Closed)));
    }

    #[test]
    fn corruption_is_detected() {
        let mut wire = Vec::new();
        encode_frame_into(&mut wire, FrameKind::Message, b"payload");
        let mut flipped = wire.clone();
        flipped[FRAME_HEADER_LEN + 2] ^= 0x10;
        assert!(matches!(
            read_frame(&mut flipped.as_slice(), 64),
            Err(FrameError::BadCrc { .. })
        ));
        let mut bad_kind = wire.clone();
        bad_kind[4] = 99;
        assert!(matches!(
            read_frame(&mut bad_kind.as_slice(), 64),
            Err(FrameError::UnknownKind(99))
        ));
        assert!(matches!(
            read_frame(&mut wire.as_slice(), 3),
            Err(FrameError::TooLarge { len: 7, max: 3 })
        ));
        let truncated = &wire[..wire.len() - 1];
        let err = read_frame(&mut &truncated[..], 64).unwrap_err();
        assert!(matches!(&err, FrameError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof));
        assert_eq!(
            err.to_string(),
            "connection closed in the middle of a frame"
        );
    }

    #[test]
    fn snapshot_payloads_round_trip() {
        let begin = SnapshotBegin {
            snapshot_id: 9,
            total_len: 1 << 33,
            crc: 0xdead_beef,
        };
        assert_eq!(SnapshotBegin::decode(&begin.encode()), Some(begin));
        assert_eq!(SnapshotBegin::decode(&[0; 19]), None);
        for result in [Ok(()), Err("crc mismatch".to_string())] {
            let ack = SnapshotAck {
                snapshot_id: 3,
                result,
            };
            assert_eq!(SnapshotAck::decode(&ack.encode()), Some(ack));
        }
        assert_eq!(SnapshotAck::decode(&[0; 8]), None);
        assert_eq!(SnapshotAck::decode(&[0, 0, 0, 0, 0, 0, 0, 0, 7]), None);
    }
}
