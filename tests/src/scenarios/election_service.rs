//! The v3election `Election` service (Campaign, Proclaim, Leader, Resign; etcdctl 3.4's `elect`
//! uses the client-side recipe instead): [`observe`] returns what a client sees, normalised,
//! so keel's can be compared with etcd's; it also asserts that a second candidate waits.

use crate::grpc::{self, call, CallError};
use crate::Cluster;
use keel_net::client::{Client, ClientError};
use keel_net::proto::etcdserverpb::{LeaseGrantRequest, LeaseGrantResponse};
use keel_net::proto::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest,
    ProclaimResponse, ResignRequest, ResignResponse,
};
use std::sync::mpsc;
use std::time::Duration;

fn err(e: &CallError) -> String {
    match e {
        CallError::Client(ClientError::Status(s)) => {
            format!("error code {} {:?}", s.code as i32, s.message)
        }
        e => format!("error {e}"),
    }
}

/// Runs the election sequence on member 0 of `cluster` and returns the observations.
pub fn observe(cluster: &Cluster) -> Vec<String> {
    let ep = vec![cluster.members[0].endpoint()];
    let mut c = grpc::connect(&ep, Duration::from_secs(10)).expect("connect");
    let grant = |c: &mut Client| -> i64 {
        let r: LeaseGrantResponse = call(
            c,
            "/etcdserverpb.Lease/LeaseGrant",
            &LeaseGrantRequest { ttl: 30, id: 0 },
        )
        .expect("lease grant");
        r.id
    };
    let (l1, l2) = (grant(&mut c), grant(&mut c));
    let norm = move |b: &[u8]| {
        String::from_utf8_lossy(b)
            .replace(&format!("{l1:x}"), "<lease1>")
            .replace(&format!("{l2:x}"), "<lease2>")
    };
    let lk = move |k: &Option<LeaderKey>| match k {
        None => "no leader key".to_string(),
        Some(k) => format!(
            "name {} key {} rev {} lease {}",
            norm(&k.name),
            norm(&k.key),
            k.rev,
            if k.lease == l1 {
                "1"
            } else if k.lease == l2 {
                "2"
            } else {
                "?"
            }
        ),
    };
    let mut seen = Vec::new();
    let leader = |c: &mut Client| -> String {
        let r: Result<LeaderResponse, _> = call(
            c,
            "/v3electionpb.Election/Leader",
            &LeaderRequest {
                name: b"e".to_vec(),
            },
        );
        match r {
            Ok(r) => match r.kv {
                Some(kv) => format!("leader {} = {}", norm(&kv.key), norm(&kv.value)),
                None => "leader: none".into(),
            },
            Err(e) => format!("leader: {}", err(&e)),
        }
    };
    seen.push(leader(&mut c));

    let r1: CampaignResponse = call(
        &mut c,
        "/v3electionpb.Election/Campaign",
        &CampaignRequest {
            name: b"e".to_vec(),
            lease: l1,
            value: b"v1".to_vec(),
        },
    )
    .expect("first campaign");
    seen.push(format!("campaign 1: {}", lk(&r1.leader)));
    seen.push(leader(&mut c));

    // A second candidate waits while the first leads.
    let (tx, rx) = mpsc::channel();
    let ep2 = ep.clone();
    let waiter = std::thread::spawn(move || {
        let mut c2 = grpc::connect(&ep2, Duration::from_secs(20)).expect("connect");
        let r: Result<CampaignResponse, _> = call(
            &mut c2,
            "/v3electionpb.Election/Campaign",
            &CampaignRequest {
                name: b"e".to_vec(),
                lease: l2,
                value: b"v2".to_vec(),
            },
        );
        let _ = tx.send(r);
    });
    std::thread::sleep(Duration::from_millis(500));
    let early = rx.try_recv().is_ok();
    seen.push(format!(
        "second campaign returned while first leads: {early}"
    ));
    assert!(!early, "two leaders at once");

    let p: Result<ProclaimResponse, _> = call(
        &mut c,
        "/v3electionpb.Election/Proclaim",
        &ProclaimRequest {
            leader: r1.leader.clone(),
            value: b"v1b".to_vec(),
        },
    );
    seen.push(format!(
        "proclaim v1b: {}",
        p.map(|_| "ok".into()).unwrap_or_else(|e| err(&e))
    ));
    seen.push(leader(&mut c));
    let fake = LeaderKey {
        name: b"e".to_vec(),
        key: format!("e/{l2:x}").into_bytes(),
        rev: 1,
        lease: l2,
    };
    let p: Result<ProclaimResponse, _> = call(
        &mut c,
        "/v3electionpb.Election/Proclaim",
        &ProclaimRequest {
            leader: Some(fake),
            value: b"bad".to_vec(),
        },
    );
    seen.push(format!(
        "proclaim by non-leader: {}",
        p.map(|_| "ok".into()).unwrap_or_else(|e| err(&e))
    ));

    let r: Result<ResignResponse, _> = call(
        &mut c,
        "/v3electionpb.Election/Resign",
        &ResignRequest {
            leader: r1.leader.clone(),
        },
    );
    seen.push(format!(
        "resign 1: {}",
        r.map(|_| "ok".into()).unwrap_or_else(|e| err(&e))
    ));
    let r2 = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("second candidate not elected 10 s after resign");
    waiter.join().expect("waiter");
    match r2 {
        Ok(r2) => {
            seen.push(format!("campaign 2: {}", lk(&r2.leader)));
            seen.push(leader(&mut c));
            let r: Result<ResignResponse, _> = call(
                &mut c,
                "/v3electionpb.Election/Resign",
                &ResignRequest { leader: r2.leader },
            );
            seen.push(format!(
                "resign 2: {}",
                r.map(|_| "ok".into()).unwrap_or_else(|e| err(&e))
            ));
        }
        Err(e) => seen.push(format!("campaign 2: {}", err(&e))),
    }
    seen.push(leader(&mut c));
    let bad: Result<CampaignResponse, _> = call(
        &mut c,
        "/v3electionpb.Election/Campaign",
        &CampaignRequest {
            name: b"e".to_vec(),
            lease: 0x1234_5678,
            value: b"x".to_vec(),
        },
    );
    seen.push(format!(
        "campaign with unknown lease: {}",
        bad.map(|r| lk(&r.leader)).unwrap_or_else(|e| err(&e))
    ));
    seen
}

/// `Observe` (server streaming): with a leader in place, observe the election, then Proclaim a
/// new value, Resign and let a second candidate win; returns the leader values the stream
/// delivered (key and value, normalised), up to three, or the error.
pub fn observe_stream(cluster: &Cluster) -> Vec<String> {
    use keel_net::proto::Message;
    let ep = vec![cluster.members[0].endpoint()];
    let mut c = grpc::connect(&ep, Duration::from_secs(10)).expect("connect");
    let grant = |c: &mut Client| -> i64 {
        let r: LeaseGrantResponse = call(
            c,
            "/etcdserverpb.Lease/LeaseGrant",
            &LeaseGrantRequest { ttl: 30, id: 0 },
        )
        .expect("lease grant");
        r.id
    };
    let (l1, l2) = (grant(&mut c), grant(&mut c));
    let norm = move |b: &[u8]| {
        String::from_utf8_lossy(b)
            .replace(&format!("{l1:x}"), "<lease1>")
            .replace(&format!("{l2:x}"), "<lease2>")
    };
    let r1: CampaignResponse = call(
        &mut c,
        "/v3electionpb.Election/Campaign",
        &CampaignRequest {
            name: b"o".to_vec(),
            lease: l1,
            value: b"v1".to_vec(),
        },
    )
    .expect("campaign");

    let mut obs = grpc::connect(&ep, Duration::from_secs(10)).expect("connect");
    let h = obs
        .open_stream("/v3electionpb.Election/Observe", &[], None)
        .expect("open Observe");
    obs.send(
        h,
        &LeaderRequest {
            name: b"o".to_vec(),
        }
        .encode_to_vec(),
    )
    .expect("send");
    obs.close_send(h).expect("close_send");
    let mut seen = Vec::new();
    let next = |obs: &mut Client, seen: &mut Vec<String>| match obs.recv(h, Duration::from_secs(5))
    {
        Ok(Some(bytes)) => match LeaderResponse::decode(bytes.as_slice()) {
            Ok(r) => seen.push(match r.kv {
                Some(kv) => format!("observed {} = {}", norm(&kv.key), norm(&kv.value)),
                None => "observed no kv".into(),
            }),
            Err(e) => seen.push(format!("undecodable: {e}")),
        },
        Ok(None) => seen.push("stream ended".into()),
        Err(e) => seen.push(err(&CallError::Client(e))),
    };
    next(&mut obs, &mut seen);
    let _: Result<ProclaimResponse, _> = call(
        &mut c,
        "/v3electionpb.Election/Proclaim",
        &ProclaimRequest {
            leader: r1.leader.clone(),
            value: b"v1b".to_vec(),
        },
    );
    next(&mut obs, &mut seen);
    let _: Result<ResignResponse, _> = call(
        &mut c,
        "/v3electionpb.Election/Resign",
        &ResignRequest { leader: r1.leader },
    );
    let _: Result<CampaignResponse, _> = call(
        &mut c,
        "/v3electionpb.Election/Campaign",
        &CampaignRequest {
            name: b"o".to_vec(),
            lease: l2,
            value: b"v2".to_vec(),
        },
    );
    next(&mut obs, &mut seen);
    seen
}
