//! The peer transport: Raft messages and snapshots between the members of a cluster, over TCP.
//!
//! To this module a Raft message is an opaque byte string: the server encodes it with the
//! consensus crate's codec, calls [`PeerTransport::send`], and the same bytes come out of the
//! receiving member's [`Inbox`] as [`PeerEvent::Message`]. What the transport adds is
//! everything between: connections, framing, integrity, identity, backpressure, reconnection,
//! and a separate lane for snapshots.
//!
//! # Wire protocol
//! Every connection starts with a [`handshake`]: magic, version, lane, cluster id, sender id,
//! receiver id (CRC-protected), answered by a verdict. Misdirected or stale connections (wrong
//! cluster, wrong receiver, removed sender) are refused with a reason both sides log. Then
//! [`frame`]s follow: length-prefixed, CRC32-checked, with a size cap per lane checked before
//! any allocation. Each ordered pair of members uses one *message lane* connection per
//! direction (the sender dials), and a fresh *snapshot lane* connection per snapshot.
//!
//! # Plain HTTP `GET` on the same port
//! A member joining an existing cluster does not know its member id nor the cluster id yet,
//! so it cannot say hello. Like etcd (`GET <peerURL>/members`), it asks an existing member
//! with [`http_get`]. A connection whose first four bytes are `GET ` instead of the magic is
//! served by the [`http`] module: the request head is read (at most 8 KiB, within the
//! handshake timeout), its path goes to the [`HttpHandler`] (set in
//! [`PeerTransportConfig::http`] or later with [`PeerTransport::set_http_handler`]), the
//! [`HttpReply`] is written with `Content-Length` and `Connection: close`, and the
//! connection is closed. No handler gives `404`, a malformed head `400`.
//!
//! # Threading model (no async runtime)
//! Plain `std` threads and blocking sockets:
//! - one **acceptor** thread sleeps in mio's `poll` on the listener and accepts (shutdown wakes
//!   it with a `mio::Waker`);
//! - one **reader** thread per inbound connection (at most `max_inbound_connections`) does the
//!   handshake, reads frames, and pushes events into the inbox;
//! - one **writer** thread per peer owns that peer's message-lane connection: it dials (with
//!   exponential, capped, jittered backoff after failures), then moves batches from the peer's
//!   bounded send queue to the socket. A peer that stops reading blocks only its own writer
//!   (until `write_timeout` closes the connection); its queue fills and further `send`s to it
//!   fail fast with [`SendError::QueueFull`] while other peers are unaffected;
//! - one short-lived **snapshot** thread per snapshot being sent.
//!
//! Two shortcuts save thread hand-offs on the hot path: a sender writes its frames to the
//! socket itself while the peer's writer thread is idle (see `outbound`), and with
//! [`PeerTransportConfig::message_lanes_to_owner`] an accepted message-lane connection is
//! handed to the owner ([`PeerEvent::MessageLane`]), which reads it on its own event loop
//! ([`MessageLane`]) instead of a reader thread feeding the inbox.
//!
//! The owner (the server's event loop) never blocks on the transport: [`PeerTransport::send`]
//! only appends to a queue under a mutex. Incoming traffic and reports arrive in the
//! [`Inbox`], a bounded queue; the transport calls the owner's wake function (e.g. a closure
//! around `mio::Waker::wake`) when the inbox becomes non-empty, and the owner drains it with
//! [`Inbox::try_recv`] until `None`. When the inbox is full, reader threads wait, which pushes
//! back on the sending members through TCP flow control — memory stays bounded everywhere.
//!
//! # What the owner must do with events
//! - `Message { from, payload }`: decode and step Raft.
//! - `Snapshot { from, snapshot_id, data }`: the complete snapshot, CRC-verified.
//! - `Unreachable { peer }`: call Raft's `report_unreachable(peer)`.
//! - `MessageLane(lane)`: register it with the owner's poll and read it when readable.
//! - `SnapshotStatus { to, snapshot_id, result }`: call Raft's `report_snapshot(to, ok)`.
//!
//! # Example
//! ```
//! use keel_net::peer::{http_get, HttpReply, PeerEvent, PeerTransport, PeerTransportConfig};
//! use std::time::Duration;
//!
//! let loopback = "127.0.0.1:0".parse().unwrap();
//! let (a, _a_inbox) = PeerTransport::start(PeerTransportConfig::new(7, 1, loopback), || {}).unwrap();
//! let (b, b_inbox) = PeerTransport::start(PeerTransportConfig::new(7, 2, loopback), || {}).unwrap();
//! a.add_peer(2, b.local_addr()).unwrap();
//! b.add_peer(1, a.local_addr()).unwrap();
//! a.send(2, b"MsgApp".to_vec()).unwrap();
//! let event = b_inbox.recv_timeout(Duration::from_secs(5));
//! assert_eq!(event, Some(PeerEvent::Message { from: 1, payload: b"MsgApp".to_vec() }));
//!
//! // A joining member asks A for the member list over plain HTTP on the same port.
//! a.set_http_handler(std::sync::Arc::new(|path: &str| {
//!     (path == "/members").then(|| HttpReply::json(r#"{"members":[]}"#))
//! }));
//! let (status, body) = http_get(a.local_addr(), "/members", Duration::from_secs(5)).unwrap();
//! assert_eq!((status, body.as_slice()), (200, &br#"{"members":[]}"#[..]));
//! assert_eq!(http_get(a.local_addr(), "/other", Duration::from_secs(5)).unwrap().0, 404);
//! ```

#![warn(missing_docs)]

mod backoff;
mod config;
mod core;
mod error;
pub mod frame;
pub mod handshake;
pub mod http;
mod inbound;
mod inbox;
mod lane;
mod outbound;
mod snapshot;
mod stats;
mod transport;

pub use backoff::{Backoff, SplitMix64};
pub use config::{LogFn, PeerTransportConfig};
pub use error::{SendError, TransportError};
pub use http::{http_get, HttpHandler, HttpReply};
pub use inbox::{Inbox, PeerEvent};
pub use lane::{LaneStatus, MessageLane};
pub use stats::{PeerStats, TransportStats};
pub use transport::PeerTransport;
