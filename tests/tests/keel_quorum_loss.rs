//! Design promises 1–3 on a 3-member keel cluster: no write or linearizable read without a
//! quorum, serializable reads still served, writes resume with a quorum back (also run against
//! etcd in tests/reference_etcd.rs).

use keel_tests::scenarios::failover;
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn keel_quorum_loss() {
    let mut c = Cluster::start(Flavor::Keel, 3, ClusterOptions::default());
    failover::quorum_loss(&mut c);
}
