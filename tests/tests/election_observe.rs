//! v3election `Observe` (server streaming), compared with etcd.
//! Observe delivers the current leader, a Proclaim'ed value and the next leader after a Resign,
//! exactly as etcd's does.

use keel_tests::scenarios::election_service::observe_stream;
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn election_observe_matches_etcd() {
    let run = |flavor| {
        let c = Cluster::start(flavor, 1, ClusterOptions::default());
        observe_stream(&c)
    };
    let (keel, etcd) = std::thread::scope(|s| {
        let e = s.spawn(|| run(Flavor::Etcd));
        (run(Flavor::Keel), e.join().expect("etcd run"))
    });
    assert_eq!(etcd.len(), 3, "{etcd:?}");
    assert!(etcd.iter().all(|l| l.starts_with("observed ")), "{etcd:?}");
    assert_eq!(keel, etcd);
}
