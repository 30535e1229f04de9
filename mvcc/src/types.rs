//! Request and response types mirroring etcd's protobuf messages (`rpc.proto`, `kv.proto`).
//!
//! The server converts between these and the wire messages. Field names follow etcd's. The
//! response header's `cluster_id`, `member_id` and `raft_term` belong to the server; the store
//! only reports the `revision`.

/// `mvccpb.KeyValue`: a key with its value and MVCC metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// Revision of the last creation of this key (0 in a delete event).
    pub create_revision: i64,
    /// Revision of the last modification.
    pub mod_revision: i64,
    /// Number of puts since the key was (re)created; a delete resets it.
    pub version: i64,
    /// The value.
    pub value: Vec<u8>,
    /// Attached lease ID, 0 for none.
    pub lease: i64,
}

/// `mvccpb.Event.EventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A put (create or update).
    Put = 0,
    /// A delete.
    Delete = 1,
}

/// `mvccpb.Event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// PUT or DELETE.
    pub kind: EventType,
    /// The key after the event; for a delete only `key` and `mod_revision` are set.
    pub kv: KeyValue,
    /// The key before the event, when the watcher asked for it and it is still available.
    pub prev_kv: Option<KeyValue>,
}

/// `RangeRequest.SortOrder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Default (key order).
    #[default]
    None = 0,
    /// Ascending.
    Ascend = 1,
    /// Descending.
    Descend = 2,
}

/// `RangeRequest.SortTarget`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortTarget {
    /// Sort by key.
    #[default]
    Key = 0,
    /// Sort by version.
    Version = 1,
    /// Sort by create revision.
    Create = 2,
    /// Sort by mod revision.
    Mod = 3,
    /// Sort by value.
    Value = 4,
}

/// `RangeRequest`.
///
/// `range_end`: empty = the single key `key`; `[0]` = every key >= `key`; otherwise `[key,
/// range_end)`. `key = [0]` with `range_end = [0]` is every key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeRequest {
    /// First key.
    pub key: Vec<u8>,
    /// End of the range (exclusive), see above.
    pub range_end: Vec<u8>,
    /// Maximum number of keys returned; 0 = no limit.
    pub limit: i64,
    /// Read at this revision; <= 0 = current.
    pub revision: i64,
    /// Sort order.
    pub sort_order: SortOrder,
    /// Sort target.
    pub sort_target: SortTarget,
    /// Return keys without values.
    pub keys_only: bool,
    /// Return only the count.
    pub count_only: bool,
    /// Drop keys with mod_revision below this (0 = no filter).
    pub min_mod_revision: i64,
    /// Drop keys with mod_revision above this (0 = no filter).
    pub max_mod_revision: i64,
    /// Drop keys with create_revision below this (0 = no filter).
    pub min_create_revision: i64,
    /// Drop keys with create_revision above this (0 = no filter).
    pub max_create_revision: i64,
}

/// `RangeResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeResponse {
    /// Header revision: the store's current revision (not the revision read at).
    pub revision: i64,
    /// The keys found.
    pub kvs: Vec<KeyValue>,
    /// More keys matched than `limit` allowed.
    pub more: bool,
    /// Keys in the range at the read revision, before limit and min/max filters.
    pub count: i64,
}

/// `PutRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PutRequest {
    /// Key.
    pub key: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
    /// Lease to attach, 0 = none.
    pub lease: i64,
    /// Return the previous key-value.
    pub prev_kv: bool,
    /// Keep the current value (key must exist).
    pub ignore_value: bool,
    /// Keep the current lease (key must exist).
    pub ignore_lease: bool,
}

/// `PutResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PutResponse {
    /// Header revision.
    pub revision: i64,
    /// The previous key-value, when asked and the key existed.
    pub prev_kv: Option<KeyValue>,
}

/// `DeleteRangeRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteRangeRequest {
    /// First key.
    pub key: Vec<u8>,
    /// End of the range, as in [`RangeRequest`].
    pub range_end: Vec<u8>,
    /// Return the deleted key-values.
    pub prev_kv: bool,
}

/// `DeleteRangeResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteRangeResponse {
    /// Header revision.
    pub revision: i64,
    /// Number of keys deleted.
    pub deleted: i64,
    /// The deleted key-values, when asked.
    pub prev_kvs: Vec<KeyValue>,
}

/// `Compare.CompareResult`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompareResult {
    /// ==
    #[default]
    Equal = 0,
    /// >
    Greater = 1,
    /// <
    Less = 2,
    /// !=
    NotEqual = 3,
}

/// `Compare.CompareTarget` together with the `target_union` value.
///
/// etcd allows a target whose union field is of another kind; it then compares against the zero
/// value. The server maps that case to the zero value of the target (e.g. `Version(0)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareTarget {
    /// Compare the version.
    Version(i64),
    /// Compare the create revision.
    Create(i64),
    /// Compare the mod revision.
    Mod(i64),
    /// Compare the value (false for missing keys).
    Value(Vec<u8>),
    /// Compare the lease.
    Lease(i64),
}

/// `Compare`: one guard of a txn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    /// Relation.
    pub result: CompareResult,
    /// What to compare against which value.
    pub target: CompareTarget,
    /// Key.
    pub key: Vec<u8>,
    /// With a range end, every key of the range must satisfy the guard.
    pub range_end: Vec<u8>,
}

/// `RequestOp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOp {
    /// Range.
    Range(RangeRequest),
    /// Put.
    Put(PutRequest),
    /// DeleteRange.
    DeleteRange(DeleteRangeRequest),
    /// Nested txn.
    Txn(TxnRequest),
}

/// `ResponseOp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseOp {
    /// Range.
    Range(RangeResponse),
    /// Put.
    Put(PutResponse),
    /// DeleteRange.
    DeleteRange(DeleteRangeResponse),
    /// Nested txn.
    Txn(TxnResponse),
}

/// `TxnRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnRequest {
    /// Guards; all must hold for `success` to run.
    pub compare: Vec<Compare>,
    /// Ops run when every compare holds.
    pub success: Vec<RequestOp>,
    /// Ops run otherwise.
    pub failure: Vec<RequestOp>,
}

/// `TxnResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnResponse {
    /// Header revision.
    pub revision: i64,
    /// Whether the compares held.
    pub succeeded: bool,
    /// One response per op of the chosen branch.
    pub responses: Vec<ResponseOp>,
}

/// `CompactionRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompactionRequest {
    /// Compact history below this revision.
    pub revision: i64,
    /// etcd waits for the backend when set. Here compaction is always physical by the time the
    /// response is returned, so the flag changes nothing.
    pub physical: bool,
}

/// `CompactionResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompactionResponse {
    /// Header revision.
    pub revision: i64,
}

/// `LeaseGrantRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseGrantRequest {
    /// Requested TTL in seconds (raised to the minimum TTL).
    pub ttl: i64,
    /// Requested ID; 0 = the store picks one (deterministically, from the raft index).
    pub id: i64,
}

/// `LeaseGrantResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseGrantResponse {
    /// Header revision.
    pub revision: i64,
    /// Granted ID.
    pub id: i64,
    /// Granted TTL in seconds.
    pub ttl: i64,
}

/// `LeaseRevokeRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseRevokeRequest {
    /// Lease to revoke.
    pub id: i64,
}

/// `LeaseRevokeResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseRevokeResponse {
    /// Header revision (after deleting the attached keys).
    pub revision: i64,
}

/// `LeaseCheckpointRequest` (internal): persist a lease's remaining TTL so that a new leader
/// does not restart it from the full TTL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseCheckpoint {
    /// Lease.
    pub id: i64,
    /// Remaining TTL in seconds; 0 clears the checkpoint (full TTL again).
    pub remaining_ttl: i64,
}

/// `LeaseCheckpointResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseCheckpointResponse {
    /// Header revision.
    pub revision: i64,
}

/// `LeaseTimeToLiveResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseTimeToLiveResponse {
    /// Lease.
    pub id: i64,
    /// Remaining seconds (truncated), -1 once expired.
    pub ttl: i64,
    /// TTL given at grant.
    pub granted_ttl: i64,
    /// Attached keys in key order, when asked.
    pub keys: Vec<Vec<u8>>,
}

/// A replicated request, as carried by a raft entry and applied by [`crate::Store::apply_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Range (a linearizable read that went through the log).
    Range(RangeRequest),
    /// Put.
    Put(PutRequest),
    /// DeleteRange.
    DeleteRange(DeleteRangeRequest),
    /// Txn.
    Txn(TxnRequest),
    /// Compact.
    Compact(CompactionRequest),
    /// LeaseGrant.
    LeaseGrant(LeaseGrantRequest),
    /// LeaseRevoke (also how the leader expires a lease).
    LeaseRevoke(LeaseRevokeRequest),
    /// LeaseCheckpoint (internal).
    LeaseCheckpoint(Vec<LeaseCheckpoint>),
    /// An entry that carries no store request (e.g. an empty leader entry or a config change):
    /// applying it only advances the consistent index.
    Noop,
    /// The cluster's membership as the server encodes it (opaque to the store), stored in the
    /// meta bucket in the same commit as the consistent index, so that after a crash the
    /// membership and the applied index always agree (etcd keeps its members in the backend
    /// for the same reason). Read back with [`crate::Store::membership`]. Answers `Noop`.
    SetMembership(Vec<u8>),
    /// A server-owned blob (opaque to the store) stored under `key` in the meta bucket, in the
    /// same commit as the consistent index, like [`Request::SetMembership`] (which is
    /// `SetMeta(MetaKey::Membership, ..)`). Read back with [`crate::Store::meta`]. Answers
    /// `Noop`.
    SetMeta(MetaKey, Vec<u8>),
}

/// The server-owned blobs the store keeps in its meta bucket (see [`Request::SetMeta`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetaKey {
    /// The cluster's membership table.
    Membership,
    /// The raised alarms (etcd keeps them in its backend's `alarm` bucket).
    Alarms,
}

impl MetaKey {
    /// The key under which the blob is stored in the meta bucket.
    pub fn key(self) -> &'static [u8] {
        match self {
            MetaKey::Membership => b"membership",
            MetaKey::Alarms => b"alarms",
        }
    }
}

/// The result of applying one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Range.
    Range(RangeResponse),
    /// Put.
    Put(PutResponse),
    /// DeleteRange.
    DeleteRange(DeleteRangeResponse),
    /// Txn.
    Txn(TxnResponse),
    /// Compact.
    Compact(CompactionResponse),
    /// LeaseGrant.
    LeaseGrant(LeaseGrantResponse),
    /// LeaseRevoke.
    LeaseRevoke(LeaseRevokeResponse),
    /// LeaseCheckpoint.
    LeaseCheckpoint(LeaseCheckpointResponse),
    /// Noop; carries the current revision.
    Noop {
        /// Current revision.
        revision: i64,
    },
}

/// `WatchCreateRequest.FilterType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchFilter {
    /// Drop PUT events.
    NoPut = 0,
    /// Drop DELETE events.
    NoDelete = 1,
}

/// `WatchCreateRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WatchCreateRequest {
    /// Key.
    pub key: Vec<u8>,
    /// Range end, as in [`RangeRequest`].
    pub range_end: Vec<u8>,
    /// First revision to deliver; 0 = now (current + 1).
    pub start_revision: i64,
    /// Ask for periodic progress notifications.
    pub progress_notify: bool,
    /// Event filters.
    pub filters: Vec<WatchFilter>,
    /// Include the previous key-value in events.
    pub prev_kv: bool,
    /// Client-chosen ID; 0 = pick the next free one (etcd's AutoWatchID).
    pub watch_id: i64,
}

/// One message for a watch stream, in the order the server must send it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WatchResponse {
    /// Header revision: for events, the store revision when they were sent; for progress
    /// notifications, every future event has a larger revision.
    pub revision: i64,
    /// The watcher (-1 for a stream-wide progress response).
    pub watch_id: i64,
    /// The watcher was just created.
    pub created: bool,
    /// The watcher is cancelled (by the client, or because its start was compacted).
    pub canceled: bool,
    /// Set with `canceled` when the start revision was compacted.
    pub compact_revision: i64,
    /// Why it was cancelled.
    pub cancel_reason: String,
    /// Events in revision order; never splits a revision.
    pub events: Vec<Event>,
}

impl WatchResponse {
    /// True for an empty-events, non-control response (a progress notification).
    pub fn is_progress_notify(&self) -> bool {
        self.events.is_empty() && !self.created && !self.canceled && self.compact_revision == 0
    }
}

/// Store status, for the Maintenance/Status RPC and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// Current revision.
    pub revision: i64,
    /// Revision of the last compaction (-1 if never compacted, as etcd reports it).
    pub compact_revision: i64,
    /// Last raft index applied.
    pub consistent_index: u64,
    /// Number of live keys at the current revision.
    pub keys: u64,
    /// Number of index entries (live and historical revisions).
    pub index_revisions: u64,
    /// Backend file size in bytes.
    pub db_size: u64,
    /// Backend bytes in use.
    pub db_size_in_use: u64,
    /// Number of leases.
    pub leases: u64,
    /// Watchers, synced and catching up.
    pub watchers_synced: u64,
    /// Watchers catching up from history.
    pub watchers_unsynced: u64,
}

/// Result of [`crate::Store::hash_kv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashKv {
    /// CRC32 (Castagnoli) of the history up to `hash_revision`.
    pub hash: u32,
    /// Compaction revision at the time of the hash.
    pub compact_revision: i64,
    /// Revision hashed up to.
    pub hash_revision: i64,
}
