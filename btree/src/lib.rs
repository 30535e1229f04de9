//! # keel-btree: a copy-on-write B+tree in one file
//!
//! (Layer overview to be written with the implementation: see issue 3.)
