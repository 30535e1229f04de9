//! The multi-member scenarios run against a real etcd 3.4.23 cluster. These prove the scenarios
//! themselves (a scenario that fails here is a broken test); the same scenarios against keel
//! are in `tests/pending/` until keel runs multi-member clusters (see README.md).

use keel_tests::scenarios::{crash_writes, failover, limits, membership};
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn etcd_kill_leader() {
    let mut c = Cluster::start(Flavor::Etcd, 3, ClusterOptions::default());
    failover::kill_leader(&mut c);
}

#[test]
fn etcd_kill_member_during_writes() {
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
