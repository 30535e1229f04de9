//! # keel-net: event loop, HTTP/2, gRPC, etcd's v3 messages and the peer transport
//!
//! (Layer overview to be written with the implementation: see issue 6.)

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
