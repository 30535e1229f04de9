//! `etcdserverpb` (etcd `api/etcdserverpb/rpc.proto`): the requests and responses of the KV,
//! Watch, Lease, Cluster, Maintenance and Auth services.
//!
//! Split by service into one file each; everything is re-exported here so paths read like the
//! proto package (`etcdserverpb::RangeRequest`). Nested enums and oneofs live in snake_case
//! modules named after their message (`range_request::SortOrder`), as prost-build would emit them.
//!
//! Field names are snake_case versions of etcd's (`peerURLs` → `peer_urls`, `TTL` → `ttl`,
//! `ID` → `id`); only the tag numbers matter on the wire.

mod auth;
mod cluster;
mod kv;
mod lease;
mod maintenance;
mod watch;

pub use auth::*;
pub use cluster::*;
pub use kv::*;
pub use lease::*;
pub use maintenance::*;
pub use watch::*;

/// Header of every response: which cluster and member answered, at which store revision and
/// Raft term.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ResponseHeader {
    /// ID of the cluster that sent the response.
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    /// ID of the member that sent the response.
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    /// Store revision when the request was applied (0 for calls not touching the KV store).
    /// For watch progress responses: all future events on the stream have a higher revision.
    #[prost(int64, tag = "3")]
    pub revision: i64,
    /// Raft term when the request was applied.
    #[prost(uint64, tag = "4")]
    pub raft_term: u64,
}
