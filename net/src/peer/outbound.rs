//! The sending side of one peer: its bounded queue and the writer thread that keeps a
//! message-lane connection open, reconnecting with backoff.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::backoff::Backoff;
use super::core::{Core, SocketGuard};
use super::error::SendError;
use super::frame::{encode_frame_into, FrameKind};
use super::handshake::{
    HandshakeError, Hello, Lane, Reply, Verdict, HELLO_LEN, PROTOCOL_VERSION, REPLY_LEN,
};
use super::inbox::PeerEvent;
use super::stats::{add, get, PeerCounters, PeerStats};

struct SendQueue {
    messages: VecDeque<Vec<u8>>,
    bytes: usize,
}

/// One peer as seen by the sending side.
pub(crate) struct PeerLink {
    pub id: u64,
    pub addr: Mutex<SocketAddr>,
    queue: Mutex<SendQueue>,
    wakeup: Condvar,
    pub removed: AtomicBool,
    /// Set by `update_peer`: drop the current connection and dial the new address.
    pub redial: AtomicBool,
    pub snapshot_in_flight: AtomicBool,
    connected: AtomicBool,
    consecutive_failures: AtomicU64,
    pub counters: PeerCounters,
    last_error: Mutex<Option<String>>,
    /// How the peer refused our last handshake (None once a handshake succeeds).
    refused: Mutex<Option<Verdict>>,
}

impl PeerLink {
    pub fn new(id: u64, addr: SocketAddr) -> Self {
        PeerLink {
            id,
            addr: Mutex::new(addr),
            queue: Mutex::new(SendQueue {
                messages: VecDeque::new(),
                bytes: 0,
            }),
            wakeup: Condvar::new(),
            removed: AtomicBool::new(false),
            redial: AtomicBool::new(false),
            snapshot_in_flight: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            consecutive_failures: AtomicU64::new(0),
            counters: PeerCounters::default(),
            last_error: Mutex::new(None),
            refused: Mutex::new(None),
        }
    }

    /// Wakes the writer thread (new state to look at: removal, shutdown, new address).
    pub fn wake(&self) {
        let _q = self.queue.lock();
        self.wakeup.notify_all();
    }

    /// Queues a message, or refuses it if the queue is at its message or byte limit.
    pub fn push(
        &self,
        payload: Vec<u8>,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<(), SendError> {
        let mut q = self.queue.lock();
        if q.messages.len() >= max_messages || q.bytes + payload.len() > max_bytes {
            let err = SendError::QueueFull {
                peer: self.id,
                queued_messages: q.messages.len(),
                queued_bytes: q.bytes,
            };
            drop(q);
            add(&self.counters.dropped_queue_full, 1);
            return Err(err);
        }
        q.bytes += payload.len();
        q.messages.push_back(payload);
        drop(q);
        self.wakeup.notify_one();
        Ok(())
    }

    fn should_stop(&self, core: &Core) -> bool {
        core.stopping() || self.removed.load(Ordering::Acquire)
    }

    /// Moves queued messages (at least one, then up to `max_bytes`) into `batch`, waiting up to
    /// `wait` for the first one.
    fn take_batch(&self, core: &Core, batch: &mut Vec<Vec<u8>>, max_bytes: usize, wait: Duration) {
        let deadline = Instant::now() + wait;
        let mut q = self.queue.lock();
        while q.messages.is_empty() {
            if self.should_stop(core) || self.redial.load(Ordering::Acquire) {
                return;
            }
            if self.wakeup.wait_until(&mut q, deadline).timed_out() {
                return;
            }
        }
        let mut bytes = 0;
        while let Some(m) = q.messages.front() {
            if !batch.is_empty() && bytes + m.len() > max_bytes {
                break;
            }
            bytes += m.len();
            let m = q.messages.pop_front().expect("front exists");
            batch.push(m);
        }
        q.bytes -= bytes;
    }

    /// Sleeps for `delay` unless the transport stops or the peer is removed or re-addressed.
    fn pause(&self, core: &Core, delay: Duration) {
        let deadline = Instant::now() + delay;
        let mut q = self.queue.lock();
        while !self.should_stop(core)
            && !self.redial.load(Ordering::Acquire)
            && Instant::now() < deadline
        {
            self.wakeup.wait_until(&mut q, deadline);
        }
    }

    /// Records a failure to reach the peer and reports it to the owner.
    fn fail(&self, core: &Core, reason: String) {
        self.connected.store(false, Ordering::Release);
        let previous = self.consecutive_failures.fetch_add(1, Ordering::AcqRel);
        // Log the first failure of a streak and then every 30th, not every retry.
        if previous % 30 == 0 {
            core.log(&reason);
        }
        *self.last_error.lock() = Some(reason);
        if core
            .events
            .try_deliver(PeerEvent::Unreachable { peer: self.id })
        {
            add(&self.counters.unreachable_reports, 1);
        }
    }

    pub fn record_snapshot_failure(&self, reason: &str) {
        add(&self.counters.snapshots_failed, 1);
        *self.last_error.lock() = Some(reason.to_string());
    }

    pub fn stats(&self) -> PeerStats {
        let (queued_messages, queued_bytes) = {
            let q = self.queue.lock();
            (q.messages.len(), q.bytes)
        };
        let c = &self.counters;
        PeerStats {
            connected: self.connected.load(Ordering::Acquire),
            queued_messages,
            queued_bytes,
            sent_messages: get(&c.sent_messages),
            sent_bytes: get(&c.sent_bytes),
            dropped_queue_full: get(&c.dropped_queue_full),
            dropped_on_failure: get(&c.dropped_on_failure),
            connect_attempts: get(&c.connect_attempts),
            connect_failures: get(&c.connect_failures),
            unreachable_reports: get(&c.unreachable_reports),
            snapshots_sent: get(&c.snapshots_sent),
            snapshots_failed: get(&c.snapshots_failed),
            last_error: self.last_error.lock().clone(),
            refused: *self.refused.lock(),
        }
    }
}

/// Why dialing a peer failed.
#[derive(Debug)]
pub(crate) enum DialError {
    Connect(io::Error),
    Handshake(HandshakeError),
    ShuttingDown,
}

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialError::Connect(e) => write!(f, "connect failed: {e}"),
            DialError::Handshake(e) => write!(f, "{e}"),
            DialError::ShuttingDown => write!(f, "transport is shutting down"),
        }
    }
}

/// Connects to `addr`, performs the handshake for `lane`, and registers the socket.
pub(crate) fn dial(
    core: &Arc<Core>,
    peer: u64,
    addr: SocketAddr,
    lane: Lane,
) -> Result<(TcpStream, SocketGuard), DialError> {
    let cfg = &core.config;
    let mut stream =
        TcpStream::connect_timeout(&addr, cfg.connect_timeout).map_err(DialError::Connect)?;
    let guard = core
        .register_socket(&stream, Some(peer))
        .map_err(|_| DialError::ShuttingDown)?;
    let handshake = |stream: &mut TcpStream| -> Result<(), HandshakeError> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(cfg.handshake_timeout))?;
        stream.set_write_timeout(Some(cfg.handshake_timeout))?;
        let hello = Hello {
            version: PROTOCOL_VERSION,
            lane,
            cluster_id: cfg.cluster_id,
            from: cfg.local_id,
            to: peer,
        };
        let bytes: [u8; HELLO_LEN] = hello.encode();
        stream.write_all(&bytes)?;
        let mut reply = [0u8; REPLY_LEN];
        stream.read_exact(&mut reply)?;
        Reply::decode(&reply)?;
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(Some(cfg.write_timeout))?;
        Ok(())
    };
    handshake(&mut stream).map_err(DialError::Handshake)?;
    Ok((stream, guard))
}

/// How long a connection must have been idle before a write first checks whether the peer
/// closed it.
const IDLE_CHECK_AFTER: Duration = Duration::from_millis(100);

/// Whether the peer has closed (or reset) the connection: a non-blocking peek sees end of
/// stream. The message lane carries nothing from the acceptor after the handshake, so any
/// readable state other than "would block" means the connection is finished.
fn closed_by_peer(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let closed = match stream.peek(&mut byte) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Ok(_) | Err(_) => true,
    };
    stream.set_nonblocking(false).is_err() || closed
}

/// Body of a peer's writer thread: (re)connect, then move batches from the queue to the
/// socket until the transport stops or the peer is removed.
pub(crate) fn run_writer(core: Arc<Core>, link: Arc<PeerLink>) {
    let cfg = &core.config;
    let seed = cfg.jitter_seed ^ link.id.rotate_left(17) ^ cfg.local_id;
    let mut backoff = Backoff::new(cfg.backoff_initial, cfg.backoff_max, seed);
    let mut conn: Option<(TcpStream, SocketGuard)> = None;
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut wire: Vec<u8> = Vec::new();
    let mut last_write = Instant::now();
    while !link.should_stop(&core) {
        if link.redial.swap(false, Ordering::AcqRel) {
            conn = None;
            link.connected.store(false, Ordering::Release);
        }
        if conn.is_none() {
            // A fresh connection needs no liveness check before its first write.
            last_write = Instant::now();
        }
        if conn.is_none() {
            let addr = *link.addr.lock();
            add(&link.counters.connect_attempts, 1);
            match dial(&core, link.id, addr, Lane::Messages) {
                Ok(c) => {
                    if link.consecutive_failures.swap(0, Ordering::AcqRel) > 0 {
                        core.log(&format!("connected to peer {:#x} at {addr}", link.id));
                    }
                    link.connected.store(true, Ordering::Release);
                    *link.refused.lock() = None;
                    conn = Some(c);
                }
                Err(e) => {
                    if link.should_stop(&core) {
                        break;
                    }
                    add(&link.counters.connect_failures, 1);
                    if let DialError::Handshake(HandshakeError::Refused { verdict, .. }) = &e {
                        *link.refused.lock() = Some(*verdict);
                    }
                    link.fail(
                        &core,
                        format!("cannot reach peer {:#x} at {addr}: {e}", link.id),
                    );
                    link.pause(&core, backoff.next_delay());
                    continue;
                }
            }
        }
        if batch.is_empty() {
            link.take_batch(
                &core,
                &mut batch,
                cfg.max_batch_bytes,
                Duration::from_millis(250),
            );
            if batch.is_empty() {
                continue;
            }
        }
        let (stream, _guard) = conn.as_mut().expect("connected above");
        // A write on a connection the peer has already closed (it restarted, or replaced the
        // connection) still "succeeds" locally and the data is lost. After an idle spell,
        // look for the peer's FIN first and redial instead, keeping the batch.
        if last_write.elapsed() >= IDLE_CHECK_AFTER && closed_by_peer(stream) {
            conn = None;
            link.connected.store(false, Ordering::Release);
            core.log(&format!(
                "connection to peer {:#x} was closed by the peer; redialing",
                link.id
            ));
            continue;
        }
        wire.clear();
        let mut payload_bytes = 0u64;
        for message in &batch {
            encode_frame_into(&mut wire, FrameKind::Message, message);
            payload_bytes += message.len() as u64;
        }
        let count = batch.len() as u64;
        batch.clear();
        last_write = Instant::now();
        match stream.write_all(&wire) {
            Ok(()) => {
                add(&link.counters.sent_messages, count);
                add(&link.counters.sent_bytes, payload_bytes);
                backoff.reset();
            }
            Err(e) => {
                conn = None;
                add(&link.counters.dropped_on_failure, count);
                if link.should_stop(&core) {
                    break;
                }
                let reason = if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) {
                    format!("peer {:#x} did not read for {:?} (write timed out); {count} messages dropped, reconnecting", link.id, cfg.write_timeout)
                } else {
                    format!(
                        "lost connection to peer {:#x}: {e}; {count} messages dropped",
                        link.id
                    )
                };
                link.fail(&core, reason);
                link.pause(&core, backoff.next_delay());
            }
        }
    }
    link.connected.store(false, Ordering::Release);
}
