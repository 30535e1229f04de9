//! Typed errors: conditions a caller can act on. Broken invariants (a corrupt log) panic
//! with a message naming the offending values instead.

use std::fmt;

use crate::types::NodeId;

/// Errors returned by the [`crate::Storage`] trait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageError {
    /// The requested index is older than the first index: it was compacted into a snapshot.
    Compacted,
    /// The requested index is beyond the last index.
    Unavailable,
    /// A snapshot is being produced; ask again later.
    SnapshotTemporarilyUnavailable,
    /// The snapshot is older than the one already held.
    SnapshotOutOfDate,
    /// Any other failure of the backing store (an I/O error, corruption).
    Other(String),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Compacted => write!(f, "requested log index is compacted"),
            StorageError::Unavailable => write!(f, "requested log index is unavailable"),
            StorageError::SnapshotTemporarilyUnavailable => {
                write!(f, "snapshot is temporarily unavailable")
            }
            StorageError::SnapshotOutOfDate => {
                write!(f, "snapshot is older than the existing snapshot")
            }
            StorageError::Other(s) => write!(f, "storage failure: {s}"),
        }
    }
}

impl std::error::Error for StorageError {}

/// Errors returned by [`crate::RawNode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The proposal was not accepted: there is no known leader, a leadership transfer is in
    /// progress, the uncommitted log exceeds its bound, another membership change is pending, or
    /// this member is not part of the configuration. The caller may retry later.
    ProposalDropped(&'static str),
    /// The request needs the leader and this member is not it.
    NotLeader {
        /// The leader this member knows about, if any.
        leader: Option<NodeId>,
    },
    /// A message addressed to another member, or a local-only message type, was stepped.
    InvalidMessage(&'static str),
    /// The message comes from a node that is not in the configuration.
    PeerNotFound(NodeId),
    /// The configuration is invalid.
    ConfigInvalid(String),
    /// A membership change is not valid against the current configuration.
    ConfChangeInvalid(String),
    /// The storage failed.
    Storage(StorageError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ProposalDropped(why) => write!(f, "proposal dropped: {why}"),
            Error::NotLeader { leader: Some(l) } => write!(f, "not the leader (leader is {l})"),
            Error::NotLeader { leader: None } => write!(f, "not the leader (no leader known)"),
            Error::InvalidMessage(why) => write!(f, "invalid message: {why}"),
            Error::PeerNotFound(id) => write!(f, "peer {id} is not in the configuration"),
            Error::ConfigInvalid(why) => write!(f, "invalid config: {why}"),
            Error::ConfChangeInvalid(why) => write!(f, "invalid membership change: {why}"),
            Error::Storage(e) => write!(f, "storage error: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Error {
        Error::Storage(e)
    }
}
