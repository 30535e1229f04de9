//! Configuration of a [`PeerTransport`](super::PeerTransport).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::http::HttpHandler;

/// Where the transport writes one-line diagnostics (closed connections and why, refused
/// handshakes, reconnects). The default writes to stderr.
pub type LogFn = Arc<dyn Fn(&str) + Send + Sync>;

/// Settings of a peer transport. Build with [`PeerTransportConfig::new`] and adjust fields.
#[derive(Clone)]
pub struct PeerTransportConfig {
    /// Cluster id; connections from other clusters are refused.
    pub cluster_id: u64,
    /// This member's id (non-zero).
    pub local_id: u64,
    /// Address to listen on for peers (port 0 picks a free port; see `local_addr()`).
    pub listen_addr: SocketAddr,
    /// Per-peer send queue limit in messages. Overflow drops the new message.
    pub max_queue_messages: usize,
    /// Per-peer send queue limit in payload bytes. Overflow drops the new message.
    pub max_queue_bytes: usize,
    /// Largest message accepted by `send` and by the receiving side (frame cap, message lane).
    pub max_message_bytes: usize,
    /// Size of the chunks a snapshot is cut into.
    pub snapshot_chunk_bytes: usize,
    /// Largest snapshot chunk frame a receiver accepts (frame cap, snapshot lane).
    pub max_snapshot_chunk_bytes: usize,
    /// Largest whole snapshot accepted (sent or received).
    pub max_snapshot_bytes: u64,
    /// Where received snapshots are reassembled: `None` (the default) in memory, delivered as
    /// [`crate::peer::PeerEvent::Snapshot`]; `Some(dir)` in a file `snapshot-<from>-<id>.in` of
    /// that directory, delivered as [`crate::peer::PeerEvent::SnapshotFile`] (the owner removes
    /// the file), so a large snapshot never sits in memory.
    pub snapshot_spool_dir: Option<std::path::PathBuf>,
    /// Optional pacing of snapshot sending, bytes per second (`None` = as fast as TCP goes).
    pub snapshot_rate_limit: Option<u64>,
    /// Capacity of the inbox (events waiting for the owner). When full, connection reader
    /// threads wait, which pushes back on the senders through TCP.
    pub inbox_capacity: usize,
    /// Hand accepted message-lane connections to the owner as
    /// [`crate::peer::PeerEvent::MessageLane`] (read on its event loop) instead of reading
    /// them on a thread that feeds the inbox. Default `false`.
    pub message_lanes_to_owner: bool,
    /// Bytes one `MessageLane::read_messages` call reads at most before it returns
    /// `LaneStatus::Pending` (default 4 MiB).
    pub lane_read_budget: usize,
    /// Maximum simultaneous inbound connections; more are closed at once.
    pub max_inbound_connections: usize,
    /// Timeout of one TCP connect attempt.
    pub connect_timeout: Duration,
    /// Time allowed for the handshake in either direction.
    pub handshake_timeout: Duration,
    /// A write blocked longer than this (peer not reading) closes the connection.
    pub write_timeout: Duration,
    /// Time a snapshot sender waits for the receiver's verdict after the last chunk.
    pub snapshot_ack_timeout: Duration,
    /// First reconnect delay after a failure.
    pub backoff_initial: Duration,
    /// Cap of the exponential reconnect delay.
    pub backoff_max: Duration,
    /// Seed of the reconnect jitter (mixed with the peer id). Deterministic on purpose.
    pub jitter_seed: u64,
    /// Upper bound of bytes a writer coalesces into one socket write.
    pub max_batch_bytes: usize,
    /// Diagnostics sink.
    pub log: LogFn,
    /// Answers plain HTTP `GET` requests on the peer port (a joining member asks an existing
    /// one for the member list this way). `None` answers every request with `404`. Can be
    /// replaced while running with `PeerTransport::set_http_handler`.
    pub http: Option<HttpHandler>,
}

impl PeerTransportConfig {
    /// Defaults suited to a LAN cluster: queues of 4096 messages / 64 MiB per peer, 16 MiB
    /// messages, 1 MiB snapshot chunks (64 MiB cap), 8 GiB snapshots, reconnect backoff
    /// 50 ms doubling to 2 s with jitter, 5 s write timeout.
    pub fn new(cluster_id: u64, local_id: u64, listen_addr: SocketAddr) -> Self {
        PeerTransportConfig {
            cluster_id,
            local_id,
            listen_addr,
            max_queue_messages: 4096,
            max_queue_bytes: 64 << 20,
            max_message_bytes: 16 << 20,
            snapshot_chunk_bytes: 1 << 20,
            max_snapshot_chunk_bytes: 64 << 20,
            max_snapshot_bytes: 8 << 30,
            snapshot_spool_dir: None,
            snapshot_rate_limit: None,
            inbox_capacity: 4096,
            message_lanes_to_owner: false,
            lane_read_budget: 4 << 20,
            max_inbound_connections: 256,
            connect_timeout: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(5),
            snapshot_ack_timeout: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            jitter_seed: 0x6b65_656c_7065_6572, // "keelpeer"
            max_batch_bytes: 1 << 20,
            log: Arc::new(move |line: &str| eprintln!("keel-net peer[{local_id:#x}]: {line}")),
            http: None,
        }
    }

    /// Checks the settings; returns the first problem found.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let checks: [(bool, &str); 9] = [
            (self.local_id != 0, "local_id must be non-zero"),
            (
                self.max_queue_messages > 0,
                "max_queue_messages must be > 0",
            ),
            (self.max_queue_bytes > 0, "max_queue_bytes must be > 0"),
            (
                self.max_message_bytes > 0 && self.max_message_bytes <= u32::MAX as usize,
                "max_message_bytes must be in 1..=u32::MAX",
            ),
            (
                self.max_snapshot_chunk_bytes > 0
                    && self.max_snapshot_chunk_bytes <= u32::MAX as usize,
                "max_snapshot_chunk_bytes must be in 1..=u32::MAX",
            ),
            (
                self.snapshot_chunk_bytes > 0
                    && self.snapshot_chunk_bytes <= self.max_snapshot_chunk_bytes,
                "snapshot_chunk_bytes must be in 1..=max_snapshot_chunk_bytes",
            ),
            (self.inbox_capacity > 0, "inbox_capacity must be > 0"),
            (
                self.max_inbound_connections > 0,
                "max_inbound_connections must be > 0",
            ),
            (
                self.backoff_initial > Duration::ZERO && self.backoff_initial <= self.backoff_max,
                "backoff_initial must be > 0 and <= backoff_max",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, msg)) => Err((*msg).to_string()),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for PeerTransportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerTransportConfig")
            .field("cluster_id", &self.cluster_id)
            .field("local_id", &self.local_id)
            .field("listen_addr", &self.listen_addr)
            .field("max_queue_messages", &self.max_queue_messages)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("snapshot_chunk_bytes", &self.snapshot_chunk_bytes)
            .field("max_snapshot_chunk_bytes", &self.max_snapshot_chunk_bytes)
            .field("max_snapshot_bytes", &self.max_snapshot_bytes)
            .field("snapshot_spool_dir", &self.snapshot_spool_dir)
            .field("snapshot_rate_limit", &self.snapshot_rate_limit)
            .field("inbox_capacity", &self.inbox_capacity)
            .field("max_inbound_connections", &self.max_inbound_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("snapshot_ack_timeout", &self.snapshot_ack_timeout)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .field("jitter_seed", &self.jitter_seed)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("http", &self.http.as_ref().map(|_| "handler"))
            .finish_non_exhaustive()
    }
}
