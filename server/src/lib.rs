//! # keel-server: the `keel` member and the `keelctl` CLI
//!
//! Wires the layers into a member: flags (etcd's names), the event loop, the WAL thread, the
//! apply thread and the etcd v3 services. Not built yet: see issue 7.
