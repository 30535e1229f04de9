//! # keel-mvcc: etcd's data model over the btree
//!
//! (Layer overview to be written with the implementation: see issue 5.)
