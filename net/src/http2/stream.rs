//! Per-stream state kept by [`super::Connection`].

use std::collections::VecDeque;

/// Something queued for sending on a stream, in order.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Application data, partly sent up to `pos`; `end_stream` goes on the last DATA frame.
    Data {
        buf: Vec<u8>,
        pos: usize,
        end_stream: bool,
    },
    /// An encoded header block (trailers) waiting behind data.
    Headers { block: Vec<u8>, end_stream: bool },
}

/// One open (or half-closed) stream.
#[derive(Debug)]
pub(crate) struct Stream {
    /// The peer sent END_STREAM (half-closed remote).
    pub(crate) recv_closed: bool,
    /// We have queued END_STREAM; no more sends are accepted.
    pub(crate) send_closed: bool,
    /// How many bytes we may still send (peer's stream window); may go negative (§6.9.2).
    pub(crate) send_window: i64,
    /// How many bytes the peer may still send us on this stream.
    pub(crate) recv_window: i64,
    /// Bytes received and delivered but not yet returned to the peer by WINDOW_UPDATE.
    pub(crate) recv_unacked: u32,
    /// Outbound items not yet written.
    pub(crate) queue: VecDeque<Outbound>,
    /// Whether the stream id is currently in the connection's ready list.
    pub(crate) in_ready: bool,
}

impl Stream {
    pub(crate) fn new(send_window: i64, recv_window: i64) -> Stream {
        Stream {
            recv_closed: false,
            send_closed: false,
            send_window,
            recv_window,
            recv_unacked: 0,
            queue: VecDeque::new(),
            in_ready: false,
        }
    }
}
