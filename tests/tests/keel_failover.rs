//! Requirement 2 against a 3-member keel cluster (the same scenario runs against etcd in
//! tests/reference_etcd.rs).

use keel_tests::scenarios::failover;
use keel_tests::{Cluster, Flavor};

#[test]
fn keel_kill_leader() {
    let mut c = Cluster::start(Flavor::Keel, 3, failover::options());
    failover::kill_leader(&mut c);
}
