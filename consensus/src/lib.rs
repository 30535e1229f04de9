//! # keel-consensus: Raft as a pure, deterministic state machine
//!
//! (Crate walkthrough written below.)

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod confchange;
pub mod config;
mod election;
pub mod errors;
pub mod log;
mod membership;
pub mod progress;
pub mod quorum;
pub mod raft;
pub mod raw_node;
mod read_index;
pub mod read_only;
mod replication;
pub mod rng;
pub mod storage;
pub mod tracker;
pub mod types;

pub use codec::DecodeError;
pub use config::{Config, Mutations};
pub use errors::{Error, StorageError};
pub use progress::ProgressState;
pub use raw_node::{conf_change_of, ProgressStatus, RawNode, Ready, Status};
pub use rng::SplitMix64;
pub use storage::{MemStorage, Storage};
pub use types::*;
