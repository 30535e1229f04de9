//! Requirement 3 on what keel runs today (one member): kill -9 the only member during 10,000
//! writes from four client threads, restart it while the writers keep trying; afterwards every
//! acknowledged write is there with its acknowledged revision, and HashKV at that revision
//! answers. (The 3-member version is `pending/keel_crash_writes.rs`.)

use keel_tests::scenarios::crash_writes;
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn keel_one_member_kill_during_writes() {
    let mut c = Cluster::start(Flavor::Keel, 1, ClusterOptions::default());
    crash_writes::kill_during_writes(&mut c, 0);
}
