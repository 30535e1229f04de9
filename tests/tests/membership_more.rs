//! More membership scenarios (see `keel_tests::scenarios::membership_more`), each run against a
//! real etcd 3.4 first (proving the expectation) and then against keel.

use keel_tests::scenarios::membership_more;
use keel_tests::{Cluster, ClusterOptions, Flavor};

fn refused_changes(flavor: Flavor) {
    let mut c = Cluster::start(flavor, 3, ClusterOptions::default());
    membership_more::refused_changes(&mut c);
}

fn grow_update_remove_restart(flavor: Flavor) {
    let mut c = Cluster::start(flavor, 1, ClusterOptions::default());
    // Restarted with --initial-cluster edited to the new URL; with the flag left as it was,
    // keel refuses to start (tests/pending/membership_update_flags.rs).
    membership_more::grow_update_remove_restart(&mut c, true);
}

#[test]
fn etcd_refused_membership_changes() {
    refused_changes(Flavor::Etcd);
}

#[test]
fn keel_refused_membership_changes() {
    refused_changes(Flavor::Keel);
}

#[test]
fn etcd_grow_update_remove_leader_restart() {
    grow_update_remove_restart(Flavor::Etcd);
}

#[test]
fn keel_grow_update_remove_leader_restart() {
    grow_update_remove_restart(Flavor::Keel);
}

/// keel's variant is in tests/pending/membership_empty_name.rs (config.rs refuses the flag).
#[test]
fn etcd_join_beside_an_unstarted_member() {
    let mut c = Cluster::start(Flavor::Etcd, 3, ClusterOptions::default());
    membership_more::join_beside_an_unstarted_member(&mut c);
}

fn replace_member(flavor: Flavor) {
    let mut c = Cluster::start(flavor, 3, ClusterOptions::default());
    membership_more::replace_member(&mut c);
}

#[test]
fn etcd_replace_member() {
    replace_member(Flavor::Etcd);
}

#[test]
fn keel_replace_member() {
    replace_member(Flavor::Keel);
}

/// keel's variant is in tests/pending/membership_removed_while_down.rs.
#[test]
fn etcd_restart_member_removed_while_down() {
    let mut c = Cluster::start(Flavor::Etcd, 3, ClusterOptions::default());
    membership_more::restart_member_removed_while_down(&mut c);
}

fn learner_restart_promote_via_follower(flavor: Flavor) {
    let mut c = Cluster::start(flavor, 3, ClusterOptions::default());
    membership_more::learner_restart_promote_via_follower(&mut c);
}

#[test]
fn etcd_learner_restart_promote_via_follower() {
    learner_restart_promote_via_follower(Flavor::Etcd);
}

#[test]
fn keel_learner_restart_promote_via_follower() {
    learner_restart_promote_via_follower(Flavor::Keel);
}
