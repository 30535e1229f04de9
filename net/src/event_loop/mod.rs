//! The mio event loop: listeners, connections (gRPC over HTTP/2, or HTTP/1.1 on the same port),
//! timers and cross-thread wake-ups, driven by a server-supplied [`Handler`].
//!
//! The loop is a library: the server owns an [`EventLoop`], registers its own timers
//! ([`Ctx::add_timer`]), gets a [`LoopWaker`] for other threads, and runs
//! [`EventLoop::run`] (or [`EventLoop::run_once`] from its own loop). Everything the handler
//! learns arrives through [`Handler`] callbacks, each given a [`Ctx`] through which it answers
//! calls — immediately or much later (e.g. when a Raft entry is applied).
//!
//! Nothing here blocks: sockets are non-blocking and edge-triggered (reads and writes are
//! repeated until `WouldBlock`); responses are buffered per connection and written when the
//! socket accepts them, so a client that stops reading only stalls itself.

#![warn(missing_docs)]

mod conn;
mod timer;
mod waker;

pub use timer::{TimerHeap, TimerId};
pub use waker::LoopWaker;

use crate::grpc::{CallError, CallEvent, CallId, GrpcConfig, Status};
use crate::http1::{Http1Request, Http1Response};
use conn::{Conn, ConnKind};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAKE_TOKEN: Token = Token(0);
const LISTENER_BASE: usize = 1;
const MAX_LISTENERS: usize = 64;
const CONN_BASE: usize = LISTENER_BASE + MAX_LISTENERS;
/// Tokens from here on are sources the handler registered ([`Ctx::register_source`]).
const SOURCE_BASE: usize = 1 << (usize::BITS - 2);

/// A socket (any mio source) the handler registered with [`Ctx::register_source`]: its
/// readiness is delivered to [`Handler::on_source_ready`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub u64);

/// The server's side of the loop: callbacks for everything that happens.
///
/// `W` is the payload type other threads send through [`LoopWaker::wake`].
pub trait Handler<W> {
    /// A gRPC call event (see [`CallEvent`] for the order of events per call).
    fn on_call(&mut self, ctx: &mut Ctx<W>, event: CallEvent);

    /// A timer registered with [`Ctx::add_timer`] fired.
    fn on_timer(&mut self, ctx: &mut Ctx<W>, timer: TimerId, tag: u64) {
        let _ = (ctx, timer, tag);
    }

    /// A payload sent by another thread through a [`LoopWaker`].
    fn on_wake(&mut self, ctx: &mut Ctx<W>, payload: W) {
        let _ = (ctx, payload);
    }

    /// Called each time the loop has delivered a batch of events (calls, wake-ups, timers)
    /// and before it writes the connections: the place to act once for many events, e.g. to
    /// propose every request that arrived in this batch as one Raft append.
    fn on_batch_end(&mut self, ctx: &mut Ctx<W>) {
        let _ = ctx;
    }

    /// A source registered with [`Ctx::register_source`] became readable (or closed). The
    /// registration is edge-triggered: read it until it would block.
    fn on_source_ready(&mut self, ctx: &mut Ctx<W>, source: SourceId) {
        let _ = (ctx, source);
    }

    /// An HTTP/1.1 request on the gRPC port (`GET /health`, `/version`, `/metrics`, ...).
    fn on_http1(&mut self, ctx: &mut Ctx<W>, request: &Http1Request) -> Http1Response {
        let _ = (ctx, request);
        Http1Response::not_found()
    }
}

/// Loop settings.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    /// gRPC and HTTP/2 settings for accepted connections.
    pub grpc: GrpcConfig,
    /// A connection that has not sent enough bytes to tell HTTP/2 from HTTP/1 within this time
    /// is closed (slowloris protection).
    pub handshake_timeout: Duration,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            grpc: GrpcConfig::default(),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// What a timer does when it fires.
#[derive(Debug)]
enum TimerKind {
    User(u64),
    CallDeadline(CallId),
    Handshake {
        conn: usize,
        generation: u32,
    },
    /// Accepting failed (e.g. EMFILE): edge-triggered readiness will not fire again for the
    /// connections already waiting, so try again shortly.
    RetryAccept(usize),
}

/// Work for the handler, queued while processing I/O and delivered right after.
enum Dispatch {
    Call(CallEvent),
    Http1 {
        conn: u32,
        generation: u32,
        request: Http1Request,
        keep_alive: bool,
    },
}

/// The loop's state visible to handlers: connections, timers, the response API.
pub struct Ctx<W> {
    registry: mio::Registry,
    config: Arc<LoopConfig>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    generations: Vec<u32>,
    listeners: Vec<TcpListener>,
    timers: TimerHeap<TimerKind>,
    dispatch: VecDeque<Dispatch>,
    dirty: Vec<usize>,
    wake_queue: Arc<Mutex<Vec<W>>>,
    /// The drained wake queue, kept for its capacity.
    spare_wake_queue: Vec<W>,
    waker: Arc<mio::Waker>,
    stop: bool,
    scratch_events: Vec<CallEvent>,
    /// One read buffer shared by all connections (allocated once, never re-zeroed).
    read_buf: Vec<u8>,
    /// The last [`SourceId`] handed out.
    last_source: u64,
    /// Sources found ready by the current poll (kept for its capacity).
    ready_sources: Vec<SourceId>,
}

impl<W> std::fmt::Debug for Ctx<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("connections", &self.connection_count())
            .finish()
    }
}

/// An mio event loop serving gRPC and HTTP/1.1. See the module documentation.
pub struct EventLoop<W> {
    poll: Poll,
    events: Events,
    ctx: Ctx<W>,
}

impl<W> std::fmt::Debug for EventLoop<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop").field("ctx", &self.ctx).finish()
    }
}

impl<W> EventLoop<W> {
    /// Creates a loop (no listeners yet).
    pub fn new(config: LoopConfig) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE_TOKEN)?);
        let registry = poll.registry().try_clone()?;
        Ok(EventLoop {
            poll,
            events: Events::with_capacity(1024),
            ctx: Ctx {
                registry,
                config: Arc::new(config),
                conns: Vec::new(),
                free: Vec::new(),
                generations: Vec::new(),
                listeners: Vec::new(),
                timers: TimerHeap::new(),
                dispatch: VecDeque::new(),
                dirty: Vec::new(),
                wake_queue: Arc::new(Mutex::new(Vec::new())),
                spare_wake_queue: Vec::new(),
                waker,
                stop: false,
                scratch_events: Vec::new(),
                read_buf: vec![0; 64 * 1024],
                last_source: 0,
                ready_sources: Vec::new(),
            },
        })
    }

    /// Listens on `addr` (port 0 picks a free port); returns the bound address.
    pub fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        if self.ctx.listeners.len() >= MAX_LISTENERS {
            return Err(io::Error::other("too many listeners"));
        }
        let mut l = TcpListener::bind(addr)?;
        let token = Token(LISTENER_BASE + self.ctx.listeners.len());
        self.poll
            .registry()
            .register(&mut l, token, Interest::READABLE)?;
        let local = l.local_addr()?;
        self.ctx.listeners.push(l);
        Ok(local)
    }

    /// A handle other threads use to send payloads to [`Handler::on_wake`].
    pub fn waker(&self) -> LoopWaker<W> {
        self.ctx.waker()
    }

    /// The context, e.g. to register timers before running.
    pub fn ctx(&mut self) -> &mut Ctx<W> {
        &mut self.ctx
    }

    /// Runs until [`Ctx::stop`] is called.
    pub fn run(&mut self, handler: &mut impl Handler<W>) -> io::Result<()> {
        self.ctx.stop = false;
        while !self.ctx.stop {
            self.run_once(handler, None)?;
        }
        Ok(())
    }

    /// One iteration: waits for I/O, the next timer or a wake-up (at most `max_wait`), then
    /// processes everything ready and delivers the resulting callbacks.
    pub fn run_once(
        &mut self,
        handler: &mut impl Handler<W>,
        max_wait: Option<Duration>,
    ) -> io::Result<()> {
        self.ctx.fire_timers(handler);
        self.ctx.settle(handler);
        let now = Instant::now();
        let mut timeout = self
            .ctx
            .timers
            .next_deadline()
            .map(|d| d.saturating_duration_since(now));
        if let Some(m) = max_wait {
            timeout = Some(timeout.map_or(m, |t| t.min(m)));
        }
        if !self.ctx.wake_queue.lock().is_empty() {
            timeout = Some(Duration::ZERO);
        }
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for ev in self.events.iter() {
            let t = ev.token().0;
            if t == WAKE_TOKEN.0 {
                continue; // the queue is drained below in any case
            } else if t >= SOURCE_BASE {
                self.ctx
                    .ready_sources
                    .push(SourceId((t - SOURCE_BASE) as u64));
            } else if t < CONN_BASE {
                self.ctx.accept(t - LISTENER_BASE);
            } else {
                let idx = t - CONN_BASE;
                if ev.is_writable() {
                    if let Some(c) = self.ctx.conns.get_mut(idx).and_then(|c| c.as_mut()) {
                        c.write_blocked = false;
                    }
                    self.ctx.mark_dirty(idx);
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.ctx
                        .read_conn(idx, ev.is_read_closed() || ev.is_error());
                }
            }
        }
        let mut ready = std::mem::take(&mut self.ctx.ready_sources);
        for source in ready.drain(..) {
            handler.on_source_ready(&mut self.ctx, source);
        }
        self.ctx.ready_sources = ready;
        // Swap the queue with an empty one that keeps its capacity (no allocation per wake-up
        // batch on either side).
        let mut woken = std::mem::take(&mut self.ctx.spare_wake_queue);
        std::mem::swap(&mut woken, &mut *self.ctx.wake_queue.lock());
        for payload in woken.drain(..) {
            handler.on_wake(&mut self.ctx, payload);
        }
        self.ctx.spare_wake_queue = woken;
        self.ctx.fire_timers(handler);
        self.ctx.settle(handler);
        Ok(())
    }
}

impl<W> Ctx<W> {
    /// Registers a socket the handler owns (edge-triggered, readable): its readiness then
    /// arrives at [`Handler::on_source_ready`] with the returned id. Deregister it with
    /// [`Ctx::deregister_source`] before dropping it.
    pub fn register_source(
        &mut self,
        source: &mut impl mio::event::Source,
    ) -> io::Result<SourceId> {
        self.last_source += 1;
        let id = SourceId(self.last_source);
        self.registry.register(
            source,
            Token(SOURCE_BASE + id.0 as usize),
            Interest::READABLE,
        )?;
        Ok(id)
    }

    /// Removes a source registered with [`Ctx::register_source`].
    pub fn deregister_source(&mut self, source: &mut impl mio::event::Source) -> io::Result<()> {
        self.registry.deregister(source)
    }

    /// A handle other threads use to send payloads to [`Handler::on_wake`].
    pub fn waker(&self) -> LoopWaker<W> {
        LoopWaker {
            queue: self.wake_queue.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Makes [`EventLoop::run`] return after the current iteration.
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// Registers a timer firing at `at`; [`Handler::on_timer`] receives `tag`.
    pub fn add_timer(&mut self, at: Instant, tag: u64) -> TimerId {
        self.timers.add(at, TimerKind::User(tag))
    }

    /// Registers a timer firing after `delay` (saturating at about a century).
    pub fn add_timer_after(&mut self, delay: Duration, tag: u64) -> TimerId {
        let now = Instant::now();
        let at = now
            .checked_add(delay)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        self.add_timer(at, tag)
    }

    /// Bytes of response data queued for a call and not yet written (flow control or a slow
    /// reader): lets a streaming producer such as Watch apply backpressure. `None` if the call
    /// is gone.
    pub fn queued_bytes(&mut self, call: CallId) -> Option<usize> {
        let g = self.grpc_conn(call).ok()?;
        if !g.is_open(call.stream) {
            return None;
        }
        Some(g.h2().queued_bytes(call.stream))
    }

    /// Cancels a timer; returns whether it was still pending.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id).is_some()
    }

    /// Number of open client connections.
    pub fn connection_count(&self) -> usize {
        self.conns.iter().filter(|c| c.is_some()).count()
    }

    fn grpc_conn(&mut self, call: CallId) -> Result<&mut crate::grpc::GrpcServerConn, CallError> {
        match self
            .conns
            .get_mut(call.conn as usize)
            .and_then(|c| c.as_mut())
        {
            Some(Conn {
                generation,
                kind: ConnKind::Grpc(g),
                ..
            }) if *generation == call.generation => Ok(g),
            _ => Err(CallError::Gone(call)),
        }
    }

    /// Whether the call is still open (not finished, cancelled or disconnected).
    pub fn is_open(&mut self, call: CallId) -> bool {
        self.grpc_conn(call)
            .map(|g| g.is_open(call.stream))
            .unwrap_or(false)
    }

    /// Sends one response message on a call (streaming calls may send many).
    pub fn send_message(&mut self, call: CallId, message: &[u8]) -> Result<(), CallError> {
        self.grpc_conn(call)?.send_message(call.stream, message)?;
        self.mark_dirty(call.conn as usize);
        Ok(())
    }

    /// Ends a call with `status`: trailers after any messages, or a trailers-only response.
    pub fn finish(&mut self, call: CallId, status: Status) -> Result<(), CallError> {
        let timer = self.grpc_conn(call)?.finish(call.stream, &status)?;
        if let Some(t) = timer {
            self.timers.cancel(t);
        }
        self.mark_dirty(call.conn as usize);
        Ok(())
    }

    /// Unary convenience: one message then status OK.
    pub fn reply(&mut self, call: CallId, message: &[u8]) -> Result<(), CallError> {
        self.send_message(call, message)?;
        self.finish(call, Status::ok())
    }

    /// Server-side cancellation: resets the call's stream (RST_STREAM CANCEL).
    pub fn cancel(&mut self, call: CallId) -> Result<(), CallError> {
        let timer = self.grpc_conn(call)?.cancel(call.stream);
        if let Some(t) = timer {
            self.timers.cancel(t);
        }
        self.mark_dirty(call.conn as usize);
        Ok(())
    }

    /// Graceful shutdown of all connections: GOAWAY, open calls may still complete.
    pub fn go_away_all(&mut self) {
        for i in 0..self.conns.len() {
            if let Some(Conn {
                kind: ConnKind::Grpc(g),
                ..
            }) = self.conns[i].as_mut()
            {
                g.h2.go_away();
                self.mark_dirty(i);
            }
        }
    }

    fn mark_dirty(&mut self, idx: usize) {
        if let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(idx);
            }
        }
    }

    fn fire_timers<H: Handler<W>>(&mut self, handler: &mut H) {
        let now = Instant::now();
        while let Some((id, kind)) = self.timers.pop_expired(now) {
            match kind {
                TimerKind::User(tag) => handler.on_timer(self, id, tag),
                TimerKind::CallDeadline(call) => {
                    let mut out = std::mem::take(&mut self.scratch_events);
                    if let Ok(g) = self.grpc_conn(call) {
                        g.expire(call.stream, &mut out);
                        self.mark_dirty(call.conn as usize);
                    }
                    self.dispatch.extend(out.drain(..).map(Dispatch::Call));
                    self.scratch_events = out;
                }
                TimerKind::RetryAccept(listener) => self.accept(listener),
                TimerKind::Handshake { conn, generation } => {
                    let undecided = matches!(
                        self.conns.get(conn).and_then(|c| c.as_ref()),
                        Some(Conn { generation: g, kind: ConnKind::Detecting(_), .. }) if *g == generation
                    );
                    if undecided {
                        self.close_conn(conn);
                    }
                }
            }
        }
    }

    /// Delivers queued events to the handler and flushes connections, until quiet.
    fn settle<H: Handler<W>>(&mut self, handler: &mut H) {
        loop {
            while let Some(d) = self.dispatch.pop_front() {
                match d {
                    Dispatch::Call(ev) => {
                        if let CallEvent::Started {
                            call,
                            deadline: Some(at),
                            ..
                        } = &ev
                        {
                            let (call, at) = (*call, *at);
                            let t = self.timers.add(at, TimerKind::CallDeadline(call));
                            if let Ok(g) = self.grpc_conn(call) {
                                g.set_deadline_timer(call.stream, t);
                            }
                        }
                        handler.on_call(self, ev);
                    }
                    Dispatch::Http1 {
                        conn,
                        generation,
                        request,
                        keep_alive,
                    } => {
                        let resp = handler.on_http1(self, &request);
                        if let Some(c) = self.conns.get_mut(conn as usize).and_then(|c| c.as_mut())
                        {
                            if c.generation == generation {
                                let mut next = Vec::new();
                                if let ConnKind::Http1(h) = &mut c.kind {
                                    h.respond(&resp, keep_alive);
                                    h.process(&mut next);
                                }
                                for (request, keep_alive) in next {
                                    self.dispatch.push_back(Dispatch::Http1 {
                                        conn,
                                        generation,
                                        request,
                                        keep_alive,
                                    });
                                }
                                self.mark_dirty(conn as usize);
                            }
                        }
                    }
                }
            }
            handler.on_batch_end(self);
            let mut dirty = std::mem::take(&mut self.dirty);
            if dirty.is_empty() && self.dispatch.is_empty() {
                self.dirty = dirty;
                break;
            }
            for idx in dirty.drain(..) {
                self.flush_conn(idx);
            }
            // Keep the list's capacity for the next round (flushing marks nothing dirty).
            if self.dirty.is_empty() {
                self.dirty = dirty;
            }
        }
    }

    fn accept(&mut self, listener: usize) {
        loop {
            let Some(l) = self.listeners.get(listener) else {
                return;
            };
            match l.accept() {
                Ok((mut socket, _peer)) => {
                    let _ = socket.set_nodelay(true);
                    let idx = match self.free.pop() {
                        Some(i) => i,
                        None => {
                            self.conns.push(None);
                            self.generations.push(0);
                            self.conns.len() - 1
                        }
                    };
                    self.generations[idx] = self.generations[idx].wrapping_add(1);
                    let token = Token(CONN_BASE + idx);
                    if self
                        .registry
                        .register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)
                        .is_err()
                    {
                        self.free.push(idx);
                        continue;
                    }
                    self.conns[idx] = Some(Conn::new(socket, self.generations[idx]));
                    let at = Instant::now() + self.config.handshake_timeout;
                    self.timers.add(
                        at,
                        TimerKind::Handshake {
                            conn: idx,
                            generation: self.generations[idx],
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EMFILE and friends: retry from a timer (the edge has been consumed).
                Err(_) => {
                    self.timers.add(
                        Instant::now() + Duration::from_millis(50),
                        TimerKind::RetryAccept(listener),
                    );
                    return;
                }
            }
        }
    }

    fn read_conn(&mut self, idx: usize, drain: bool) {
        let config = self.config.clone();
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return;
        };
        let mut out = std::mem::take(&mut self.scratch_events);
        let mut http1 = Vec::new();
        let outcome = c.read_and_process(
            idx as u32,
            &config,
            drain,
            &mut self.read_buf,
            &mut out,
            &mut http1,
        );
        let generation = c.generation;
        for ev in out.drain(..) {
            self.dispatch.push_back(Dispatch::Call(ev));
        }
        self.scratch_events = out;
        for (request, keep_alive) in http1 {
            self.dispatch.push_back(Dispatch::Http1 {
                conn: idx as u32,
                generation,
                request,
                keep_alive,
            });
        }
        self.mark_dirty(idx);
        if outcome.is_err() {
            if let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) {
                c.closing = true;
            }
        }
    }

    fn flush_conn(&mut self, idx: usize) {
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return;
        };
        c.dirty = false;
        let write_failed = c.flush().is_err();
        if write_failed || c.should_close() {
            self.close_conn(idx);
        }
    }

    fn close_conn(&mut self, idx: usize) {
        let Some(mut c) = self.conns.get_mut(idx).and_then(|c| c.take()) else {
            return;
        };
        let _ = self.registry.deregister(&mut c.socket);
        if let ConnKind::Grpc(g) = &mut c.kind {
            let mut out = Vec::new();
            for t in g.close_all(&mut out) {
                self.timers.cancel(t);
            }
            self.dispatch.extend(out.into_iter().map(Dispatch::Call));
        }
        self.free.push(idx);
    }
}
