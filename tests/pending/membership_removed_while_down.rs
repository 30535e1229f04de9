//! PENDING (waits for a fix in server/src/member.rs / the peer transport): a member that was
//! removed while it was down never applies its own removal. Started again from its data, etcd
//! 3.4's peers answer it "410 Gone" and it stops ("the member has been permanently removed from
//! the cluster"; tests/membership_more.rs `etcd_restart_member_removed_while_down` passes).
//! keel's peers refuse its handshake (`Verdict::UnknownSender`), but the member ignores the
//! refusal: it keeps running, leaderless, pre-campaigning forever (the test waits 20 s).

use keel_tests::scenarios::membership_more;
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn keel_restart_member_removed_while_down() {
    let mut c = Cluster::start(Flavor::Keel, 3, ClusterOptions::default());
    membership_more::restart_member_removed_while_down(&mut c);
}
