//! The `loop` driver (the default): the `--clients` clients are connections, not threads.
//! `--loop-threads` threads (default 1) each run a mio event loop over their share of the
//! connections ([`split_clients`]); each connection has exactly one request outstanding and
//! sends the next as soon as the previous is answered — the same closed loop, [`Budget`], keys,
//! histogram, error texts and barrier-then-clock start as the `threads` driver, without 256
//! threads waking up twice per operation. etcd's own benchmark multiplexes its goroutines on
//! an epoll netpoller; this is the equivalent.
//!
//! Per client, mirroring the threads driver (`load::run_threads` over the blocking client):
//! * connect before the clock starts; a client whose endpoint refuses stops after counting one
//!   error;
//! * a failed call (non-OK status, `--call-timeout` passed → "deadline exceeded", connection
//!   lost, undecodable response) is counted by message and the client waits 10 ms before its
//!   next call;
//! * a lost connection is replaced by a new one (non-blocking connect) for the next call; a
//!   connect that fails counts the call it was made for as failed.
//!
//! Timers: every deadline of one kind has the same duration, so each kind is a FIFO queue in
//! arrival order (no heap); an entry is stale once its client has moved on (generation
//! number), and stale entries are dropped from the front.

use super::args::{Mode, Options};
use super::load::{
    build_request, check_response, error_text, filler, put_message_into, Budget, Outcome, Rng,
};
use super::unary_conn::{Progress, StartError, UnaryConn};
use keel_net::client::{ClientConfig, ClientError};
use keel_net::grpc::encode_message;
use mio::event::Event;
use mio::{Events, Poll, Token};
use std::collections::VecDeque;
use std::io;
use std::net::ToSocketAddrs;
use std::ops::Range;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// After a failed call a client waits this long before the next (as the threads driver does:
/// do not spin on a dead server).
pub const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// Splits clients `0..clients` into `threads` contiguous ranges whose sizes differ by at most
/// one (never more ranges than clients, never an empty one).
pub fn split_clients(clients: usize, threads: usize) -> Vec<Range<usize>> {
    if clients == 0 {
        return Vec::new();
    }
    let threads = threads.clamp(1, clients);
    let (base, extra) = (clients / threads, clients % threads);
    let mut start = 0;
    (0..threads)
        .map(|t| {
            let n = base + usize::from(t < extra);
            let r = start..start + n;
            start += n;
            r
        })
        .collect()
}

/// Runs the closed-loop load of `put`, `range` or `txn` on event loops.
pub fn run(o: &Options) -> Outcome {
    let ranges = split_clients(o.clients, o.loop_threads);
    let budget = Budget::new(o.total);
    let barrier = Barrier::new(ranges.len() + 1);
    let mut total = Outcome::default();
    let mut start = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = ranges
            .into_iter()
            .enumerate()
            .map(|(t, range)| {
                let (budget, barrier) = (&budget, &barrier);
                std::thread::Builder::new()
                    .name(format!("bench-loop-{t}"))
                    .spawn_scoped(scope, move || {
                        let lp = LoopThread::new(o, budget, range);
                        barrier.wait();
                        barrier.wait(); // start signal, after the budget got its deadline
                        lp.and_then(|lp| lp.run()).unwrap_or_else(|e| {
                            let mut out = Outcome::default();
                            out.errors.insert(format!("event loop failed: {e}"), 1);
                            out
                        })
                    })
                    .expect("spawn loop thread")
            })
            .collect();
        barrier.wait();
        start = Instant::now();
        if let Some(d) = o.duration {
            budget.start_clock(d);
        }
        barrier.wait();
        for h in handles {
            match h.join() {
                Ok(out) => total.merge(&out),
                Err(_) => {
                    *total
                        .errors
                        .entry("loop thread panicked".into())
                        .or_default() += 1
                }
            }
        }
    });
    total.elapsed = start.elapsed();
    total
}

/// Where one client is in its closed loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the start signal.
    Idle,
    /// A call is outstanding (its deadline is queued).
    InFlight,
    /// Waiting [`ERROR_BACKOFF`] after a failure.
    Backoff,
    /// A new connection is being set up for operation `seq`.
    Connecting { seq: u64 },
    /// The budget is spent (or the first connect failed).
    Done,
}

struct Client {
    conn: Option<UnaryConn>,
    rng: Rng,
    value: Vec<u8>,
    state: State,
    /// Bumped whenever a timer is armed; a queued timer with an older value is stale.
    generation: u64,
    started: Instant,
    path: &'static str,
}

/// A FIFO of same-length timers: (due, client, generation).
type TimerQueue = VecDeque<(Instant, usize, u64)>;

struct LoopThread<'a> {
    o: &'a Options,
    budget: &'a Budget,
    poll: Poll,
    clients: Vec<Client>,
    call_deadlines: TimerQueue,
    backoffs: TimerQueue,
    connect_deadlines: TimerQueue,
    connect_timeout: Duration,
    out: Outcome,
    /// Clients not yet done.
    live: usize,
    buf: Vec<u8>,
}

impl<'a> LoopThread<'a> {
    /// Connects this thread's clients (blocking connects, before the clock starts).
    fn new(o: &'a Options, budget: &'a Budget, range: Range<usize>) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut out = Outcome::default();
        let connect_timeout = ClientConfig::default().connect_timeout;
        let mut clients = Vec::with_capacity(range.len());
        for i in range {
            let local = clients.len();
            let endpoint = &o.endpoints[i % o.endpoints.len()];
            let mut rng = Rng::new(i as u64 + 1);
            let value = filler(&mut rng, o.val_size);
            let mut conn = None;
            let mut last = io::Error::other("no endpoints");
            match endpoint.to_socket_addrs() {
                Ok(addrs) => {
                    for addr in addrs {
                        let mut c = UnaryConn::new(addr, o.call_timeout);
                        match c.connect_blocking(poll.registry(), Token(local)) {
                            Ok(()) => {
                                conn = Some(c);
                                break;
                            }
                            Err(e) => last = e,
                        }
                    }
                }
                Err(e) => last = e,
            }
            let state = if conn.is_some() {
                State::Idle
            } else {
                *out.errors
                    .entry(error_text(&ClientError::Connect(last)))
                    .or_default() += 1;
                State::Done
            };
            clients.push(Client {
                conn,
                rng,
                value,
                state,
                generation: 0,
                started: Instant::now(),
                path: "",
            });
        }
        let live = clients.iter().filter(|c| c.state != State::Done).count();
        Ok(LoopThread {
            o,
            budget,
            poll,
            clients,
            call_deadlines: VecDeque::new(),
            backoffs: VecDeque::new(),
            connect_deadlines: VecDeque::new(),
            connect_timeout,
            out,
            live,
            buf: vec![0; 64 << 10],
        })
    }

    fn run(mut self) -> io::Result<Outcome> {
        let mut events = Events::with_capacity(1024);
        for i in 0..self.clients.len() {
            if self.clients[i].state == State::Idle {
                self.next_op(i);
            }
        }
        while self.live > 0 {
            let now = Instant::now();
            self.fire_timers(now);
            if self.live == 0 {
                break;
            }
            let timeout = self.next_timer().map(|t| t.saturating_duration_since(now));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                self.on_event(ev);
            }
        }
        Ok(self.out)
    }

    fn arm(&mut self, i: usize, kind: fn(&mut Self) -> &mut TimerQueue, at: Instant) {
        let c = &mut self.clients[i];
        c.generation += 1;
        let g = c.generation;
        let q = kind(self);
        q.push_back((at, i, g));
        // Keep the queue short: drop entries whose client has moved on.
        while let Some(&(_, j, g)) = kind(self).front() {
            if self.clients[j].generation == g {
                break;
            }
            kind(self).pop_front();
        }
    }

    /// Claims the next operation for client `i` and starts it (connecting first if needed).
    fn next_op(&mut self, i: usize) {
        let Some(seq) = self.budget.claim() else {
            self.clients[i].state = State::Done;
            self.live -= 1;
            return;
        };
        let c = &mut self.clients[i];
        let conn = c.conn.as_mut().expect("live clients have a connection");
        if conn.has_socket() && conn.is_finished() {
            conn.close(self.poll.registry()); // GOAWAY: the next call goes to a new connection
        }
        if conn.has_socket() {
            self.send(i, seq);
        } else {
            self.reconnect(i, seq);
        }
    }

    fn reconnect(&mut self, i: usize, seq: u64) {
        let conn = self.clients[i].conn.as_mut().expect("live");
        match conn.connect_start(self.poll.registry(), Token(i)) {
            Ok(()) => {
                self.clients[i].state = State::Connecting { seq };
                let at = Instant::now() + self.connect_timeout;
                self.arm(i, |s| &mut s.connect_deadlines, at);
            }
            Err(e) => self.fail(i, ClientError::Connect(e)),
        }
    }

    /// Builds and sends operation `seq` on client `i`'s connected connection.
    fn send(&mut self, i: usize, seq: u64) {
        let o = self.o;
        let c = &mut self.clients[i];
        let (path, message) = if o.mode == Mode::Put {
            let mut m = Vec::with_capacity(16 + o.prefix.len() + o.key_size + c.value.len());
            put_message_into(o, &mut c.rng, seq, &c.value, &mut m);
            (super::load::paths::PUT, m)
        } else {
            let (path, req) = build_request(o, &mut c.rng, seq, &c.value);
            (path, encode_message(&req))
        };
        c.started = Instant::now();
        c.path = path;
        let conn = c.conn.as_mut().expect("live");
        match conn.start_call(path, message) {
            Ok(()) => {
                c.state = State::InFlight;
                let at = c.started + o.call_timeout;
                self.arm(i, |s| &mut s.call_deadlines, at);
                self.flush(i);
            }
            Err(StartError::Reconnect) => {
                conn.close(self.poll.registry());
                self.reconnect(i, seq);
            }
            Err(StartError::Failed(e)) => self.fail(i, e),
        }
    }

    /// Writes client `i`'s pending output; a lost connection finishes its call.
    fn flush(&mut self, i: usize) {
        let conn = self.clients[i].conn.as_mut().expect("live");
        if !conn.has_socket() {
            return;
        }
        if let Progress::Lost = conn.flush(self.poll.registry()) {
            self.after_io(i);
        }
    }

    /// After reading or writing: if the call in flight has an outcome, record it and go on.
    fn after_io(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if c.state != State::InFlight {
            return;
        }
        let Some(result) = c.conn.as_mut().expect("live").take_result() else {
            return;
        };
        let path = c.path;
        match result
            .map_err(|e| error_text(&e))
            .and_then(|b| check_response(path, &b))
        {
            Ok(()) => {
                let took = c.started.elapsed();
                self.out.latency_us.record(took.as_micros() as u64);
                self.next_op(i);
            }
            Err(msg) => self.count_failure(i, msg),
        }
    }

    fn fail(&mut self, i: usize, e: ClientError) {
        self.count_failure(i, error_text(&e));
    }

    fn count_failure(&mut self, i: usize, msg: String) {
        *self.out.errors.entry(msg).or_default() += 1;
        self.clients[i].state = State::Backoff;
        let at = Instant::now() + ERROR_BACKOFF;
        self.arm(i, |s| &mut s.backoffs, at);
    }

    fn on_event(&mut self, ev: &Event) {
        let i = ev.token().0;
        let Some(c) = self.clients.get_mut(i) else {
            return;
        };
        let registry = self.poll.registry();
        let Some(conn) = c.conn.as_mut() else {
            return;
        };
        if let State::Connecting { seq } = c.state {
            match conn.on_connect_event(registry) {
                Ok(true) => self.send(i, seq),
                Ok(false) => {}
                Err(e) => self.fail(i, ClientError::Connect(e)),
            }
            return;
        }
        if !conn.has_socket() {
            return;
        }
        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
            conn.on_readable(registry, &mut self.buf);
        }
        // The answer (if complete) starts the next call; then one write carries it together
        // with any acks the input asked for (and resumes a partial write on WRITABLE).
        self.after_io(i);
        self.flush(i);
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(&(at, i, g)) = self.call_deadlines.front() {
            if at > now && self.clients[i].generation == g {
                break;
            }
            self.call_deadlines.pop_front();
            if self.clients[i].generation == g && self.clients[i].state == State::InFlight {
                let conn = self.clients[i].conn.as_mut().expect("live");
                conn.cancel_call();
                self.flush(i);
                self.fail(i, ClientError::Timeout);
            }
        }
        while let Some(&(at, i, g)) = self.connect_deadlines.front() {
            if at > now && self.clients[i].generation == g {
                break;
            }
            self.connect_deadlines.pop_front();
            if self.clients[i].generation == g
                && matches!(self.clients[i].state, State::Connecting { .. })
            {
                let conn = self.clients[i].conn.as_mut().expect("live");
                conn.close(self.poll.registry());
                self.fail(i, ClientError::Connect(io::ErrorKind::TimedOut.into()));
            }
        }
        while let Some(&(at, i, g)) = self.backoffs.front() {
            if at > now && self.clients[i].generation == g {
                break;
            }
            self.backoffs.pop_front();
            if self.clients[i].generation == g && self.clients[i].state == State::Backoff {
                self.next_op(i);
            }
        }
    }

    /// The earliest live timer (stale fronts were dropped by `fire_timers`).
    fn next_timer(&self) -> Option<Instant> {
        [
            &self.call_deadlines,
            &self.backoffs,
            &self.connect_deadlines,
        ]
        .into_iter()
        .filter_map(|q| q.front().map(|e| e.0))
        .min()
    }
}

#[cfg(test)]
mod tests;
