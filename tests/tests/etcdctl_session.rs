//! Requirement 1 (one member): the stock etcdctl runs the same session against keel and against
//! a real etcd 3.4.23; the normalised transcripts must be identical (see
//! `keel_tests::session`).

use keel_tests::session::run_session;
use keel_tests::{Cluster, ClusterOptions, Flavor};

/// Line-by-line comparison with a readable report of the first differences.
fn assert_same_transcript(keel: &str, etcd: &str) {
    if keel == etcd {
        return;
    }
    let k: Vec<&str> = keel.lines().collect();
    let e: Vec<&str> = etcd.lines().collect();
    let mut report = String::new();
    let mut shown = 0;
    for i in 0..k.len().max(e.len()) {
        let (a, b) = (k.get(i).copied(), e.get(i).copied());
        if a != b && shown < 15 {
            report.push_str(&format!("line {}:\n  keel: {a:?}\n  etcd: {b:?}\n", i + 1));
            shown += 1;
        }
    }
    panic!("keel's transcript differs from etcd's:\n{report}\n=== keel ===\n{keel}\n=== etcd ===\n{etcd}");
}

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
