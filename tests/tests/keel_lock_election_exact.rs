//! Exact comparison of the v3lock and v3election services' observations with etcd's, including
//! the gRPC code of Lock / Campaign with an unknown lease (etcd and keel: Unknown (2), message
//! "etcdserver: requested lease not found").

use keel_tests::scenarios::{election_service, lock_service};
use keel_tests::{Cluster, ClusterOptions, Flavor};

fn run(flavor: Flavor) -> (Vec<String>, Vec<String>) {
    let c = Cluster::start(flavor, 1, ClusterOptions::default());
    (lock_service::observe(&c), election_service::observe(&c))
}

#[test]
fn lock_and_election_match_etcd_exactly() {
    let (keel, etcd) = std::thread::scope(|s| {
        let e = s.spawn(|| run(Flavor::Etcd));
        (run(Flavor::Keel), e.join().expect("etcd run"))
    });
    assert_eq!(keel.0, etcd.0, "lock service");
    assert_eq!(keel.1, etcd.1, "election service");
}
