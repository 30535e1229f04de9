//! Counters the transport keeps, and the snapshots of them it hands out.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters and state of one outbound peer, as returned by `PeerTransport::peer_stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// The message connection is established.
    pub connected: bool,
    /// Messages waiting in the send queue.
    pub queued_messages: usize,
    /// Payload bytes waiting in the send queue.
    pub queued_bytes: usize,
    /// Messages written to the socket.
    pub sent_messages: u64,
    /// Payload bytes written to the socket.
    pub sent_bytes: u64,
    /// Messages refused by `send` because the queue was full.
    pub dropped_queue_full: u64,
    /// Messages lost because the connection broke while writing them.
    pub dropped_on_failure: u64,
    /// TCP connect + handshake attempts.
    pub connect_attempts: u64,
    /// Attempts that failed (refused, timed out, handshake refused).
    pub connect_failures: u64,
    /// `Unreachable` events queued for the owner.
    pub unreachable_reports: u64,
    /// Snapshots the receiver acknowledged.
    pub snapshots_sent: u64,
    /// Snapshots that failed.
    pub snapshots_failed: u64,
    /// Messages the sending thread wrote to the socket itself (the writer thread was idle
    /// and nothing was queued), wholly or — the socket being full — partly, the writer
    /// sending the rest. Included in `sent_messages` once wholly sent.
    pub direct_writes: u64,
    /// The last failure, in words.
    pub last_error: Option<String>,
    /// How the peer refused our last handshake, if it did (cleared by a successful one): e.g.
    /// [`super::handshake::Verdict::UnknownSender`] when it does not count us as a member.
    pub refused: Option<super::handshake::Verdict>,
}

/// Transport-wide counters, as returned by `PeerTransport::stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Inbound connections whose handshake was accepted.
    pub inbound_accepted: u64,
    /// Inbound connections refused or closed during the handshake (garbage, wrong cluster,
    /// unknown sender, too many connections, timeout).
    pub inbound_rejected: u64,
    /// Accepted inbound connections closed because of a bad frame (CRC, size, kind).
    pub inbound_protocol_errors: u64,
    /// Messages received and queued in the inbox.
    pub messages_received: u64,
    /// Snapshots received, verified and queued in the inbox.
    pub snapshots_received: u64,
    /// Snapshots refused (bad CRC, too large, truncated).
    pub snapshots_rejected: u64,
    /// Plain HTTP `GET` requests answered on the peer port (any status, including 4xx).
    pub http_requests: u64,
    /// The last reason an inbound connection was refused or closed.
    pub last_inbound_error: Option<String>,
}

/// Atomic counters behind [`PeerStats`].
#[derive(Default)]
pub(crate) struct PeerCounters {
    pub sent_messages: AtomicU64,
    pub sent_bytes: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_on_failure: AtomicU64,
    pub connect_attempts: AtomicU64,
    pub connect_failures: AtomicU64,
    pub unreachable_reports: AtomicU64,
    pub snapshots_sent: AtomicU64,
    pub snapshots_failed: AtomicU64,
    pub direct_writes: AtomicU64,
}

/// Atomic counters behind [`TransportStats`].
#[derive(Default)]
pub(crate) struct TransportCounters {
    pub inbound_accepted: AtomicU64,
    pub inbound_rejected: AtomicU64,
    pub inbound_protocol_errors: AtomicU64,
    pub messages_received: AtomicU64,
    pub snapshots_received: AtomicU64,
    pub snapshots_rejected: AtomicU64,
    pub http_requests: AtomicU64,
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Reads a counter.
pub(crate) fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
