//! The one error type of the crate.
//!
//! Every failure a caller can meet is a variant here: I/O from the operating system, a file that is
//! not (or no longer) a valid database, a corrupt page met during a read, and API misuse such as a
//! missing bucket. Nothing in this crate panics on bad bytes read from disk.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Page number inside the database file (page 0 and 1 are the two meta pages).
pub type PageId = u64;

/// Everything that can go wrong in `keel-btree`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error from the operating system (or from the fault-injecting test storage).
    Io(io::Error),
    /// The file does not start with a keel database meta page (wrong magic number in both metas).
    NotADatabase,
    /// The file was written by an incompatible format version.
    UnsupportedVersion(u32),
    /// The file is shorter than its meta page says it must be.
    Truncated {
        /// Bytes the newest valid meta page requires.
        expected: u64,
        /// Bytes actually present.
        actual: u64,
    },
    /// Both meta pages fail their checksum (or other validation): no committed state can be trusted.
    BothMetasCorrupt {
        /// Why meta page 0 was rejected.
        meta0: String,
        /// Why meta page 1 was rejected.
        meta1: String,
    },
    /// A page reachable from the current snapshot failed validation (checksum, kind, bounds, order).
    Corrupt {
        /// The page that failed.
        page: PageId,
        /// What was wrong with it.
        reason: String,
    },
    /// The integrity check ([`crate::Db::check`]) found problems; each string names one.
    CheckFailed(Vec<String>),
    /// No bucket with this name exists in the transaction's snapshot.
    BucketNotFound(Vec<u8>),
    /// `create_bucket` was called for a name that already exists.
    BucketExists(Vec<u8>),
    /// A key longer than [`crate::MAX_KEY_LEN`].
    KeyTooLarge {
        /// Length of the rejected key.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value longer than [`crate::MAX_VALUE_LEN`].
    ValueTooLarge {
        /// Length of the rejected value.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `try_begin_write` was called while another write transaction is open.
    WriteTxnActive,
    /// An earlier commit failed after it may have partially reached the disk; the handle refuses
    /// further writes. Reopen the database to recover the last durable state.
    Poisoned,
    /// The file is already open by another [`crate::Db`] in this process.
    AlreadyOpen(PathBuf),
    /// Invalid [`crate::Options`] (for example a page size that is not a power of two).
    InvalidOptions(String),
    /// The operation is not available for this storage (for example `defragment` of an in-memory
    /// database).
    Unsupported(&'static str),
}

impl Error {
    pub(crate) fn corrupt(page: PageId, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            page,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::NotADatabase => write!(
                f,
                "not a keel database: no valid magic number in either meta page"
            ),
            Error::UnsupportedVersion(v) => {
                write!(f, "unsupported keel database format version {v}")
            }
            Error::Truncated { expected, actual } => write!(
                f,
                "database file is truncated: meta page requires {expected} bytes, file has {actual}"
            ),
            Error::BothMetasCorrupt { meta0, meta1 } => write!(
                f,
                "both meta pages are corrupt (meta 0: {meta0}; meta 1: {meta1})"
            ),
            Error::Corrupt { page, reason } => write!(f, "corrupt page {page}: {reason}"),
            Error::CheckFailed(problems) => {
                write!(
                    f,
                    "integrity check failed with {} problem(s)",
                    problems.len()
                )?;
                for p in problems.iter().take(10) {
                    write!(f, "; {p}")?;
                }
                Ok(())
            }
            Error::BucketNotFound(name) => {
                write!(f, "bucket not found: {:?}", String::from_utf8_lossy(name))
            }
            Error::BucketExists(name) => {
                write!(
                    f,
                    "bucket already exists: {:?}",
                    String::from_utf8_lossy(name)
                )
            }
            Error::KeyTooLarge { len, max } => {
                write!(f, "key of {len} bytes exceeds the maximum of {max}")
            }
            Error::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes exceeds the maximum of {max}")
            }
            Error::WriteTxnActive => write!(f, "another write transaction is already open"),
            Error::Poisoned => write!(
                f,
                "database handle is poisoned by an earlier failed commit; reopen it"
            ),
            Error::AlreadyOpen(p) => write!(
                f,
                "database file {} is already open in this process",
                p.display()
            ),
            Error::InvalidOptions(m) => write!(f, "invalid options: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported operation: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
