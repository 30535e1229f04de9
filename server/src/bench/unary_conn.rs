//! One non-blocking gRPC connection with at most one unary call in flight, for the `loop`
//! driver: keel-net's sans-io HTTP/2 state machine ([`Connection`], client role) driven over a
//! mio [`TcpStream`] that the caller's event loop polls.
//!
//! The HTTP/2 machine answers SETTINGS and PING, returns flow-control credit (WINDOW_UPDATE)
//! and holds DATA back until the peer's windows open; this type only moves bytes: it reads
//! until the socket would block, feeds them to the machine, and writes the machine's output
//! until the socket would block (the rest stays queued in the machine and goes out on the next
//! writable event). Call outcomes are the blocking client's [`ClientError`]s, built exactly as
//! `keel_net::client::Client::unary_with` builds them, so both drivers count failures under the
//! same messages.

use keel_net::client::{CallState, ClientConfig, ClientError};
use keel_net::grpc::format_timeout;
use keel_net::http2::{Connection, ErrorCode, Event, Role, SendError};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// The unary call in flight: its stream, and what its events said so far (read as the
/// blocking client reads them, see [`CallState`]).
#[derive(Debug)]
struct Call {
    stream: u32,
    state: CallState,
}

/// What became of the connection after some I/O.
#[derive(Debug)]
pub enum Progress {
    /// Nothing final yet (or the call finished: see [`UnaryConn::take_result`]).
    Open,
    /// The connection is gone; the call in flight (if any) failed with this error, which
    /// [`UnaryConn::take_result`] returns.
    Lost,
}

/// See the module documentation.
#[derive(Debug)]
pub struct UnaryConn {
    addr: SocketAddr,
    authority: String,
    /// `grpc-timeout` sent with every call (the same `--call-timeout` the client enforces).
    timeout_header: String,
    config: ClientConfig,
    socket: Option<TcpStream>,
    /// The TCP handshake has completed (a non-blocking connect may still be in progress).
    connected: bool,
    h2: Connection,
    call: Option<Call>,
    /// Outcome of the last call, until taken.
    result: Option<Result<Vec<u8>, ClientError>>,
}

/// Why a call could not be started.
#[derive(Debug)]
pub enum StartError {
    /// The server said GOAWAY (or the connection failed): nothing was sent; reconnect and
    /// send again, as the blocking client does.
    Reconnect,
    /// Anything else, counted as a failed call.
    Failed(ClientError),
}

impl UnaryConn {
    /// A connection to `addr` (not connected yet).
    pub fn new(addr: SocketAddr, call_timeout: Duration) -> UnaryConn {
        let config = ClientConfig {
            call_timeout,
            ..ClientConfig::default()
        };
        UnaryConn {
            addr,
            authority: addr.to_string(),
            timeout_header: format_timeout(call_timeout),
            h2: Connection::new(Role::Client, config.h2.clone()),
            config,
            socket: None,
            connected: false,
            call: None,
            result: None,
        }
    }

    /// Whether a socket exists (connected or connecting).
    pub fn has_socket(&self) -> bool {
        self.socket.is_some()
    }

    /// Whether the TCP connection is up.
    pub fn is_connected(&self) -> bool {
        self.socket.is_some() && self.connected
    }

    /// Connects with a blocking connect (as `Client::connect` does, before the clock starts)
    /// and registers the socket for reading and writing.
    pub fn connect_blocking(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let s = std::net::TcpStream::connect_timeout(&self.addr, self.config.connect_timeout)?;
        s.set_nonblocking(true)?;
        let _ = s.set_nodelay(true);
        self.install(TcpStream::from_std(s), registry, token, true)
    }

    /// Starts a non-blocking connect; [`UnaryConn::on_connect_event`] finishes it.
    pub fn connect_start(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let s = TcpStream::connect(self.addr)?;
        let _ = s.set_nodelay(true);
        self.install(s, registry, token, false)
    }

    fn install(
        &mut self,
        mut s: TcpStream,
        registry: &Registry,
        token: Token,
        connected: bool,
    ) -> io::Result<()> {
        // Both interests once: edge-triggered readiness costs nothing while the socket stays
        // writable, and saves a reregister per partial write.
        registry.register(&mut s, token, Interest::READABLE | Interest::WRITABLE)?;
        self.socket = Some(s);
        self.connected = connected;
        self.h2 = Connection::new(Role::Client, self.config.h2.clone());
        Ok(())
    }

    /// After a writable (or error) event on a connecting socket: `Ok(true)` once connected,
    /// `Ok(false)` while still in progress, `Err` if the connect failed (the socket is dropped).
    pub fn on_connect_event(&mut self, registry: &Registry) -> io::Result<bool> {
        let Some(s) = self.socket.as_ref() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let r = match s.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match s.peer_addr() {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
                Err(e) if e.raw_os_error() == Some(115) => Ok(false), // EINPROGRESS
                Err(e) => Err(e),
            },
        };
        match r {
            Ok(true) => self.connected = true,
            Ok(false) => {}
            Err(_) => self.close(registry),
        }
        r
    }

    /// Drops the socket (deregistered) and any call state.
    pub fn close(&mut self, registry: &Registry) {
        if let Some(mut s) = self.socket.take() {
            let _ = registry.deregister(&mut s);
        }
        self.connected = false;
        self.call = None;
    }

    /// Opens a stream and queues the framed request (`message` = 5-byte prefix + protobuf).
    /// Nothing is written yet: call [`UnaryConn::flush`].
    pub fn start_call(&mut self, path: &str, message: Vec<u8>) -> Result<(), StartError> {
        debug_assert!(self.call.is_none() && self.is_connected());
        self.result = None;
        let fields: [(&[u8], &[u8]); 7] = [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", path.as_bytes()),
            (b":authority", self.authority.as_bytes()),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            (b"grpc-timeout", self.timeout_header.as_bytes()),
        ];
        let stream = match self.h2.open_stream(&fields, false) {
            Ok(s) => s,
            Err(SendError::ConnectionClosed) => return Err(StartError::Reconnect),
            Err(e) => return Err(StartError::Failed(ClientError::Protocol(e.to_string()))),
        };
        if let Err(e) = self.h2.send_data(stream, message, true) {
            return Err(StartError::Failed(ClientError::Protocol(e.to_string())));
        }
        self.call = Some(Call {
            stream,
            state: CallState::new(self.config.max_recv_message_size),
        });
        Ok(())
    }

    /// Abandons the call in flight (deadline passed): RST_STREAM CANCEL, so a late answer is
    /// ignored. The connection stays.
    pub fn cancel_call(&mut self) {
        if let Some(c) = self.call.take() {
            self.h2.reset_stream(c.stream, ErrorCode::Cancel);
        }
    }

    /// The finished call's outcome (the response message), once there is one.
    pub fn take_result(&mut self) -> Option<Result<Vec<u8>, ClientError>> {
        self.result.take()
    }

    /// True when the server has ended the connection gracefully (GOAWAY with no stream left,
    /// or an HTTP/2 error): it must be closed and a new one opened for the next call.
    pub fn is_finished(&self) -> bool {
        self.h2.is_finished()
    }

    /// Writes queued output until done or the socket would block (the remainder stays queued
    /// in the HTTP/2 machine for the next writable event).
    pub fn flush(&mut self, registry: &Registry) -> Progress {
        let Some(s) = self.socket.as_mut() else {
            return Progress::Lost;
        };
        if !self.connected {
            return Progress::Open;
        }
        loop {
            let out = self.h2.output();
            if out.is_empty() {
                return Progress::Open;
            }
            match s.write(out) {
                Ok(0) => {
                    return self.lost(registry, ClientError::Io(io::ErrorKind::WriteZero.into()))
                }
                Ok(n) => self.h2.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.lost(registry, ClientError::Io(e)),
            }
        }
    }

    /// Reads until the socket would block, feeding the HTTP/2 machine. What the machine queues
    /// in reply (SETTINGS/PING acks, WINDOW_UPDATE) is not written here: the caller flushes
    /// after starting the next call, so acks and the next request share one write. `buf` is
    /// scratch space shared by a loop's connections.
    pub fn on_readable(&mut self, registry: &Registry, buf: &mut [u8]) -> Progress {
        loop {
            let Some(s) = self.socket.as_mut() else {
                return Progress::Lost;
            };
            match s.read(buf) {
                Ok(0) => {
                    return self.lost(
                        registry,
                        ClientError::Io(io::ErrorKind::UnexpectedEof.into()),
                    )
                }
                Ok(n) => {
                    let r = self.h2.recv(&buf[..n]);
                    self.process_events();
                    if let Err(e) = r {
                        let _ = self.flush(registry); // the GOAWAY, best effort
                        return self.lost(registry, ClientError::Protocol(e.to_string()));
                    }
                    // A short read drained the socket: with epoll, data arriving later raises
                    // a new edge, so the read that would only say WouldBlock is skipped (one
                    // syscall per response; tokio relies on the same property).
                    if cfg!(target_os = "linux") && n < buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.lost(registry, ClientError::Io(e)),
            }
        }
        Progress::Open
    }

    /// The connection failed: the call in flight (if any) fails with `err`.
    fn lost(&mut self, registry: &Registry, err: ClientError) -> Progress {
        if self.call.is_some() {
            self.result = Some(Err(err));
        }
        self.close(registry);
        Progress::Lost
    }

    /// Applies HTTP/2 events to the call ([`CallState`]); a call whose status is known is
    /// finished into `result`.
    fn process_events(&mut self) {
        while let Some(ev) = self.h2.poll_event() {
            let Some(c) = self.call.as_mut() else {
                continue; // e.g. a late answer to a call we cancelled
            };
            match ev {
                Event::Headers {
                    stream,
                    fields,
                    end_stream,
                } if stream == c.stream => c.state.on_headers(&fields, end_stream),
                Event::Data {
                    stream,
                    data,
                    end_stream,
                } if stream == c.stream => {
                    let framing_ok = c.state.on_data(&data, end_stream);
                    if !framing_ok {
                        self.h2.reset_stream(stream, ErrorCode::Cancel);
                    }
                }
                Event::Reset { stream, code, .. } if stream == c.stream => c.state.on_reset(code),
                _ => {}
            }
            if self.call.as_ref().is_some_and(|c| c.state.is_done()) {
                let c = self.call.take().expect("checked");
                self.result = Some(c.state.into_unary());
            }
        }
    }
}
