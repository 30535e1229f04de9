//! # keel-wal: the write-ahead log
//!
//! TODO doc
#![deny(missing_docs)]

pub mod codec;
mod error;
mod pipeline;
pub mod record;
pub mod recovery;
pub mod segment;
mod stats;
mod wal;
mod writer;

pub use error::WalError;
pub use record::{Entry, HardState, Metadata, Record, SnapshotMarker};
pub use recovery::{recover, Recovered, Recovery, SegmentImage, TornTail};
pub use segment::{FaultHook, IoOp, SegmentName};
pub use stats::{WalStats, FSYNC_BUCKET_BOUNDS_US};
pub use wal::{Batch, Callback, Logger, Wal, WalOptions};
