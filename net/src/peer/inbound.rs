//! The receiving side: the acceptor thread and one reader thread per inbound connection.

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::core::{Core, SocketGuard};
use super::frame::{read_frame, FrameError, FrameKind, FRAME_HEADER_LEN};
use super::handshake::{HandshakeError, Hello, Lane, Reply, Verdict, HELLO_LEN};
use super::http::{
    encode_response, read_request_path_io, DeadlineReader, HttpReply, RequestHeadError,
};
use super::inbox::PeerEvent;
use super::lane::MessageLane;
use super::snapshot::receive_snapshots;
use super::stats::add;

/// Token of the listening socket in the acceptor's poll.
pub(crate) const LISTENER: Token = Token(0);
/// Token of the waker that shutdown uses to stop the acceptor.
pub(crate) const STOP: Token = Token(1);

/// Body of the acceptor thread: waits in mio's `poll` for the (non-blocking) listener to become
/// readable or for the shutdown waker, then accepts until the backlog is empty.
pub(crate) fn run_acceptor(core: Arc<Core>, listener: TcpListener, mut poll: Poll) {
    let mut events = Events::with_capacity(8);
    let mut retry_soon = false;
    loop {
        // After an accept error (e.g. out of file descriptors) the pending connection would not
        // produce a new readiness edge, so poll with a timeout and try again.
        let timeout = retry_soon.then_some(Duration::from_millis(50));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() != ErrorKind::Interrupted {
                core.log(&format!("acceptor poll failed: {e}"));
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        retry_soon = false;
        loop {
            if core.stopping() {
                return;
            }
            let (stream, remote) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    core.log(&format!("accept failed: {e}"));
                    retry_soon = true;
                    break;
                }
            };
            // Accepted sockets are used with blocking reads and writes (with timeouts).
            if stream.set_nonblocking(false).is_err() {
                continue;
            }
            accept_one(&core, stream, remote);
        }
    }
}

fn accept_one(core: &Arc<Core>, stream: TcpStream, remote: SocketAddr) {
    let active = core.inbound_active.fetch_add(1, Ordering::AcqRel);
    if active >= core.config.max_inbound_connections {
        core.inbound_active.fetch_sub(1, Ordering::AcqRel);
        refuse_busy(core, stream, remote);
        return;
    }
    let conn_core = core.clone();
    let spawned = core.spawn(format!("keel-peer-in-{remote}"), move || {
        if serve_connection(&conn_core, stream, remote) == Served::HereAndDone {
            conn_core.inbound_active.fetch_sub(1, Ordering::AcqRel);
        }
    });
    if let Err(e) = spawned {
        core.inbound_active.fetch_sub(1, Ordering::AcqRel);
        if !core.stopping() {
            core.log(&format!("cannot start a reader for {remote}: {e}"));
        }
    }
}

fn refuse_busy(core: &Core, mut stream: TcpStream, remote: SocketAddr) {
    let reply = Reply {
        verdict: Verdict::Busy,
        cluster_id: core.config.cluster_id,
        member_id: core.config.local_id,
    };
    let _ = stream.set_write_timeout(Some(core.config.handshake_timeout));
    let _ = stream.write_all(&reply.encode());
    core.note_rejected(format!(
        "refused connection from {remote}: too many inbound connections (limit {})",
        core.config.max_inbound_connections
    ));
}

/// What became of an inbound connection.
#[derive(PartialEq, Eq)]
enum Served {
    /// Served on this thread, and closed.
    HereAndDone,
    /// Handed to the owner as a [`MessageLane`], which gives the connection slot back when
    /// dropped.
    ToOwner,
}

/// Handshake, then read frames until the connection ends or misbehaves (or hand a message
/// lane to the owner).
fn serve_connection(core: &Arc<Core>, stream: TcpStream, remote: SocketAddr) -> Served {
    let Ok(guard) = core.register_socket(&stream, None) else {
        return Served::HereAndDone;
    };
    let Some((stream, from, lane)) = handshake(core, stream, remote, &guard) else {
        return Served::HereAndDone;
    };
    match lane {
        Lane::Messages if core.config.message_lanes_to_owner => {
            match MessageLane::new(core.clone(), guard, stream, from, remote) {
                Ok(lane) => {
                    let stop = || core.stopping();
                    // On failure (the owner is gone) the lane is dropped here, which gives
                    // the slot back.
                    let _ = core.events.deliver(PeerEvent::MessageLane(lane), &stop);
                }
                Err(e) => {
                    core.note_protocol_error(format!(
                        "connection from member {from:#x} at {remote}: {e}"
                    ));
                    // `new` consumed the guard and stream; the slot is still ours to return.
                    return Served::HereAndDone;
                }
            }
            Served::ToOwner
        }
        Lane::Messages => {
            read_messages(core, stream, from, remote);
            Served::HereAndDone
        }
        Lane::Snapshots => {
            receive_snapshots(core, stream, from, remote);
            Served::HereAndDone
        }
    }
}

/// Reads and answers the hello. Returns the connection, the authenticated sender and the
/// lane once accepted; `None` when it was refused or answered otherwise (plain HTTP).
fn handshake(
    core: &Arc<Core>,
    mut stream: TcpStream,
    remote: SocketAddr,
    guard: &SocketGuard,
) -> Option<(TcpStream, u64, Lane)> {
    let cfg = &core.config;
    let reply = |verdict| {
        Reply {
            verdict,
            cluster_id: cfg.cluster_id,
            member_id: cfg.local_id,
        }
        .encode()
    };

    let deadline = Instant::now() + cfg.handshake_timeout;
    let mut hello_bytes = [0u8; HELLO_LEN];
    let (first, rest) = hello_bytes.split_at_mut(HTTP_GET.len());
    let mut is_http = false;
    let setup = stream
        .set_nodelay(true)
        .and_then(|_| stream.set_read_timeout(Some(cfg.handshake_timeout)))
        .and_then(|_| stream.set_write_timeout(Some(cfg.handshake_timeout)))
        .and_then(|_| stream.read_exact(first))
        .and_then(|_| {
            // A joining member asking for the member list with plain HTTP (see `http`).
            is_http = first == HTTP_GET;
            if is_http {
                Ok(())
            } else {
                stream.read_exact(rest)
            }
        });
    if is_http {
        serve_http(core, &stream, remote, deadline);
        return None;
    }
    if let Err(e) = setup {
        if !core.stopping() {
            let why = match e.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                    format!("timed out after {:?}", cfg.handshake_timeout)
                }
                ErrorKind::UnexpectedEof => "connection closed".to_string(),
                _ => e.to_string(),
            };
            core.note_rejected(format!(
                "closed connection from {remote}: no complete handshake: {why}"
            ));
        }
        return None;
    }
    let hello = match Hello::decode(&hello_bytes) {
        Ok(hello) => hello,
        Err(HandshakeError::BadMagic) => {
            // Not a keel peer (an HTTP client, a port scanner): no reply it would understand.
            core.note_rejected(format!(
                "closed connection from {remote}: not a keel peer (bad magic)"
            ));
            return None;
        }
        Err(e) => {
            let _ = stream.write_all(&reply(Verdict::Malformed));
            core.note_rejected(format!("closed connection from {remote}: {e}"));
            return None;
        }
    };
    let known = core.peers.read().contains_key(&hello.from);
    let verdict = hello.verdict(cfg.cluster_id, cfg.local_id, known);
    if stream.write_all(&reply(verdict)).is_err() {
        return None;
    }
    if verdict != Verdict::Accepted {
        core.note_rejected(format!(
            "refused connection from {remote} (member {:#x}, cluster {:#x}, for member {:#x}): {verdict}",
            hello.from, hello.cluster_id, hello.to
        ));
        return None;
    }
    add(&core.counters.inbound_accepted, 1);
    let replaced = core.set_inbound_peer(guard, hello.from, hello.lane == Lane::Messages);
    if replaced > 0 {
        core.log(&format!(
            "member {:#x} reconnected from {remote}; closed {replaced} older connection(s) from it",
            hello.from
        ));
    }
    if let Err(e) = stream
        .set_read_timeout(None)
        .and_then(|_| stream.set_write_timeout(Some(cfg.write_timeout)))
    {
        core.note_protocol_error(format!(
            "connection from member {:#x} at {remote}: {e}",
            hello.from
        ));
        return None;
    }
    Some((stream, hello.from, hello.lane))
}

/// First bytes of a plain HTTP `GET` request (the hello starts with `KEELPEER` instead).
const HTTP_GET: &[u8; 4] = b"GET ";

/// Answers one HTTP `GET` (whose first four bytes were read already) and closes: reads the
/// head within `deadline` and [`MAX_REQUEST_HEAD_BYTES`], asks the installed handler, writes
/// the response with `Connection: close`.
fn serve_http(core: &Core, stream: &TcpStream, remote: SocketAddr, deadline: Instant) {
    let mut reader = DeadlineReader { stream, deadline };
    let reply = match read_request_path_io(&mut reader, HTTP_GET) {
        Ok(path) => {
            let handler = core.http_handler.read().clone();
            match handler {
                None => HttpReply::plain_status(404),
                // A panicking handler must not take the reader thread (and its connection
                // slot accounting) down with it.
                Some(handler) => match catch_unwind(AssertUnwindSafe(|| handler(&path))) {
                    Ok(Some(reply)) => reply,
                    Ok(None) => HttpReply::plain_status(404),
                    Err(_) => {
                        core.log(&format!(
                            "HTTP handler panicked on GET {path} from {remote}; answered 500"
                        ));
                        HttpReply::plain_status(500)
                    }
                },
            }
        }
        Err(RequestHeadError::Head(e)) => {
            if !core.stopping() {
                core.note_rejected(format!("bad HTTP request from {remote}: {e}"));
            }
            HttpReply::plain_status(400)
        }
        Err(RequestHeadError::Io(e)) => {
            if core.stopping() {
                return;
            }
            let timed_out = matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
            if !timed_out {
                core.note_rejected(format!("HTTP request from {remote} failed: {e}"));
                return;
            }
            core.note_rejected(format!(
                "HTTP request from {remote}: no complete head within {:?}",
                core.config.handshake_timeout
            ));
            HttpReply::plain_status(408)
        }
    };
    add(&core.counters.http_requests, 1);
    let mut out = stream;
    let written = out
        .set_write_timeout(Some(core.config.write_timeout))
        .and_then(|_| out.write_all(&encode_response(&reply)))
        .and_then(|_| out.flush());
    if let Err(e) = written {
        if !core.stopping() {
            core.log(&format!("cannot write the HTTP response to {remote}: {e}"));
        }
        return;
    }
    // Half-close, then wait briefly for the client to close, so unread request bytes do not
    // turn our close into a reset that could destroy the response before it is read.
    let _ = out.shutdown(std::net::Shutdown::Write);
    let linger = Instant::now() + Duration::from_millis(500);
    let mut sink = DeadlineReader {
        stream,
        deadline: linger,
    };
    let mut scratch = [0u8; 1024];
    while let Ok(n) = sink.read(&mut scratch) {
        if n == 0 {
            break;
        }
    }
}

fn read_messages(core: &Arc<Core>, stream: TcpStream, from: u64, remote: SocketAddr) {
    let max = core.config.max_message_bytes as u32;
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let stop = || core.stopping();
    let mut batch = Vec::new();
    loop {
        // Read one frame (this may block), then every further frame already complete in the
        // read buffer, and hand them to the inbox together: one lock and at most one wake per
        // burst instead of per message.
        let outcome: Result<(), Option<String>> = loop {
            match read_frame(&mut reader, max) {
                Ok(frame) if frame.kind == FrameKind::Message => {
                    batch.push(PeerEvent::Message {
                        from,
                        payload: frame.payload,
                    });
                    if batch.len() >= MAX_DELIVERY_BATCH || !frame_buffered(reader.buffer()) {
                        break Ok(());
                    }
                }
                Ok(frame) => {
                    break Err(Some(format!(
                        "unexpected {:?} frame on the message lane",
                        frame.kind
                    )))
                }
                Err(FrameError::Closed) => break Err(None),
                Err(e) => break Err(Some(e.to_string())),
            }
        };
        if !batch.is_empty() {
            add(&core.counters.messages_received, batch.len() as u64);
            if core.events.deliver_all(&mut batch, &stop).is_err() {
                return;
            }
        }
        if let Err(reason) = outcome {
            if let Some(reason) = reason.filter(|_| !core.stopping()) {
                core.note_protocol_error(format!(
                    "closed connection from member {from:#x} at {remote}: {reason}"
                ));
            }
            return;
        }
    }
}

/// Most messages handed to the inbox in one go.
const MAX_DELIVERY_BATCH: usize = 256;

/// Whether `buf` holds at least one complete frame (so reading it will not block).
fn frame_buffered(buf: &[u8]) -> bool {
    buf.len() >= FRAME_HEADER_LEN
        && buf.len() - FRAME_HEADER_LEN
            >= u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize
}
