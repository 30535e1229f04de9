//! # keel-net: event loop, HTTP/2, gRPC, etcd's v3 messages and the peer transport
//!
//! (Layer overview to be written with the implementation: see issue 6.)
