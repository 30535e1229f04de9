//! `v3electionpb` (etcd `server/etcdserver/api/v3election/v3electionpb/v3election.proto`): the
//! Election service. `Observe` takes a [`LeaderRequest`] and streams [`LeaderResponse`]s.

use crate::proto::etcdserverpb::ResponseHeader;
use crate::proto::mvccpb::KeyValue;

/// Campaign for leadership of an election (blocks until elected).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct CampaignRequest {
    /// Election name.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// Lease attached to the leadership.
    #[prost(int64, tag = "2")]
    pub lease: i64,
    /// Initial proclaimed value.
    #[prost(bytes = "vec", tag = "3")]
    pub value: Vec<u8>,
}

/// Result of Campaign.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct CampaignResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The leadership held.
    #[prost(message, optional, tag = "2")]
    pub leader: Option<LeaderKey>,
}

/// Identifies a held leadership.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaderKey {
    /// Election name.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// Ownership key; deleting it loses leadership.
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    /// Create revision of the key (use it to guard transactions).
    #[prost(int64, tag = "3")]
    pub rev: i64,
    /// Lease of the leader.
    #[prost(int64, tag = "4")]
    pub lease: i64,
}

/// Ask for the current leader (also the request of the Observe stream).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaderRequest {
    /// Election name.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
}

/// The current leader's proclamation.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LeaderResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The leader key and its value.
    #[prost(message, optional, tag = "2")]
    pub kv: Option<KeyValue>,
}

/// Give up leadership.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ResignRequest {
    /// The leadership to give up.
    #[prost(message, optional, tag = "1")]
    pub leader: Option<LeaderKey>,
}

/// Result of Resign.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ResignResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// Update the leader's value.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ProclaimRequest {
    /// The leadership held.
    #[prost(message, optional, tag = "1")]
    pub leader: Option<LeaderKey>,
    /// The new value.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// Result of Proclaim.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ProclaimResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}
