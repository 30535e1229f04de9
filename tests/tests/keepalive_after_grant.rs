//! A keep-alive sent through a follower right after the lease was granted through it must
//! find the lease: the follower has applied the grant (it answered it), but the leader, which
//! renews, may not have yet when its apply thread lags behind its commit index. etcd 3.5's
//! leader waits until it applied everything committed before renewing (`waitAppliedIndex`);
//! keel answered TTL 0 ("lease not found"), which ends a client's session — seen as a flaky
//! "elect: session expired" in the 3-member etcdctl session. Here: 3-member keel, writers load
//! the leader with 64 KiB puts, and 150 times a lease is granted through a follower and at once
//! kept alive through it; every keep-alive must answer the granted TTL.

use keel_net::proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
};
use keel_net::proto::Message;
use keel_tests::grpc::{self, call};
use keel_tests::{Cluster, ClusterOptions, Flavor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[test]
fn keep_alive_right_after_grant_through_a_follower_finds_the_lease() {
    let mut c = Cluster::start(Flavor::Keel, 3, ClusterOptions::default());
    let leader = c.wait_leader(&[0, 1, 2], Duration::from_secs(10));
    let follower = (leader + 1) % 3;
    let stop = AtomicBool::new(false);
    let leader_ep = c.endpoints_of(&[leader]);
    let zero_ttls = std::thread::scope(|s| {
        for t in 0..3 {
            let (ep, stop) = (leader_ep.clone(), &stop);
            s.spawn(move || {
                let mut cl = grpc::connect(&ep, Duration::from_secs(10)).expect("connect");
                let value = vec![b'v'; 64 * 1024];
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = grpc::put(&mut cl, format!("load/{t}/{}", i % 50).as_bytes(), &value);
                    i += 1;
                }
            });
        }
        // Stops the writers however this closure ends (a panic too: the scope joins them).
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        let mut cl =
            grpc::connect(&c.endpoints_of(&[follower]), Duration::from_secs(10)).expect("connect");
        let mut zero = Vec::new();
        for i in 0..150 {
            let g: LeaseGrantResponse = call(
                &mut cl,
                "/etcdserverpb.Lease/LeaseGrant",
                &LeaseGrantRequest { ttl: 30, id: 0 },
            )
            .expect("lease grant");
            let h = cl
                .open_stream("/etcdserverpb.Lease/LeaseKeepAlive", &[], None)
                .expect("keep-alive stream");
            cl.send(h, &LeaseKeepAliveRequest { id: g.id }.encode_to_vec())
                .expect("send keep-alive");
            let msg = cl
                .recv(h, Duration::from_secs(10))
                .expect("keep-alive answer")
                .expect("a keep-alive message");
            let _ = cl.cancel(h);
            let r = LeaseKeepAliveResponse::decode(msg.as_slice()).expect("decode");
            if r.ttl <= 0 {
                zero.push(i);
            }
        }
        zero
    });
    assert!(
        zero_ttls.is_empty(),
        "keep-alives right after a grant answered TTL 0 (lease not found) at iterations {zero_ttls:?}"
    );
}
