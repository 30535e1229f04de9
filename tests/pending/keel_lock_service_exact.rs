//! PENDING (waits for: v3lock Lock with an unknown lease answering gRPC code Unknown (2) like
//! etcd, not NotFound (5) — /work/server-bugs.md "v3lock Lock: unknown lease has the wrong gRPC
//! code"). Exact comparison of the v3lock observations with etcd's.

use keel_tests::scenarios::lock_service::observe;
use keel_tests::{Cluster, ClusterOptions, Flavor};

#[test]
fn lock_service_matches_etcd_exactly() {
    let run = |flavor| {
        let c = Cluster::start(flavor, 1, ClusterOptions::default());
        observe(&c)
    };
    let (keel, etcd) = std::thread::scope(|s| {
        let e = s.spawn(|| run(Flavor::Etcd));
        (run(Flavor::Keel), e.join().expect("etcd run"))
    });
    assert_eq!(keel, etcd);
}
