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
    /// A header block (trailers) waiting behind data. It is encoded only when written: with
    /// HPACK's dynamic table, blocks must be encoded in the order they reach the peer.
    Headers {
        fields: PendingFields,
        /// The connection's block cache to encode it with, if any.
        cache: Option<usize>,
        end_stream: bool,
    },
}

/// Header fields kept until their block is written: `name_len`, `value_len` (u32 LE each),
/// name, value, repeated, in one buffer.
#[derive(Debug, Default)]
pub(crate) struct PendingFields(Vec<u8>);

impl PendingFields {
    pub(crate) fn new(fields: &[(&[u8], &[u8])]) -> PendingFields {
        let mut b = Vec::with_capacity(fields.iter().map(|(n, v)| 8 + n.len() + v.len()).sum());
        for (n, v) in fields {
            b.extend_from_slice(&(n.len() as u32).to_le_bytes());
            b.extend_from_slice(&(v.len() as u32).to_le_bytes());
            b.extend_from_slice(n);
            b.extend_from_slice(v);
        }
        PendingFields(b)
    }

    /// The fields, in order.
    pub(crate) fn to_vec(&self) -> Vec<(&[u8], &[u8])> {
        let mut out = Vec::new();
        let mut rest = self.0.as_slice();
        while let Some((head, tail)) = rest.split_first_chunk::<8>() {
            let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let v = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
            out.push((&tail[..n], &tail[n..n + v]));
            rest = &tail[n + v..];
        }
        out
    }
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
