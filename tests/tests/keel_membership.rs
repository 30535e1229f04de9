//! PENDING (waits for: MemberAdd --learner / MemberPromote / MemberRemove, `--initial-cluster-state
//! existing`). Requirement 4 against keel; passes against etcd in tests/reference_etcd.rs.

use keel_tests::scenarios::membership;
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn keel_learner_promote_remove() {
    let mut c = Cluster::start(Flavor::Keel, 3, ClusterOptions::default());
    membership::learner_promote_remove(&mut c);
}
