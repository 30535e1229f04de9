//! The v3lock gRPC service on one member: lock, a contending locker that must wait, unlock,
//! unknown lease, unlocking a key never locked — keel's observations must equal etcd's, except
//! the gRPC *code* of the unknown-lease error, which differs today (etcd: Unknown, keel:
//! NotFound; same message). The exact version is `pending/keel_lock_election_exact.rs`.

use keel_tests::scenarios::lock_service::observe;
use keel_tests::scenarios::without_unknown_lease_code;
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn lock_service_matches_etcd() {
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
