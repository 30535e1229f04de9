//! Service `etcdserverpb.Lease`: grant, revoke, keep alive and inspect leases.

use super::ResponseHeader;

/// Create a lease.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseGrantRequest {
    /// Advisory time-to-live in seconds.
    #[prost(int64, tag = "1")]
    pub ttl: i64,
    /// Requested lease ID; 0 = the server picks one.
    #[prost(int64, tag = "2")]
    pub id: i64,
}

/// Result of LeaseGrant.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseGrantResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The granted lease ID.
    #[prost(int64, tag = "2")]
    pub id: i64,
    /// The server-chosen TTL in seconds.
    #[prost(int64, tag = "3")]
    pub ttl: i64,
    /// Error text (unused by etcd servers; kept for wire compatibility).
    #[prost(string, tag = "4")]
    pub error: String,
}

/// Revoke a lease and delete its keys.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseRevokeRequest {
    /// The lease.
    #[prost(int64, tag = "1")]
    pub id: i64,
}

/// Result of LeaseRevoke.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseRevokeResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// Remaining TTL of one lease, replicated by the leader (internal, 3.4+).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseCheckpoint {
    /// The lease.
    #[prost(int64, tag = "1")]
    pub id: i64,
    /// Remaining time until expiry, seconds.
    #[prost(int64, tag = "2")]
    pub remaining_ttl: i64,
}

/// A batch of lease checkpoints (internal Raft request, not an RPC; 3.4+).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseCheckpointRequest {
    /// The checkpoints.
    #[prost(message, repeated, tag = "1")]
    pub checkpoints: Vec<LeaseCheckpoint>,
}

/// Result of a LeaseCheckpointRequest (internal).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseCheckpointResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// One keep-alive on the LeaseKeepAlive stream.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseKeepAliveRequest {
    /// The lease to refresh.
    #[prost(int64, tag = "1")]
    pub id: i64,
}

/// Answer to one keep-alive.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseKeepAliveResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The lease.
    #[prost(int64, tag = "2")]
    pub id: i64,
    /// The new TTL; ≤ 0 means the lease is gone.
    #[prost(int64, tag = "3")]
    pub ttl: i64,
}

/// Ask for a lease's remaining TTL.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseTimeToLiveRequest {
    /// The lease.
    #[prost(int64, tag = "1")]
    pub id: i64,
    /// Also list the attached keys.
    #[prost(bool, tag = "2")]
    pub keys: bool,
}

/// Result of LeaseTimeToLive.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseTimeToLiveResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The lease.
    #[prost(int64, tag = "2")]
    pub id: i64,
    /// Remaining TTL in seconds (-1 if expired).
    #[prost(int64, tag = "3")]
    pub ttl: i64,
    /// TTL granted at creation or last renewal.
    #[prost(int64, tag = "4")]
    pub granted_ttl: i64,
    /// Keys attached to the lease, if asked.
    #[prost(bytes = "vec", repeated, tag = "5")]
    pub keys: Vec<Vec<u8>>,
}

/// List all leases (empty message).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseLeasesRequest {}

/// One lease in a LeaseLeases listing.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseStatus {
    /// The lease ID.
    #[prost(int64, tag = "1")]
    pub id: i64,
}

/// Result of LeaseLeases.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaseLeasesResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// All leases.
    #[prost(message, repeated, tag = "2")]
    pub leases: Vec<LeaseStatus>,
}
