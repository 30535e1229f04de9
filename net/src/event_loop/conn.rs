//! One accepted TCP connection: protocol detection (HTTP/2 preface vs HTTP/1 request line),
//! reading, and writing buffered output.

use crate::grpc::{CallEvent, GrpcServerConn};
use crate::http1::{self, Http1Request, Http1Response, Parse};
use crate::http2::frame::PREFACE;
use mio::net::TcpStream;
use std::io::{self, Read, Write};

use super::LoopConfig;

/// Which protocol the connection speaks.
pub(super) enum ConnKind {
    /// Not enough bytes yet to tell HTTP/2 from HTTP/1.
    Detecting(Vec<u8>),
    Grpc(Box<GrpcServerConn>),
    Http1(Http1Conn),
}

/// HTTP/1.1 connection state.
pub(super) struct Http1Conn {
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    /// A request is with the handler; further input waits (sequential processing).
    awaiting_response: bool,
    close_after_write: bool,
}

impl Http1Conn {
    pub(super) fn respond(&mut self, resp: &Http1Response, keep_alive: bool) {
        http1::write_response(resp, keep_alive, &mut self.out);
        self.awaiting_response = false;
        if !keep_alive {
            self.close_after_write = true;
        }
    }

    pub(super) fn process(&mut self, requests: &mut Vec<(Http1Request, bool)>) {
        if self.awaiting_response || self.close_after_write {
            return;
        }
        match http1::parse_request(&self.inbuf) {
            Parse::Incomplete => {}
            Parse::Request {
                request,
                consumed,
                keep_alive,
            } => {
                self.inbuf.drain(..consumed);
                self.awaiting_response = true;
                requests.push((request, keep_alive));
            }
            Parse::Error(status) => {
                http1::write_response(
                    &Http1Response::new(status, "text/plain", format!("{status}\n")),
                    false,
                    &mut self.out,
                );
                self.close_after_write = true;
            }
        }
    }
}

pub(super) struct Conn {
    pub(super) socket: TcpStream,
    pub(super) generation: u32,
    pub(super) kind: ConnKind,
    pub(super) write_blocked: bool,
    pub(super) dirty: bool,
    /// Protocol error or EOF: close once output is flushed.
    pub(super) closing: bool,
    eof: bool,
}

impl Conn {
    pub(super) fn new(socket: TcpStream, generation: u32) -> Conn {
        Conn {
            socket,
            generation,
            kind: ConnKind::Detecting(Vec::new()),
            write_blocked: false,
            dirty: false,
            closing: false,
            eof: false,
        }
    }

    /// Reads until WouldBlock, feeding the protocol. Err means: close the connection.
    ///
    /// Unless `drain` is set (the event reported a hang-up or error), a short read ends the
    /// loop without the extra `read` that would return WouldBlock: with edge-triggered epoll,
    /// data or a FIN arriving after this read raises a new event, so nothing is missed.
    pub(super) fn read_and_process(
        &mut self,
        idx: u32,
        config: &LoopConfig,
        drain: bool,
        buf: &mut [u8],
        events: &mut Vec<CallEvent>,
        http1_requests: &mut Vec<(Http1Request, bool)>,
    ) -> Result<(), ()> {
        loop {
            match self.socket.read(buf) {
                Ok(0) => {
                    self.eof = true;
                    return Err(());
                }
                Ok(n) => {
                    self.feed(&buf[..n], idx, config, events, http1_requests)?;
                    if n < buf.len() && !drain {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.eof = true;
                    return Err(());
                }
            }
        }
    }

    fn feed(
        &mut self,
        data: &[u8],
        idx: u32,
        config: &LoopConfig,
        events: &mut Vec<CallEvent>,
        http1_requests: &mut Vec<(Http1Request, bool)>,
    ) -> Result<(), ()> {
        if self.closing {
            return Ok(());
        }
        if let ConnKind::Detecting(pending) = &mut self.kind {
            pending.extend_from_slice(data);
            let n = pending.len().min(PREFACE.len());
            if pending[..n] == PREFACE[..n] {
                if n < PREFACE.len() {
                    return Ok(());
                }
                let bytes = std::mem::take(pending);
                let mut g = Box::new(GrpcServerConn::new(&config.grpc, idx, self.generation));
                let r = g.recv(&bytes, events);
                self.kind = ConnKind::Grpc(g);
                return r.map_err(|_| ());
            }
            let bytes = std::mem::take(pending);
            let mut h = Http1Conn {
                inbuf: bytes,
                out: Vec::new(),
                out_pos: 0,
                awaiting_response: false,
                close_after_write: false,
            };
            h.process(http1_requests);
            self.kind = ConnKind::Http1(h);
            return Ok(());
        }
        match &mut self.kind {
            ConnKind::Grpc(g) => g.recv(data, events).map_err(|_| ()),
            ConnKind::Http1(h) => {
                if h.inbuf.len() + data.len() > http1::MAX_HEAD + http1::MAX_BODY {
                    return Err(());
                }
                h.inbuf.extend_from_slice(data);
                h.process(http1_requests);
                Ok(())
            }
            ConnKind::Detecting(_) => unreachable!("handled above"),
        }
    }

    /// Writes buffered output until done or WouldBlock. Err: the socket failed.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        if self.write_blocked {
            return Ok(());
        }
        loop {
            let (buf, is_h2): (&[u8], bool) = match &mut self.kind {
                ConnKind::Grpc(g) => (g.h2.output(), true),
                ConnKind::Http1(h) => (&h.out[h.out_pos..], false),
                ConnKind::Detecting(_) => return Ok(()),
            };
            if buf.is_empty() {
                if let ConnKind::Http1(h) = &mut self.kind {
                    h.out.clear();
                    h.out_pos = 0;
                    // A response went out: the next pipelined request may already be buffered.
                }
                return Ok(());
            }
            match self.socket.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => match &mut self.kind {
                    ConnKind::Grpc(g) if is_h2 => g.h2.consume_output(n),
                    ConnKind::Http1(h) => h.out_pos += n,
                    _ => {}
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether the connection should be closed now (after a flush).
    pub(super) fn should_close(&self) -> bool {
        let output_pending = match &self.kind {
            ConnKind::Grpc(g) => g.h2.has_output(),
            ConnKind::Http1(h) => h.out_pos < h.out.len(),
            ConnKind::Detecting(_) => false,
        };
        if self.eof {
            return true;
        }
        let finished = match &self.kind {
            ConnKind::Grpc(g) => g.h2.is_finished(),
            ConnKind::Http1(h) => h.close_after_write,
            ConnKind::Detecting(_) => false,
        };
        (self.closing || finished) && (!output_pending || self.write_blocked && self.closing)
    }
}
