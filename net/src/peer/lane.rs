//! A message-lane connection handed to the owner's event loop.
//!
//! By default a reader thread per inbound connection reads frames and pushes the messages
//! into the [`Inbox`](super::Inbox), which wakes the owner: two thread hand-offs per burst of
//! messages. With [`PeerTransportConfig::message_lanes_to_owner`](super::PeerTransportConfig)
//! set, the reader thread does only the handshake; the accepted connection then arrives as
//! [`PeerEvent::MessageLane`](super::PeerEvent) and the owner registers it with its own mio
//! poll (it is a [`mio::event::Source`]) and calls [`MessageLane::read_messages`] whenever it
//! is readable: the messages go straight from the socket into the owner's thread.
//!
//! Everything the reader thread checks is checked here too, with the same frame decoder
//! ([`parse_frame`]): the length cap before buffering a payload, the kind, the CRC. A bad
//! frame closes the connection and is recorded as a protocol error; the sending member
//! reconnects. The connection stays in the transport's socket registry, so removing the
//! peer, a newer connection from the same member, or shutting the transport down still
//! closes it (the owner then sees [`LaneStatus::Closed`]).

use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::core::{Core, SocketGuard};
use super::frame::{parse_frame, FrameKind};
use super::stats::add;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 << 10;

/// An accepted, handshaken message-lane connection from another member, read by the owner.
pub struct MessageLane {
    from: u64,
    remote: SocketAddr,
    stream: mio::net::TcpStream,
    core: Arc<Core>,
    _guard: SocketGuard,
    /// Received bytes: `buf[start..end]` are not parsed yet.
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// Whether a lane can still be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaneStatus {
    /// Everything the socket had was read; wait for it to become readable again.
    Open,
    /// The call stopped after its read budget
    /// ([`PeerTransportConfig::lane_read_budget`](super::PeerTransportConfig)) and the socket
    /// may hold more. No new
    /// readiness is reported for what is already there (edge-triggered), so call
    /// `read_messages` again soon — e.g. from a zero-delay timer, after serving other work.
    Pending,
    /// The connection ended (closed by the peer or the transport, broken, or it sent a bad
    /// frame — recorded in the transport's stats and log). Deregister and drop the lane.
    Closed,
}

impl MessageLane {
    /// Takes over `stream` (blocking, handshake done) from the reader thread.
    pub(crate) fn new(
        core: Arc<Core>,
        guard: SocketGuard,
        stream: std::net::TcpStream,
        from: u64,
        remote: SocketAddr,
    ) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(MessageLane {
            from,
            remote,
            stream: mio::net::TcpStream::from_std(stream),
            core,
            _guard: guard,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
        })
    }

    /// The member on the other end (authenticated by the handshake).
    pub fn from(&self) -> u64 {
        self.from
    }

    /// Reads what the socket has now — until it would block (the socket is edge-triggered),
    /// or `lane_read_budget` bytes (then [`LaneStatus::Pending`], so a member that keeps its
    /// socket full cannot hold the owner's loop, and the clients it serves, in one call) —
    /// and appends each complete message's payload to `out`, in order.
    pub fn read_messages(&mut self, out: &mut Vec<Vec<u8>>) -> LaneStatus {
        let max = self.core.config.max_message_bytes as u32;
        let budget = self.core.config.lane_read_budget.max(1);
        let before = out.len();
        let mut read_now = 0;
        let status = loop {
            if let Err(reason) = self.parse(max, out) {
                self.protocol_error(&reason);
                break LaneStatus::Closed;
            }
            if read_now >= budget {
                break LaneStatus::Pending;
            }
            self.make_room();
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    if self.start != self.end && !self.core.stopping() {
                        self.protocol_error("connection closed in the middle of a frame");
                    }
                    break LaneStatus::Closed;
                }
                Ok(n) => {
                    self.end += n;
                    read_now += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break LaneStatus::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if !self.core.stopping() {
                        self.protocol_error(&format!("i/o error: {e}"));
                    }
                    break LaneStatus::Closed;
                }
            }
        };
        add(
            &self.core.counters.messages_received,
            (out.len() - before) as u64,
        );
        status
    }

    /// Moves every complete frame out of the buffer.
    fn parse(&mut self, max: u32, out: &mut Vec<Vec<u8>>) -> Result<(), String> {
        while let Some(frame) =
            parse_frame(&self.buf[self.start..self.end], max).map_err(|e| e.to_string())?
        {
            if frame.kind != FrameKind::Message {
                return Err(format!(
                    "unexpected {:?} frame on the message lane",
                    frame.kind
                ));
            }
            let at = self.start;
            out.push(self.buf[at + frame.payload.start..at + frame.payload.end].to_vec());
            self.start += frame.len;
        }
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
            if self.buf.len() > 4 * READ_CHUNK {
                // A big message is through: give its room back.
                self.buf.truncate(READ_CHUNK);
                self.buf.shrink_to_fit();
            }
        }
        Ok(())
    }

    /// Ensures free space after `end`: moves the unparsed bytes to the front, and grows the
    /// buffer when a frame (at most the message cap, checked by `parse`) needs more room.
    fn make_room(&mut self) {
        if self.end < self.buf.len() {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
            return;
        }
        let grown = self.buf.len() + READ_CHUNK.max(self.buf.len() / 2);
        self.buf.resize(grown, 0);
    }

    fn protocol_error(&self, reason: &str) {
        self.core.note_protocol_error(format!(
            "closed connection from member {:#x} at {}: {reason}",
            self.from, self.remote
        ));
    }
}

impl Drop for MessageLane {
    fn drop(&mut self) {
        // The connection slot the acceptor counted for this connection.
        self.core.inbound_active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl mio::event::Source for MessageLane {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        self.stream.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        self.stream.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        self.stream.deregister(registry)
    }
}

impl fmt::Debug for MessageLane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageLane")
            .field("from", &self.from)
            .field("remote", &self.remote)
            .finish()
    }
}

/// Lanes compare by identity: two values are equal only if they are the same connection.
impl PartialEq for MessageLane {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for MessageLane {}
