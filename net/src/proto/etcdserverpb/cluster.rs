//! Service `etcdserverpb.Cluster`: membership (add, remove, update, list, promote).

use super::ResponseHeader;

/// A cluster member.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Member {
    /// Member ID.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Human-readable name; empty if the member has not started.
    #[prost(string, tag = "2")]
    pub name: String,
    /// URLs used by the other members (`peerURLs`).
    #[prost(string, repeated, tag = "3")]
    pub peer_urls: Vec<String>,
    /// URLs used by clients (`clientURLs`); empty if not started.
    #[prost(string, repeated, tag = "4")]
    pub client_urls: Vec<String>,
    /// The member is a non-voting learner (3.4+).
    #[prost(bool, tag = "5")]
    pub is_learner: bool,
}

/// Add a member.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MemberAddRequest {
    /// Peer URLs of the new member.
    #[prost(string, repeated, tag = "1")]
    pub peer_urls: Vec<String>,
    /// Add it as a learner (3.4+).
    #[prost(bool, tag = "2")]
    pub is_learner: bool,
}

/// Result of MemberAdd.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MemberAddResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The added member.
    #[prost(message, optional, tag = "2")]
    pub member: Option<Member>,
    /// All members after the addition.
    #[prost(message, repeated, tag = "3")]
    pub members: Vec<Member>,
}

/// Remove a member.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MemberRemoveRequest {
    /// The member ID.
    #[prost(uint64, tag = "1")]
    pub id: u64,
}

/// Result of MemberRemove.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MemberRemoveResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// All members after the removal.
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<Member>,
}

/// Change a member's peer URLs.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MemberUpdateRequest {
    /// The member ID.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// New peer URLs.
    #[prost(string, repeated, tag = "2")]
    pub peer_urls: Vec<String>,
}

/// Result of MemberUpdate.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MemberUpdateResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// All members after the update (3.1+).
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<Member>,
}

/// List members.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MemberListRequest {
    /// Read the list through consensus (3.5+).
    #[prost(bool, tag = "1")]
    pub linearizable: bool,
}

/// Result of MemberList.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MemberListResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// All members.
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<Member>,
}

/// Promote a learner to a voting member (3.4+).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MemberPromoteRequest {
    /// The learner's ID.
    #[prost(uint64, tag = "1")]
    pub id: u64,
}

/// Result of MemberPromote.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MemberPromoteResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// All members after the promotion.
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<Member>,
}
