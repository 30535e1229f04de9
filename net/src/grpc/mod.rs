//! gRPC over this crate's HTTP/2: message framing, status and metadata, the server-side call
//! layer ([`GrpcServerConn`], driven by the event loop) and the event-style server API
//! ([`CallEvent`] in, `Ctx::send_message` / `Ctx::finish` out).

#![warn(missing_docs)]

mod framing;
mod metadata;
mod server;
mod status;

pub use framing::{encode_message, FramingError, MessageDecoder};
pub use metadata::{base64_decode, base64_encode, format_timeout, parse_timeout, Metadata};
pub use server::{CallError, CallEvent, CallId, CancelReason, GrpcConfig, GrpcServerConn};
pub use status::{percent_decode, percent_encode, Code, Status};
