//! Service `etcdserverpb.KV`: Range, Put, DeleteRange, Txn, Compact.

use super::ResponseHeader;
use crate::proto::mvccpb::KeyValue;

/// Get the key `key`, or the keys in `[key, range_end)`, at a revision.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct RangeRequest {
    /// First key of the range (the only key if `range_end` is empty).
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// End of the range, exclusive. `"\0"` means every key ≥ `key`; key+1 means the prefix `key`.
    #[prost(bytes = "vec", tag = "2")]
    pub range_end: Vec<u8>,
    /// Maximum number of keys returned; 0 = no limit.
    #[prost(int64, tag = "3")]
    pub limit: i64,
    /// Point-in-time revision; ≤ 0 = newest.
    #[prost(int64, tag = "4")]
    pub revision: i64,
    /// Sort order (see [`range_request::SortOrder`]).
    #[prost(enumeration = "range_request::SortOrder", tag = "5")]
    pub sort_order: i32,
    /// Field to sort by (see [`range_request::SortTarget`]).
    #[prost(enumeration = "range_request::SortTarget", tag = "6")]
    pub sort_target: i32,
    /// Serve from this member's local state (may be stale) instead of a linearizable read.
    #[prost(bool, tag = "7")]
    pub serializable: bool,
    /// Return keys without values.
    #[prost(bool, tag = "8")]
    pub keys_only: bool,
    /// Return only the count.
    #[prost(bool, tag = "9")]
    pub count_only: bool,
    /// Lower bound on returned keys' mod revision (3.1+).
    #[prost(int64, tag = "10")]
    pub min_mod_revision: i64,
    /// Upper bound on returned keys' mod revision (3.1+).
    #[prost(int64, tag = "11")]
    pub max_mod_revision: i64,
    /// Lower bound on returned keys' create revision (3.1+).
    #[prost(int64, tag = "12")]
    pub min_create_revision: i64,
    /// Upper bound on returned keys' create revision (3.1+).
    #[prost(int64, tag = "13")]
    pub max_create_revision: i64,
}

/// Nested enums of [`RangeRequest`].
pub mod range_request {
    /// Order of the returned keys.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum SortOrder {
        /// Default: no sorting (key order).
        None = 0,
        /// Lowest target value first.
        Ascend = 1,
        /// Highest target value first.
        Descend = 2,
    }
    /// Field the keys are sorted by.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum SortTarget {
        /// The key.
        Key = 0,
        /// The version.
        Version = 1,
        /// The create revision.
        Create = 2,
        /// The mod revision.
        Mod = 3,
        /// The value.
        Value = 4,
    }
}

/// Result of a Range.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct RangeResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The matching keys (empty when only the count was asked).
    #[prost(message, repeated, tag = "2")]
    pub kvs: Vec<KeyValue>,
    /// More keys exist beyond `limit`.
    #[prost(bool, tag = "3")]
    pub more: bool,
    /// Number of keys in the range, unaffected by limit and filters.
    #[prost(int64, tag = "4")]
    pub count: i64,
}

/// Put a key.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PutRequest {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// The value.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    /// Lease to attach; 0 = none.
    #[prost(int64, tag = "3")]
    pub lease: i64,
    /// Return the previous key-value pair (3.1+).
    #[prost(bool, tag = "4")]
    pub prev_kv: bool,
    /// Keep the current value; error if the key does not exist (3.2+).
    #[prost(bool, tag = "5")]
    pub ignore_value: bool,
    /// Keep the current lease; error if the key does not exist (3.2+).
    #[prost(bool, tag = "6")]
    pub ignore_lease: bool,
}

/// Result of a Put.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PutResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The previous key-value pair, if asked for and present.
    #[prost(message, optional, tag = "2")]
    pub prev_kv: Option<KeyValue>,
}

/// Delete a key or the range `[key, range_end)`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DeleteRangeRequest {
    /// First key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// End of the range, exclusive (same conventions as Range).
    #[prost(bytes = "vec", tag = "2")]
    pub range_end: Vec<u8>,
    /// Return the deleted key-value pairs (3.1+).
    #[prost(bool, tag = "3")]
    pub prev_kv: bool,
}

/// Result of a DeleteRange.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DeleteRangeResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Number of keys deleted.
    #[prost(int64, tag = "2")]
    pub deleted: i64,
    /// The deleted pairs, if asked for.
    #[prost(message, repeated, tag = "3")]
    pub prev_kvs: Vec<KeyValue>,
}

/// One operation inside a transaction.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct RequestOp {
    /// The operation (see [`request_op::Request`]).
    #[prost(oneof = "request_op::Request", tags = "1, 2, 3, 4")]
    pub request: Option<request_op::Request>,
}

/// Nested oneof of [`RequestOp`].
pub mod request_op {
    /// The union of requests a transaction accepts.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Request {
        /// A range read.
        #[prost(message, tag = "1")]
        RequestRange(super::RangeRequest),
        /// A put.
        #[prost(message, tag = "2")]
        RequestPut(super::PutRequest),
        /// A delete.
        #[prost(message, tag = "3")]
        RequestDeleteRange(super::DeleteRangeRequest),
        /// A nested transaction (3.3+).
        #[prost(message, tag = "4")]
        RequestTxn(super::TxnRequest),
    }
}

/// The result of one [`RequestOp`].
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ResponseOp {
    /// The result (see [`response_op::Response`]).
    #[prost(oneof = "response_op::Response", tags = "1, 2, 3, 4")]
    pub response: Option<response_op::Response>,
}

/// Nested oneof of [`ResponseOp`].
pub mod response_op {
    /// The union of transaction results.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Response {
        /// Result of a range read.
        #[prost(message, tag = "1")]
        ResponseRange(super::RangeResponse),
        /// Result of a put.
        #[prost(message, tag = "2")]
        ResponsePut(super::PutResponse),
        /// Result of a delete.
        #[prost(message, tag = "3")]
        ResponseDeleteRange(super::DeleteRangeResponse),
        /// Result of a nested transaction (3.3+).
        #[prost(message, tag = "4")]
        ResponseTxn(super::TxnResponse),
    }
}

/// A guard of a transaction: compare one field of a key (or of every key in a range).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Compare {
    /// The comparison (see [`compare::CompareResult`]).
    #[prost(enumeration = "compare::CompareResult", tag = "1")]
    pub result: i32,
    /// The field compared (see [`compare::CompareTarget`]).
    #[prost(enumeration = "compare::CompareTarget", tag = "2")]
    pub target: i32,
    /// The key.
    #[prost(bytes = "vec", tag = "3")]
    pub key: Vec<u8>,
    /// The value compared against (see [`compare::TargetUnion`]).
    #[prost(oneof = "compare::TargetUnion", tags = "4, 5, 6, 7, 8")]
    pub target_union: Option<compare::TargetUnion>,
    /// Compare every key in `[key, range_end)` (3.3+). Tag 64: etcd left room for the oneof.
    #[prost(bytes = "vec", tag = "64")]
    pub range_end: Vec<u8>,
}

/// Nested enums and oneof of [`Compare`].
pub mod compare {
    /// The comparison operator.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum CompareResult {
        /// `==`
        Equal = 0,
        /// `>`
        Greater = 1,
        /// `<`
        Less = 2,
        /// `!=` (3.1+)
        NotEqual = 3,
    }
    /// The key field compared.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum CompareTarget {
        /// The version.
        Version = 0,
        /// The create revision.
        Create = 1,
        /// The mod revision.
        Mod = 2,
        /// The value.
        Value = 3,
        /// The lease (3.3+).
        Lease = 4,
    }
    /// The operand; its variant should match the target.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum TargetUnion {
        /// Version operand.
        #[prost(int64, tag = "4")]
        Version(i64),
        /// Create revision operand.
        #[prost(int64, tag = "5")]
        CreateRevision(i64),
        /// Mod revision operand.
        #[prost(int64, tag = "6")]
        ModRevision(i64),
        /// Value operand.
        #[prost(bytes = "vec", tag = "7")]
        Value(Vec<u8>),
        /// Lease operand (3.3+).
        #[prost(int64, tag = "8")]
        Lease(i64),
    }
}

/// A mini-transaction: if every `compare` holds run `success`, else run `failure`, all at one
/// revision.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TxnRequest {
    /// Guards (a conjunction).
    #[prost(message, repeated, tag = "1")]
    pub compare: Vec<Compare>,
    /// Operations run when all guards hold.
    #[prost(message, repeated, tag = "2")]
    pub success: Vec<RequestOp>,
    /// Operations run otherwise.
    #[prost(message, repeated, tag = "3")]
    pub failure: Vec<RequestOp>,
}

/// Result of a Txn.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TxnResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Whether the guards held (so `success` ran).
    #[prost(bool, tag = "2")]
    pub succeeded: bool,
    /// One response per operation run, in order.
    #[prost(message, repeated, tag = "3")]
    pub responses: Vec<ResponseOp>,
}

/// Compact the history up to `revision`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct CompactionRequest {
    /// Compaction revision.
    #[prost(int64, tag = "1")]
    pub revision: i64,
    /// Wait until the compaction is physically applied to the backend.
    #[prost(bool, tag = "2")]
    pub physical: bool,
}

/// Result of a Compact.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct CompactionResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}
