//! After MemberUpdate moves m1 to a new peer URL, m1 is restarted with --listen-peer-urls /
//! --initial-advertise-peer-urls set to the new URL and its --initial-cluster flag left
//! unchanged. etcd 3.4 ignores --initial-cluster when the data directory exists (VerifyBootstrap
//! runs only when there is no WAL); so does keel now (`config::has_wal`). Was pending until then.

use keel_tests::scenarios::membership_more;
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn etcd_restart_after_update_with_old_initial_cluster() {
    let mut c = Cluster::start(Flavor::Etcd, 1, ClusterOptions::default());
    membership_more::grow_update_remove_restart(&mut c, false);
}

#[test]
fn keel_restart_after_update_with_old_initial_cluster() {
    let mut c = Cluster::start(Flavor::Keel, 1, ClusterOptions::default());
    membership_more::grow_update_remove_restart(&mut c, false);
}
