//! HTTP/2 error codes (RFC 9113 §7) and the error type of the connection state machine.

use std::fmt;

/// An HTTP/2 error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ErrorCode {
    NoError,
    ProtocolError,
    InternalError,
    FlowControlError,
    SettingsTimeout,
    StreamClosed,
    FrameSizeError,
    RefusedStream,
    Cancel,
    CompressionError,
    ConnectError,
    EnhanceYourCalm,
    InadequateSecurity,
    Http11Required,
    /// A code this implementation does not know (treated like INTERNAL_ERROR, §7).
    Other(u32),
}

impl ErrorCode {
    /// The code's wire value.
    pub fn to_u32(self) -> u32 {
        match self {
            ErrorCode::NoError => 0x0,
            ErrorCode::ProtocolError => 0x1,
            ErrorCode::InternalError => 0x2,
            ErrorCode::FlowControlError => 0x3,
            ErrorCode::SettingsTimeout => 0x4,
            ErrorCode::StreamClosed => 0x5,
            ErrorCode::FrameSizeError => 0x6,
            ErrorCode::RefusedStream => 0x7,
            ErrorCode::Cancel => 0x8,
            ErrorCode::CompressionError => 0x9,
            ErrorCode::ConnectError => 0xa,
            ErrorCode::EnhanceYourCalm => 0xb,
            ErrorCode::InadequateSecurity => 0xc,
            ErrorCode::Http11Required => 0xd,
            ErrorCode::Other(v) => v,
        }
    }

    /// Maps a wire value to a code.
    pub fn from_u32(v: u32) -> ErrorCode {
        match v {
            0x0 => ErrorCode::NoError,
            0x1 => ErrorCode::ProtocolError,
            0x2 => ErrorCode::InternalError,
            0x3 => ErrorCode::FlowControlError,
            0x4 => ErrorCode::SettingsTimeout,
            0x5 => ErrorCode::StreamClosed,
            0x6 => ErrorCode::FrameSizeError,
            0x7 => ErrorCode::RefusedStream,
            0x8 => ErrorCode::Cancel,
            0x9 => ErrorCode::CompressionError,
            0xa => ErrorCode::ConnectError,
            0xb => ErrorCode::EnhanceYourCalm,
            0xc => ErrorCode::InadequateSecurity,
            0xd => ErrorCode::Http11Required,
            v => ErrorCode::Other(v),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// A protocol violation found while processing input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // variant fields are named as in RFC 9113 / RFC 7541
pub enum H2Error {
    /// The whole connection is unusable: a GOAWAY with `code` has been queued and the transport
    /// should be closed once the output is flushed.
    Connection {
        code: ErrorCode,
        reason: &'static str,
    },
    /// Only one stream is affected: it is reset with `code`.
    Stream {
        stream: u32,
        code: ErrorCode,
        reason: &'static str,
    },
}

impl fmt::Display for H2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            H2Error::Connection { code, reason } => {
                write!(f, "http2 connection error {code}: {reason}")
            }
            H2Error::Stream {
                stream,
                code,
                reason,
            } => {
                write!(f, "http2 stream {stream} error {code}: {reason}")
            }
        }
    }
}

impl std::error::Error for H2Error {}

/// Errors of the local API (sending on a stream, opening a stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The stream does not exist (finished, reset or never opened).
    UnknownStream(u32),
    /// This side already ended the stream.
    StreamEnded(u32),
    /// The connection is closing or closed (GOAWAY sent or received, or a connection error).
    ConnectionClosed,
    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS is reached.
    TooManyStreams,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::UnknownStream(s) => write!(f, "http2 stream {s} is not open"),
            SendError::StreamEnded(s) => write!(f, "http2 stream {s} already ended by us"),
            SendError::ConnectionClosed => write!(f, "http2 connection is closing"),
            SendError::TooManyStreams => write!(f, "peer's concurrent stream limit reached"),
        }
    }
}

impl std::error::Error for SendError {}
