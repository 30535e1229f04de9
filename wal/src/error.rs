//! The typed errors of the WAL.
//!
//! Every error is `Clone`: one failed `write` or `fdatasync` must be reported to *every* producer
//! whose records were in that group, so the error is copied to each completion callback. For that
//! reason an [`std::io::Error`] is kept as its kind plus its message.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalError {
    /// An I/O operation failed (other than a full disk).
    Io {
        /// What the WAL was doing ("write", "fdatasync", "rename", ...).
        op: &'static str,
        /// The file or directory it was doing it to.
        path: PathBuf,
        /// The kind of the underlying `std::io::Error`.
        kind: io::ErrorKind,
        /// The message of the underlying `std::io::Error`.
        message: String,
    },
    /// The disk is full (ENOSPC). Like every write error this poisons the WAL.
    DiskFull {
        /// What the WAL was doing.
        op: &'static str,
        /// The file or directory it was doing it to.
        path: PathBuf,
    },
    /// A record before the tail of the log failed its checks: a CRC mismatch, a broken CRC
    /// chain, an impossible length or type, or garbage followed by intact records. This is never
    /// repaired automatically (see the recovery rule in the crate documentation).
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the first bad record in that file.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The records are individually valid but do not form a usable log (an index gap, a
    /// conflicting member metadata record, a missing segment).
    Inconsistent {
        /// What was wrong.
        reason: String,
    },
    /// A previous write or fdatasync failed; the WAL refuses all further appends because it can
    /// no longer tell what reached the disk. Reopen it (recovery decides what is durable).
    Poisoned {
        /// The error that poisoned the WAL.
        cause: String,
    },
    /// The WAL is shutting down or its writer thread is gone.
    Closed,
    /// Too many requests are queued; the producer must retry later (back-pressure, never
    /// unbounded memory growth).
    QueueFull {
        /// Requests waiting in the queue.
        requests: usize,
        /// Encoded bytes waiting in the queue.
        bytes: u64,
    },
    /// The batch breaks an append rule (index gap, index at or below the snapshot, non-contiguous
    /// entries, a record larger than the limit). Nothing of the batch was written.
    InvalidBatch {
        /// What was wrong.
        reason: String,
    },
    /// `Wal::create` found an existing WAL in the directory.
    AlreadyExists {
        /// The directory.
        dir: PathBuf,
    },
    /// `Wal::open` found no WAL segment in the directory.
    NotFound {
        /// The directory.
        dir: PathBuf,
    },
}

impl WalError {
    /// Build the error for a failed I/O call `op` on `path`.
    pub fn io(op: &'static str, path: &Path, err: &io::Error) -> WalError {
        if err.kind() == io::ErrorKind::StorageFull || err.raw_os_error() == Some(28) {
            return WalError::DiskFull {
                op,
                path: path.to_path_buf(),
            };
        }
        WalError::Io {
            op,
            path: path.to_path_buf(),
            kind: err.kind(),
            message: err.to_string(),
        }
    }

    /// True for errors caused by a failed disk operation (these poison the WAL).
    pub fn is_io(&self) -> bool {
        matches!(self, WalError::Io { .. } | WalError::DiskFull { .. })
    }
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalError::Io {
                op, path, message, ..
            } => write!(f, "wal: {op} {} failed: {message}", path.display()),
            WalError::DiskFull { op, path } => {
                write!(
                    f,
                    "wal: {op} {} failed: no space left on device",
                    path.display()
                )
            }
            WalError::Corrupt {
                path,
                offset,
                reason,
            } => write!(
                f,
                "wal: corrupt record in {} at offset {offset}: {reason}",
                path.display()
            ),
            WalError::Inconsistent { reason } => write!(f, "wal: inconsistent log: {reason}"),
            WalError::Poisoned { cause } => write!(
                f,
                "wal: refusing to append after an earlier I/O failure ({cause}); reopen the WAL"
            ),
            WalError::Closed => write!(f, "wal: closed"),
            WalError::QueueFull { requests, bytes } => write!(
                f,
                "wal: too many requests ({requests} requests, {bytes} bytes queued)"
            ),
            WalError::InvalidBatch { reason } => write!(f, "wal: invalid batch: {reason}"),
            WalError::AlreadyExists { dir } => {
                write!(f, "wal: {} already holds a WAL", dir.display())
            }
            WalError::NotFound { dir } => write!(f, "wal: no WAL segment in {}", dir.display()),
        }
    }
}

impl std::error::Error for WalError {}
