//! The multi-member scenarios run against a real etcd 3.4.23 cluster. These prove the scenarios
//! themselves (a scenario that fails here is a broken test); the same scenarios against keel
//! are in `tests/pending/` until keel runs multi-member clusters (see README.md).

use keel_tests::scenarios::{crash_writes, failover, limits, membership};
use keel_tests::{Cluster, ClusterOptions, Flavor};
use std::sync::Mutex;

/// The leader-election timing of `etcd_kill_leader` is measured while the 10,000-write test is
/// not running in the same process (the box has two busy cores).
static TIMING: Mutex<()> = Mutex::new(());

#[test]
fn etcd_kill_leader() {
    let _quiet = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start(Flavor::Etcd, 3, failover::options());
    failover::kill_leader(&mut c);
}

#[test]
fn etcd_kill_member_during_writes() {
    let _quiet = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start(Flavor::Etcd, 3, ClusterOptions::default());
    crash_writes::kill_during_writes(&mut c, 2);
}

#[test]
fn etcd_learner_promote_remove() {
    let mut c = Cluster::start(Flavor::Etcd, 3, ClusterOptions::default());
    membership::learner_promote_remove(&mut c);
}

#[test]
fn etcd_garbage_on_peer_port() {
    let mut c = Cluster::start(Flavor::Etcd, 3, ClusterOptions::default());
    limits::garbage_on_peer_port(&mut c, 1);
    limits::garbage_on_client_port(&mut c, 2);
}

#[test]
fn etcd_quorum_loss() {
    let mut c = Cluster::start(Flavor::Etcd, 3, ClusterOptions::default());
    failover::quorum_loss(&mut c);
}
