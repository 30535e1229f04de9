//! Errors of the peer transport API.

use std::fmt;
use std::io;

/// Why `send` or `send_snapshot` did not accept a message. Raft tolerates lost messages, so
/// the caller usually just counts these; the transport counts them too (see `PeerStats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// No peer with this id was added (or it was removed).
    UnknownPeer(u64),
    /// The peer's send queue is full (peer down or slower than us); the message was dropped.
    QueueFull {
        /// The peer.
        peer: u64,
        /// Messages already queued.
        queued_messages: usize,
        /// Bytes already queued.
        queued_bytes: usize,
    },
    /// The message exceeds `max_message_bytes` (or the snapshot `max_snapshot_bytes`).
    TooLarge {
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A snapshot to this peer is still being sent; Raft sends one at a time per follower.
    SnapshotInProgress(u64),
    /// The transport is shutting down.
    ShutDown,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::UnknownPeer(id) => write!(f, "unknown peer {id:#x}"),
            SendError::QueueFull { peer, queued_messages, queued_bytes } => write!(
                f,
                "send queue to peer {peer:#x} is full ({queued_messages} messages, {queued_bytes} bytes); message dropped"
            ),
            SendError::TooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max} bytes")
            }
            SendError::SnapshotInProgress(id) => {
                write!(f, "a snapshot to peer {id:#x} is already being sent")
            }
            SendError::ShutDown => write!(f, "peer transport is shut down"),
        }
    }
}

impl std::error::Error for SendError {}

/// Errors of starting the transport and managing peers.
#[derive(Debug)]
pub enum TransportError {
    /// The configuration is inconsistent.
    InvalidConfig(String),
    /// Binding the listen address failed.
    Bind(io::Error),
    /// Starting a thread failed.
    Spawn(io::Error),
    /// Setting up the acceptor's poll (mio) failed.
    Poll(io::Error),
    /// A peer with this id already exists.
    PeerExists(u64),
    /// No peer with this id.
    UnknownPeer(u64),
    /// The id is this member's own id.
    SelfPeer(u64),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::InvalidConfig(msg) => write!(f, "invalid peer transport config: {msg}"),
            TransportError::Bind(e) => write!(f, "cannot listen for peers: {e}"),
            TransportError::Spawn(e) => write!(f, "cannot start a peer transport thread: {e}"),
            TransportError::Poll(e) => write!(f, "cannot set up the peer acceptor's poll: {e}"),
            TransportError::PeerExists(id) => write!(f, "peer {id:#x} already exists"),
            TransportError::UnknownPeer(id) => write!(f, "unknown peer {id:#x}"),
            TransportError::SelfPeer(id) => write!(f, "peer id {id:#x} is this member's own id"),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransportError::Bind(e) | TransportError::Spawn(e) | TransportError::Poll(e) => Some(e),
            _ => None,
        }
    }
}
