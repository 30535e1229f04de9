//! The sending side of one peer: its bounded queue and the writer thread that keeps a
//! message-lane connection open, reconnecting with backoff.
//!
//! # The direct path
//! Handing every message to the writer thread costs a thread wake-up and a context switch
//! per batch (on a 2-core VM that was ≈ 16 % of a member's CPU under load). So while the
//! writer waits idle on an established connection, [`PeerLink::push`] writes the frame
//! itself, from the caller's thread, to the non-blocking socket ([`Direct`]): nothing is
//! queued and no thread is woken. Only what the socket does not take at once (it is full: the
//! peer reads slowly) is left to the writer, which sends that tail before anything else and
//! waits for the socket with mio, up to the write timeout. Order is kept because all of it
//! happens under the queue's mutex: a sender writes directly only when the queue is empty and
//! the writer is idle, and the writer touches the socket only after marking itself busy.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::backoff::Backoff;
use super::config::PeerTransportConfig;
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
    direct: Direct,
}

/// The connection as senders may use it directly (see the module documentation), guarded by
/// the queue's mutex.
struct Direct {
    /// A second handle (`dup`) to the writer's connection while it is established. The socket
    /// is non-blocking.
    stream: Option<TcpStream>,
    /// The writer thread waits idle for work, so the socket is free for a sender to write.
    writer_idle: bool,
    /// When the connection last carried bytes. A sender does not write directly on a
    /// connection idle for [`IDLE_CHECK_AFTER`]: the writer first looks for the peer's FIN.
    last_write: Instant,
    /// What the socket did not take of the last direct write (the rest of one frame, maybe
    /// whole frames after it): the writer sends it first.
    unsent: Vec<u8>,
    /// Messages and payload bytes of that write, counted as sent once `unsent` is.
    unsent_messages: u64,
    unsent_payload: u64,
    /// A direct write failed: the writer drops the connection and reconnects.
    failed: Option<io::Error>,
    /// Frames being written directly (reused).
    wire: Vec<u8>,
}

/// What a direct write did with the queued messages it took.
#[derive(Debug, PartialEq, Eq)]
enum DirectWrite {
    /// All their frames are in the socket.
    Sent,
    /// Part of them is: the rest waits in [`Direct::unsent`] for the writer.
    Partial,
    /// The socket refused them (connection broken); they are lost.
    Failed,
}

impl Direct {
    fn new() -> Self {
        Direct {
            stream: None,
            writer_idle: false,
            last_write: Instant::now(),
            unsent: Vec::new(),
            unsent_messages: 0,
            unsent_payload: 0,
            failed: None,
            wire: Vec::new(),
        }
    }

    /// Whether a sender may write to the socket now.
    fn available(&self) -> bool {
        self.writer_idle
            && self.stream.is_some()
            && self.unsent.is_empty()
            && self.failed.is_none()
            && self.last_write.elapsed() < IDLE_CHECK_AFTER
    }

    /// Writes `self.wire` (the frames of `messages` messages, `payload` bytes) without
    /// blocking. What the socket does not take goes to `unsent`, for the writer.
    fn write_wire(&mut self, messages: u64, payload: u64) -> DirectWrite {
        let Some(stream) = self.stream.as_mut() else {
            return DirectWrite::Failed;
        };
        let written = loop {
            match stream.write(&self.wire) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 0,
                Err(e) => {
                    self.failed = Some(e);
                    self.writer_idle = false;
                    return DirectWrite::Failed;
                }
            }
        };
        self.last_write = Instant::now();
        if written == self.wire.len() {
            return DirectWrite::Sent;
        }
        self.unsent.extend_from_slice(&self.wire[written..]);
        self.unsent_messages = messages;
        self.unsent_payload = payload;
        // The writer owns the socket from here until it has sent the rest.
        self.writer_idle = false;
        DirectWrite::Partial
    }

    /// Forgets the connection (it is closed or being replaced), and any partial frames with
    /// it. Returns how many messages were lost that way.
    fn detach(&mut self) -> u64 {
        self.stream = None;
        self.writer_idle = false;
        self.failed = None;
        let lost = if self.unsent.is_empty() {
            0
        } else {
            self.unsent_messages
        };
        self.unsent.clear();
        self.unsent_messages = 0;
        self.unsent_payload = 0;
        lost
    }
}

impl SendQueue {
    /// Takes queued messages (at least one, then up to `max_bytes` of payload), calling
    /// `take` with each.
    fn take_batch(&mut self, max_bytes: usize, mut take: impl FnMut(Vec<u8>)) {
        let mut bytes = 0;
        let mut first = true;
        while let Some(m) = self.messages.front() {
            if !first && bytes + m.len() > max_bytes {
                break;
            }
            first = false;
            bytes += m.len();
            take(self.messages.pop_front().expect("front exists"));
        }
        self.bytes -= bytes;
    }

    /// Writes queued messages (up to `max_bytes` of payload) straight to the socket; the
    /// caller checked [`Direct::available`]. Returns the outcome, the messages taken and
    /// their payload bytes.
    fn write_directly(&mut self, max_bytes: usize) -> (DirectWrite, u64, u64) {
        let mut wire = std::mem::take(&mut self.direct.wire);
        wire.clear();
        let (mut messages, mut payload) = (0u64, 0u64);
        self.take_batch(max_bytes, |m| {
            encode_frame_into(&mut wire, FrameKind::Message, &m);
            messages += 1;
            payload += m.len() as u64;
        });
        self.direct.wire = wire;
        (self.direct.write_wire(messages, payload), messages, payload)
    }
}

/// What the writer thread found to do.
enum Work {
    /// Nothing within the wait, or the writer must stop or redial.
    Nothing,
    /// A direct write broke the connection.
    Broken(io::Error),
    /// Write `unsent` (if not empty), then the frames of the batch.
    Write,
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
                direct: Direct::new(),
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

    /// Queues a message, or refuses it if the queue is at its message or byte limit. Unless
    /// `defer`, the queue is then flushed ([`PeerLink::flush`]); a deferred message waits
    /// for the next flush (or for the writer, if it is busy anyway).
    pub fn push(
        &self,
        payload: Vec<u8>,
        config: &PeerTransportConfig,
        defer: bool,
    ) -> Result<(), SendError> {
        let mut q = self.queue.lock();
        if q.messages.len() >= config.max_queue_messages
            || q.bytes + payload.len() > config.max_queue_bytes
        {
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
        if !defer {
            self.flush_locked(q, config.max_batch_bytes);
        }
        Ok(())
    }

    /// Sends what is queued: written to the socket by the calling thread when the writer is
    /// idle on an open connection (see the module documentation), else handed to the writer.
    pub fn flush(&self, max_batch_bytes: usize) {
        self.flush_locked(self.queue.lock(), max_batch_bytes);
    }

    fn flush_locked(&self, mut q: parking_lot::MutexGuard<'_, SendQueue>, max_batch_bytes: usize) {
        if q.messages.is_empty() {
            return;
        }
        if !q.direct.available() {
            drop(q);
            self.wakeup.notify_one();
            return;
        }
        let (outcome, messages, payload) = q.write_directly(max_batch_bytes);
        let writer_needed = outcome != DirectWrite::Sent || !q.messages.is_empty();
        drop(q);
        match outcome {
            DirectWrite::Sent => {
                add(&self.counters.sent_messages, messages);
                add(&self.counters.sent_bytes, payload);
                add(&self.counters.direct_writes, messages);
            }
            DirectWrite::Partial => add(&self.counters.direct_writes, messages),
            DirectWrite::Failed => add(&self.counters.dropped_on_failure, messages),
        }
        if writer_needed {
            self.wakeup.notify_one();
        }
    }

    fn should_stop(&self, core: &Core) -> bool {
        core.stopping() || self.removed.load(Ordering::Acquire)
    }

    /// Waits up to `wait` for work: a broken direct write, or bytes to send — the tail of a
    /// partial direct write (moved into `unsent`, its payload size into `unsent_payload`) and
    /// queued messages (at least one, then up to `max_bytes`, moved into `batch`). While it
    /// waits, the writer is idle and senders may write directly. `last_write` is exchanged
    /// with the direct path's (the later one wins on both sides).
    fn take_work(
        &self,
        core: &Core,
        out: &mut WriterBuffers,
        max_bytes: usize,
        wait: Duration,
    ) -> Work {
        let deadline = Instant::now() + wait;
        let mut q = self.queue.lock();
        q.direct.last_write = q.direct.last_write.max(out.last_write);
        loop {
            if let Some(e) = q.direct.failed.take() {
                q.direct.writer_idle = false;
                return Work::Broken(e);
            }
            if !q.messages.is_empty() || !q.direct.unsent.is_empty() {
                break;
            }
            if self.should_stop(core) || self.redial.load(Ordering::Acquire) {
                q.direct.writer_idle = false;
                return Work::Nothing;
            }
            q.direct.writer_idle = true;
            if self.wakeup.wait_until(&mut q, deadline).timed_out()
                && q.direct.failed.is_none()
                && q.messages.is_empty()
                && q.direct.unsent.is_empty()
            {
                q.direct.writer_idle = false;
                return Work::Nothing;
            }
        }
        q.direct.writer_idle = false;
        out.last_write = out.last_write.max(q.direct.last_write);
        std::mem::swap(&mut out.unsent, &mut q.direct.unsent);
        out.unsent_messages = std::mem::take(&mut q.direct.unsent_messages);
        out.unsent_payload = std::mem::take(&mut q.direct.unsent_payload);
        if !q.messages.is_empty() {
            q.take_batch(max_bytes, |m| out.batch.push(m));
        }
        Work::Write
    }

    /// Lets senders write directly to a new connection (`stream` is a `dup` of it).
    fn attach_direct(&self, stream: TcpStream) {
        let mut q = self.queue.lock();
        q.direct.detach();
        q.direct.stream = Some(stream);
        q.direct.last_write = Instant::now();
    }

    /// Stops direct writes to the current connection (it is being dropped). A partial frame
    /// left for the writer dies with the connection and is counted as dropped.
    fn detach_direct(&self) {
        let lost = self.queue.lock().direct.detach();
        add(&self.counters.dropped_on_failure, lost);
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
            direct_writes: get(&c.direct_writes),
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

/// Whether the peer has closed (or reset) the connection: a peek on the non-blocking socket
/// sees end of stream. The message lane carries nothing from the acceptor after the
/// handshake, so any readable state other than "would block" means the connection is finished.
fn closed_by_peer(stream: &mio::net::TcpStream) -> bool {
    let mut byte = [0u8; 1];
    !matches!(stream.peek(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// The writer thread's working buffers.
struct WriterBuffers {
    batch: Vec<Vec<u8>>,
    /// The rest of a partial direct write, sent before the batch, and its messages and
    /// payload bytes.
    unsent: Vec<u8>,
    unsent_messages: u64,
    unsent_payload: u64,
    /// Bytes of one socket write: `unsent`, then the batch's frames.
    wire: Vec<u8>,
    /// When the connection last carried bytes (as far as the writer knows).
    last_write: Instant,
}

impl WriterBuffers {
    /// Forgets the rest of a partial direct write: its connection is gone, and the rest of a
    /// frame belongs to that connection's byte stream only. Returns how many messages it
    /// carried (they are lost).
    fn discard_unsent(&mut self) -> u64 {
        if self.unsent.is_empty() {
            return 0;
        }
        self.unsent.clear();
        self.unsent_payload = 0;
        // Reset, or the next write on the new connection would count them again as sent.
        std::mem::take(&mut self.unsent_messages)
    }

    /// Fills `wire` with `unsent`, then the batch's frames (both are emptied). Returns the
    /// messages and payload bytes the wire carries.
    fn compose_wire(&mut self) -> (u64, u64) {
        self.wire.clear();
        self.wire.append(&mut self.unsent);
        let mut payload_bytes = std::mem::take(&mut self.unsent_payload);
        let mut count = std::mem::take(&mut self.unsent_messages);
        for message in &self.batch {
            encode_frame_into(&mut self.wire, FrameKind::Message, message);
            payload_bytes += message.len() as u64;
        }
        count += self.batch.len() as u64;
        self.batch.clear();
        (count, payload_bytes)
    }
}

/// The writer's message-lane connection: the non-blocking socket, registered for
/// writability with the writer's own `Poll`, and its registry guard.
struct Connection {
    stream: mio::net::TcpStream,
    _guard: SocketGuard,
}

/// Writes all of `bytes` to the non-blocking `stream`, waiting for writability with `poll`
/// when the socket is full; fails with `TimedOut` when the socket takes nothing for `timeout`
/// (the same meaning as a blocking socket's send timeout).
fn write_all_waiting(
    stream: &mut mio::net::TcpStream,
    poll: &mut mio::Poll,
    events: &mut mio::Events,
    mut bytes: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    let mut deadline = Instant::now() + timeout;
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                bytes = &bytes[n..];
                deadline = Instant::now() + timeout;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                match poll.poll(events, Some(left)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Body of a peer's writer thread: (re)connect, then move batches from the queue to the
/// socket until the transport stops or the peer is removed.
pub(crate) fn run_writer(core: Arc<Core>, link: Arc<PeerLink>) {
    let cfg = &core.config;
    let seed = cfg.jitter_seed ^ link.id.rotate_left(17) ^ cfg.local_id;
    let mut backoff = Backoff::new(cfg.backoff_initial, cfg.backoff_max, seed);
    let mut poll = match mio::Poll::new() {
        Ok(p) => p,
        Err(e) => {
            link.fail(
                &core,
                format!("peer {:#x}: cannot create a poll: {e}", link.id),
            );
            return;
        }
    };
    let mut events = mio::Events::with_capacity(4);
    let mut conn: Option<Connection> = None;
    let mut buf = WriterBuffers {
        batch: Vec::new(),
        unsent: Vec::new(),
        unsent_messages: 0,
        unsent_payload: 0,
        wire: Vec::new(),
        last_write: Instant::now(),
    };
    // Closes the connection: no more direct writes to it, and its poll registration goes.
    let drop_conn = |conn: &mut Option<Connection>, poll: &mio::Poll, buf: &mut WriterBuffers| {
        link.detach_direct();
        add(&link.counters.dropped_on_failure, buf.discard_unsent());
        if let Some(mut c) = conn.take() {
            let _ = poll.registry().deregister(&mut c.stream);
        }
        link.connected.store(false, Ordering::Release);
    };
    while !link.should_stop(&core) {
        if link.redial.swap(false, Ordering::AcqRel) {
            drop_conn(&mut conn, &poll, &mut buf);
        }
        if conn.is_none() {
            let addr = *link.addr.lock();
            add(&link.counters.connect_attempts, 1);
            let connected = dial(&core, link.id, addr, Lane::Messages).and_then(|(s, guard)| {
                let setup = || -> io::Result<Connection> {
                    s.set_nonblocking(true)?;
                    let direct = s.try_clone()?;
                    let mut stream = mio::net::TcpStream::from_std(s);
                    poll.registry().register(
                        &mut stream,
                        mio::Token(0),
                        mio::Interest::WRITABLE,
                    )?;
                    link.attach_direct(direct);
                    Ok(Connection {
                        stream,
                        _guard: guard,
                    })
                };
                setup().map_err(DialError::Connect)
            });
            match connected {
                Ok(c) => {
                    if link.consecutive_failures.swap(0, Ordering::AcqRel) > 0 {
                        core.log(&format!("connected to peer {:#x} at {addr}", link.id));
                    }
                    link.connected.store(true, Ordering::Release);
                    *link.refused.lock() = None;
                    // A fresh connection needs no liveness check before its first write.
                    buf.last_write = Instant::now();
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
        if buf.batch.is_empty() && buf.unsent.is_empty() {
            match link.take_work(
                &core,
                &mut buf,
                cfg.max_batch_bytes,
                Duration::from_millis(250),
            ) {
                Work::Nothing => continue,
                Work::Broken(e) => {
                    drop_conn(&mut conn, &poll, &mut buf);
                    if link.should_stop(&core) {
                        break;
                    }
                    link.fail(
                        &core,
                        format!(
                            "lost connection to peer {:#x}: {e} (a direct write failed; its messages were dropped)",
                            link.id
                        ),
                    );
                    link.pause(&core, backoff.next_delay());
                    continue;
                }
                Work::Write => {}
            }
        }
        let c = conn.as_mut().expect("connected above");
        // A write on a connection the peer has already closed (it restarted, or replaced the
        // connection) still "succeeds" locally and the data is lost. After an idle spell,
        // look for the peer's FIN first and redial instead, keeping the batch.
        if buf.last_write.elapsed() >= IDLE_CHECK_AFTER && closed_by_peer(&c.stream) {
            drop_conn(&mut conn, &poll, &mut buf);
            core.log(&format!(
                "connection to peer {:#x} was closed by the peer; redialing",
                link.id
            ));
            continue;
        }
        let (count, payload_bytes) = buf.compose_wire();
        buf.last_write = Instant::now();
        match write_all_waiting(
            &mut c.stream,
            &mut poll,
            &mut events,
            &buf.wire,
            cfg.write_timeout,
        ) {
            Ok(()) => {
                buf.last_write = Instant::now();
                add(&link.counters.sent_messages, count);
                add(&link.counters.sent_bytes, payload_bytes);
                backoff.reset();
            }
            Err(e) => {
                drop_conn(&mut conn, &poll, &mut buf);
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
    drop_conn(&mut conn, &poll, &mut buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connected pair of loopback sockets, the sending one non-blocking.
    fn socket_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (receiver, _) = listener.accept().unwrap();
        sender.set_nonblocking(true).unwrap();
        (sender, receiver)
    }

    /// A queue whose writer is idle on `stream`.
    fn idle_queue(stream: TcpStream) -> SendQueue {
        let mut direct = Direct::new();
        direct.stream = Some(stream);
        direct.writer_idle = true;
        SendQueue {
            messages: VecDeque::new(),
            bytes: 0,
            direct,
        }
    }

    fn enqueue(q: &mut SendQueue, payload: Vec<u8>) {
        q.bytes += payload.len();
        q.messages.push_back(payload);
    }

    /// Until the receiver's buffers are full, direct writes go whole (three messages per
    /// write); the first that does not fit leaves exactly the rest of its frames in `unsent`
    /// and makes the socket the writer's. What the receiver reads, followed by that rest, is
    /// the frames byte for byte.
    #[test]
    fn a_direct_write_that_does_not_fit_leaves_exactly_the_rest_of_its_frames() {
        let (sender, mut receiver) = socket_pair();
        let mut q = idle_queue(sender);
        let mut expected = Vec::new();
        let mut partial = false;
        for i in 0..10_000u32 {
            assert!(q.direct.available(), "write {i}");
            let mut payload_bytes = 0;
            for k in 0..3u32 {
                let payload: Vec<u8> = (0..20_000 + k * 999).map(|j| (i * 7 + j) as u8).collect();
                encode_frame_into(&mut expected, FrameKind::Message, &payload);
                payload_bytes += payload.len() as u64;
                enqueue(&mut q, payload);
            }
            match q.write_directly(usize::MAX) {
                (DirectWrite::Sent, 3, bytes) => assert_eq!(bytes, payload_bytes),
                (DirectWrite::Partial, 3, bytes) => {
                    assert_eq!(bytes, payload_bytes);
                    assert_eq!(
                        (q.direct.unsent_messages, q.direct.unsent_payload),
                        (3, payload_bytes)
                    );
                    partial = true;
                    break;
                }
                other => panic!("unexpected {other:?}: {:?}", q.direct.failed),
            }
            assert!(q.messages.is_empty() && q.bytes == 0);
        }
        assert!(partial, "the socket never filled up");
        assert!(!q.direct.writer_idle && !q.direct.available());
        let rest = std::mem::take(&mut q.direct.unsent);
        assert!(!rest.is_empty());
        drop(q); // closes the sending side: the receiver reads to the end
        let mut got = Vec::new();
        receiver.read_to_end(&mut got).unwrap();
        got.extend_from_slice(&rest);
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes differ");
    }

    /// The writer found the connection closed by the peer while holding the rest of a
    /// partial direct write (3 messages) and a batch (1 message): the rest is discarded and
    /// counted as dropped; on the next connection only the batch is written — and only its
    /// one message may be counted as sent.
    #[test]
    fn a_discarded_rest_is_not_counted_again_with_the_next_write() {
        let mut buf = WriterBuffers {
            batch: vec![vec![9; 5]],
            unsent: vec![1, 2, 3],
            unsent_messages: 3,
            unsent_payload: 100,
            wire: Vec::new(),
            last_write: Instant::now(),
        };
        assert_eq!(buf.discard_unsent(), 3);
        assert_eq!(buf.discard_unsent(), 0, "already discarded");
        assert_eq!(buf.compose_wire(), (1, 5));
        let mut expected = Vec::new();
        encode_frame_into(&mut expected, FrameKind::Message, &[9; 5]);
        assert_eq!(buf.wire, expected);
        assert!(buf.batch.is_empty() && buf.unsent.is_empty());
    }

    #[test]
    fn a_direct_write_takes_at_most_a_batch_and_at_least_one_message() {
        let (sender, _receiver) = socket_pair();
        let mut q = idle_queue(sender);
        for len in [10, 20, 30, 5000] {
            enqueue(&mut q, vec![1; len]);
        }
        assert_eq!(q.write_directly(35), (DirectWrite::Sent, 2, 30));
        assert_eq!(q.messages.len(), 2);
        assert_eq!(q.bytes, 5030);
        q.direct.writer_idle = true;
        assert_eq!(q.write_directly(35), (DirectWrite::Sent, 1, 30));
        q.direct.writer_idle = true;
        assert_eq!(q.write_directly(35), (DirectWrite::Sent, 1, 5000));
        assert_eq!((q.messages.len(), q.bytes), (0, 0));
    }

    #[test]
    fn no_direct_write_while_the_writer_is_busy_or_the_connection_idle_or_broken() {
        let (sender, _receiver) = socket_pair();
        let mut q = idle_queue(sender);
        let direct = &mut q.direct;
        assert!(direct.available());
        direct.writer_idle = false;
        assert!(!direct.available(), "writer busy");
        direct.writer_idle = true;
        direct.last_write = Instant::now() - IDLE_CHECK_AFTER;
        assert!(
            !direct.available(),
            "idle connection: the writer checks it first"
        );
        direct.last_write = Instant::now();
        direct.unsent = vec![1];
        direct.unsent_messages = 4;
        assert!(!direct.available(), "a rest is waiting");
        assert_eq!(direct.detach(), 4, "detaching loses the rest's messages");
        assert!(!direct.available() && direct.stream.is_none() && direct.unsent.is_empty());
    }

    #[test]
    fn a_direct_write_to_a_reset_connection_fails_and_hands_the_error_to_the_writer() {
        let (sender, receiver) = socket_pair();
        receiver.shutdown(std::net::Shutdown::Both).unwrap();
        drop(receiver);
        let mut q = idle_queue(sender);
        let mut failed = false;
        // The first writes may still be accepted locally; the peer's reset then fails one.
        for _ in 0..1000 {
            enqueue(&mut q, vec![7u8; 1000]);
            if let (DirectWrite::Failed, 1, 1000) = q.write_directly(usize::MAX) {
                failed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(failed, "writes to a closed peer never failed");
        assert!(q.direct.failed.is_some() && !q.direct.writer_idle && !q.direct.available());
    }
}
