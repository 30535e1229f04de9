//! PENDING (waits for: multi-member keel — peer transport, elections across processes, catch-up
//! of a restarted member). Requirement 2 against keel; the same scenario passes against etcd in
//! tests/reference_etcd.rs.

use keel_tests::scenarios::failover;
use keel_tests::{Cluster, Flavor};

#[test]
fn keel_kill_leader() {
    let mut c = Cluster::start(Flavor::Keel, 3, failover::options());
    failover::kill_leader(&mut c);
}
