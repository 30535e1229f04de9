//! KV and lease requests etcdctl cannot send (or sends only in one shape), over raw gRPC,
//! against a 1-member keel and a 1-member etcd 3.4.23: Range with min/max mod/create revision
//! filters combined with limit, count_only and sorting; nested txns (success and failure
//! branches, a failing inner compare, duplicate keys across levels); compares over a key
//! range and on leases; DeleteRange with prev_kv over a range. Each answer (the response
//! without its header's IDs and term, or the error's code and message) must equal etcd's.

use keel_net::client::{Client, ClientError};
use keel_net::proto::etcdserverpb::{
    compare, range_request, request_op, Compare, DeleteRangeRequest, LeaseGrantRequest, PutRequest,
    RangeRequest, RequestOp, ResponseHeader, TxnRequest,
};
use keel_net::proto::Message;
use keel_tests::{Cluster, ClusterOptions, Flavor};
use std::fmt::Write as _;
use std::time::Duration;

/// Records a call's result: the response's Debug form with the header reduced to its
/// revision, or `error <code> <message>`.
fn record<Resp: Message + Default + std::fmt::Debug>(
    out: &mut String,
    what: &str,
    c: &mut Client,
    path: &str,
    req: &impl Message,
    header: fn(&mut Resp) -> &mut Option<ResponseHeader>,
) {
    let line = match c.unary(path, &req.encode_to_vec()) {
        Ok(bytes) => {
            let mut r = Resp::decode(bytes.as_slice()).expect("decodable response");
            let rev = header(&mut r).take().map(|h| h.revision);
            format!("rev {rev:?} {r:?}")
        }
        Err(ClientError::Status(s)) => format!("error {:?} {}", s.code, s.message),
        Err(e) => format!("client error {e}"),
    };
    let _ = writeln!(out, "{what}: {line}");
}

fn put(key: &str, value: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        })),
    }
}

fn get(key: &str, end: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key: key.into(),
            range_end: end.into(),
            ..Default::default()
        })),
    }
}

fn del(key: &str, end: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key: key.into(),
                range_end: end.into(),
                prev_kv: true,
            },
        )),
    }
}

fn nested(t: TxnRequest) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestTxn(t)),
    }
}

fn cmp(
    key: &str,
    end: &str,
    result: compare::CompareResult,
    target: compare::TargetUnion,
) -> Compare {
    let t = match target {
        compare::TargetUnion::Version(_) => compare::CompareTarget::Version,
        compare::TargetUnion::CreateRevision(_) => compare::CompareTarget::Create,
        compare::TargetUnion::ModRevision(_) => compare::CompareTarget::Mod,
        compare::TargetUnion::Value(_) => compare::CompareTarget::Value,
        compare::TargetUnion::Lease(_) => compare::CompareTarget::Lease,
    };
    Compare {
        result: result as i32,
        target: t as i32,
        key: key.into(),
        range_end: end.into(),
        target_union: Some(target),
    }
}

type TxnResp = keel_net::proto::etcdserverpb::TxnResponse;

/// The txn's header, after dropping the headers of every nested response.
fn txn_header(x: &mut TxnResp) -> &mut Option<ResponseHeader> {
    fn strip_nested(r: &mut TxnResp) {
        use keel_net::proto::etcdserverpb::response_op::Response as R;
        for op in &mut r.responses {
            match &mut op.response {
                Some(R::ResponseRange(x)) => x.header = None,
                Some(R::ResponsePut(x)) => x.header = None,
                Some(R::ResponseDeleteRange(x)) => x.header = None,
                Some(R::ResponseTxn(x)) => {
                    x.header = None;
                    strip_nested(x)
                }
                None => {}
            }
        }
    }
    strip_nested(x);
    &mut x.header
}

fn scenario(flavor: Flavor) -> String {
    use compare::CompareResult::*;
    use compare::TargetUnion as T;
    let c = Cluster::start(flavor, 1, ClusterOptions::default());
    let mut cl =
        keel_tests::grpc::connect(&c.endpoints_of(&[0]), Duration::from_secs(10)).expect("connect");
    let mut out = String::new();
    for (k, v) in [
        ("a", "1"),
        ("b", "2"),
        ("c", "3"),
        ("a", "11"),
        ("d", "4"),
        ("e", "5"),
    ] {
        keel_tests::grpc::put(&mut cl, k.as_bytes(), v.as_bytes()).expect("put");
    }
    let rng = |f: &dyn Fn(&mut RangeRequest)| {
        let mut r = RangeRequest {
            key: b"a".to_vec(),
            range_end: b"z".to_vec(),
            ..Default::default()
        };
        f(&mut r);
        r
    };
    let range_path = "/etcdserverpb.KV/Range";
    let ranges: Vec<(&str, RangeRequest)> = vec![
        ("min_mod 4", rng(&|r| r.min_mod_revision = 4)),
        ("max_mod 4", rng(&|r| r.max_mod_revision = 4)),
        (
            "create 3..4",
            rng(&|r| {
                r.min_create_revision = 3;
                r.max_create_revision = 4
            }),
        ),
        (
            "min_mod 4 limit 1",
            rng(&|r| {
                r.min_mod_revision = 4;
                r.limit = 1
            }),
        ),
        (
            "min_mod 4 count_only",
            rng(&|r| {
                r.min_mod_revision = 4;
                r.count_only = true
            }),
        ),
        (
            "max_create 2 keys_only",
            rng(&|r| {
                r.max_create_revision = 2;
                r.keys_only = true
            }),
        ),
        (
            "min_mod 3 sort value desc limit 2",
            rng(&|r| {
                r.min_mod_revision = 3;
                r.sort_target = range_request::SortTarget::Value as i32;
                r.sort_order = range_request::SortOrder::Descend as i32;
                r.limit = 2
            }),
        ),
        (
            "sort key desc limit 2",
            rng(&|r| {
                r.sort_target = range_request::SortTarget::Key as i32;
                r.sort_order = range_request::SortOrder::Descend as i32;
                r.limit = 2
            }),
        ),
        (
            "sort mod none limit 2",
            rng(&|r| {
                r.sort_target = range_request::SortTarget::Mod as i32;
                r.limit = 2
            }),
        ),
        (
            "rev 4 min_mod 3",
            rng(&|r| {
                r.revision = 4;
                r.min_mod_revision = 3
            }),
        ),
        (
            "count_only limit 1",
            rng(&|r| {
                r.count_only = true;
                r.limit = 1
            }),
        ),
        ("negative limit", rng(&|r| r.limit = -1)),
        (
            "from key \\0",
            rng(&|r| {
                r.key = vec![0];
                r.range_end = vec![0]
            }),
        ),
        (
            "range_end before key",
            rng(&|r| {
                r.key = b"c".to_vec();
                r.range_end = b"b".to_vec()
            }),
        ),
    ];
    for (what, r) in &ranges {
        record(
            &mut out,
            what,
            &mut cl,
            range_path,
            r,
            |x: &mut keel_net::proto::etcdserverpb::RangeResponse| &mut x.header,
        );
    }

    let txn_path = "/etcdserverpb.KV/Txn";
    let strip = txn_header;
    let txns: Vec<(&str, TxnRequest)> = vec![
        (
            "nested success",
            TxnRequest {
                compare: vec![],
                success: vec![
                    put("n1", "x"),
                    nested(TxnRequest {
                        compare: vec![cmp("a", "", Equal, T::Value(b"11".to_vec()))],
                        success: vec![put("n2", "y"), get("n", "o")],
                        failure: vec![put("n3", "z")],
                    }),
                ],
                failure: vec![],
            },
        ),
        (
            "nested failure branch",
            TxnRequest {
                compare: vec![cmp("a", "", Equal, T::Value(b"nope".to_vec()))],
                success: vec![],
                failure: vec![nested(TxnRequest {
                    compare: vec![cmp("b", "", Greater, T::Version(5))],
                    success: vec![put("n4", "s")],
                    failure: vec![nested(TxnRequest {
                        compare: vec![],
                        success: vec![del("n", "o"), get("n", "o")],
                        failure: vec![],
                    })],
                })],
            },
        ),
        (
            "duplicate across levels",
            TxnRequest {
                compare: vec![],
                success: vec![
                    put("dup", "1"),
                    nested(TxnRequest {
                        compare: vec![],
                        success: vec![put("dup", "2")],
                        failure: vec![],
                    }),
                ],
                failure: vec![],
            },
        ),
        (
            "put inside deleted range",
            TxnRequest {
                compare: vec![],
                success: vec![del("a", "c"), put("b", "x")],
                failure: vec![],
            },
        ),
        (
            "same key in both inner branches",
            TxnRequest {
                compare: vec![],
                success: vec![nested(TxnRequest {
                    compare: vec![],
                    success: vec![put("sk", "1")],
                    failure: vec![put("sk", "2")],
                })],
                failure: vec![],
            },
        ),
        (
            "compare over a range",
            TxnRequest {
                compare: vec![cmp("a", "d", Greater, T::CreateRevision(1))],
                success: vec![get("a", "d")],
                failure: vec![get("e", "")],
            },
        ),
        (
            "compare over a range fails",
            TxnRequest {
                compare: vec![cmp("a", "d", Less, T::ModRevision(5))],
                success: vec![get("a", "")],
                failure: vec![get("b", "")],
            },
        ),
        (
            "compare lease 0",
            TxnRequest {
                compare: vec![cmp("c", "", Equal, T::Lease(0))],
                success: vec![get("c", "")],
                failure: vec![],
            },
        ),
        (
            "compare missing key",
            TxnRequest {
                compare: vec![cmp("missing", "", Equal, T::Version(0))],
                success: vec![put("missing-was", "absent")],
                failure: vec![],
            },
        ),
        (
            "compare missing key value",
            TxnRequest {
                compare: vec![cmp("missing", "", Equal, T::Value(Vec::new()))],
                success: vec![get("missing", "")],
                failure: vec![get("a", "")],
            },
        ),
        (
            "empty key in nested op",
            TxnRequest {
                compare: vec![],
                success: vec![nested(TxnRequest {
                    compare: vec![],
                    success: vec![put("", "v")],
                    failure: vec![],
                })],
                failure: vec![],
            },
        ),
    ];
    for (what, t) in &txns {
        record(&mut out, what, &mut cl, txn_path, t, strip);
    }
    let dr = DeleteRangeRequest {
        key: b"d".to_vec(),
        range_end: vec![0],
        prev_kv: true,
    };
    record(
        &mut out,
        "delete from d prev_kv",
        &mut cl,
        "/etcdserverpb.KV/DeleteRange",
        &dr,
        |x: &mut keel_net::proto::etcdserverpb::DeleteRangeResponse| &mut x.header,
    );
    let lg = LeaseGrantRequest {
        ttl: 60,
        id: 0x7777,
    };
    let lp = "/etcdserverpb.Lease/LeaseGrant";
    type LG = keel_net::proto::etcdserverpb::LeaseGrantResponse;
    record(&mut out, "grant 0x7777", &mut cl, lp, &lg, |x: &mut LG| {
        &mut x.header
    });
    record(
        &mut out,
        "grant 0x7777 again",
        &mut cl,
        lp,
        &lg,
        |x: &mut LG| &mut x.header,
    );
    let short = LeaseGrantRequest { ttl: 1, id: 0x7778 };
    record(
        &mut out,
        "grant ttl 1",
        &mut cl,
        lp,
        &short,
        |x: &mut LG| &mut x.header,
    );
    let lease_put = PutRequest {
        key: b"lk".to_vec(),
        value: b"v".to_vec(),
        lease: 0x7777,
        ..Default::default()
    };
    record(
        &mut out,
        "put with lease",
        &mut cl,
        "/etcdserverpb.KV/Put",
        &lease_put,
        |x: &mut keel_net::proto::etcdserverpb::PutResponse| &mut x.header,
    );
    let t = TxnRequest {
        compare: vec![cmp("lk", "", Equal, T::Lease(0x7777))],
        success: vec![get("lk", "")],
        failure: vec![],
    };
    record(&mut out, "compare lease", &mut cl, txn_path, &t, strip);
    out
}

#[test]
fn grpc_edges_match_etcd() {
    let (keel, etcd) = std::thread::scope(|s| {
        let etcd = s.spawn(|| scenario(Flavor::Etcd));
        let keel = scenario(Flavor::Keel);
        (keel, etcd.join().expect("etcd scenario"))
    });
    assert!(
        etcd.contains("more: true") && etcd.contains("error"),
        "{etcd}"
    );
    keel_tests::session::assert_same_transcript(&keel, &etcd);
    if std::env::var_os("KEEL_TESTS_PRINT").is_some() {
        println!("{keel}");
    }
}
