//! A member removed while it was down never applies its own removal. Started again from its
//! data, etcd 3.4's peers answer it "410 Gone" and it stops ("the member has been permanently
//! removed from the cluster"); keel's peers refuse its handshake as an unknown sender, and the
//! member stops once a majority of the other voters keep doing so while it has no leader
//! (server/src/member.rs `check_removed`). Was pending until that check existed.

use keel_tests::scenarios::membership_more;
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn keel_restart_member_removed_while_down() {
    let mut c = Cluster::start(Flavor::Keel, 3, ClusterOptions::default());
    membership_more::restart_member_removed_while_down(&mut c);
}
