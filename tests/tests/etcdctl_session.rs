//! Requirement 1 (one member): the stock etcdctl runs the same session against keel and against
//! a real etcd 3.4.23; the normalised transcripts must be identical (see
//! `keel_tests::session`).

use keel_tests::session::{assert_same_transcript, run_session};
use keel_tests::{Cluster, ClusterOptions, Flavor};

fn compare(n: usize) {
    let (keel, etcd) = std::thread::scope(|s| {
        let etcd = s.spawn(move || {
            let mut c = Cluster::start(Flavor::Etcd, n, ClusterOptions::default());
            run_session(&mut c)
        });
        let mut c = Cluster::start(Flavor::Keel, n, ClusterOptions::default());
        let keel = run_session(&mut c);
        (keel, etcd.join().expect("etcd session"))
    });
    // The session really exercised something (guards against two empty transcripts).
    assert!(
        etcd.contains("$ etcdctl txn") && etcd.matches("[ok]").count() > 40,
        "{etcd}"
    );
    assert_same_transcript(&keel, &etcd);
    if std::env::var_os("KEEL_TESTS_PRINT").is_some() {
        println!("{keel}");
    }
}

#[test]
fn one_member_session_matches_etcd() {
    compare(1);
}
