//! Requirement 5 on one member: `--max-request-bytes` and garbage on the client port, checked
//! on keel and, as the reference, on a real etcd.

use keel_tests::scenarios::limits::{garbage_on_client_port, request_too_large, MAX_REQUEST_BYTES};
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
