//! Requirement 3 against a 3-member keel cluster (also run against etcd in tests/reference_etcd.rs).

use keel_tests::scenarios::crash_writes;
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn keel_kill_member_during_writes() {
    let mut c = Cluster::start(Flavor::Keel, 3, ClusterOptions::default());
    crash_writes::kill_during_writes(&mut c, 2);
}
