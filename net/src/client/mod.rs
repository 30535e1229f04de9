//! A blocking gRPC client over this crate's HTTP/2 client state machine: for keelctl, the bench
//! tool, jepsen and tests. No async, no threads: each [`Client`] owns one TCP connection and
//! drives it from the calling thread; many calls (unary and streaming) can be open at once on it.
//!
//! Failover: [`Client::connect`] takes several endpoints and uses the first that accepts a
//! connection. When the connection breaks, the failing call returns [`ClientError::Io`] (it is
//! not retried: it may have been applied) and the next call reconnects, trying the endpoints in
//! turn starting after the one that failed.

#![warn(missing_docs)]

mod call;
pub use call::CallState;

use crate::grpc::{encode_message, format_timeout, Status};
use crate::http2::{Connection, ErrorCode, Event, H2Config, Role};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Timeout for establishing a TCP connection to one endpoint.
    pub connect_timeout: Duration,
    /// Default deadline of unary calls (also sent as `grpc-timeout`).
    pub call_timeout: Duration,
    /// Largest response message accepted.
    pub max_recv_message_size: usize,
    /// HTTP/2 settings.
    pub h2: H2Config,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(3),
            call_timeout: Duration::from_secs(10),
            max_recv_message_size: i32::MAX as usize,
            h2: H2Config {
                initial_window_size: 4 << 20,
                connection_window_size: 16 << 20,
                ..H2Config::default()
            },
        }
    }
}

/// Why a call failed.
#[derive(Debug)]
pub enum ClientError {
    /// No endpoint accepted a connection (the last error is kept).
    Connect(io::Error),
    /// The connection failed during the call.
    Io(io::Error),
    /// The deadline passed before the call completed.
    Timeout,
    /// The server answered with a non-OK status.
    Status(Status),
    /// The server violated the protocol (or reset the stream).
    Protocol(String),
    /// The stream handle does not belong to the current connection (it was lost on reconnect).
    StaleStream,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(e) => write!(f, "could not connect to any endpoint: {e}"),
            ClientError::Io(e) => write!(f, "connection failed: {e}"),
            ClientError::Timeout => write!(f, "deadline exceeded"),
            ClientError::Status(s) => write!(f, "{s}"),
            ClientError::Protocol(s) => write!(f, "protocol error: {s}"),
            ClientError::StaleStream => write!(f, "stream belongs to a closed connection"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A handle to an open streaming call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamHandle {
    epoch: u64,
    stream: u32,
}

#[derive(Debug)]
struct Conn {
    socket: TcpStream,
    h2: Connection,
    calls: HashMap<u32, CallState>,
    authority: String,
}

/// A blocking gRPC client. See the module documentation.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    endpoints: Vec<SocketAddr>,
    next_endpoint: usize,
    conn: Option<Conn>,
    epoch: u64,
    buf: Vec<u8>,
}

fn far_deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

impl Client {
    /// Connects to the first reachable endpoint (`host:port` strings).
    pub fn connect<A: AsRef<str>>(
        endpoints: &[A],
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        let mut addrs = Vec::new();
        for e in endpoints {
            let e = e.as_ref();
            let e = e.strip_prefix("http://").unwrap_or(e);
            match e.to_socket_addrs() {
                Ok(list) => addrs.extend(list),
                Err(err) => return Err(ClientError::Connect(err)),
            }
        }
        if addrs.is_empty() {
            return Err(ClientError::Connect(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no endpoints",
            )));
        }
        let mut c = Client {
            config,
            endpoints: addrs,
            next_endpoint: 0,
            conn: None,
            epoch: 0,
            buf: vec![0; 64 * 1024],
        };
        c.ensure_connected()?;
        Ok(c)
    }

    /// The endpoint of the current connection, if connected.
    pub fn current_endpoint(&self) -> Option<SocketAddr> {
        self.conn.as_ref().and_then(|c| c.socket.peer_addr().ok())
    }

    fn ensure_connected(&mut self) -> Result<(), ClientError> {
        if self.conn.is_some() {
            return Ok(());
        }
        let mut last = io::Error::other("no endpoint tried");
        for i in 0..self.endpoints.len() {
            let addr = self.endpoints[(self.next_endpoint + i) % self.endpoints.len()];
            match TcpStream::connect_timeout(&addr, self.config.connect_timeout) {
                Ok(socket) => {
                    let _ = socket.set_nodelay(true);
                    // A server that stops reading must not block us forever.
                    let _ = socket.set_write_timeout(Some(self.config.call_timeout));
                    self.next_endpoint = (self.next_endpoint + i) % self.endpoints.len();
                    self.epoch += 1;
                    self.conn = Some(Conn {
                        socket,
                        h2: Connection::new(Role::Client, self.config.h2.clone()),
                        calls: HashMap::new(),
                        authority: addr.to_string(),
                    });
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(ClientError::Connect(last))
    }

    fn drop_connection(&mut self) {
        self.conn = None;
        self.next_endpoint = (self.next_endpoint + 1) % self.endpoints.len();
    }

    /// A unary call with the default deadline and no metadata.
    pub fn unary(&mut self, path: &str, request: &[u8]) -> Result<Vec<u8>, ClientError> {
        let t = self.config.call_timeout;
        self.unary_with(path, request, &[], t)
    }

    /// A unary call with metadata (e.g. `("token", ...)`) and a deadline.
    pub fn unary_with(
        &mut self,
        path: &str,
        request: &[u8],
        metadata: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Vec<u8>, ClientError> {
        let deadline = far_deadline(timeout);
        let h = self.start(path, metadata, Some(timeout))?;
        let stream = h.stream;
        {
            let conn = self.conn.as_mut().expect("started");
            if let Err(e) = conn.h2.send_data(stream, encode_message(request), true) {
                return Err(ClientError::Protocol(e.to_string()));
            }
        }
        self.wait(deadline, |c| {
            c.calls.get(&stream).is_none_or(CallState::is_done)
        })?;
        let conn = self.conn.as_mut().expect("connected");
        let call = conn.calls.remove(&stream).ok_or(ClientError::StaleStream)?;
        call.into_unary()
    }

    /// Processes whatever the server already sent, without blocking: a GOAWAY or a closed
    /// socket is noticed before a new call is sent on a dying connection (then, if no call is
    /// open on it, the connection is dropped and the call goes to a fresh one).
    fn absorb_pending_input(&mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        if conn.socket.set_nonblocking(true).is_err() {
            return;
        }
        let dead;
        loop {
            match conn.socket.read(&mut self.buf) {
                Ok(0) => {
                    dead = true;
                    break;
                }
                Ok(n) => {
                    let r = conn.h2.recv(&self.buf[..n]);
                    conn.process_events();
                    if r.is_err() {
                        dead = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    dead = e.kind() != io::ErrorKind::WouldBlock;
                    break;
                }
            }
        }
        let _ = conn.socket.set_nonblocking(false);
        if dead {
            for st in conn.calls.values_mut() {
                st.fail(ClientError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        if (dead || conn.h2.is_finished()) && conn.calls.values().all(CallState::is_done) {
            self.drop_connection();
        }
    }

    fn start(
        &mut self,
        path: &str,
        metadata: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> Result<StreamHandle, ClientError> {
        self.absorb_pending_input();
        self.ensure_connected()?;
        let authority = self.conn.as_ref().expect("connected").authority.clone();
        let timeout_value = timeout.map(format_timeout);
        let mut fields: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", path.as_bytes()),
            (b":authority", authority.as_bytes()),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
        ];
        if let Some(t) = &timeout_value {
            fields.push((b"grpc-timeout", t.as_bytes()));
        }
        for (k, v) in metadata {
            fields.push((k.as_bytes(), v.as_bytes()));
        }
        let conn = self.conn.as_mut().expect("connected");
        let stream = match conn.h2.open_stream(&fields, false) {
            Ok(s) => s,
            Err(crate::http2::SendError::ConnectionClosed) => {
                // The server said GOAWAY: reconnect once and retry (nothing was sent yet).
                self.drop_connection();
                self.ensure_connected()?;
                let conn = self.conn.as_mut().expect("connected");
                conn.h2
                    .open_stream(&fields, false)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?
            }
            Err(e) => return Err(ClientError::Protocol(e.to_string())),
        };
        let conn = self.conn.as_mut().expect("connected");
        conn.calls
            .insert(stream, CallState::new(self.config.max_recv_message_size));
        Ok(StreamHandle {
            epoch: self.epoch,
            stream,
        })
    }

    /// Opens a streaming call (server- or bidi-streaming). `timeout` becomes `grpc-timeout`.
    pub fn open_stream(
        &mut self,
        path: &str,
        metadata: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> Result<StreamHandle, ClientError> {
        let h = self.start(path, metadata, timeout)?;
        self.flush()?;
        Ok(h)
    }

    fn check(&self, h: StreamHandle) -> Result<(), ClientError> {
        if self.conn.is_none() || h.epoch != self.epoch {
            return Err(ClientError::StaleStream);
        }
        Ok(())
    }

    /// Sends one message on a streaming call.
    pub fn send(&mut self, h: StreamHandle, message: &[u8]) -> Result<(), ClientError> {
        self.check(h)?;
        let conn = self.conn.as_mut().expect("checked");
        conn.h2
            .send_data(h.stream, encode_message(message), false)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.flush()
    }

    /// Half-closes a streaming call (no more messages from us).
    pub fn close_send(&mut self, h: StreamHandle) -> Result<(), ClientError> {
        self.check(h)?;
        let conn = self.conn.as_mut().expect("checked");
        conn.h2
            .send_data(h.stream, Vec::new(), true)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.flush()
    }

    /// Cancels a call (RST_STREAM CANCEL).
    pub fn cancel(&mut self, h: StreamHandle) -> Result<(), ClientError> {
        self.check(h)?;
        let conn = self.conn.as_mut().expect("checked");
        conn.calls.remove(&h.stream);
        conn.h2.reset_stream(h.stream, ErrorCode::Cancel);
        self.flush()
    }

    /// Receives the next message of a streaming call: `Ok(Some(msg))`, `Ok(None)` once the call
    /// ended with status OK, `Err(Status)` for an error status, `Err(Timeout)` after `timeout`.
    pub fn recv(
        &mut self,
        h: StreamHandle,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        self.check(h)?;
        let deadline = far_deadline(timeout);
        let s = h.stream;
        self.wait(deadline, |c| {
            c.calls
                .get(&s)
                .is_none_or(|st| st.has_message() || st.is_done())
        })?;
        let conn = self.conn.as_mut().expect("connected");
        let Some(st) = conn.calls.get_mut(&s) else {
            return Err(ClientError::StaleStream);
        };
        if let Some(m) = st.pop_message() {
            return Ok(Some(m));
        }
        match conn.calls.remove(&s).and_then(|mut st| st.take_status()) {
            Some(Ok(())) => Ok(None),
            Some(Err(e)) => Err(e),
            None => Err(ClientError::StaleStream),
        }
    }

    fn flush(&mut self) -> Result<(), ClientError> {
        let conn = self.conn.as_mut().ok_or(ClientError::StaleStream)?;
        loop {
            let out = conn.h2.output();
            if out.is_empty() {
                return Ok(());
            }
            match conn.socket.write(out) {
                Ok(0) => {
                    self.drop_connection();
                    return Err(ClientError::Io(io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => conn.h2.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.drop_connection();
                    return Err(ClientError::Io(e));
                }
            }
        }
    }

    /// Drives the connection until `done` holds or the deadline passes.
    fn wait(&mut self, deadline: Instant, done: impl Fn(&Conn) -> bool) -> Result<(), ClientError> {
        loop {
            self.flush()?;
            let conn = self.conn.as_mut().ok_or(ClientError::StaleStream)?;
            if done(conn) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::Timeout);
            }
            let _ = conn
                .socket
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
            match conn.socket.read(&mut self.buf) {
                Ok(0) => {
                    self.drop_connection();
                    return Err(ClientError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(n) => {
                    let r = conn.h2.recv(&self.buf[..n]);
                    conn.process_events();
                    if let Err(e) = r {
                        let _ = self.flush();
                        self.drop_connection();
                        return Err(ClientError::Protocol(e.to_string()));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ClientError::Timeout)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.drop_connection();
                    return Err(ClientError::Io(e));
                }
            }
        }
    }
}

impl Conn {
    fn process_events(&mut self) {
        while let Some(ev) = self.h2.poll_event() {
            match ev {
                Event::Headers {
                    stream,
                    fields,
                    end_stream,
                } => {
                    if let Some(st) = self.calls.get_mut(&stream) {
                        st.on_headers(&fields, end_stream);
                    }
                }
                Event::Data {
                    stream,
                    data,
                    end_stream,
                } => {
                    let broken = self
                        .calls
                        .get_mut(&stream)
                        .is_some_and(|st| !st.on_data(&data, end_stream));
                    if broken {
                        self.h2.reset_stream(stream, ErrorCode::Cancel);
                    }
                }
                Event::Reset { stream, code, .. } => {
                    if let Some(st) = self.calls.get_mut(&stream) {
                        st.on_reset(code);
                    }
                }
                Event::GoAway { .. } | Event::PingAck { .. } => {}
            }
        }
    }
}
