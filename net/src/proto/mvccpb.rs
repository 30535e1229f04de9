//! `mvccpb` (etcd `api/mvccpb/kv.proto`): the stored key-value record and the watch event.
//!
//! Field numbers are etcd's; do not renumber.

/// One key with its MVCC metadata, as returned by Range and carried in watch events.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct KeyValue {
    /// The key. An empty key is not allowed.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// Revision of the last creation of this key.
    #[prost(int64, tag = "2")]
    pub create_revision: i64,
    /// Revision of the last modification of this key.
    #[prost(int64, tag = "3")]
    pub mod_revision: i64,
    /// Number of modifications since creation (a delete resets it to zero).
    #[prost(int64, tag = "4")]
    pub version: i64,
    /// The value.
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
    /// Lease attached to the key; 0 means none.
    #[prost(int64, tag = "6")]
    pub lease: i64,
}

/// A change to one key, delivered by Watch.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Event {
    /// PUT or DELETE (see [`event::EventType`]).
    #[prost(enumeration = "event::EventType", tag = "1")]
    pub r#type: i32,
    /// The key after a PUT; for a DELETE the deleted key with `mod_revision` = deletion revision.
    #[prost(message, optional, tag = "2")]
    pub kv: Option<KeyValue>,
    /// The key before the event, when the watcher asked for `prev_kv`.
    #[prost(message, optional, tag = "3")]
    pub prev_kv: Option<KeyValue>,
}

/// Nested types of [`Event`].
pub mod event {
    /// Kind of a watch event.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum EventType {
        /// New data was stored under the key.
        Put = 0,
        /// The key was deleted (or its lease expired).
        Delete = 1,
    }
}
