//! Requirement 5, peer side: garbage on a member's peer port (and client port) of a 3-member keel
//! cluster leaves it serving (also run against etcd in tests/reference_etcd.rs).

use keel_tests::scenarios::limits;
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn keel_garbage_on_peer_port() {
    let mut c = Cluster::start(Flavor::Keel, 3, ClusterOptions::default());
    limits::garbage_on_peer_port(&mut c, 1);
    limits::garbage_on_client_port(&mut c, 2);
}
