//! Service `etcdserverpb.Maintenance`: alarms, status, defragment, hashes, snapshot, leader
//! transfer and downgrade.

use super::ResponseHeader;

/// Kind of alarm (top-level enum in rpc.proto).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum AlarmType {
    /// No alarm; used to query all alarms.
    None = 0,
    /// Space quota exhausted.
    Nospace = 1,
    /// Key-value store corruption detected (3.3+).
    Corrupt = 2,
}

/// Get, raise or clear alarms.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AlarmRequest {
    /// GET, ACTIVATE or DEACTIVATE (see [`alarm_request::AlarmAction`]).
    #[prost(enumeration = "alarm_request::AlarmAction", tag = "1")]
    pub action: i32,
    /// Member the alarm concerns; 0 = all members.
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    /// The alarm (see [`AlarmType`]).
    #[prost(enumeration = "AlarmType", tag = "3")]
    pub alarm: i32,
}

/// Nested enum of [`AlarmRequest`].
pub mod alarm_request {
    /// What to do with alarms.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum AlarmAction {
        /// List alarms.
        Get = 0,
        /// Raise an alarm.
        Activate = 1,
        /// Clear an alarm.
        Deactivate = 2,
    }
}

/// An alarm raised on one member.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AlarmMember {
    /// The member.
    #[prost(uint64, tag = "1")]
    pub member_id: u64,
    /// The alarm (see [`AlarmType`]).
    #[prost(enumeration = "AlarmType", tag = "2")]
    pub alarm: i32,
}

/// Result of Alarm.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AlarmResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Alarms matching the request.
    #[prost(message, repeated, tag = "2")]
    pub alarms: Vec<AlarmMember>,
}

/// Validate, enable or cancel a cluster downgrade (3.5+).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DowngradeRequest {
    /// See [`downgrade_request::DowngradeAction`].
    #[prost(enumeration = "downgrade_request::DowngradeAction", tag = "1")]
    pub action: i32,
    /// Target version.
    #[prost(string, tag = "2")]
    pub version: String,
}

/// Nested enum of [`DowngradeRequest`].
pub mod downgrade_request {
    /// What to do about a downgrade.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum DowngradeAction {
        /// Check the target version.
        Validate = 0,
        /// Start the downgrade.
        Enable = 1,
        /// Cancel the current downgrade.
        Cancel = 2,
    }
}

/// Result of Downgrade (3.5+).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DowngradeResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Current cluster version.
    #[prost(string, tag = "2")]
    pub version: String,
}

/// Test-only request carrying a WAL record version (3.6; not an RPC).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DowngradeVersionTestRequest {
    /// The version.
    #[prost(string, tag = "1")]
    pub ver: String,
}

/// Ask a member for its status (empty message).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct StatusRequest {}

/// Result of Status.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct StatusResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Server version.
    #[prost(string, tag = "2")]
    pub version: String,
    /// Backend size allocated, bytes (`dbSize`).
    #[prost(int64, tag = "3")]
    pub db_size: i64,
    /// The leader this member believes in.
    #[prost(uint64, tag = "4")]
    pub leader: u64,
    /// Raft commit index (`raftIndex`).
    #[prost(uint64, tag = "5")]
    pub raft_index: u64,
    /// Raft term.
    #[prost(uint64, tag = "6")]
    pub raft_term: u64,
    /// Raft applied index (3.4+).
    #[prost(uint64, tag = "7")]
    pub raft_applied_index: u64,
    /// Alarm and health messages (3.4+).
    #[prost(string, repeated, tag = "8")]
    pub errors: Vec<String>,
    /// Backend size logically in use, bytes (3.4+).
    #[prost(int64, tag = "9")]
    pub db_size_in_use: i64,
    /// This member is a learner (3.4+).
    #[prost(bool, tag = "10")]
    pub is_learner: bool,
    /// Storage version of the db file (3.6; ignored by 3.5 clients).
    #[prost(string, tag = "11")]
    pub storage_version: String,
    /// Configured backend quota, bytes (3.6).
    #[prost(int64, tag = "12")]
    pub db_size_quota: i64,
    /// Downgrade in progress, if any (3.6).
    #[prost(message, optional, tag = "13")]
    pub downgrade_info: Option<DowngradeInfo>,
}

/// State of a downgrade (3.6).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DowngradeInfo {
    /// The cluster is allowed to downgrade.
    #[prost(bool, tag = "1")]
    pub enabled: bool,
    /// Target version.
    #[prost(string, tag = "2")]
    pub target_version: String,
}

/// Defragment this member's backend (empty message).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DefragmentRequest {}

/// Result of Defragment.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DefragmentResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// Hash the whole backend (testing only; empty message).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct HashRequest {}

/// Result of Hash.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct HashResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The hash.
    #[prost(uint32, tag = "2")]
    pub hash: u32,
}

/// Hash the MVCC keys up to a revision (3.3+).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct HashKvRequest {
    /// Revision; 0 = latest.
    #[prost(int64, tag = "1")]
    pub revision: i64,
}

/// Result of HashKV.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct HashKvResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The hash.
    #[prost(uint32, tag = "2")]
    pub hash: u32,
    /// Compaction revision when hashing began.
    #[prost(int64, tag = "3")]
    pub compact_revision: i64,
    /// Revision up to which the hash was computed (3.6).
    #[prost(int64, tag = "4")]
    pub hash_revision: i64,
}

/// Stream the backend database (empty message).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SnapshotRequest {}

/// One chunk of the Snapshot stream.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SnapshotResponse {
    /// Response header (the first one fixes the snapshot's point in time).
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Blob bytes still to come after this message.
    #[prost(uint64, tag = "2")]
    pub remaining_bytes: u64,
    /// The next chunk.
    #[prost(bytes = "vec", tag = "3")]
    pub blob: Vec<u8>,
    /// Server version that made the snapshot (3.6).
    #[prost(string, tag = "4")]
    pub version: String,
}

/// Transfer leadership to another member (send to the leader).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MoveLeaderRequest {
    /// The new leader (`targetID`).
    #[prost(uint64, tag = "1")]
    pub target_id: u64,
}

/// Result of MoveLeader.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MoveLeaderResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}
