//! gRPC's length-prefixed message framing: 1 compressed-flag byte, 4-byte big-endian length,
//! then the message. Message boundaries are unrelated to DATA frame boundaries.

use std::fmt;

/// Why a message stream could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // variant fields are named as in RFC 9113 / RFC 7541
pub enum FramingError {
    /// The announced length exceeds the configured maximum.
    TooLarge { len: usize, max: usize },
    /// The compressed flag was set (we negotiate identity only) or is not 0/1.
    Compressed,
    /// The stream ended in the middle of a message.
    Truncated,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // grpc-go's wording, which clients may show to users.
            FramingError::TooLarge { len, max } => {
                write!(
                    f,
                    "grpc: received message larger than max ({len} vs. {max})"
                )
            }
            FramingError::Compressed => {
                write!(
                    f,
                    "grpc: compressed message received but no grpc-encoding is supported"
                )
            }
            FramingError::Truncated => write!(f, "grpc: stream ended inside a message"),
        }
    }
}

impl std::error::Error for FramingError {}

/// Reassembles messages from arbitrary chunks.
#[derive(Debug)]
pub struct MessageDecoder {
    buf: Vec<u8>,
    max: usize,
}

impl MessageDecoder {
    /// A decoder refusing messages longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        MessageDecoder {
            buf: Vec::new(),
            max,
        }
    }

    /// Feeds a chunk; complete messages are appended to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), FramingError> {
        // Fast path: nothing buffered, take whole messages straight from the chunk.
        if self.buf.is_empty() {
            while data.len() >= 5 {
                let len = self.check_prefix(data)?;
                if data.len() < 5 + len {
                    break;
                }
                out.push(data[5..5 + len].to_vec());
                data = &data[5 + len..];
            }
            if data.len() >= 5 {
                let len = self.check_prefix(data)?;
                self.buf.reserve(5 + len);
            }
            self.buf.extend_from_slice(data);
            return Ok(());
        }
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        while self.buf.len() - pos >= 5 {
            let len = self.check_prefix(&self.buf[pos..])?;
            if self.buf.len() - pos < 5 + len {
                break;
            }
            out.push(self.buf[pos + 5..pos + 5 + len].to_vec());
            pos += 5 + len;
        }
        self.buf.drain(..pos);
        Ok(())
    }

    fn check_prefix(&self, p: &[u8]) -> Result<usize, FramingError> {
        if p[0] != 0 {
            return Err(FramingError::Compressed);
        }
        let len = u32::from_be_bytes([p[1], p[2], p[3], p[4]]) as usize;
        if len > self.max {
            return Err(FramingError::TooLarge { len, max: self.max });
        }
        Ok(len)
    }

    /// Bytes held for an incomplete message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Call at end of stream: an incomplete message is an error.
    pub fn finish(&self) -> Result<(), FramingError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FramingError::Truncated)
        }
    }
}

/// Frames one message: prefix + bytes.
pub fn encode_message(message: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + message.len());
    v.push(0);
    v.extend_from_slice(&(message.len() as u32).to_be_bytes());
    v.extend_from_slice(message);
    v
}
