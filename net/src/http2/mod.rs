//! HTTP/2 (RFC 9113) over cleartext with prior knowledge ("h2c"), as a sans-io state machine.
//!
//! [`Connection`] knows nothing about sockets: the owner feeds it received bytes with
//! [`Connection::recv`], takes [`Event`]s out with [`Connection::poll_event`], calls the sending
//! API ([`Connection::send_headers`], [`Connection::send_data`], ...) and writes whatever
//! [`Connection::output`] returns to the transport. The same type serves both roles
//! ([`Role::Server`] and [`Role::Client`]).
//!
//! What it implements: the preface; SETTINGS sent first, acknowledged and applied (initial window,
//! max frame size, header table size; unknown ids ignored); HEADERS + CONTINUATION with a cap on
//! the accumulated block; DATA with padding; flow control both ways (connection and stream
//! windows, WINDOW_UPDATE as data is delivered, outbound data queued per stream until the peer's
//! window opens, frames split at the peer's max frame size, streams served round-robin); PING
//! acks; RST_STREAM; GOAWAY; PRIORITY and unknown frames ignored; a concurrent-stream limit; and an
//! "abuse budget" against rapid-reset, empty-frame and refused-stream floods.
//!
//! Errors: a connection error queues GOAWAY and makes [`Connection::recv`] return
//! [`H2Error::Connection`]; the owner flushes the output and closes the transport. Stream errors
//! reset only that stream (RST_STREAM) and surface as [`Event::Reset`].

#![warn(missing_docs)]

mod connection;
mod error;
pub mod frame;
pub(crate) mod id_hash;
mod stream;

pub(crate) use connection::RawEvent;
pub use connection::{Connection, Event, H2Config, Role};
pub use error::{ErrorCode, H2Error, SendError};
