//! What a client learns of one call from the HTTP/2 events of its stream: the response
//! messages, and its status once the trailers (or a reset) arrived. Shared by the blocking
//! [`crate::client::Client`] and keel-bench's event-loop client, which drive different sockets
//! but must read a response the same way.

use std::collections::VecDeque;

use crate::client::ClientError;
use crate::grpc::{percent_decode, Code, MessageDecoder, Status};
use crate::hpack::HeaderField;
use crate::http2::ErrorCode;

/// The client side of one gRPC call (one HTTP/2 stream).
#[derive(Debug)]
pub struct CallState {
    decoder: MessageDecoder,
    messages: VecDeque<Vec<u8>>,
    got_headers: bool,
    /// Final status once trailers (or a reset) arrived.
    status: Option<Result<(), ClientError>>,
}

impl CallState {
    /// A call whose response messages may be at most `max_message` bytes each.
    pub fn new(max_message: usize) -> CallState {
        CallState {
            decoder: MessageDecoder::new(max_message),
            messages: VecDeque::new(),
            got_headers: false,
            status: None,
        }
    }

    /// A header block of the stream: the response headers (a non-200 `:status` or an early
    /// `grpc-status` ends the call), or the trailers, which end it with their status.
    pub fn on_headers(&mut self, fields: &[HeaderField], end_stream: bool) {
        if !self.got_headers && !end_stream {
            self.got_headers = true;
            match status_from_trailers(fields) {
                // Plain response headers carry no status.
                Err(ClientError::Protocol(ref m)) if m.contains("without grpc-status") => {}
                Err(e) => self.status = Some(Err(e)),
                Ok(()) => {}
            }
            return;
        }
        self.got_headers = true;
        if self.status.is_none() {
            let r = status_from_trailers(fields).and_then(|()| {
                self.decoder
                    .finish()
                    .map_err(|e| ClientError::Protocol(e.to_string()))
            });
            self.status = Some(r);
        }
    }

    /// DATA of the stream. Returns false when the framing is broken: the call has failed and
    /// the caller must reset the stream.
    pub fn on_data(&mut self, data: &[u8], end_stream: bool) -> bool {
        let mut decoded = Vec::new();
        if let Err(e) = self.decoder.push(data, &mut decoded) {
            self.status = Some(Err(ClientError::Protocol(e.to_string())));
            return false;
        }
        self.messages.extend(decoded);
        if end_stream && self.status.is_none() {
            self.status = Some(Err(ClientError::Protocol(
                "stream ended without trailers".into(),
            )));
        }
        true
    }

    /// The server reset the stream.
    pub fn on_reset(&mut self, code: ErrorCode) {
        if self.status.is_none() {
            self.status = Some(Err(if code == ErrorCode::RefusedStream {
                ClientError::Status(Status::new(Code::Unavailable, "stream refused by server"))
            } else {
                ClientError::Protocol(format!("stream reset by server: {code}"))
            }));
        }
    }

    /// Ends the call with `err` unless its status is known already (e.g. the connection died).
    pub fn fail(&mut self, err: ClientError) {
        if self.status.is_none() {
            self.status = Some(Err(err));
        }
    }

    /// True once the status is known.
    pub fn is_done(&self) -> bool {
        self.status.is_some()
    }

    /// True if a response message waits to be taken.
    pub fn has_message(&self) -> bool {
        !self.messages.is_empty()
    }

    /// The next response message, in order.
    pub fn pop_message(&mut self) -> Option<Vec<u8>> {
        self.messages.pop_front()
    }

    /// The status, once known (taken: a second call returns `None`).
    pub fn take_status(&mut self) -> Option<Result<(), ClientError>> {
        self.status.take()
    }

    /// The answer of a unary call whose status is known: its one message, or the error.
    pub fn into_unary(mut self) -> Result<Vec<u8>, ClientError> {
        match self.status.take() {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e),
            None => return Err(ClientError::Protocol("call ended without status".into())),
        }
        if self.messages.len() != 1 {
            return Err(ClientError::Protocol(format!(
                "unary call got {} messages",
                self.messages.len()
            )));
        }
        Ok(self.messages.pop_front().expect("one message"))
    }
}

/// The call's status from a header block (`grpc-status`, `grpc-message`, `:status`).
fn status_from_trailers(fields: &[HeaderField]) -> Result<(), ClientError> {
    let mut code = None;
    let mut message = String::new();
    for f in fields {
        match f.name.as_slice() {
            b"grpc-status" => {
                code = std::str::from_utf8(&f.value)
                    .ok()
                    .and_then(|s| s.parse::<i32>().ok())
            }
            b"grpc-message" => message = percent_decode(&f.value),
            b":status" if f.value != b"200" => {
                return Err(ClientError::Protocol(format!(
                    "HTTP status {}",
                    String::from_utf8_lossy(&f.value)
                )))
            }
            _ => {}
        }
    }
    match code {
        Some(0) => Ok(()),
        Some(c) => Err(ClientError::Status(Status::new(Code::from_i32(c), message))),
        None => Err(ClientError::Protocol("trailers without grpc-status".into())),
    }
}
