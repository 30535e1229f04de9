//! Requirement 5 on one member: `--max-request-bytes` and garbage on the client port, checked
//! on keel and, as the reference, on a real etcd.

use keel_tests::scenarios::limits::{
    garbage_on_client_port, raw_oversized_put, request_too_large, MAX_REQUEST_BYTES,
};
use keel_tests::{Cluster, ClusterOptions, Flavor};

fn options() -> ClusterOptions {
    ClusterOptions {
        extra_args: vec![format!("--max-request-bytes={MAX_REQUEST_BYTES}")],
        ..ClusterOptions::default()
    }
}

#[test]
fn keel_refuses_oversized_request() {
    let mut c = Cluster::start(Flavor::Keel, 1, options());
    request_too_large(&mut c);
}

#[test]
fn etcd_refuses_oversized_request() {
    let mut c = Cluster::start(Flavor::Etcd, 1, options());
    request_too_large(&mut c);
}

#[test]
fn keel_survives_garbage_on_client_port() {
    let mut c = Cluster::start(Flavor::Keel, 1, ClusterOptions::default());
    garbage_on_client_port(&mut c, 0);
}

/// Default limits (`--max-request-bytes` 1.5 MiB): a 1.6 MiB put is refused by the server with
/// "request is too large", a 3 MiB message by the gRPC layer; keel answers both exactly as etcd
/// does (code and message) and keeps serving.
#[test]
fn default_request_limits_match_etcd() {
    let run = |flavor| {
        let mut c = Cluster::start(flavor, 1, ClusterOptions::default());
        let over_limit = raw_oversized_put(&mut c, 1_600_000);
        let over_grpc = raw_oversized_put(&mut c, 3 << 20);
        let under = raw_oversized_put(&mut c, 1_500_000);
        (over_limit, over_grpc, under)
    };
    let (keel, etcd) = std::thread::scope(|s| {
        let e = s.spawn(|| run(Flavor::Etcd));
        (run(Flavor::Keel), e.join().expect("etcd run"))
    });
    assert_eq!(
        etcd.0,
        Some((3, "etcdserver: request is too large".to_string())),
        "etcd's answer changed: the test's assumption is wrong"
    );
    assert_eq!(etcd.2, None, "a 1.5 MB put must succeed on etcd");
    assert!(
        matches!(&etcd.1, Some((8, m)) if m.starts_with("grpc: received message larger than max")),
        "etcd's answer to 3 MiB changed: {:?}",
        etcd.1
    );
    assert_eq!(keel, etcd);
}
