//! A member added while another added member has not started yet gets, from `etcdctl member
//! add`, an ETCD_INITIAL_CLUSTER that names the unstarted member with an empty name
//! (`...,=http://127.0.0.1:34137,m5=http://...`). etcd 3.4 accepts it, and so does keel now
//! (`config::parse_initial_cluster`). Was pending until then.

use keel_tests::scenarios::membership_more;
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn keel_join_beside_an_unstarted_member() {
    let mut c = Cluster::start(Flavor::Keel, 3, ClusterOptions::default());
    membership_more::join_beside_an_unstarted_member(&mut c);
}
