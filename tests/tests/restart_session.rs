//! Durability as etcdctl sees it: the same writes / compaction / lease on a 1-member keel and a
//! 1-member etcd, kill -9 and restart, then the same reads; normalised transcripts must be equal
//! (revisions, compaction boundary, lease with its key, watch history, next revision).

use keel_tests::session::run_restart_session;
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn one_member_restart_session_matches_etcd() {
    let run = |flavor| {
        let mut c = Cluster::start(flavor, 1, ClusterOptions::default());
        run_restart_session(&mut c)
    };
    let (keel, etcd) = std::thread::scope(|s| {
        let e = s.spawn(|| run(Flavor::Etcd));
        (run(Flavor::Keel), e.join().expect("etcd run"))
    });
    assert!(etcd.contains("--- kill -9 and restart ---") && etcd.contains("\"revision\":"));
    if keel != etcd {
        let diffs: Vec<String> = keel
            .lines()
            .zip(etcd.lines())
            .filter(|(a, b)| a != b)
            .take(10)
            .map(|(a, b)| format!("keel: {a}\netcd: {b}"))
            .collect();
        panic!(
            "transcripts differ:\n{}\n=== keel ===\n{keel}\n=== etcd ===\n{etcd}",
            diffs.join("\n")
        );
    }
    if std::env::var_os("KEEL_TESTS_PRINT").is_some() {
        println!("{keel}");
    }
}
