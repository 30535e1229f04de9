//! `v3lockpb` (etcd `server/etcdserver/api/v3lock/v3lockpb/v3lock.proto`): the Lock service.

use crate::proto::etcdserverpb::ResponseHeader;

/// Acquire the named lock (blocks until held).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LockRequest {
    /// Name of the lock.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// Lease the ownership is attached to; locking twice with one lease is a no-op.
    #[prost(int64, tag = "2")]
    pub lease: i64,
}

/// Result of Lock.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LockResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Ownership key; exists while the lock is held.
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
}

/// Release a lock.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct UnlockRequest {
    /// The ownership key returned by Lock.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
}

/// Result of Unlock.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct UnlockResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}
