//! The v3lock `Lock` service (etcdctl 3.4 does not use it; gRPC clients such as the Go
//! `v3lock` client and gRPC-gateway users do): lock, contention, unlock, unknown lease.
//!
//! [`observe`] returns what a client sees as normalised lines, so keel's can be compared with
//! etcd's; it also asserts the basic mutual exclusion itself.

use crate::grpc::{self, call};
use crate::Cluster;
use keel_net::client::ClientError;
use keel_net::proto::etcdserverpb::{LeaseGrantRequest, LeaseGrantResponse};
use keel_net::proto::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};
use std::sync::mpsc;
use std::time::Duration;

fn describe<T>(r: &Result<T, grpc::CallError>, ok: impl Fn(&T) -> String) -> String {
    match r {
        Ok(v) => format!("ok {}", ok(v)),
        Err(grpc::CallError::Client(ClientError::Status(s))) => {
            format!("error code {} {:?}", s.code as i32, s.message)
        }
        Err(e) => format!("error {e}"),
    }
}

/// Runs the lock sequence on member 0 of `cluster` and returns the observations.
pub fn observe(cluster: &Cluster) -> Vec<String> {
    let ep = vec![cluster.members[0].endpoint()];
    let mut c = grpc::connect(&ep, Duration::from_secs(10)).expect("connect");
    let mut seen = Vec::new();
    let grant = |c: &mut keel_net::client::Client| -> i64 {
        let r: LeaseGrantResponse = call(
            c,
            "/etcdserverpb.Lease/LeaseGrant",
            &LeaseGrantRequest { ttl: 30, id: 0 },
        )
        .expect("lease grant");
        r.id
    };
    let (l1, l2) = (grant(&mut c), grant(&mut c));
    let name_of = |key: &[u8]| {
        let k = String::from_utf8_lossy(key).into_owned();
        k.replace(&format!("{l1:x}"), "<lease1>")
            .replace(&format!("{l2:x}"), "<lease2>")
    };

    let r1: Result<LockResponse, _> = call(
        &mut c,
        "/v3lockpb.Lock/Lock",
        &LockRequest {
            name: b"svc".to_vec(),
            lease: l1,
        },
    );
    seen.push(format!(
        "lock svc lease1: {}",
        describe(&r1, |r| name_of(&r.key))
    ));
    let k1 = r1.expect("first lock").key;
    assert_eq!(
        k1,
        format!("svc/{l1:x}").into_bytes(),
        "lock key is name/lease-hex"
    );

    // A second locker with another lease waits until the first unlocks.
    let (tx, rx) = mpsc::channel();
    let ep2 = ep.clone();
    let waiter = std::thread::spawn(move || {
        let mut c2 = grpc::connect(&ep2, Duration::from_secs(20)).expect("connect");
        let r: Result<LockResponse, _> = call(
            &mut c2,
            "/v3lockpb.Lock/Lock",
            &LockRequest {
                name: b"svc".to_vec(),
                lease: l2,
            },
        );
        let _ = tx.send(r);
    });
    std::thread::sleep(Duration::from_millis(500));
    let early = rx.try_recv().is_ok();
    seen.push(format!("second lock returned while first held: {early}"));
    assert!(!early, "two holders of the same lock");

    let u1: Result<UnlockResponse, _> = call(
        &mut c,
        "/v3lockpb.Lock/Unlock",
        &UnlockRequest { key: k1.clone() },
    );
    seen.push(format!(
        "unlock lease1: {}",
        describe(&u1, |_| String::new())
    ));
    let r2 = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("second lock not granted 10 s after unlock");
    seen.push(format!(
        "lock svc lease2: {}",
        describe(&r2, |r| name_of(&r.key))
    ));
    waiter.join().expect("waiter");
    let held = grpc::range(&mut c, b"svc/", b"svc0", false).expect("range");
    seen.push(format!(
        "keys under svc/: {:?}",
        held.kvs
            .iter()
            .map(|kv| name_of(&kv.key))
            .collect::<Vec<_>>()
    ));
    if let Ok(r2) = r2 {
        let u2: Result<UnlockResponse, _> = call(
            &mut c,
            "/v3lockpb.Lock/Unlock",
            &UnlockRequest { key: r2.key },
        );
        seen.push(format!(
            "unlock lease2: {}",
            describe(&u2, |_| String::new())
        ));
    }
    let held = grpc::range(&mut c, b"svc/", b"svc0", false).expect("range");
    seen.push(format!("keys under svc/ after unlock: {}", held.kvs.len()));

    let bad: Result<LockResponse, _> = call(
        &mut c,
        "/v3lockpb.Lock/Lock",
        &LockRequest {
            name: b"svc".to_vec(),
            lease: 0x1234_5678,
        },
    );
    seen.push(format!(
        "lock with unknown lease: {}",
        describe(&bad, |r| name_of(&r.key))
    ));
    let unlock_missing: Result<UnlockResponse, _> = call(
        &mut c,
        "/v3lockpb.Lock/Unlock",
        &UnlockRequest {
            key: b"svc/none".to_vec(),
        },
    );
    seen.push(format!(
        "unlock of a key never locked: {}",
        describe(&unlock_missing, |_| String::new())
    ));
    seen
}
