//! Requirement 1 with three members: the etcdctl session against a 3-member keel cluster and a
//! 3-member etcd cluster gives identical normalised transcripts. Ordinary steps go to member m1
//! (possibly a follower: forwarding), cluster steps to all three.

use keel_tests::session::run_session;
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn three_member_session_matches_etcd() {
    let (keel, etcd) = std::thread::scope(|s| {
        let etcd = s.spawn(|| {
            let mut c = Cluster::start(Flavor::Etcd, 3, ClusterOptions::default());
            run_session(&mut c)
        });
        let mut c = Cluster::start(Flavor::Keel, 3, ClusterOptions::default());
        (run_session(&mut c), etcd.join().expect("etcd session"))
    });
    assert!(etcd.contains("leaders: 1 of 3"), "{etcd}");
    if keel != etcd {
        let diffs: Vec<String> = keel
            .lines()
            .zip(etcd.lines())
            .filter(|(a, b)| a != b)
            .take(15)
            .map(|(a, b)| format!("keel: {a}\netcd: {b}"))
            .collect();
        panic!(
            "transcripts differ:\n{}\n=== keel ===\n{keel}",
            diffs.join("\n")
        );
    }
}
