//! The etcd v3 API messages as Rust structs, written by hand with prost's derive macros from
//! etcd's `.proto` files (no protoc, no build script).
//!
//! One module per protobuf package:
//! - [`etcdserverpb`]: requests and responses of the KV, Watch, Lease, Cluster, Maintenance and
//!   Auth services (`api/etcdserverpb/rpc.proto`, etcd 3.5 plus the few 3.6 additions, which
//!   older clients simply skip as unknown fields);
//! - [`mvccpb`]: `KeyValue` and the watch `Event`;
//! - [`authpb`]: users, roles, permissions;
//! - [`v3lockpb`] and [`v3electionpb`]: the Lock and Election services.
//!
//! [`methods`] lists every RPC's HTTP/2 path and streaming kind for dispatch.
//!
//! Field numbers, enum values and wire types are etcd's exactly; tests compare encodings
//! byte-for-byte with output of the real protobuf toolchain (`net/tests/proto_*.rs`).
//! Encoding and decoding use [`prost::Message`]: `msg.encode_to_vec()` and
//! `RangeRequest::decode(bytes)`, which returns a [`prost::DecodeError`] (never a panic) for
//! malformed input.

#![warn(missing_docs)]

pub mod authpb;
pub mod etcdserverpb;
pub mod methods;
pub mod mvccpb;
pub mod v3electionpb;
pub mod v3lockpb;

pub use methods::{Method, MethodKind, Rpc, METHODS};
pub use prost::Message;
