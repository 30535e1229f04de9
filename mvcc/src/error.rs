//! Typed errors of the MVCC layer, each mapped to the exact message etcd puts on the wire.

use std::fmt;

/// Everything that can go wrong in the store.
///
/// Client-visible variants carry etcd's exact wire message through [`Error::etcd_message`]
/// (clients match on it), and their gRPC status code through [`Error::grpc_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A read or compaction asked for a revision below the compaction point.
    Compacted,
    /// A read or compaction asked for a revision above the current revision.
    FutureRevision,
    /// A request named an empty key.
    KeyNotProvided,
    /// `ignore_value` / `ignore_lease` on a key that does not exist.
    KeyNotFound,
    /// `ignore_value` set together with a non-empty value.
    ValueProvided,
    /// `ignore_lease` set together with a non-zero lease.
    LeaseProvided,
    /// A txn has more operations than allowed.
    TooManyOps,
    /// A txn writes the same key twice (or puts inside a range it deletes).
    DuplicateKey,
    /// The lease does not exist.
    LeaseNotFound,
    /// A lease with this ID already exists.
    LeaseExists,
    /// The requested TTL is above [`crate::MAX_LEASE_TTL`].
    LeaseTtlTooLarge,
    /// A watch range whose end is not after its start.
    EmptyWatcherRange,
    /// The client chose a watch ID already in use on this stream.
    WatcherDuplicateId,
    /// The raft entry was already applied before (its index is <= the stored consistent index).
    AlreadyApplied {
        /// The entry's raft index.
        index: u64,
        /// The consistent index stored in the backend.
        consistent_index: u64,
    },
    /// Stored bytes could not be decoded (the file is corrupt or not ours).
    Corrupt(String),
    /// The storage engine failed (I/O error, full disk...). After a failed commit the store is
    /// poisoned: every later call returns this error until it is reopened (or a snapshot is
    /// installed into it, [`crate::Store::install_snapshot`]).
    Storage(String),
}

/// gRPC status codes used by the error mapping (numeric values as in the gRPC spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcCode {
    /// 3
    InvalidArgument = 3,
    /// 5
    NotFound = 5,
    /// 9
    FailedPrecondition = 9,
    /// 11
    OutOfRange = 11,
    /// 13
    Internal = 13,
    /// 15
    DataLoss = 15,
}

impl Error {
    /// etcd's exact error message for this error, as sent in the gRPC status message.
    pub fn etcd_message(&self) -> String {
        match self {
            Error::Compacted => "etcdserver: mvcc: required revision has been compacted".into(),
            Error::FutureRevision => {
                "etcdserver: mvcc: required revision is a future revision".into()
            }
            Error::KeyNotProvided => "etcdserver: key is not provided".into(),
            Error::KeyNotFound => "etcdserver: key not found".into(),
            Error::ValueProvided => "etcdserver: value is provided".into(),
            Error::LeaseProvided => "etcdserver: lease is provided".into(),
            Error::TooManyOps => "etcdserver: too many operations in txn request".into(),
            Error::DuplicateKey => "etcdserver: duplicate key given in txn request".into(),
            Error::LeaseNotFound => "etcdserver: requested lease not found".into(),
            Error::LeaseExists => "etcdserver: lease already exists".into(),
            Error::LeaseTtlTooLarge => "etcdserver: too large lease TTL".into(),
            Error::EmptyWatcherRange => "mvcc: watcher range is empty".into(),
            Error::WatcherDuplicateId => {
                "mvcc: duplicate watch ID provided on the WatchStream".into()
            }
            Error::AlreadyApplied { .. } => "etcdserver: entry already applied".into(),
            Error::Corrupt(m) => format!("etcdserver: corrupt cluster ({m})"),
            Error::Storage(m) => format!("etcdserver: storage error ({m})"),
        }
    }

    /// What a failed backend call says, for the [`Error::Storage`] that poisons the store: the
    /// inner message of a storage error (so it is not wrapped twice), else the whole message.
    pub(crate) fn storage_message(self) -> String {
        match self {
            Error::Storage(m) => m,
            other => other.to_string(),
        }
    }

    /// The gRPC status code etcd uses for this error.
    pub fn grpc_code(&self) -> GrpcCode {
        match self {
            Error::Compacted | Error::FutureRevision | Error::LeaseTtlTooLarge => {
                GrpcCode::OutOfRange
            }
            Error::KeyNotProvided
            | Error::KeyNotFound
            | Error::ValueProvided
            | Error::LeaseProvided
            | Error::TooManyOps
            | Error::DuplicateKey
            | Error::EmptyWatcherRange
            | Error::WatcherDuplicateId => GrpcCode::InvalidArgument,
            Error::LeaseNotFound => GrpcCode::NotFound,
            Error::LeaseExists => GrpcCode::FailedPrecondition,
            Error::AlreadyApplied { .. } | Error::Storage(_) => GrpcCode::Internal,
            Error::Corrupt(_) => GrpcCode::DataLoss,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyApplied {
                index,
                consistent_index,
            } => write!(
                f,
                "raft entry {index} already applied (consistent index {consistent_index})"
            ),
            other => f.write_str(&other.etcd_message()),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_etcd_wire_strings() {
        assert_eq!(
            Error::Compacted.etcd_message(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        assert_eq!(
            Error::FutureRevision.etcd_message(),
            "etcdserver: mvcc: required revision is a future revision"
        );
        assert_eq!(
            Error::DuplicateKey.etcd_message(),
            "etcdserver: duplicate key given in txn request"
        );
        assert_eq!(
            Error::LeaseNotFound.etcd_message(),
            "etcdserver: requested lease not found"
        );
        assert_eq!(
            Error::LeaseExists.etcd_message(),
            "etcdserver: lease already exists"
        );
        assert_eq!(Error::Compacted.grpc_code(), GrpcCode::OutOfRange);
        assert_eq!(Error::LeaseNotFound.grpc_code(), GrpcCode::NotFound);
        assert_eq!(Error::LeaseExists.grpc_code(), GrpcCode::FailedPrecondition);
    }
}
