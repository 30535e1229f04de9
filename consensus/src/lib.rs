//! # keel-consensus: Raft as a pure, deterministic state machine
//!
//! (Layer overview to be written with the implementation: see issue 4.)
