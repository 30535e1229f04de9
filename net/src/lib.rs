//! # keel-net: event loop, HTTP/2, gRPC, etcd's v3 messages and the peer transport
//!
//! Everything a keel member needs to talk to the outside world, without an async runtime.
//!
//! ## Layers, bottom up
//!
//! * [`hpack`] — header compression (RFC 7541), hand-written: a complete decoder (static and
//!   dynamic tables, Huffman, size updates) and an encoder that indexes repeated fields in a
//!   dynamic table mirroring the peer's (no Huffman).
//! * [`http2`] — HTTP/2 (RFC 9113) as a *sans-io* state machine, [`http2::Connection`]: bytes in,
//!   [`http2::Event`]s out, a sending API, bytes to write. Both client and server roles; flow
//!   control both ways; limits against floods (rapid reset, CONTINUATION, empty frames).
//! * [`grpc`] — gRPC on top: 5-byte message framing, status/trailers, `grpc-timeout`, metadata,
//!   and [`grpc::GrpcServerConn`], which turns one HTTP/2 connection into [`grpc::CallEvent`]s.
//! * [`http1`] — just enough HTTP/1.1 for `GET /health`, `/version`, `/metrics` on the same port
//!   (the first bytes of a connection tell the HTTP/2 preface `PRI * HTTP/2.0` apart from an
//!   HTTP/1 request line).
//! * [`event_loop`] — the mio loop that owns listeners and connections, a timer heap feeding the
//!   poll timeout, and a cross-thread waker. The server drives it.
//! * [`client`] — a blocking gRPC client (one connection per [`client::Client`], many calls on
//!   it), with endpoint failover and deadlines, for keelctl, benchmarks, jepsen and tests.
//! * [`proto`] — etcd's v3 API messages (prost derive); [`peer`] — the Raft peer transport.
//!
//! ## How the server uses the loop (event style)
//!
//! The server runs Raft on the loop thread, so the loop is a library and calls are answered
//! whenever the answer is ready (possibly many milliseconds later, after a Raft apply):
//!
//! ```no_run
//! use keel_net::event_loop::{Ctx, EventLoop, Handler, LoopConfig, TimerId};
//! use keel_net::grpc::{CallEvent, Code, Status};
//!
//! enum Wake { Applied(keel_net::grpc::CallId, Vec<u8>) }
//!
//! struct Server;
//! impl Handler<Wake> for Server {
//!     fn on_call(&mut self, ctx: &mut Ctx<Wake>, ev: CallEvent) {
//!         match ev {
//!             // Headers arrived: path (e.g. "/etcdserverpb.KV/Put"), metadata ("token",
//!             // "hasleader"), deadline from grpc-timeout.
//!             CallEvent::Started { .. } => {}
//!             // One request message (protobuf bytes). Propose to Raft, answer later.
//!             CallEvent::Message { call, message } => { let _ = (call, message); }
//!             // The client finished sending (a unary request is complete).
//!             CallEvent::HalfClosed { call } => {
//!                 let _ = ctx.finish(call, Status::new(Code::Unavailable, "etcdserver: no leader"));
//!             }
//!             // Client RST_STREAM, deadline passed, connection gone, or request rejected.
//!             CallEvent::Cancelled { .. } => {}
//!         }
//!     }
//!     fn on_timer(&mut self, ctx: &mut Ctx<Wake>, _t: TimerId, _tag: u64) {
//!         // Raft tick: re-arm.
//!         ctx.add_timer_after(std::time::Duration::from_millis(100), 0);
//!     }
//!     fn on_wake(&mut self, ctx: &mut Ctx<Wake>, w: Wake) {
//!         // A result from the WAL/apply thread.
//!         let Wake::Applied(call, bytes) = w;
//!         let _ = ctx.reply(call, &bytes); // = send_message + finish(OK)
//!     }
//! }
//!
//! let mut lp = EventLoop::new(LoopConfig::default())?;
//! lp.listen("127.0.0.1:2379".parse().unwrap())?;
//! let waker = lp.waker(); // clone into the apply thread: waker.wake(Wake::Applied(..))
//! lp.ctx().add_timer_after(std::time::Duration::from_millis(100), 0);
//! lp.run(&mut Server)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Per call the order is `Started`, `Message`*, `HalfClosed`, with `Cancelled` possible at any
//! point (final). Responses: [`event_loop::Ctx::send_message`] (any number, for streaming),
//! [`event_loop::Ctx::finish`] (trailers with `grpc-status`/`grpc-message`, or a trailers-only
//! response if nothing was sent), [`event_loop::Ctx::reply`], [`event_loop::Ctx::cancel`].
//! Responses to calls that are gone return [`grpc::CallError::Gone`] and are dropped.
//!
//! ## Bad input
//!
//! Malformed frames, header blocks, HPACK sequences and gRPC lengths are protocol errors for
//! their connection (GOAWAY) or stream (RST_STREAM, or a gRPC status), never panics; decoders are
//! proptested with byte soups, and a test throws garbage at a running server before checking
//! that a good client still works.

// --- Owned by the protocol helper (event loop, HTTP/2, HPACK, gRPC, HTTP/1.1, client) ---
pub mod client;
pub mod event_loop;
pub mod grpc;
pub mod hpack;
pub mod http1;
pub mod http2;

// --- Owned by the messages/peer helper ---
pub mod peer;
pub mod proto;
