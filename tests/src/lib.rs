//! # keel-tests: cluster-level integration tests
//!
//! The lower crates test their layer in-process; this crate tests the product the way an
//! operator meets it: real `keel` processes on loopback, each with its own temporary data
//! directory and log file, driven over the network by the stock `etcdctl` and by keel-net's
//! blocking gRPC client. Where possible the same steps also run against a real etcd
//! (`/usr/bin/etcd`, Debian's 3.4.23) and the two outputs are compared after normalising what
//! legitimately differs (IDs, ports, timings, versions).
//!
//! The harness, one concept per file:
//! - [`binary`]: where the `keel`, `etcd` and `etcdctl` executables are;
//! - [`ports`]: free loopback ports (bind port 0, release);
//! - [`temp`]: temporary directories removed on drop (kept, with logs printed, after a failure);
//! - [`cluster`]: start N members with etcd's flags, wait for health, kill -9, restart, add a
//!   member, find the leader; every child process is killed on drop;
//! - [`etcdctl`]: run `etcdctl` (ETCDCTL_API=3) and capture its output, also long-running
//!   commands such as `watch` and `elect` that are stopped once the expected output arrived;
//! - [`grpc`]: small typed calls over keel-net's client (put, range, HashKV, Status, members);
//! - [`normalize`]: turn etcdctl output into a form comparable between keel and etcd;
//! - [`session`]: the scripted etcdctl session run against both;
//! - [`scenarios`]: the cluster scenarios (failover, crash during writes, membership, limits),
//!   each runnable against keel or a real etcd.
//!
//! The tests themselves live in `tests/tests/`; tests waiting for a server feature live in
//! `tests/pending/` (not compiled; see README.md).

pub mod binary;
pub mod cluster;
pub mod etcdctl;
pub mod grpc;
pub mod normalize;
pub mod ports;
pub mod scenarios;
pub mod session;
pub mod temp;

pub use cluster::{Cluster, ClusterOptions, Flavor, Member};
pub use etcdctl::{CtlOutput, Etcdctl};
