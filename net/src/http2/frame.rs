//! The HTTP/2 frame layer (RFC 9113 §4 and §6): parsing a frame header and payload into a typed
//! [`Frame`], with every size and stream-id rule that can be checked on a single frame, and
//! writing frames.

use super::error::{ErrorCode, H2Error};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Size of the fixed frame header.
pub const FRAME_HEADER_LEN: usize = 9;
/// The default and minimum SETTINGS_MAX_FRAME_SIZE.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// The largest legal SETTINGS_MAX_FRAME_SIZE.
pub const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;
/// The default initial flow-control window.
pub const DEFAULT_WINDOW: u32 = 65_535;
/// The largest flow-control window.
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

/// Frame type codes (§6).
pub mod kind {
    #![allow(missing_docs)] // the RFC's names are the documentation
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags (§6).
pub mod flag {
    #![allow(missing_docs)] // the RFC's names are the documentation
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// SETTINGS identifiers (§6.5.2).
pub mod setting {
    #![allow(missing_docs)] // the RFC's names are the documentation
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// The 9-byte frame header (§4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length.
    pub len: u32,
    /// Frame type.
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Stream identifier (reserved bit cleared).
    pub stream: u32,
}

impl FrameHeader {
    /// Parses the first 9 bytes of `buf` (which must hold at least that many).
    pub fn parse(buf: &[u8]) -> FrameHeader {
        FrameHeader {
            len: u32::from_be_bytes([0, buf[0], buf[1], buf[2]]),
            kind: buf[3],
            flags: buf[4],
            stream: u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff,
        }
    }
}

/// A parsed frame borrowing its payload.
#[derive(Debug, PartialEq, Eq)]
#[allow(missing_docs)] // variant fields are named as in RFC 9113 / RFC 7541
pub enum Frame<'a> {
    /// DATA (§6.1). `flow_len` is the whole payload length including padding: it is what counts
    /// against flow-control windows.
    Data {
        stream: u32,
        end_stream: bool,
        data: &'a [u8],
        flow_len: u32,
    },
    /// HEADERS (§6.2) with padding and priority fields removed.
    Headers {
        stream: u32,
        end_stream: bool,
        end_headers: bool,
        block: &'a [u8],
    },
    /// PRIORITY (§6.3): validated, otherwise ignored.
    Priority { stream: u32 },
    /// RST_STREAM (§6.4).
    RstStream { stream: u32, code: u32 },
    /// SETTINGS (§6.5); `params` is a sequence of 6-byte (id, value) pairs.
    Settings { ack: bool, params: &'a [u8] },
    /// PUSH_PROMISE (§6.6).
    PushPromise { stream: u32 },
    /// PING (§6.7).
    Ping { ack: bool, payload: [u8; 8] },
    /// GOAWAY (§6.8).
    GoAway {
        last_stream: u32,
        code: u32,
        debug: &'a [u8],
    },
    /// WINDOW_UPDATE (§6.9); the increment is checked to be non-zero by the connection.
    WindowUpdate { stream: u32, increment: u32 },
    /// CONTINUATION (§6.10).
    Continuation {
        stream: u32,
        end_headers: bool,
        block: &'a [u8],
    },
    /// A frame of a type we do not know: ignored (§5.5).
    Unknown { kind: u8 },
}

/// Iterates over the (id, value) pairs of a SETTINGS payload.
pub fn settings_params(params: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    params.chunks_exact(6).map(|c| {
        (
            u16::from_be_bytes([c[0], c[1]]),
            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
        )
    })
}

fn conn_err(code: ErrorCode, why: &'static str) -> H2Error {
    H2Error::Connection { code, reason: why }
}

/// Removes padding (§6.1): returns the payload without the pad-length byte and padding.
fn strip_padding(flags: u8, payload: &[u8]) -> Result<&[u8], H2Error> {
    if flags & flag::PADDED == 0 {
        return Ok(payload);
    }
    let pad = *payload.first().ok_or(conn_err(
        ErrorCode::FrameSizeError,
        "padded frame without pad length",
    ))? as usize;
    if pad >= payload.len() {
        return Err(conn_err(
            ErrorCode::ProtocolError,
            "padding exceeds frame payload",
        ));
    }
    Ok(&payload[1..payload.len() - pad])
}

/// Decodes one frame whose header has been parsed and whose payload is complete.
/// Errors are connection errors, except PRIORITY with a bad length (a stream error).
pub fn decode_frame(h: FrameHeader, payload: &[u8]) -> Result<Frame<'_>, H2Error> {
    let need_stream = |what: &'static str| {
        if h.stream == 0 {
            Err(conn_err(ErrorCode::ProtocolError, what))
        } else {
            Ok(())
        }
    };
    let need_conn = |what: &'static str| {
        if h.stream != 0 {
            Err(conn_err(ErrorCode::ProtocolError, what))
        } else {
            Ok(())
        }
    };
    Ok(match h.kind {
        kind::DATA => {
            need_stream("DATA on stream 0")?;
            let data = strip_padding(h.flags, payload)?;
            Frame::Data {
                stream: h.stream,
                end_stream: h.flags & flag::END_STREAM != 0,
                data,
                flow_len: h.len,
            }
        }
        kind::HEADERS => {
            need_stream("HEADERS on stream 0")?;
            let mut block = strip_padding(h.flags, payload)?;
            if h.flags & flag::PRIORITY != 0 {
                if block.len() < 5 {
                    return Err(conn_err(
                        ErrorCode::FrameSizeError,
                        "HEADERS too short for priority",
                    ));
                }
                block = &block[5..];
            }
            Frame::Headers {
                stream: h.stream,
                end_stream: h.flags & flag::END_STREAM != 0,
                end_headers: h.flags & flag::END_HEADERS != 0,
                block,
            }
        }
        kind::PRIORITY => {
            need_stream("PRIORITY on stream 0")?;
            if payload.len() != 5 {
                return Err(H2Error::Stream {
                    stream: h.stream,
                    code: ErrorCode::FrameSizeError,
                    reason: "PRIORITY length is not 5",
                });
            }
            Frame::Priority { stream: h.stream }
        }
        kind::RST_STREAM => {
            need_stream("RST_STREAM on stream 0")?;
            if payload.len() != 4 {
                return Err(conn_err(
                    ErrorCode::FrameSizeError,
                    "RST_STREAM length is not 4",
                ));
            }
            Frame::RstStream {
                stream: h.stream,
                code: be32(payload),
            }
        }
        kind::SETTINGS => {
            need_conn("SETTINGS on a stream")?;
            let ack = h.flags & flag::ACK != 0;
            if ack && !payload.is_empty() {
                return Err(conn_err(
                    ErrorCode::FrameSizeError,
                    "SETTINGS ack with payload",
                ));
            }
            if payload.len() % 6 != 0 {
                return Err(conn_err(
                    ErrorCode::FrameSizeError,
                    "SETTINGS length not a multiple of 6",
                ));
            }
            Frame::Settings {
                ack,
                params: payload,
            }
        }
        kind::PUSH_PROMISE => Frame::PushPromise { stream: h.stream },
        kind::PING => {
            need_conn("PING on a stream")?;
            if payload.len() != 8 {
                return Err(conn_err(ErrorCode::FrameSizeError, "PING length is not 8"));
            }
            let mut p = [0u8; 8];
            p.copy_from_slice(payload);
            Frame::Ping {
                ack: h.flags & flag::ACK != 0,
                payload: p,
            }
        }
        kind::GOAWAY => {
            need_conn("GOAWAY on a stream")?;
            if payload.len() < 8 {
                return Err(conn_err(
                    ErrorCode::FrameSizeError,
                    "GOAWAY shorter than 8 bytes",
                ));
            }
            Frame::GoAway {
                last_stream: be32(payload) & 0x7fff_ffff,
                code: be32(&payload[4..]),
                debug: &payload[8..],
            }
        }
        kind::WINDOW_UPDATE => {
            if payload.len() != 4 {
                return Err(conn_err(
                    ErrorCode::FrameSizeError,
                    "WINDOW_UPDATE length is not 4",
                ));
            }
            Frame::WindowUpdate {
                stream: h.stream,
                increment: be32(payload) & 0x7fff_ffff,
            }
        }
        kind::CONTINUATION => {
            need_stream("CONTINUATION on stream 0")?;
            Frame::Continuation {
                stream: h.stream,
                end_headers: h.flags & flag::END_HEADERS != 0,
                block: payload,
            }
        }
        other => Frame::Unknown { kind: other },
    })
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Appends a frame header.
pub fn write_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(len <= MAX_MAX_FRAME_SIZE as usize);
    let l = (len as u32).to_be_bytes();
    out.extend_from_slice(&[l[1], l[2], l[3], kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

/// Appends a SETTINGS frame with the given parameters.
pub fn write_settings(out: &mut Vec<u8>, params: &[(u16, u32)]) {
    write_header(out, params.len() * 6, kind::SETTINGS, 0, 0);
    for (id, v) in params {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends a SETTINGS acknowledgement.
pub fn write_settings_ack(out: &mut Vec<u8>) {
    write_header(out, 0, kind::SETTINGS, flag::ACK, 0);
}

/// Appends a WINDOW_UPDATE.
pub fn write_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    write_header(out, 4, kind::WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&increment.to_be_bytes());
}

/// Appends a PING (or its ACK).
pub fn write_ping(out: &mut Vec<u8>, ack: bool, payload: [u8; 8]) {
    write_header(out, 8, kind::PING, if ack { flag::ACK } else { 0 }, 0);
    out.extend_from_slice(&payload);
}

/// Appends a RST_STREAM.
pub fn write_rst_stream(out: &mut Vec<u8>, stream: u32, code: u32) {
    write_header(out, 4, kind::RST_STREAM, 0, stream);
    out.extend_from_slice(&code.to_be_bytes());
}

/// Appends a GOAWAY.
pub fn write_goaway(out: &mut Vec<u8>, last_stream: u32, code: u32, debug: &[u8]) {
    write_header(out, 8 + debug.len(), kind::GOAWAY, 0, 0);
    out.extend_from_slice(&last_stream.to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(debug);
}

/// Appends a DATA frame.
pub fn write_data(out: &mut Vec<u8>, stream: u32, data: &[u8], end_stream: bool) {
    write_header(
        out,
        data.len(),
        kind::DATA,
        if end_stream { flag::END_STREAM } else { 0 },
        stream,
    );
    out.extend_from_slice(data);
}

/// Appends a header block as HEADERS plus as many CONTINUATION frames as `max_frame` requires.
pub fn write_header_block(
    out: &mut Vec<u8>,
    stream: u32,
    block: &[u8],
    end_stream: bool,
    max_frame: usize,
) {
    let mut chunks = block.chunks(max_frame.max(1));
    let first = chunks.next().unwrap_or(&[]);
    let single = block.len() <= max_frame;
    let mut flags = if end_stream { flag::END_STREAM } else { 0 };
    if single {
        flags |= flag::END_HEADERS;
    }
    write_header(out, first.len(), kind::HEADERS, flags, stream);
    out.extend_from_slice(first);
    let mut rest = chunks.peekable();
    while let Some(c) = rest.next() {
        let last = rest.peek().is_none();
        write_header(
            out,
            c.len(),
            kind::CONTINUATION,
            if last { flag::END_HEADERS } else { 0 },
            stream,
        );
        out.extend_from_slice(c);
    }
}
