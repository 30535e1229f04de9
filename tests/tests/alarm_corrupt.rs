//! A CORRUPT alarm (raised through the Alarm API, as etcd's corruption check raises it) makes
//! the cluster refuse what goes through Raft's apply with "etcdserver: corrupt cluster"
//! (gRPC DataLoss), as etcd's `applierV3Corrupt`; ranges and read-only txns are still served;
//! deactivating the
//! alarm restores writes. The same scenario runs on a real etcd first, then on keel.

use keel_net::client::ClientError;
use keel_net::proto::etcdserverpb::{
    alarm_request::AlarmAction, request_op, AlarmRequest, AlarmResponse, AlarmType,
    LeaseGrantRequest, LeaseGrantResponse, PutResponse, RangeRequest, RequestOp, TxnRequest,
    TxnResponse,
};
use keel_tests::grpc::{self, CallError};
use keel_tests::{Cluster, ClusterOptions, Flavor};
use std::time::Duration;

/// What a call returned, in a comparable form: "ok" or "<code> <message>".
fn outcome<T>(r: Result<T, CallError>) -> String {
    match r {
        Ok(_) => "ok".to_string(),
        Err(CallError::Client(ClientError::Status(s))) => format!("{:?} {}", s.code, s.message),
        Err(e) => panic!("unexpected failure: {e}"),
    }
}

fn alarm(c: &mut keel_net::client::Client, action: AlarmAction, member: u64) -> AlarmResponse {
    let req = AlarmRequest {
        action: action as i32,
        member_id: member,
        alarm: AlarmType::Corrupt as i32,
    };
    grpc::call(c, "/etcdserverpb.Maintenance/Alarm", &req).expect("alarm call")
}

/// Runs the scenario; returns the outcomes of the calls, in order.
fn scenario(flavor: Flavor) -> Vec<String> {
    let cluster = Cluster::start(flavor, 3, ClusterOptions::default());
    let id = cluster.member_id(1);
    let eps: Vec<String> = (0..3).map(|i| cluster.members[i].endpoint()).collect();
    let mut c = grpc::connect(&eps[..1], Duration::from_secs(5)).expect("connect");
    let mut seen = vec![outcome(grpc::put(&mut c, b"k", b"before"))];

    let raised = alarm(&mut c, AlarmAction::Activate, id);
    assert_eq!(raised.alarms.len(), 1, "{raised:?}");
    let listed = alarm(&mut c, AlarmAction::Get, 0);
    assert_eq!(listed.alarms.len(), 1, "{listed:?}");
    assert_eq!(listed.alarms[0].alarm, AlarmType::Corrupt as i32);

    // Every member now refuses writes and lease grants; reads are served.
    for ep in &eps {
        let mut m = grpc::connect(std::slice::from_ref(ep), Duration::from_secs(5)).unwrap();
        seen.push(outcome(grpc::put(&mut m, b"k", b"during")));
        let grant = LeaseGrantRequest { ttl: 60, id: 0 };
        seen.push(outcome(grpc::call::<_, LeaseGrantResponse>(
            &mut m,
            "/etcdserverpb.Lease/LeaseGrant",
            &grant,
        )));
        let got = grpc::range(&mut m, b"k", b"", false).expect("range while CORRUPT");
        assert_eq!(got.kvs[0].value, b"before", "{ep}");
        let read_only = TxnRequest {
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestRange(RangeRequest {
                    key: b"k".to_vec(),
                    ..Default::default()
                })),
            }],
            ..Default::default()
        };
        let r: TxnResponse =
            grpc::call(&mut m, "/etcdserverpb.KV/Txn", &read_only).expect("read-only txn");
        assert!(r.succeeded, "{ep}: {r:?}");
    }

    alarm(&mut c, AlarmAction::Deactivate, id);
    assert!(alarm(&mut c, AlarmAction::Get, 0).alarms.is_empty());
    seen.push(outcome::<PutResponse>(grpc::put(&mut c, b"k", b"after")));
    let got = grpc::range(&mut c, b"k", b"", false).expect("range");
    assert_eq!(got.kvs[0].value, b"after");
    seen
}

#[test]
fn corrupt_alarm_refuses_writes_like_etcd() {
    let etcd = scenario(Flavor::Etcd);
    eprintln!("etcd: {etcd:?}");
    let refused = "DataLoss etcdserver: corrupt cluster";
    let mut want = vec!["ok".to_string()];
    want.extend(std::iter::repeat_n(refused.to_string(), 6));
    want.push("ok".to_string());
    assert_eq!(etcd, want, "the reference");
    assert_eq!(scenario(Flavor::Keel), want);
}
