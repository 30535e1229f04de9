//! Service `etcdserverpb.Watch`: one bidirectional stream multiplexing many watchers.

use super::ResponseHeader;
use crate::proto::mvccpb::Event;

/// A message on the client side of the Watch stream.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WatchRequest {
    /// Create, cancel or ask for progress (see [`watch_request::RequestUnion`]).
    #[prost(oneof = "watch_request::RequestUnion", tags = "1, 2, 3")]
    pub request_union: Option<watch_request::RequestUnion>,
}

/// Nested oneof of [`WatchRequest`].
pub mod watch_request {
    /// What the client asks of the watch stream.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum RequestUnion {
        /// Create a watcher.
        #[prost(message, tag = "1")]
        CreateRequest(super::WatchCreateRequest),
        /// Cancel a watcher.
        #[prost(message, tag = "2")]
        CancelRequest(super::WatchCancelRequest),
        /// Ask for a progress notification (3.4+).
        #[prost(message, tag = "3")]
        ProgressRequest(super::WatchProgressRequest),
    }
}

/// Create a watcher on a key or range.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WatchCreateRequest {
    /// Key to watch.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// End of the watched range, exclusive (Range conventions).
    #[prost(bytes = "vec", tag = "2")]
    pub range_end: Vec<u8>,
    /// Revision to watch from (inclusive); 0 = "now" (current revision + 1).
    #[prost(int64, tag = "3")]
    pub start_revision: i64,
    /// Ask for periodic empty progress responses.
    #[prost(bool, tag = "4")]
    pub progress_notify: bool,
    /// Server-side event filters (3.1+); see [`watch_create_request::FilterType`].
    #[prost(enumeration = "watch_create_request::FilterType", repeated, tag = "5")]
    pub filters: Vec<i32>,
    /// Include the previous key-value pair in events (3.1+).
    #[prost(bool, tag = "6")]
    pub prev_kv: bool,
    /// Client-chosen watcher ID; 0 = server picks (3.4+).
    #[prost(int64, tag = "7")]
    pub watch_id: i64,
    /// Allow splitting a large revision over several responses (3.4+).
    #[prost(bool, tag = "8")]
    pub fragment: bool,
}

/// Nested enum of [`WatchCreateRequest`].
pub mod watch_create_request {
    /// An event filter.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum FilterType {
        /// Drop PUT events.
        Noput = 0,
        /// Drop DELETE events.
        Nodelete = 1,
    }
}

/// Cancel a watcher.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WatchCancelRequest {
    /// The watcher to cancel.
    #[prost(int64, tag = "1")]
    pub watch_id: i64,
}

/// Ask for a progress notification on the stream (empty message, 3.4+).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WatchProgressRequest {}

/// A message on the server side of the Watch stream.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WatchResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The watcher this response is for (-1 for stream-wide progress responses).
    #[prost(int64, tag = "2")]
    pub watch_id: i64,
    /// Response to a create request.
    #[prost(bool, tag = "3")]
    pub created: bool,
    /// The watcher is cancelled (asked, or its start revision was compacted).
    #[prost(bool, tag = "4")]
    pub canceled: bool,
    /// The compaction revision, when the watcher asked for compacted history.
    #[prost(int64, tag = "5")]
    pub compact_revision: i64,
    /// Why the watcher was cancelled (3.4+).
    #[prost(string, tag = "6")]
    pub cancel_reason: String,
    /// More fragments of this revision follow (3.4+).
    #[prost(bool, tag = "7")]
    pub fragment: bool,
    /// The events.
    #[prost(message, repeated, tag = "11")]
    pub events: Vec<Event>,
}
