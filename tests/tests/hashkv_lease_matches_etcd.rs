//! HashKV covers the lease a key is attached to (etcd hashes the protobuf `KeyValue`, lease
//! field included): the same writes, including a key attached to a lease and the lease's
//! revoke, give equal HashKV values on keel and on etcd. Lease IDs are chosen by the client so
//! that both stores hold the same bytes (a server-chosen ID differs between any two servers,
//! which is why this test used to be pending: it compared `etcdctl lease grant` IDs).

use keel_net::proto::etcdserverpb::{LeaseGrantRequest, LeaseGrantResponse};
use keel_net::proto::etcdserverpb::{LeaseRevokeRequest, LeaseRevokeResponse};
use keel_net::proto::etcdserverpb::{PutRequest, PutResponse};
use keel_tests::{grpc, Cluster, ClusterOptions, Flavor};
use std::time::Duration;

const LEASE: i64 = 0x1234_5678;

fn hashes(flavor: Flavor) -> Vec<u32> {
    let mut c = Cluster::start(flavor, 1, ClusterOptions::default());
    let mut client =
        grpc::connect(&c.running_endpoints(), Duration::from_secs(10)).expect("connect");
    let hash =
        |client: &mut keel_net::client::Client| grpc::hash_kv(client, 0).expect("hashkv").hash;
    grpc::put(&mut client, b"a", b"1").expect("put a");
    let mut h = vec![hash(&mut client)];
    let g: LeaseGrantResponse = grpc::call(
        &mut client,
        "/etcdserverpb.Lease/LeaseGrant",
        &LeaseGrantRequest { ttl: 60, id: LEASE },
    )
    .expect("grant");
    assert_eq!(g.id, LEASE);
    let _: PutResponse = grpc::call(
        &mut client,
        "/etcdserverpb.KV/Put",
        &PutRequest {
            key: b"lk".to_vec(),
            value: b"v".to_vec(),
            lease: LEASE,
            ..Default::default()
        },
    )
    .expect("put with lease");
    h.push(hash(&mut client));
    let _: LeaseRevokeResponse = grpc::call(
        &mut client,
        "/etcdserverpb.Lease/LeaseRevoke",
        &LeaseRevokeRequest { id: LEASE },
    )
    .expect("revoke");
    h.push(hash(&mut client));
    h
}

#[test]
fn hashkv_with_lease_matches_etcd() {
    let (keel, etcd) = std::thread::scope(|s| {
        let e = s.spawn(|| hashes(Flavor::Etcd));
        (hashes(Flavor::Keel), e.join().expect("etcd"))
    });
    assert_eq!(keel, etcd);
    // The lease-attached key changed the hash, and so did its deletion by the revoke.
    assert_ne!(etcd[0], etcd[1]);
    assert_ne!(etcd[1], etcd[2]);
}
