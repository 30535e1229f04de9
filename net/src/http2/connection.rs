//! The HTTP/2 connection state machine (sans-io), for both client and server roles.

use super::error::{ErrorCode, H2Error, SendError};
use super::frame::{self, flag, setting, Frame, FrameHeader, FRAME_HEADER_LEN, PREFACE};
use super::id_hash::IdMap;
use super::stream::{Outbound, PendingFields, Stream};
use crate::hpack::{BlockCache, Decoder, Encoder, HeaderField, HpackError};
use std::collections::VecDeque;
use std::ops::Range;

/// Which end of the connection this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Accepts streams opened by the peer (odd ids).
    Server,
    /// Opens streams (odd ids) and sends the connection preface.
    Client,
}

/// Local limits and advertised settings.
#[derive(Clone, Debug)]
pub struct H2Config {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise and enforce (server role).
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE we advertise: how much the peer may send per stream.
    pub initial_window_size: u32,
    /// The connection-level receive window we open right after the preface.
    pub connection_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE we advertise (the largest frame we accept).
    pub max_frame_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE we advertise (our HPACK decoder's table limit).
    pub header_table_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce per header block.
    pub max_header_list_size: u32,
    /// Cap on the encoded size of one header block (HEADERS + CONTINUATIONs); larger is a
    /// connection error (CONTINUATION flood protection).
    pub max_header_block_size: usize,
    /// Budget against abusive patterns: each peer reset of an open stream, refused stream or
    /// empty DATA/CONTINUATION frame costs one unit; each normally completed stream returns one.
    /// At zero the connection is closed with ENHANCE_YOUR_CALM (CVE-2023-44487 rapid reset).
    pub abuse_budget: u32,
    /// Units returned to the abuse budget per second of wall time (so a long-lived, well-behaved
    /// client that cancels now and then is never cut off; a flood is).
    pub abuse_refill_per_sec: u32,
    /// Stop scheduling DATA once this much output is waiting for the transport.
    pub output_high_water: usize,
    /// Pending output beyond which control-frame replies (PING/SETTINGS acks) are refused as a
    /// flood (ENHANCE_YOUR_CALM): a peer that sends but never reads.
    pub max_pending_output: usize,
    /// The most of the peer's HPACK dynamic table our encoder uses (also bounded by the peer's
    /// SETTINGS_HEADER_TABLE_SIZE). Repeated fields such as `content-type: application/grpc` and
    /// `grpc-status: 0` then take one byte after their first use. 0: never index.
    pub encoder_table_size: u32,
}

impl Default for H2Config {
    fn default() -> Self {
        H2Config {
            max_concurrent_streams: 4096,
            initial_window_size: 1 << 20,
            connection_window_size: 16 << 20,
            max_frame_size: frame::DEFAULT_MAX_FRAME_SIZE,
            header_table_size: 4096,
            max_header_list_size: 16 << 10,
            max_header_block_size: 64 << 10,
            abuse_budget: 1000,
            abuse_refill_per_sec: 100,
            output_high_water: 256 << 10,
            max_pending_output: 64 << 20,
            encoder_table_size: 4096,
        }
    }
}

/// Something that happened on the connection, for the owner to act on.
#[derive(Debug, PartialEq, Eq)]
#[allow(missing_docs)] // variant fields are named as in RFC 9113 / RFC 7541
pub enum Event {
    /// A complete header block: request headers (server), response headers (client), or
    /// trailers (any header block after the first on a stream).
    Headers {
        stream: u32,
        fields: Vec<HeaderField>,
        end_stream: bool,
    },
    /// Stream data (padding removed). Zero-length data with `end_stream` is delivered too.
    Data {
        stream: u32,
        data: Vec<u8>,
        end_stream: bool,
    },
    /// The stream ended abnormally: reset by the peer (`remote`) or by us after a stream error.
    Reset {
        stream: u32,
        code: ErrorCode,
        remote: bool,
    },
    /// The peer sent GOAWAY: no streams above `last_stream` will be processed.
    GoAway { last_stream: u32, code: ErrorCode },
    /// The peer acknowledged one of our PINGs.
    PingAck { payload: [u8; 8] },
}

/// An event as queued inside the connection. Header fields and DATA payloads live in the
/// connection's event arena (no allocation per field or frame); they stay valid until the next
/// [`Connection::recv`]. [`Connection::poll_event`] turns these into owned [`Event`]s;
/// crate-internal callers read them in place.
#[derive(Debug)]
pub(crate) enum RawEvent {
    /// Fields: [`Connection::event_fields`].
    Headers {
        stream: u32,
        fields: Range<usize>,
        end_stream: bool,
    },
    /// Data: [`Connection::event_data`].
    Data {
        stream: u32,
        data: Range<usize>,
        end_stream: bool,
    },
    /// Events without a payload in the arena.
    Other(Event),
}

/// Where one decoded header field lies in the event arena: name `name..value`, value
/// `value..end`.
#[derive(Clone, Copy, Debug)]
struct FieldSpan {
    name: usize,
    value: usize,
    end: usize,
}

/// Event arena capacity kept between reads; a larger one (after a big read) is shrunk.
const ARENA_KEEP: usize = 256 << 10;

/// Header lists sent often get a cache slot each ([`Connection::send_headers_cached`]).
pub(crate) const HEADER_CACHE_SLOTS: usize = 4;

/// Pending header block being continued by CONTINUATION frames.
#[derive(Debug)]
struct Continuation {
    stream: u32,
    end_stream: bool,
    block: Vec<u8>,
}

/// One HTTP/2 connection. See the module documentation for how to drive it.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: H2Config,
    /// Server: the client preface has not been fully received yet.
    awaiting_preface: bool,
    /// The peer's first frame must be SETTINGS.
    awaiting_peer_settings: bool,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    decoder: Decoder,
    encoder: Encoder,
    peer_max_frame: usize,
    peer_initial_window: i64,
    peer_max_concurrent: u32,
    send_window: i64,
    recv_window: i64,
    recv_unacked: u32,
    streams: IdMap<u32, Stream>,
    /// Highest stream id the peer has opened (server) — used to tell idle from closed.
    last_peer_stream: u32,
    /// Next id we will open (client role).
    next_local_stream: u32,
    continuation: Option<Continuation>,
    events: VecDeque<RawEvent>,
    /// The event arena: bytes of queued header fields and DATA payloads, and the fields' spans.
    event_bytes: Vec<u8>,
    event_fields: Vec<FieldSpan>,
    /// Scratch buffer for encoding a header block before framing it.
    block_buf: Vec<u8>,
    /// Reusable encodings of often-sent header lists, by slot.
    header_caches: [BlockCache; HEADER_CACHE_SLOTS],
    ready: VecDeque<u32>,
    goaway_sent: bool,
    goaway_received: Option<u32>,
    failed: bool,
    abuse_budget: u32,
    budget_refilled_at: std::time::Instant,
}

type Result<T> = std::result::Result<T, H2Error>;

fn conn_err(code: ErrorCode, reason: &'static str) -> H2Error {
    H2Error::Connection { code, reason }
}

fn stream_err(stream: u32, code: ErrorCode, reason: &'static str) -> H2Error {
    H2Error::Stream {
        stream,
        code,
        reason,
    }
}

impl Connection {
    /// A new connection. The server's SETTINGS (or the client's preface + SETTINGS) and a
    /// connection WINDOW_UPDATE are queued in the output immediately.
    pub fn new(role: Role, config: H2Config) -> Connection {
        let mut decoder = Decoder::new(config.header_table_size as usize);
        decoder.set_max_header_list_size(config.max_header_list_size as usize);
        let mut c = Connection {
            role,
            awaiting_preface: role == Role::Server,
            awaiting_peer_settings: true,
            inbuf: Vec::new(),
            out: Vec::with_capacity(4096),
            out_pos: 0,
            decoder,
            encoder: Encoder::with_table_size(config.encoder_table_size as usize),
            peer_max_frame: frame::DEFAULT_MAX_FRAME_SIZE as usize,
            peer_initial_window: frame::DEFAULT_WINDOW as i64,
            peer_max_concurrent: u32::MAX,
            send_window: frame::DEFAULT_WINDOW as i64,
            recv_window: frame::DEFAULT_WINDOW as i64,
            recv_unacked: 0,
            streams: IdMap::default(),
            last_peer_stream: 0,
            next_local_stream: 1,
            continuation: None,
            events: VecDeque::new(),
            event_bytes: Vec::new(),
            event_fields: Vec::new(),
            block_buf: Vec::with_capacity(64),
            header_caches: Default::default(),
            ready: VecDeque::new(),
            goaway_sent: false,
            goaway_received: None,
            failed: false,
            abuse_budget: config.abuse_budget,
            budget_refilled_at: std::time::Instant::now(),
            config,
        };
        if role == Role::Client {
            c.out.extend_from_slice(PREFACE);
        }
        let mut params = vec![
            (
                setting::MAX_CONCURRENT_STREAMS,
                c.config.max_concurrent_streams,
            ),
            (setting::INITIAL_WINDOW_SIZE, c.config.initial_window_size),
            (setting::MAX_FRAME_SIZE, c.config.max_frame_size),
            (setting::MAX_HEADER_LIST_SIZE, c.config.max_header_list_size),
        ];
        if c.config.header_table_size != 4096 {
            params.push((setting::HEADER_TABLE_SIZE, c.config.header_table_size));
        }
        if role == Role::Client {
            params.push((setting::ENABLE_PUSH, 0));
        }
        frame::write_settings(&mut c.out, &params);
        let target = c.config.connection_window_size.min(frame::MAX_WINDOW) as i64;
        if target > c.recv_window {
            frame::write_window_update(&mut c.out, 0, (target - c.recv_window) as u32);
            c.recv_window = target;
        }
        c
    }

    /// This connection's role.
    pub fn role(&self) -> Role {
        self.role
    }

    // ----------------------------------------------------------------------------------------
    // Input
    // ----------------------------------------------------------------------------------------

    /// Feeds bytes received from the transport. Complete frames are processed at once; a
    /// partial frame is kept until the rest arrives. On a connection error, GOAWAY is queued,
    /// every open stream is reported as reset, and the error is returned; later input is ignored.
    pub fn recv(&mut self, data: &[u8]) -> Result<()> {
        if self.failed {
            return Ok(());
        }
        if self.events.is_empty() {
            // Everything queued was taken: the arena can be reused (and is not left large after
            // one big read).
            self.event_bytes.clear();
            self.event_fields.clear();
            if self.event_bytes.capacity() > ARENA_KEEP {
                self.event_bytes.shrink_to(ARENA_KEEP);
            }
        }
        let result = if self.inbuf.is_empty() {
            // Common case: process straight from the caller's buffer, keep only a partial frame.
            let mut pos = 0;
            let result = self.process(data, &mut pos);
            self.inbuf.extend_from_slice(&data[pos..]);
            result
        } else {
            self.inbuf.extend_from_slice(data);
            let buf = std::mem::take(&mut self.inbuf);
            let mut pos = 0;
            let result = self.process(&buf, &mut pos);
            self.inbuf = buf;
            self.inbuf.drain(..pos);
            result
        };
        if let Err(e) = result {
            if let H2Error::Connection { code, reason } = &e {
                self.fail(*code, reason);
            }
            return Err(e);
        }
        self.flush_streams();
        Ok(())
    }

    fn process(&mut self, buf: &[u8], pos: &mut usize) -> Result<()> {
        if self.awaiting_preface {
            let n = (buf.len() - *pos).min(PREFACE.len());
            if buf[*pos..*pos + n] != PREFACE[..n] {
                return Err(conn_err(
                    ErrorCode::ProtocolError,
                    "invalid connection preface",
                ));
            }
            if n < PREFACE.len() {
                return Ok(());
            }
            *pos += PREFACE.len();
            self.awaiting_preface = false;
        }
        while buf.len() - *pos >= FRAME_HEADER_LEN {
            let header = FrameHeader::parse(&buf[*pos..]);
            if header.len > self.config.max_frame_size {
                return Err(conn_err(
                    ErrorCode::FrameSizeError,
                    "frame larger than SETTINGS_MAX_FRAME_SIZE",
                ));
            }
            let end = *pos + FRAME_HEADER_LEN + header.len as usize;
            if buf.len() < end {
                break;
            }
            let payload = &buf[*pos + FRAME_HEADER_LEN..end];
            *pos = end;
            if self.awaiting_peer_settings {
                if header.kind != frame::kind::SETTINGS || header.flags & flag::ACK != 0 {
                    return Err(conn_err(
                        ErrorCode::ProtocolError,
                        "first frame is not SETTINGS",
                    ));
                }
                self.awaiting_peer_settings = false;
            }
            match frame::decode_frame(header, payload).and_then(|f| self.handle_frame(f)) {
                Ok(()) => {}
                Err(H2Error::Stream { stream, code, .. }) => self.reset_with_event(stream, code),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn spend_budget(&mut self, why: &'static str) -> Result<()> {
        // Token bucket: refill by elapsed time (only looked at on this rare path).
        let now = std::time::Instant::now();
        let earned = (now.duration_since(self.budget_refilled_at).as_secs_f64()
            * self.config.abuse_refill_per_sec as f64) as u64;
        if earned > 0 {
            self.abuse_budget =
                (self.abuse_budget as u64 + earned).min(self.config.abuse_budget as u64) as u32;
            self.budget_refilled_at = now;
        }
        if self.abuse_budget == 0 {
            return Err(conn_err(ErrorCode::EnhanceYourCalm, why));
        }
        self.abuse_budget -= 1;
        Ok(())
    }

    /// Whether `stream` has never been used (idle) from the point of view of this endpoint.
    fn is_idle(&self, stream: u32) -> bool {
        let peer_initiated = (stream % 2 == 1) == (self.role == Role::Server);
        if peer_initiated {
            stream > self.last_peer_stream
        } else {
            stream >= self.next_local_stream
        }
    }

    fn handle_frame(&mut self, f: Frame<'_>) -> Result<()> {
        if let Some(cont) = &self.continuation {
            match f {
                Frame::Continuation { stream, .. } if stream == cont.stream => {}
                _ => return Err(conn_err(ErrorCode::ProtocolError, "expected CONTINUATION")),
            }
        }
        match f {
            Frame::Data {
                stream,
                end_stream,
                data,
                flow_len,
            } => self.on_data(stream, end_stream, data, flow_len),
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                block,
            } => {
                if block.len() > self.config.max_header_block_size {
                    return Err(conn_err(
                        ErrorCode::EnhanceYourCalm,
                        "header block too large",
                    ));
                }
                if end_headers {
                    self.on_header_block(stream, end_stream, block)
                } else {
                    self.continuation = Some(Continuation {
                        stream,
                        end_stream,
                        block: block.to_vec(),
                    });
                    Ok(())
                }
            }
            Frame::Continuation {
                end_headers, block, ..
            } => {
                let Some(cont) = self.continuation.as_mut() else {
                    return Err(conn_err(
                        ErrorCode::ProtocolError,
                        "CONTINUATION without HEADERS",
                    ));
                };
                if cont.block.len() + block.len() > self.config.max_header_block_size {
                    return Err(conn_err(
                        ErrorCode::EnhanceYourCalm,
                        "header block too large",
                    ));
                }
                cont.block.extend_from_slice(block);
                if end_headers {
                    let cont = self.continuation.take().expect("checked above");
                    self.on_header_block(cont.stream, cont.end_stream, &cont.block)
                } else if block.is_empty() {
                    self.spend_budget("empty CONTINUATION flood")
                } else {
                    Ok(())
                }
            }
            Frame::Priority { .. } | Frame::Unknown { .. } => Ok(()),
            Frame::RstStream { stream, code } => {
                if self.is_idle(stream) {
                    return Err(conn_err(
                        ErrorCode::ProtocolError,
                        "RST_STREAM on idle stream",
                    ));
                }
                if self.streams.remove(&stream).is_some() {
                    self.events.push_back(RawEvent::Other(Event::Reset {
                        stream,
                        code: ErrorCode::from_u32(code),
                        remote: true,
                    }));
                    self.spend_budget("too many streams reset by the peer")?;
                }
                Ok(())
            }
            Frame::Settings { ack, params } => {
                if ack {
                    return Ok(());
                }
                for (id, value) in frame::settings_params(params) {
                    self.apply_setting(id, value)?;
                }
                self.check_output_flood()?;
                frame::write_settings_ack(&mut self.out);
                Ok(())
            }
            Frame::PushPromise { .. } => Err(conn_err(
                ErrorCode::ProtocolError,
                "PUSH_PROMISE not allowed",
            )),
            Frame::Ping { ack, payload } => {
                if ack {
                    self.events
                        .push_back(RawEvent::Other(Event::PingAck { payload }));
                } else {
                    self.check_output_flood()?;
                    frame::write_ping(&mut self.out, true, payload);
                }
                Ok(())
            }
            Frame::GoAway {
                last_stream, code, ..
            } => {
                self.goaway_received = Some(last_stream);
                self.events.push_back(RawEvent::Other(Event::GoAway {
                    last_stream,
                    code: ErrorCode::from_u32(code),
                }));
                if self.role == Role::Client {
                    let doomed: Vec<u32> = self
                        .streams
                        .keys()
                        .copied()
                        .filter(|&s| s > last_stream)
                        .collect();
                    for s in doomed {
                        self.streams.remove(&s);
                        self.events.push_back(RawEvent::Other(Event::Reset {
                            stream: s,
                            code: ErrorCode::RefusedStream,
                            remote: true,
                        }));
                    }
                }
                Ok(())
            }
            Frame::WindowUpdate { stream, increment } => self.on_window_update(stream, increment),
        }
    }

    fn check_output_flood(&self) -> Result<()> {
        if self.out.len() - self.out_pos > self.config.max_pending_output {
            return Err(conn_err(
                ErrorCode::EnhanceYourCalm,
                "peer does not read its control frames",
            ));
        }
        Ok(())
    }

    fn apply_setting(&mut self, id: u16, value: u32) -> Result<()> {
        match id {
            setting::HEADER_TABLE_SIZE => self.encoder.set_peer_max_table_size(value as usize),
            setting::ENABLE_PUSH if value > 1 => {
                return Err(conn_err(ErrorCode::ProtocolError, "ENABLE_PUSH not 0 or 1"));
            }
            setting::MAX_CONCURRENT_STREAMS => self.peer_max_concurrent = value,
            setting::INITIAL_WINDOW_SIZE => {
                if value > frame::MAX_WINDOW {
                    return Err(conn_err(
                        ErrorCode::FlowControlError,
                        "INITIAL_WINDOW_SIZE too large",
                    ));
                }
                let delta = value as i64 - self.peer_initial_window;
                self.peer_initial_window = value as i64;
                for (&id, st) in self.streams.iter_mut() {
                    st.send_window += delta;
                    if st.send_window > frame::MAX_WINDOW as i64 {
                        return Err(conn_err(
                            ErrorCode::FlowControlError,
                            "stream window overflow",
                        ));
                    }
                    if delta > 0 && st.send_window > 0 && !st.queue.is_empty() && !st.in_ready {
                        st.in_ready = true;
                        self.ready.push_back(id);
                    }
                }
            }
            setting::MAX_FRAME_SIZE => {
                if !(frame::DEFAULT_MAX_FRAME_SIZE..=frame::MAX_MAX_FRAME_SIZE).contains(&value) {
                    return Err(conn_err(
                        ErrorCode::ProtocolError,
                        "MAX_FRAME_SIZE out of range",
                    ));
                }
                self.peer_max_frame = value as usize;
            }
            // MAX_HEADER_LIST_SIZE is advisory; unknown settings must be ignored (§6.5.2).
            _ => {}
        }
        Ok(())
    }

    fn on_window_update(&mut self, stream: u32, increment: u32) -> Result<()> {
        if stream == 0 {
            if increment == 0 {
                return Err(conn_err(ErrorCode::ProtocolError, "WINDOW_UPDATE of 0"));
            }
            self.send_window += increment as i64;
            if self.send_window > frame::MAX_WINDOW as i64 {
                return Err(conn_err(
                    ErrorCode::FlowControlError,
                    "connection window overflow",
                ));
            }
            return Ok(());
        }
        if self.is_idle(stream) {
            return Err(conn_err(
                ErrorCode::ProtocolError,
                "WINDOW_UPDATE on idle stream",
            ));
        }
        let Some(st) = self.streams.get_mut(&stream) else {
            return Ok(()); // closed stream: ignore
        };
        if increment == 0 {
            return Err(stream_err(
                stream,
                ErrorCode::ProtocolError,
                "WINDOW_UPDATE of 0",
            ));
        }
        st.send_window += increment as i64;
        if st.send_window > frame::MAX_WINDOW as i64 {
            return Err(stream_err(
                stream,
                ErrorCode::FlowControlError,
                "stream window overflow",
            ));
        }
        if st.send_window > 0 && !st.queue.is_empty() && !st.in_ready {
            st.in_ready = true;
            self.ready.push_back(stream);
        }
        Ok(())
    }

    fn on_data(&mut self, stream: u32, end_stream: bool, data: &[u8], flow_len: u32) -> Result<()> {
        if self.is_idle(stream) {
            return Err(conn_err(ErrorCode::ProtocolError, "DATA on idle stream"));
        }
        // Connection-level accounting happens even for streams we no longer know (§6.9).
        if flow_len as i64 > self.recv_window {
            return Err(conn_err(
                ErrorCode::FlowControlError,
                "connection receive window exceeded",
            ));
        }
        self.recv_window -= flow_len as i64;
        self.recv_unacked += flow_len;
        if self.recv_unacked as i64 >= self.config.connection_window_size as i64 / 2 {
            frame::write_window_update(&mut self.out, 0, self.recv_unacked);
            self.recv_window += self.recv_unacked as i64;
            self.recv_unacked = 0;
        }
        let half_stream_window = (self.config.initial_window_size / 2).max(1);
        let Some(st) = self.streams.get_mut(&stream) else {
            return Ok(()); // closed (e.g. we reset it): ignore (§5.1)
        };
        if st.recv_closed {
            return Err(stream_err(
                stream,
                ErrorCode::StreamClosed,
                "DATA after END_STREAM",
            ));
        }
        if flow_len as i64 > st.recv_window {
            return Err(stream_err(
                stream,
                ErrorCode::FlowControlError,
                "stream receive window exceeded",
            ));
        }
        st.recv_window -= flow_len as i64;
        st.recv_unacked += flow_len;
        if end_stream {
            st.recv_closed = true;
        } else if st.recv_unacked >= half_stream_window {
            frame::write_window_update(&mut self.out, stream, st.recv_unacked);
            st.recv_window += st.recv_unacked as i64;
            st.recv_unacked = 0;
        }
        let start = self.event_bytes.len();
        self.event_bytes.extend_from_slice(data);
        self.events.push_back(RawEvent::Data {
            stream,
            data: start..self.event_bytes.len(),
            end_stream,
        });
        if end_stream {
            self.maybe_close(stream);
        } else if flow_len == 0 {
            self.spend_budget("empty DATA flood")?;
        }
        Ok(())
    }

    fn on_header_block(&mut self, stream: u32, end_stream: bool, block: &[u8]) -> Result<()> {
        // Decode straight into the event arena.
        let (bytes_start, fields_start) = (self.event_bytes.len(), self.event_fields.len());
        let (bytes, spans) = (&mut self.event_bytes, &mut self.event_fields);
        let decoded = self.decoder.decode_with(block, &mut |name, value| {
            let name_at = bytes.len();
            bytes.extend_from_slice(name);
            let value_at = bytes.len();
            bytes.extend_from_slice(value);
            spans.push(FieldSpan {
                name: name_at,
                value: value_at,
                end: bytes.len(),
            });
        });
        let list_too_large = match decoded {
            Ok(()) => false,
            Err(HpackError::HeaderListTooLarge { .. }) => true,
            Err(_) => {
                return Err(conn_err(
                    ErrorCode::CompressionError,
                    "HPACK decoding failed",
                ))
            }
        };
        let fields = if list_too_large {
            // The partial list is never delivered.
            self.event_bytes.truncate(bytes_start);
            self.event_fields.truncate(fields_start);
            fields_start..fields_start
        } else {
            fields_start..self.event_fields.len()
        };
        // Existing stream: response headers (client) or trailers (both roles).
        if let Some(st) = self.streams.get_mut(&stream) {
            if st.recv_closed {
                return Err(stream_err(
                    stream,
                    ErrorCode::StreamClosed,
                    "HEADERS after END_STREAM",
                ));
            }
            if list_too_large {
                return Err(stream_err(
                    stream,
                    ErrorCode::ProtocolError,
                    "header list too large",
                ));
            }
            if self.role == Role::Server && !end_stream {
                return Err(stream_err(
                    stream,
                    ErrorCode::ProtocolError,
                    "trailers without END_STREAM",
                ));
            }
            if end_stream {
                st.recv_closed = true;
            }
            self.events.push_back(RawEvent::Headers {
                stream,
                fields,
                end_stream,
            });
            if end_stream {
                self.maybe_close(stream);
            }
            return Ok(());
        }
        if self.role == Role::Client || stream % 2 == 0 {
            if self.is_idle(stream) {
                return Err(conn_err(
                    ErrorCode::ProtocolError,
                    "HEADERS on a stream we did not open",
                ));
            }
            return Ok(()); // a stream we already closed or reset
        }
        if stream <= self.last_peer_stream {
            return Ok(()); // closed stream (e.g. one we refused): ignore
        }
        self.last_peer_stream = stream;
        if self.goaway_sent {
            return Ok(());
        }
        if list_too_large {
            frame::write_rst_stream(&mut self.out, stream, ErrorCode::ProtocolError.to_u32());
            return self.spend_budget("oversized header lists");
        }
        if validate_request(self.event_fields(fields.clone())).is_err() {
            frame::write_rst_stream(&mut self.out, stream, ErrorCode::ProtocolError.to_u32());
            return self.spend_budget("malformed requests");
        }
        if self.streams.len() >= self.config.max_concurrent_streams as usize {
            frame::write_rst_stream(&mut self.out, stream, ErrorCode::RefusedStream.to_u32());
            return self.spend_budget("too many refused streams");
        }
        let mut st = Stream::new(
            self.peer_initial_window,
            self.config.initial_window_size as i64,
        );
        st.recv_closed = end_stream;
        self.streams.insert(stream, st);
        self.events.push_back(RawEvent::Headers {
            stream,
            fields,
            end_stream,
        });
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // Output
    // ----------------------------------------------------------------------------------------

    /// Bytes waiting to be written to the transport. Schedules more DATA first if the buffer
    /// is below the high-water mark.
    pub fn output(&mut self) -> &[u8] {
        if self.out.len() - self.out_pos < self.config.output_high_water {
            self.flush_streams();
        }
        &self.out[self.out_pos..]
    }

    /// Marks `n` bytes of [`Connection::output`] as written.
    pub fn consume_output(&mut self, n: usize) {
        self.out_pos += n;
        if self.out_pos >= self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos > (1 << 20) && self.out_pos > self.out.len() / 2 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    /// Whether anything is waiting to be written.
    pub fn has_output(&self) -> bool {
        self.out.len() > self.out_pos
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        Some(match self.events.pop_front()? {
            RawEvent::Headers {
                stream,
                fields,
                end_stream,
            } => Event::Headers {
                stream,
                fields: self
                    .event_fields(fields)
                    .map(|(n, v)| HeaderField::new(n, v))
                    .collect(),
                end_stream,
            },
            RawEvent::Data {
                stream,
                data,
                end_stream,
            } => Event::Data {
                stream,
                data: self.event_data(data).to_vec(),
                end_stream,
            },
            RawEvent::Other(e) => e,
        })
    }

    /// The next event as queued: its header fields and data stay in the connection, readable
    /// with [`Connection::event_fields`] and [`Connection::event_data`] until the next
    /// [`Connection::recv`].
    pub(crate) fn poll_raw_event(&mut self) -> Option<RawEvent> {
        self.events.pop_front()
    }

    /// The header fields of a [`RawEvent::Headers`].
    pub(crate) fn event_fields(
        &self,
        fields: Range<usize>,
    ) -> impl Iterator<Item = (&[u8], &[u8])> + Clone + '_ {
        self.event_fields[fields].iter().map(|f| {
            (
                &self.event_bytes[f.name..f.value],
                &self.event_bytes[f.value..f.end],
            )
        })
    }

    /// The payload of a [`RawEvent::Data`].
    pub(crate) fn event_data(&self, data: Range<usize>) -> &[u8] {
        &self.event_bytes[data]
    }

    /// True after a connection error or once a GOAWAY was exchanged and no stream remains:
    /// flush the output and close the transport.
    pub fn is_finished(&self) -> bool {
        self.failed
            || ((self.goaway_sent || self.goaway_received.is_some()) && self.streams.is_empty())
    }

    /// Number of open streams.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Bytes of DATA queued on `stream` and not yet written to the output (0 if unknown).
    pub fn queued_bytes(&self, stream: u32) -> usize {
        self.streams.get(&stream).map_or(0, |st| {
            st.queue
                .iter()
                .map(|o| match o {
                    Outbound::Data { buf, pos, .. } => buf.len() - pos,
                    Outbound::Headers { .. } => 0,
                })
                .sum()
        })
    }

    /// Whether `stream` is still open for sending by us.
    pub fn can_send(&self, stream: u32) -> bool {
        self.streams.get(&stream).is_some_and(|s| !s.send_closed)
    }

    /// Whether the peer has ended its side of `stream` (or the stream is gone).
    pub fn peer_ended(&self, stream: u32) -> bool {
        self.streams.get(&stream).is_none_or(|s| s.recv_closed)
    }

    /// Sends a PING.
    pub fn ping(&mut self, payload: [u8; 8]) {
        frame::write_ping(&mut self.out, false, payload);
    }

    /// Starts a graceful shutdown: GOAWAY(last peer stream, NO_ERROR); new streams are ignored,
    /// open ones complete.
    pub fn go_away(&mut self) {
        if !self.goaway_sent && !self.failed {
            self.goaway_sent = true;
            frame::write_goaway(&mut self.out, self.last_peer_stream, 0, b"");
        }
    }

    fn fail(&mut self, code: ErrorCode, reason: &str) {
        if self.failed {
            return;
        }
        self.failed = true;
        frame::write_goaway(
            &mut self.out,
            self.last_peer_stream,
            code.to_u32(),
            reason.as_bytes(),
        );
        let mut ids: Vec<u32> = self.streams.keys().copied().collect();
        ids.sort_unstable();
        for s in ids {
            self.events.push_back(RawEvent::Other(Event::Reset {
                stream: s,
                code,
                remote: false,
            }));
        }
        self.streams.clear();
        self.ready.clear();
    }

    /// Resets a stream with `code` (RST_STREAM) and forgets it. No event is generated.
    pub fn reset_stream(&mut self, stream: u32, code: ErrorCode) {
        if self.streams.remove(&stream).is_some() && !self.failed {
            frame::write_rst_stream(&mut self.out, stream, code.to_u32());
        }
    }

    fn reset_with_event(&mut self, stream: u32, code: ErrorCode) {
        frame::write_rst_stream(&mut self.out, stream, code.to_u32());
        if self.streams.remove(&stream).is_some() {
            self.events.push_back(RawEvent::Other(Event::Reset {
                stream,
                code,
                remote: false,
            }));
        }
    }

    /// Opens a stream (client role) with request headers; returns its id.
    pub fn open_stream(
        &mut self,
        fields: &[(&[u8], &[u8])],
        end_stream: bool,
    ) -> std::result::Result<u32, SendError> {
        debug_assert_eq!(self.role, Role::Client);
        if self.failed || self.goaway_received.is_some() || self.goaway_sent {
            return Err(SendError::ConnectionClosed);
        }
        if self.streams.len() >= self.peer_max_concurrent as usize
            || self.next_local_stream > frame::MAX_WINDOW
        {
            return Err(SendError::TooManyStreams);
        }
        let id = self.next_local_stream;
        self.next_local_stream += 2;
        let st = Stream::new(
            self.peer_initial_window,
            self.config.initial_window_size as i64,
        );
        self.streams.insert(id, st);
        self.send_headers(id, fields, end_stream)?;
        Ok(id)
    }

    /// Sends a header block on `stream` (response headers, or trailers with `end_stream`).
    /// Trailers queue behind data not yet sent. The block is HPACK-encoded when it is written
    /// to the output (encoding order must be wire order once the dynamic table is used).
    pub fn send_headers(
        &mut self,
        stream: u32,
        fields: &[(&[u8], &[u8])],
        end_stream: bool,
    ) -> std::result::Result<(), SendError> {
        self.send_headers_inner(stream, fields, None, end_stream)
    }

    /// [`Connection::send_headers`] for a header list sent again and again (e.g. gRPC's
    /// response headers): slot `cache` (< [`HEADER_CACHE_SLOTS`]) keeps its last encoding,
    /// reused while the HPACK table is unchanged. A slot may be used with different lists (the
    /// cache compares them), but then it does not help.
    pub(crate) fn send_headers_cached(
        &mut self,
        stream: u32,
        cache: usize,
        fields: &[(&[u8], &[u8])],
        end_stream: bool,
    ) -> std::result::Result<(), SendError> {
        self.send_headers_inner(stream, fields, Some(cache % HEADER_CACHE_SLOTS), end_stream)
    }

    fn send_headers_inner(
        &mut self,
        stream: u32,
        fields: &[(&[u8], &[u8])],
        cache: Option<usize>,
        end_stream: bool,
    ) -> std::result::Result<(), SendError> {
        if self.failed {
            return Err(SendError::ConnectionClosed);
        }
        let st = self
            .streams
            .get_mut(&stream)
            .ok_or(SendError::UnknownStream(stream))?;
        if st.send_closed {
            return Err(SendError::StreamEnded(stream));
        }
        st.send_closed = end_stream;
        if st.queue.is_empty() {
            self.write_headers(stream, fields, cache, end_stream);
            if end_stream {
                self.after_end_sent(stream);
            }
        } else {
            st.queue.push_back(Outbound::Headers {
                fields: PendingFields::new(fields),
                cache,
                end_stream,
            });
        }
        Ok(())
    }

    /// Encodes a header block now and appends it (HEADERS + CONTINUATIONs) to the output.
    fn write_headers(
        &mut self,
        stream: u32,
        fields: &[(&[u8], &[u8])],
        cache: Option<usize>,
        end_stream: bool,
    ) {
        let mut block = std::mem::take(&mut self.block_buf);
        block.clear();
        match cache {
            Some(slot) => {
                self.encoder
                    .encode_cached(&mut self.header_caches[slot], fields, &mut block)
            }
            None => self.encoder.encode(fields.iter().copied(), &mut block),
        }
        frame::write_header_block(
            &mut self.out,
            stream,
            &block,
            end_stream,
            self.peer_max_frame,
        );
        self.block_buf = block;
    }

    /// Queues data on `stream`; it is written as the peer's windows allow.
    pub fn send_data(
        &mut self,
        stream: u32,
        data: Vec<u8>,
        end_stream: bool,
    ) -> std::result::Result<(), SendError> {
        if !self.write_data_now(stream, &[], &data, end_stream)? {
            self.queue_data(stream, data, end_stream);
        }
        Ok(())
    }

    /// [`Connection::send_data`] of `head` followed by `body` (e.g. gRPC's 5-byte prefix and
    /// the message), copied only if it has to wait.
    pub(crate) fn send_data_parts(
        &mut self,
        stream: u32,
        head: &[u8],
        body: &[u8],
        end_stream: bool,
    ) -> std::result::Result<(), SendError> {
        if !self.write_data_now(stream, head, body, end_stream)? {
            let mut data = Vec::with_capacity(head.len() + body.len());
            data.extend_from_slice(head);
            data.extend_from_slice(body);
            self.queue_data(stream, data, end_stream);
        }
        Ok(())
    }

    /// Writes `head + body` as one DATA frame right away if nothing is queued on the stream and
    /// it fits in one frame, both windows and under the output high-water mark (the result is
    /// what queueing and flushing would produce, minus the copy). Ok(false): queue it instead.
    fn write_data_now(
        &mut self,
        stream: u32,
        head: &[u8],
        body: &[u8],
        end_stream: bool,
    ) -> std::result::Result<bool, SendError> {
        if self.failed {
            return Err(SendError::ConnectionClosed);
        }
        let st = self
            .streams
            .get_mut(&stream)
            .ok_or(SendError::UnknownStream(stream))?;
        if st.send_closed {
            return Err(SendError::StreamEnded(stream));
        }
        let len = head.len() + body.len();
        let now = st.queue.is_empty()
            && len <= self.peer_max_frame
            && len as i64 <= st.send_window.min(self.send_window)
            && self.out.len() - self.out_pos < self.config.output_high_water;
        if !now {
            return Ok(false);
        }
        st.send_closed = end_stream;
        st.send_window -= len as i64;
        self.send_window -= len as i64;
        let flags = if end_stream { flag::END_STREAM } else { 0 };
        frame::write_header(&mut self.out, len, frame::kind::DATA, flags, stream);
        self.out.extend_from_slice(head);
        self.out.extend_from_slice(body);
        if end_stream {
            self.after_end_sent(stream);
        }
        Ok(true)
    }

    /// Queues data behind what the stream already has waiting (checks done by the caller).
    fn queue_data(&mut self, stream: u32, data: Vec<u8>, end_stream: bool) {
        let Some(st) = self.streams.get_mut(&stream) else {
            return;
        };
        st.send_closed = end_stream;
        st.queue.push_back(Outbound::Data {
            buf: data,
            pos: 0,
            end_stream,
        });
        if !st.in_ready {
            st.in_ready = true;
            self.ready.push_back(stream);
        }
    }

    /// Called once END_STREAM has been written for `stream`.
    fn after_end_sent(&mut self, stream: u32) {
        let Some(st) = self.streams.get(&stream) else {
            return;
        };
        if self.role == Role::Server && !st.recv_closed {
            // "Early server closure" (gRPC PROTOCOL-HTTP2.md): tell the client to stop sending.
            frame::write_rst_stream(&mut self.out, stream, ErrorCode::NoError.to_u32());
            self.streams.remove(&stream);
            self.refund_budget();
        } else {
            self.maybe_close(stream);
        }
    }

    fn refund_budget(&mut self) {
        if self.abuse_budget < self.config.abuse_budget {
            self.abuse_budget += 1;
        }
    }

    /// Forgets a stream once both sides have ended it and nothing is left to send.
    fn maybe_close(&mut self, stream: u32) {
        if let Some(st) = self.streams.get(&stream) {
            if st.recv_closed && st.send_closed && st.queue.is_empty() {
                self.streams.remove(&stream);
                self.refund_budget();
            }
        }
    }

    /// Writes queued DATA (and trailers behind it) while windows and the high-water mark allow,
    /// one frame per stream in turn (round-robin).
    pub fn flush_streams(&mut self) {
        while self.out.len() - self.out_pos < self.config.output_high_water {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            let Some(st) = self.streams.get_mut(&id) else {
                continue;
            };
            st.in_ready = false;
            let mut ended = false;
            match st.queue.front_mut() {
                None => {}
                Some(Outbound::Headers { .. }) => {
                    if let Some(Outbound::Headers {
                        fields,
                        cache,
                        end_stream,
                    }) = st.queue.pop_front()
                    {
                        // Encoded now, as it is written: HPACK table order = wire order.
                        self.write_headers(id, &fields.to_vec(), cache, end_stream);
                        ended = end_stream;
                    }
                }
                Some(Outbound::Data {
                    buf,
                    pos,
                    end_stream,
                }) => {
                    let remaining = buf.len() - *pos;
                    let allowed = st.send_window.min(self.send_window).max(0) as usize;
                    let n = remaining.min(self.peer_max_frame).min(allowed);
                    if n == 0 && remaining > 0 {
                        if st.send_window <= 0 {
                            continue; // blocked on the stream window: WINDOW_UPDATE re-queues it
                        }
                        // Blocked on the connection window: keep its turn and stop.
                        st.in_ready = true;
                        self.ready.push_front(id);
                        break;
                    }
                    let last = n == remaining;
                    let fin = last && *end_stream;
                    frame::write_data(&mut self.out, id, &buf[*pos..*pos + n], fin);
                    *pos += n;
                    st.send_window -= n as i64;
                    self.send_window -= n as i64;
                    ended = fin;
                    if last {
                        st.queue.pop_front();
                    }
                }
            }
            if ended {
                self.after_end_sent(id);
            } else if let Some(st) = self.streams.get_mut(&id) {
                if !st.queue.is_empty() {
                    st.in_ready = true;
                    self.ready.push_back(id);
                }
            }
        }
    }
}

/// RFC 9113 §8.2 / §8.3.1 checks on a request header list.
fn validate_request<'a>(
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> std::result::Result<(), &'static str> {
    let mut seen_regular = false;
    let (mut method, mut scheme, mut path) = (false, false, false);
    for (name, value) in fields {
        if name.first() == Some(&b':') {
            if seen_regular {
                return Err("pseudo-header after regular header");
            }
            let slot = match name {
                b":method" => &mut method,
                b":scheme" => &mut scheme,
                b":path" => &mut path,
                b":authority" => continue,
                _ => return Err("unknown pseudo-header"),
            };
            if *slot {
                return Err("duplicate pseudo-header");
            }
            *slot = true;
            if name == b":path" && value.is_empty() {
                return Err("empty :path");
            }
        } else {
            seen_regular = true;
            if name.is_empty() || name.iter().any(|c| c.is_ascii_uppercase()) {
                return Err("invalid header name");
            }
            match name {
                b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
                | b"upgrade" => return Err("connection-specific header"),
                b"te" if value != b"trailers" => return Err("te other than trailers"),
                _ => {}
            }
        }
    }
    if !(method && scheme && path) {
        return Err("missing pseudo-header");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
