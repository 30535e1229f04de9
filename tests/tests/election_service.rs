//! The v3election gRPC service on one member (Campaign, a waiting second candidate, Proclaim,
//! Proclaim by a non-leader, Resign hands over, Leader with and without a leader, unknown
//! lease): keel's observations must equal etcd's, except the gRPC *code* of the unknown-lease
//! error (etcd: Unknown, keel: NotFound; same message). Exact: `pending/keel_lock_election_exact.rs`.

use keel_tests::scenarios::election_service::observe;
use keel_tests::scenarios::without_unknown_lease_code;
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn election_service_matches_etcd() {
    let run = |flavor| {
        let c = Cluster::start(flavor, 1, ClusterOptions::default());
        observe(&c)
    };
    let (keel, etcd) = std::thread::scope(|s| {
        let e = s.spawn(|| run(Flavor::Etcd));
        (run(Flavor::Keel), e.join().expect("etcd run"))
    });
    assert!(
        etcd.iter().any(|l| l.contains("requested lease not found")),
        "{etcd:?}"
    );
    assert_eq!(
        without_unknown_lease_code(keel),
        without_unknown_lease_code(etcd)
    );
}
