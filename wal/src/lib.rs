//! # keel-wal: the write-ahead log
//!
//! (Layer overview to be written with the implementation.)
