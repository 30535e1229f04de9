//! The gRPC server side of one HTTP/2 connection, sans-io: turns HTTP/2 events into
//! [`CallEvent`]s and responses into HEADERS/DATA/trailers.

use super::framing::MessageDecoder;
use super::metadata::{base64_decode, parse_timeout, Metadata};
use super::status::{percent_encode, Code, Status};
use crate::event_loop::TimerId;
use crate::http2::id_hash::IdMap;
use crate::http2::{Connection, ErrorCode, Event, H2Config, H2Error, RawEvent, Role};
use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, Instant};

/// Identifies one call: the connection slot, its generation (slots are reused) and the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId {
    pub(crate) conn: u32,
    pub(crate) generation: u32,
    pub(crate) stream: u32,
}

impl CallId {
    /// The HTTP/2 stream id (for logs).
    pub fn stream(&self) -> u32 {
        self.stream
    }
}

/// Why a call ended without the handler finishing it. The handler must drop its state for the
/// call; responses to it are discarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// The client reset the stream (RST_STREAM, e.g. CANCEL).
    ClientReset,
    /// The `grpc-timeout` deadline passed: DEADLINE_EXCEEDED was sent to the client.
    DeadlineExceeded,
    /// The connection closed or failed.
    ConnectionClosed,
    /// The request was malformed (e.g. too large or truncated); the given status was sent.
    Rejected(Status),
}

/// What the server learns about calls, in order per call:
/// `Started`, then any number of `Message`s, then `HalfClosed` (client done sending);
/// `Cancelled` may come at any point and is final.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallEvent {
    /// A new call: its method path (`/etcdserverpb.KV/Put`), metadata and deadline.
    Started {
        /// The call, for responses.
        call: CallId,
        /// The `:path`, e.g. `/etcdserverpb.KV/Put`.
        path: String,
        /// Custom request headers (`token`, `hasleader`, ...).
        metadata: Metadata,
        /// From `grpc-timeout`; the loop enforces it (DEADLINE_EXCEEDED + `Cancelled`).
        deadline: Option<Instant>,
    },
    /// One complete request message (protobuf bytes, without the 5-byte gRPC prefix).
    Message {
        /// The call.
        call: CallId,
        /// The message bytes.
        message: Vec<u8>,
    },
    /// The client finished sending (END_STREAM). A unary call is complete now.
    HalfClosed {
        /// The call.
        call: CallId,
    },
    /// The call is over without a response from the handler (see [`CancelReason`]).
    Cancelled {
        /// The call (now gone: responses to it are dropped).
        call: CallId,
        /// Why it ended.
        reason: CancelReason,
    },
}

/// Server-side gRPC settings.
#[derive(Clone, Debug)]
pub struct GrpcConfig {
    /// Largest request message accepted; larger → RESOURCE_EXHAUSTED. etcd: 1.5 MiB + 512 KiB.
    pub max_recv_message_size: usize,
    /// If set, calls to other paths are answered UNIMPLEMENTED by the library (grpc-go's
    /// wording) and never reach the handler.
    pub methods: Option<HashSet<String>>,
    /// Cap on the bytes one connection may hold in incomplete request messages across all its
    /// calls (flow-control credit is returned as data arrives, so this is what bounds memory);
    /// the call that would exceed it is answered RESOURCE_EXHAUSTED.
    pub max_buffered_per_connection: usize,
    /// HTTP/2 settings and limits.
    pub h2: H2Config,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            max_recv_message_size: 3 * 512 * 1024 + 512 * 1024,
            methods: None,
            max_buffered_per_connection: 64 << 20,
            h2: H2Config::default(),
        }
    }
}

/// Errors from the response API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The call is no longer open (finished, cancelled, or its connection closed).
    Gone(CallId),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Gone(c) => write!(f, "call on stream {} is no longer open", c.stream),
        }
    }
}

impl std::error::Error for CallError {}

#[derive(Debug)]
struct CallState {
    decoder: MessageDecoder,
    headers_sent: bool,
    deadline_timer: Option<TimerId>,
}

/// The calls of one HTTP/2 server connection.
#[derive(Debug)]
pub struct GrpcServerConn {
    pub(crate) h2: Connection,
    calls: IdMap<u32, CallState>,
    conn: u32,
    generation: u32,
    max_recv: usize,
    methods: Option<HashSet<String>>,
    max_buffered: usize,
    /// Sum of `decoder.buffered()` over all calls.
    buffered: usize,
    /// Reused for the messages decoded from one DATA frame.
    scratch_messages: Vec<Vec<u8>>,
}

const RESPONSE_HEADERS: [(&[u8], &[u8]); 2] =
    [(b":status", b"200"), (b"content-type", b"application/grpc")];

/// Header block cache slots of the HTTP/2 connection: the response headers and OK trailers
/// (identical for every call, so after the first call each is 1 or 2 bytes from the cache).
const CACHE_RESPONSE_HEADERS: usize = 0;
const CACHE_OK_TRAILERS: usize = 1;
const OK_TRAILERS: [(&[u8], &[u8]); 1] = [(b"grpc-status", b"0")];

/// `grpc-status` values as text, without formatting (codes are 0..=16).
fn status_text(code: Code) -> &'static [u8] {
    const TEXT: [&[u8]; 17] = [
        b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9", b"10", b"11", b"12", b"13",
        b"14", b"15", b"16",
    ];
    TEXT.get(code as usize).copied().unwrap_or(b"2")
}

impl GrpcServerConn {
    /// A new connection in slot `conn`/`generation` (used to build [`CallId`]s).
    pub fn new(config: &GrpcConfig, conn: u32, generation: u32) -> Self {
        GrpcServerConn {
            h2: Connection::new(Role::Server, config.h2.clone()),
            calls: IdMap::default(),
            conn,
            generation,
            max_recv: config.max_recv_message_size,
            methods: config.methods.clone(),
            max_buffered: config.max_buffered_per_connection,
            buffered: 0,
            scratch_messages: Vec::new(),
        }
    }

    /// Removes a call, keeping the buffered-bytes account right.
    fn remove_call(&mut self, stream: u32) -> Option<CallState> {
        let c = self.calls.remove(&stream)?;
        self.buffered -= c.decoder.buffered();
        Some(c)
    }

    fn id(&self, stream: u32) -> CallId {
        CallId {
            conn: self.conn,
            generation: self.generation,
            stream,
        }
    }

    /// Whether the call is still open.
    pub fn is_open(&self, stream: u32) -> bool {
        self.calls.contains_key(&stream)
    }

    /// Records the deadline timer the loop registered for a call.
    pub(crate) fn set_deadline_timer(&mut self, stream: u32, t: TimerId) {
        if let Some(c) = self.calls.get_mut(&stream) {
            c.deadline_timer = Some(t);
        }
    }

    /// Feeds received bytes; call events are appended to `out`. A connection error is returned
    /// after all open calls were reported cancelled; GOAWAY is in the output.
    pub fn recv(&mut self, data: &[u8], out: &mut Vec<CallEvent>) -> Result<(), H2Error> {
        let r = self.h2.recv(data);
        self.process_events(out);
        match r {
            Err(e @ H2Error::Connection { .. }) => {
                self.close_all(out);
                Err(e)
            }
            _ => Ok(()),
        }
    }

    /// Reports every open call as cancelled (connection closed); returns their deadline timers.
    pub fn close_all(&mut self, out: &mut Vec<CallEvent>) -> Vec<TimerId> {
        let mut timers = Vec::new();
        let mut streams: Vec<u32> = self.calls.keys().copied().collect();
        streams.sort_unstable();
        for s in streams {
            let c = self.remove_call(s).expect("listed");
            timers.extend(c.deadline_timer);
            out.push(CallEvent::Cancelled {
                call: self.id(s),
                reason: CancelReason::ConnectionClosed,
            });
        }
        timers
    }

    fn process_events(&mut self, out: &mut Vec<CallEvent>) {
        // Header fields and data are read in place from the connection's event arena.
        while let Some(ev) = self.h2.poll_raw_event() {
            match ev {
                RawEvent::Headers {
                    stream,
                    fields,
                    end_stream,
                } => {
                    if self.calls.contains_key(&stream) {
                        // Client trailers: only END_STREAM matters.
                        if end_stream {
                            self.half_close(stream, out);
                        }
                    } else {
                        self.start_call(stream, fields, end_stream, out);
                    }
                }
                RawEvent::Data {
                    stream,
                    data,
                    end_stream,
                } => {
                    let Some(call) = self.calls.get_mut(&stream) else {
                        continue;
                    };
                    let mut msgs = std::mem::take(&mut self.scratch_messages);
                    let before = call.decoder.buffered();
                    let pushed = call.decoder.push(self.h2.event_data(data), &mut msgs);
                    self.buffered = self.buffered + call.decoder.buffered() - before;
                    let id = self.id(stream);
                    out.extend(
                        msgs.drain(..)
                            .map(|message| CallEvent::Message { call: id, message }),
                    );
                    self.scratch_messages = msgs;
                    if let Err(e) = pushed {
                        let code = match e {
                            super::FramingError::TooLarge { .. } => Code::ResourceExhausted,
                            super::FramingError::Compressed => Code::Internal,
                            super::FramingError::Truncated => Code::Internal,
                        };
                        self.reject(stream, Status::new(code, e.to_string()), out);
                        continue;
                    }
                    if self.buffered > self.max_buffered {
                        let msg = format!(
                            "grpc: connection holds more than {} bytes of incomplete messages",
                            self.max_buffered
                        );
                        self.reject(stream, Status::new(Code::ResourceExhausted, msg), out);
                        continue;
                    }
                    if end_stream {
                        self.half_close(stream, out);
                    }
                }
                RawEvent::Other(Event::Reset {
                    stream,
                    remote,
                    code,
                }) => {
                    if let Some(_c) = self.remove_call(stream) {
                        let reason = if remote {
                            CancelReason::ClientReset
                        } else {
                            CancelReason::Rejected(Status::new(
                                Code::Internal,
                                format!("http2 stream error {code}"),
                            ))
                        };
                        out.push(CallEvent::Cancelled {
                            call: self.id(stream),
                            reason,
                        });
                        // The deadline timer, if any, fires later and finds the call gone.
                    }
                }
                RawEvent::Other(_) => {}
            }
        }
    }

    fn half_close(&mut self, stream: u32, out: &mut Vec<CallEvent>) {
        let Some(call) = self.calls.get(&stream) else {
            return;
        };
        if let Err(e) = call.decoder.finish() {
            self.reject(stream, Status::new(Code::Internal, e.to_string()), out);
            return;
        }
        out.push(CallEvent::HalfClosed {
            call: self.id(stream),
        });
    }

    /// Ends a call with an error status on the library's own initiative and tells the handler.
    fn reject(&mut self, stream: u32, status: Status, out: &mut Vec<CallEvent>) {
        let _ = self.finish(stream, &status);
        out.push(CallEvent::Cancelled {
            call: self.id(stream),
            reason: CancelReason::Rejected(status),
        });
    }

    fn start_call(
        &mut self,
        stream: u32,
        fields: std::ops::Range<usize>,
        end_stream: bool,
        out: &mut Vec<CallEvent>,
    ) {
        let mut path = None;
        let mut method_ok = false;
        let mut content_type_ok = false;
        let mut timeout = None;
        let mut metadata = Metadata::new();
        for (name, value) in self.h2.event_fields(fields) {
            match name {
                b":path" => path = std::str::from_utf8(value).ok().map(str::to_owned),
                b":method" => method_ok = value == b"POST",
                b"content-type" => content_type_ok = value.starts_with(b"application/grpc"),
                b"grpc-timeout" => timeout = parse_timeout(value),
                b"te"
                | b"user-agent"
                | b"grpc-accept-encoding"
                | b"grpc-encoding"
                | b":scheme"
                | b":authority" => {}
                name if name.first() == Some(&b':') => {}
                name => {
                    let name = String::from_utf8_lossy(name).into_owned();
                    let value = if name.ends_with("-bin") {
                        base64_decode(value).unwrap_or_else(|| value.to_vec())
                    } else {
                        value.to_vec()
                    };
                    metadata.insert(name, value);
                }
            }
        }
        if !method_ok {
            let _ = self.h2.send_headers(stream, &[(b":status", b"405")], true);
            return;
        }
        if !content_type_ok {
            let _ = self.h2.send_headers(stream, &[(b":status", b"415")], true);
            return;
        }
        let path = path.unwrap_or_default();
        if let Some(status) = self.unimplemented(&path) {
            let _ = self.send_trailers_only(stream, &status);
            return;
        }
        self.calls.insert(
            stream,
            CallState {
                decoder: MessageDecoder::new(self.max_recv),
                headers_sent: false,
                deadline_timer: None,
            },
        );
        // A deadline too far to represent is no deadline.
        let deadline = timeout.and_then(|t: Duration| Instant::now().checked_add(t));
        out.push(CallEvent::Started {
            call: self.id(stream),
            path,
            metadata,
            deadline,
        });
        if end_stream {
            self.half_close(stream, out);
        }
    }

    /// grpc-go's answers for unknown services and methods.
    fn unimplemented(&self, path: &str) -> Option<Status> {
        let methods = self.methods.as_ref()?;
        if methods.contains(path) {
            return None;
        }
        let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.rsplit_once('/'))
        else {
            return Some(Status::new(
                Code::Unimplemented,
                format!("malformed method name: {path:?}"),
            ));
        };
        let prefix = format!("/{service}/");
        if methods.iter().any(|m| m.starts_with(&prefix)) {
            Some(Status::new(
                Code::Unimplemented,
                format!("unknown method {method} for service {service}"),
            ))
        } else {
            Some(Status::new(
                Code::Unimplemented,
                format!("unknown service {service}"),
            ))
        }
    }

    fn send_trailers_only(
        &mut self,
        stream: u32,
        status: &Status,
    ) -> Result<(), crate::http2::SendError> {
        let msg = percent_encode(&status.message);
        let fields: [(&[u8], &[u8]); 4] = [
            RESPONSE_HEADERS[0],
            RESPONSE_HEADERS[1],
            (b"grpc-status", status_text(status.code)),
            (b"grpc-message", &msg),
        ];
        let n = if msg.is_empty() { 3 } else { 4 };
        self.h2.send_headers(stream, &fields[..n], true)
    }

    /// Sends one response message (response headers first if not yet sent).
    pub fn send_message(&mut self, stream: u32, message: &[u8]) -> Result<(), CallError> {
        let id = self.id(stream);
        let call = self.calls.get_mut(&stream).ok_or(CallError::Gone(id))?;
        if !call.headers_sent {
            call.headers_sent = true;
            self.h2
                .send_headers_cached(stream, CACHE_RESPONSE_HEADERS, &RESPONSE_HEADERS, false)
                .map_err(|_| CallError::Gone(id))?;
        }
        let len = u32::try_from(message.len()).map_err(|_| CallError::Gone(id))?;
        let [a, b, c, d] = len.to_be_bytes();
        self.h2
            .send_data_parts(stream, &[0, a, b, c, d], message, false)
            .map_err(|_| CallError::Gone(id))
    }

    /// Ends a call with `status` (trailers, or trailers-only if nothing was sent). Returns the
    /// call's deadline timer so the loop can cancel it.
    pub fn finish(&mut self, stream: u32, status: &Status) -> Result<Option<TimerId>, CallError> {
        let id = self.id(stream);
        let call = self.remove_call(stream).ok_or(CallError::Gone(id))?;
        let r = if call.headers_sent {
            if status.code == Code::Ok && status.message.is_empty() {
                self.h2
                    .send_headers_cached(stream, CACHE_OK_TRAILERS, &OK_TRAILERS, true)
            } else {
                let msg = percent_encode(&status.message);
                let fields: [(&[u8], &[u8]); 2] = [
                    (b"grpc-status", status_text(status.code)),
                    (b"grpc-message", &msg),
                ];
                let n = if msg.is_empty() { 1 } else { 2 };
                self.h2.send_headers(stream, &fields[..n], true)
            }
        } else {
            self.send_trailers_only(stream, status)
        };
        r.map_err(|_| CallError::Gone(id))?;
        Ok(call.deadline_timer)
    }

    /// The deadline passed: answer DEADLINE_EXCEEDED and report the call cancelled.
    pub(crate) fn expire(&mut self, stream: u32, out: &mut Vec<CallEvent>) {
        if self.calls.contains_key(&stream) {
            if let Some(c) = self.calls.get_mut(&stream) {
                c.deadline_timer = None;
            }
            let _ = self.finish(
                stream,
                &Status::new(Code::DeadlineExceeded, "context deadline exceeded"),
            );
            out.push(CallEvent::Cancelled {
                call: self.id(stream),
                reason: CancelReason::DeadlineExceeded,
            });
        }
    }

    /// Resets a call's stream (server-side cancellation) and forgets it.
    pub fn cancel(&mut self, stream: u32) -> Option<TimerId> {
        let call = self.remove_call(stream)?;
        self.h2.reset_stream(stream, ErrorCode::Cancel);
        call.deadline_timer
    }

    /// The underlying HTTP/2 connection (its output must be written to the transport).
    pub fn h2(&mut self) -> &mut Connection {
        &mut self.h2
    }

    /// Number of open calls.
    pub fn open_calls(&self) -> usize {
        self.calls.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pump(c: &mut Connection, s: &mut GrpcServerConn, out: &mut Vec<CallEvent>) {
        for _ in 0..100 {
            let a = c.output().to_vec();
            c.consume_output(a.len());
            s.recv(&a, out).unwrap();
            let b = s.h2.output().to_vec();
            s.h2.consume_output(b.len());
            c.recv(&b).unwrap();
            if a.is_empty() && b.is_empty() {
                return;
            }
        }
    }

    #[test]
    fn incomplete_messages_are_bounded_per_connection() {
        let cfg = GrpcConfig {
            max_buffered_per_connection: 100_000,
            ..GrpcConfig::default()
        };
        let mut server = GrpcServerConn::new(&cfg, 0, 0);
        let mut client = Connection::new(Role::Client, H2Config::default());
        let mut out = Vec::new();
        let req: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", b"/a.B/C"),
            (b"content-type", b"application/grpc"),
        ];
        let mut streams = Vec::new();
        for _ in 0..3 {
            let id = client.open_stream(&req, false).unwrap();
            // Announce 60,000 bytes, send 45,000 of them.
            let mut partial = vec![0, 0, 0, 0xea, 0x60];
            partial.extend_from_slice(&[1; 45_000]);
            client.send_data(id, partial, false).unwrap();
            streams.push(id);
            pump(&mut client, &mut server, &mut out);
        }
        let rejected: Vec<u32> = out
            .iter()
            .filter_map(|e| match e {
                CallEvent::Cancelled {
                    call,
                    reason: CancelReason::Rejected(s),
                } if s.code == Code::ResourceExhausted => Some(call.stream),
                _ => None,
            })
            .collect();
        assert_eq!(
            rejected,
            vec![streams[2]],
            "the third call crosses 100,000 bytes"
        );
        assert_eq!(server.buffered, 2 * 45_005);
        // Finishing a call releases its bytes.
        server.finish(streams[0], &Status::ok()).unwrap();
        assert_eq!(server.buffered, 45_005);
    }

    /// Runs 60 calls of mixed outcomes one after another on one connection; returns what the
    /// client decoded (per call: header lists and data, in order).
    fn mixed_calls(cfg: &GrpcConfig) -> Vec<Vec<Event>> {
        let mut server = GrpcServerConn::new(cfg, 0, 0);
        let mut client = Connection::new(Role::Client, H2Config::default());
        let mut out = Vec::new();
        pump(&mut client, &mut server, &mut out);
        let mut per_call = Vec::new();
        for i in 0..60u32 {
            let path = format!("/svc.S/M{}", i % 3);
            let req: Vec<(&[u8], &[u8])> = vec![
                (b":method", b"POST"),
                (b":scheme", b"http"),
                (b":path", path.as_bytes()),
                (b"content-type", b"application/grpc"),
                (b"x-meta", b"v"),
            ];
            let id = client.open_stream(&req, false).unwrap();
            client
                .send_data(id, crate::grpc::encode_message(&i.to_be_bytes()), true)
                .unwrap();
            out.clear();
            pump(&mut client, &mut server, &mut out);
            assert!(
                matches!(&out[..], [CallEvent::Started { path: p, .. }, CallEvent::Message { .. }, CallEvent::HalfClosed { .. }] if *p == path),
                "{out:?}"
            );
            match i % 4 {
                0 | 1 => {
                    server.send_message(id, &[i as u8; 30]).unwrap();
                    server.finish(id, &Status::ok()).unwrap();
                }
                2 => {
                    server
                        .finish(id, &Status::new(Code::NotFound, "key not found: ü"))
                        .unwrap();
                }
                _ => {
                    server.send_message(id, b"partial").unwrap();
                    server.send_message(id, b"").unwrap();
                    server
                        .finish(id, &Status::new(Code::Unavailable, "no leader"))
                        .unwrap();
                }
            }
            pump(&mut client, &mut server, &mut out);
            per_call.push(std::iter::from_fn(|| client.poll_event()).collect());
        }
        per_call
    }

    #[test]
    fn indexed_response_headers_decode_exactly_as_literal_ones() {
        let literal = GrpcConfig {
            h2: H2Config {
                encoder_table_size: 0,
                ..H2Config::default()
            },
            ..GrpcConfig::default()
        };
        let plain = mixed_calls(&literal);
        let indexed = mixed_calls(&GrpcConfig::default());
        assert_eq!(indexed, plain);
        // Spot checks of what both decode to.
        let hf = crate::hpack::HeaderField::new;
        let Event::Headers { fields, .. } = &plain[0][0] else {
            panic!("{:?}", plain[0]);
        };
        assert_eq!(
            *fields,
            [hf(":status", "200"), hf("content-type", "application/grpc")]
        );
        let Event::Headers { fields, .. } = plain[2].last().unwrap() else {
            panic!("{:?}", plain[2]);
        };
        assert_eq!(
            *fields,
            [
                hf(":status", "200"),
                hf("content-type", "application/grpc"),
                hf("grpc-status", "5"),
                hf("grpc-message", "key not found: %C3%BC"),
            ]
        );
        let Event::Headers { fields, .. } = plain[41].last().unwrap() else {
            panic!("{:?}", plain[41]);
        };
        assert_eq!(*fields, [hf("grpc-status", "0")]);
        assert_eq!(
            plain[3].len(),
            4,
            "headers, 2 messages, trailers: {:?}",
            plain[3]
        );
    }
}
