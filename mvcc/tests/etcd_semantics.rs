//! Behaviours checked against a real etcd 3.4.23 (`etcd-reference.sh start 1 24000`, requests
//! sent through its JSON gateway). Each test replays what was sent there and asserts what etcd
//! answered; the comments quote etcd's response where it matters.

mod common;

use common::*;
use keel_mvcc::*;

struct Env {
    _dir: TempDir,
    store: Store,
    idx: u64,
}

impl Env {
    fn new() -> Env {
        let dir = TempDir::new("etcd");
        let store = open(&dir);
        Env {
            _dir: dir,
            store,
            idx: 0,
        }
    }
    fn apply(&mut self, r: Request) -> Result<Response, Error> {
        self.idx += 1;
        self.store.apply(self.idx, r)
    }
    fn put(&mut self, k: &str, v: &str) -> PutResponse {
        match self.apply(put(k, v)).unwrap() {
            Response::Put(p) => p,
            other => panic!("{other:?}"),
        }
    }
    fn txn(&mut self, t: TxnRequest) -> Result<TxnResponse, Error> {
        self.apply(Request::Txn(t)).map(|r| match r {
            Response::Txn(t) => t,
            other => panic!("{other:?}"),
        })
    }
    fn compact(&mut self, rev: i64) -> Result<Response, Error> {
        self.apply(Request::Compact(CompactionRequest {
            revision: rev,
            physical: false,
        }))
    }
}

fn op_put(k: &str, v: &str) -> RequestOp {
    RequestOp::Put(PutRequest {
        key: k.into(),
        value: v.into(),
        ..Default::default()
    })
}
fn op_del(k: &str, end: &[u8]) -> RequestOp {
    RequestOp::DeleteRange(DeleteRangeRequest {
        key: k.into(),
        range_end: end.to_vec(),
        prev_kv: false,
    })
}
fn op_get(k: &str) -> RequestOp {
    RequestOp::Range(get(k))
}
fn keys(kvs: &[KeyValue]) -> Vec<String> {
    kvs.iter()
        .map(|kv| String::from_utf8(kv.key.clone()).unwrap())
        .collect()
}

#[test]
fn fresh_store_revisions_and_compaction_bounds() {
    let mut env = Env::new();
    // etcd: a fresh store is at revision 1; compacting at 0 works, at -1 is "compacted".
    assert_eq!(env.store.current_revision(), 1);
    assert_eq!(
        env.compact(0),
        Ok(Response::Compact(CompactionResponse { revision: 1 }))
    );
    assert_eq!(env.compact(-1), Err(Error::Compacted));
    assert!(env.compact(1).is_ok());
    assert_eq!(env.put("a", "1").revision, 2);
    // a range op inside a txn with revision -1 after a compaction: "compacted"
    let t = TxnRequest {
        success: vec![RequestOp::Range(RangeRequest {
            revision: -1,
            ..get("a")
        })],
        ..Default::default()
    };
    assert_eq!(env.txn(t.clone()), Err(Error::Compacted));
    assert_eq!(env.compact(1), Err(Error::Compacted));
    assert!(env.compact(2).is_ok());
    assert_eq!(env.compact(1000), Err(Error::FutureRevision));
    // ... but a plain range with revision -1 reads the current revision
    let r = env
        .store
        .range(&RangeRequest {
            revision: -1,
            ..get("a")
        })
        .unwrap();
    assert_eq!(r.kvs.len(), 1);
    // nested txn: its own header is empty (revision 0); ops inside see the outer txn's writes
    let t = TxnRequest {
        success: vec![
            op_put("b", "1"),
            RequestOp::Txn(TxnRequest {
                success: vec![op_get("b"), op_put("c", "")],
                ..Default::default()
            }),
            op_get("b"),
        ],
        ..Default::default()
    };
    let resp = env.txn(t).unwrap();
    assert_eq!(resp.revision, 3);
    let ResponseOp::Txn(nested) = &resp.responses[1] else {
        panic!()
    };
    assert_eq!(nested.revision, 0);
    assert!(nested.succeeded);
    let ResponseOp::Range(r) = &nested.responses[0] else {
        panic!()
    };
    assert_eq!((r.revision, r.count, r.kvs[0].mod_revision), (3, 1, 3));
}

#[test]
fn txn_before_compaction_accepts_negative_range_revision() {
    let mut env = Env::new();
    env.put("a", "1");
    // etcd's first compaction revision is -1, so -1 is not "below" it
    let t = TxnRequest {
        success: vec![RequestOp::Range(RangeRequest {
            revision: -1,
            ..get("a")
        })],
        ..Default::default()
    };
    let resp = env.txn(t).unwrap();
    let ResponseOp::Range(r) = &resp.responses[0] else {
        panic!()
    };
    assert_eq!(r.kvs.len(), 1);
}

#[test]
fn txn_duplicate_keys_and_the_from_key_quirk() {
    let mut env = Env::new();
    for k in ["k1", "k2", "z", "y"] {
        env.put(k, "v");
    }
    // put y and delete y in one txn: "duplicate key given in txn request"
    let t = TxnRequest {
        success: vec![op_put("y", "2"), op_del("y", b"")],
        ..Default::default()
    };
    assert_eq!(env.txn(t), Err(Error::DuplicateKey));
    // delete [a, b) and put a/1 inside it: duplicate
    let t = TxnRequest {
        success: vec![op_del("a", b"b"), op_put("a/1", "x")],
        ..Default::default()
    };
    assert_eq!(env.txn(t), Err(Error::DuplicateKey));
    // etcd 3.4 does not treat a from-key ("\0") delete as an interval: allowed, and the put
    // lands after the delete ({"deleted":"4"}, then a/1 created)
    let rev = env.store.current_revision();
    let t = TxnRequest {
        success: vec![op_del("a", &[0]), op_put("a/1", "x")],
        ..Default::default()
    };
    let resp = env.txn(t).unwrap();
    let ResponseOp::DeleteRange(d) = &resp.responses[0] else {
        panic!()
    };
    assert_eq!(d.deleted, 4);
    assert_eq!(resp.revision, rev + 1);
    let all = env
        .store
        .range(&RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(keys(&all.kvs), ["a/1"]);
    assert_eq!(all.kvs[0].create_revision, rev + 1);
    // nested branches may put the same key (only one runs); a nested put inside an outer delete is a duplicate
    let t = TxnRequest {
        success: vec![RequestOp::Txn(TxnRequest {
            success: vec![op_put("n", "1")],
            failure: vec![op_put("n", "2")],
            ..Default::default()
        })],
        ..Default::default()
    };
    assert!(env.txn(t).is_ok());
    let t = TxnRequest {
        success: vec![
            op_del("m", b"n0"),
            RequestOp::Txn(TxnRequest {
                success: vec![op_put("n", "1")],
                ..Default::default()
            }),
        ],
        ..Default::default()
    };
    assert_eq!(env.txn(t), Err(Error::DuplicateKey));
}

#[test]
fn txn_inner_response_revisions() {
    let mut env = Env::new();
    env.put("z", "1");
    let begin = env.store.current_revision();
    // etcd: range -> begin, delete of nothing -> begin, put -> begin+1, delete of nothing after a
    // change -> begin+1
    let t = TxnRequest {
        success: vec![
            op_get("z"),
            op_del("nothing", b""),
            op_put("y", "2"),
            op_del("nothing", b""),
        ],
        ..Default::default()
    };
    let resp = env.txn(t).unwrap();
    let revs: Vec<i64> = resp
        .responses
        .iter()
        .map(|r| match r {
            ResponseOp::Range(x) => x.revision,
            ResponseOp::Put(x) => x.revision,
            ResponseOp::DeleteRange(x) => x.revision,
            ResponseOp::Txn(x) => x.revision,
        })
        .collect();
    assert_eq!(revs, [begin, begin, begin + 1, begin + 1]);
    assert_eq!(resp.revision, begin + 1);
}

fn sorted_setup() -> Env {
    let mut env = Env::new();
    env.put("s/a", "3"); // rev 2
    env.put("s/b", "1"); // rev 3
    env.put("s/c", "2"); // rev 4
    env.put("s/a", "4"); // rev 5
    env
}

#[test]
fn limit_with_sort_and_count_with_filters() {
    let env = sorted_setup();
    // sort_target VALUE with order NONE means ASCEND; limit applied after sorting
    let r = env
        .store
        .range(&RangeRequest {
            limit: 2,
            sort_target: SortTarget::Value,
            ..prefix("s/")
        })
        .unwrap();
    assert_eq!(
        (keys(&r.kvs), r.more, r.count),
        (vec!["s/b".into(), "s/c".into()], true, 3)
    );
    let r = env
        .store
        .range(&RangeRequest {
            limit: 1,
            sort_order: SortOrder::Descend,
            sort_target: SortTarget::Mod,
            ..prefix("s/")
        })
        .unwrap();
    assert_eq!(
        (keys(&r.kvs), r.more, r.count),
        (vec!["s/a".into()], true, 3)
    );
    assert_eq!(r.kvs[0].version, 2);
    // filters do not change count; keys_only drops values only
    let r = env
        .store
        .range(&RangeRequest {
            limit: 1,
            min_mod_revision: 3,
            keys_only: true,
            ..prefix("s/")
        })
        .unwrap();
    assert_eq!(
        (keys(&r.kvs), r.more, r.count),
        (vec!["s/a".into()], true, 3)
    );
    assert!(r.kvs[0].value.is_empty());
    assert_eq!(r.kvs[0].mod_revision, 5);
    let r = env
        .store
        .range(&RangeRequest {
            max_create_revision: 2,
            ..prefix("s/")
        })
        .unwrap();
    assert_eq!(
        (keys(&r.kvs), r.more, r.count),
        (vec!["s/a".into()], false, 3)
    );
    // count_only with a limit: count only, more false
    let r = env
        .store
        .range(&RangeRequest {
            count_only: true,
            limit: 1,
            ..prefix("s/")
        })
        .unwrap();
    assert_eq!((r.kvs.len(), r.more, r.count), (0, false, 3));
    // etcd quirk: sort_order NONE with a non-key target still pushes limit + 1 down, so only
    // the first limit + 1 keys (in key order) are sorted. etcd 3.4 with q/c, q/b, q/a created
    // in that order, limit 1, sort_target CREATE: returns q/b (not q/c); with ASCEND: q/c.
    let mut env = env;
    env.put("q/c", "1");
    env.put("q/b", "1");
    env.put("q/a", "1");
    let r = env
        .store
        .range(&RangeRequest {
            limit: 1,
            sort_target: SortTarget::Create,
            ..prefix("q/")
        })
        .unwrap();
    assert_eq!(
        (keys(&r.kvs), r.more, r.count),
        (vec!["q/b".into()], true, 3)
    );
    let r = env
        .store
        .range(&RangeRequest {
            limit: 1,
            sort_target: SortTarget::Create,
            sort_order: SortOrder::Ascend,
            ..prefix("q/")
        })
        .unwrap();
    assert_eq!(keys(&r.kvs), ["q/c"]);
    // DESCEND by key
    let r = env
        .store
        .range(&RangeRequest {
            sort_order: SortOrder::Descend,
            ..prefix("s/")
        })
        .unwrap();
    assert_eq!(keys(&r.kvs), ["s/c", "s/b", "s/a"]);
}

#[test]
fn txn_compares_over_a_range() {
    let mut env = sorted_setup();
    let cmp = |key: &str, end: &str, target, result| Compare {
        key: key.into(),
        range_end: end.into(),
        target,
        result,
    };
    // version > 1 over s/: s/b and s/c have version 1 -> false -> failure branch
    let t = TxnRequest {
        compare: vec![cmp(
            "s/",
            "s0",
            CompareTarget::Version(1),
            CompareResult::Greater,
        )],
        success: vec![op_put("yes", "1")],
        failure: vec![op_get("s/a")],
    };
    let resp = env.txn(t).unwrap();
    assert!(!resp.succeeded);
    assert_eq!(resp.revision, 5);
    // create > 0 over s/: all exist -> true
    let t = TxnRequest {
        compare: vec![cmp(
            "s/",
            "s0",
            CompareTarget::Create(0),
            CompareResult::Greater,
        )],
        ..Default::default()
    };
    assert!(env.txn(t).unwrap().succeeded);
    // over an empty range: compares against a zero key-value (create == 0 holds) ...
    let t = TxnRequest {
        compare: vec![cmp(
            "nokey/",
            "nokey0",
            CompareTarget::Create(0),
            CompareResult::Equal,
        )],
        ..Default::default()
    };
    assert!(env.txn(t).unwrap().succeeded);
    // ... except VALUE, which is always false for missing keys
    let t = TxnRequest {
        compare: vec![cmp(
            "nokey/",
            "nokey0",
            CompareTarget::Value(vec![]),
            CompareResult::Equal,
        )],
        ..Default::default()
    };
    let resp = env.txn(t).unwrap();
    assert!(!resp.succeeded);
    assert!(resp.responses.is_empty());
    // lease compare: 0 for keys without lease
    let t = TxnRequest {
        compare: vec![cmp(
            "s/",
            "s0",
            CompareTarget::Lease(0),
            CompareResult::Equal,
        )],
        ..Default::default()
    };
    assert!(env.txn(t).unwrap().succeeded);
}

#[test]
fn leases_grant_attach_revoke() {
    let mut env = sorted_setup();
    let grant =
        |env: &mut Env, id, ttl| env.apply(Request::LeaseGrant(LeaseGrantRequest { id, ttl }));
    // TTL below the minimum is raised to it: {"ID":"100","TTL":"2"}
    assert_eq!(
        grant(&mut env, 100, 1),
        Ok(Response::LeaseGrant(LeaseGrantResponse {
            revision: 5,
            id: 100,
            ttl: 2
        }))
    );
    assert_eq!(grant(&mut env, 100, 10), Err(Error::LeaseExists));
    assert_eq!(
        grant(&mut env, 101, MAX_LEASE_TTL + 1),
        Err(Error::LeaseTtlTooLarge)
    );
    // etcd 3.4: {"TTL":-5,"ID":777} -> {"ID":"777","TTL":"2"}
    assert_eq!(
        grant(&mut env, 777, -5),
        Ok(Response::LeaseGrant(LeaseGrantResponse {
            revision: 5,
            id: 777,
            ttl: 2
        }))
    );
    let with_lease = |k: &str, lease| {
        Request::Put(PutRequest {
            key: k.into(),
            value: b"1".to_vec(),
            lease,
            ..Default::default()
        })
    };
    assert_eq!(env.apply(with_lease("l/a", 555)), Err(Error::LeaseNotFound));
    assert!(env.apply(with_lease("l/a", 100)).is_ok()); // rev 6
    assert!(env.apply(with_lease("l/b", 100)).is_ok()); // rev 7
    let ttl = env.store.lease_time_to_live(100, true, 0).unwrap();
    assert_eq!(
        (ttl.granted_ttl, ttl.keys.clone()),
        (2, vec![b"l/a".to_vec(), b"l/b".to_vec()])
    );
    // revoke deletes both keys in one revision
    let stream = env.store.watch_stream(|| {});
    stream
        .watch(&WatchCreateRequest {
            key: b"l/".to_vec(),
            range_end: b"l0".to_vec(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        env.apply(Request::LeaseRevoke(LeaseRevokeRequest { id: 100 })),
        Ok(Response::LeaseRevoke(LeaseRevokeResponse { revision: 8 }))
    );
    assert_eq!(env.store.range(&prefix("l/")).unwrap().count, 0);
    let mut out = vec![];
    stream.drain_into(&mut out);
    let evs: Vec<_> = out.iter().flat_map(|r| r.events.clone()).collect();
    assert_eq!(evs.len(), 2);
    assert!(evs
        .iter()
        .all(|e| e.kind == EventType::Delete && e.kv.mod_revision == 8));
    // a lease without keys: revoking changes no revision
    assert!(grant(&mut env, 102, 60).is_ok());
    assert_eq!(
        env.apply(Request::LeaseRevoke(LeaseRevokeRequest { id: 102 })),
        Ok(Response::LeaseRevoke(LeaseRevokeResponse { revision: 8 }))
    );
    assert_eq!(
        env.apply(Request::LeaseRevoke(LeaseRevokeRequest { id: 102 })),
        Err(Error::LeaseNotFound)
    );
    assert_eq!(
        env.store.lease_time_to_live(102, false, 0),
        Err(Error::LeaseNotFound)
    );
}

#[test]
fn put_flags_and_empty_deletes() {
    let mut env = sorted_setup();
    let p = |k: &str, f: fn(&mut PutRequest)| {
        let mut r = PutRequest {
            key: k.into(),
            ..Default::default()
        };
        f(&mut r);
        Request::Put(r)
    };
    assert_eq!(
        env.apply(p("nothere", |r| r.ignore_value = true)),
        Err(Error::KeyNotFound)
    );
    assert_eq!(
        env.apply(p("s/a", |r| {
            r.ignore_value = true;
            r.value = b"x".to_vec()
        })),
        Err(Error::ValueProvided)
    );
    assert_eq!(
        env.apply(p("s/a", |r| {
            r.ignore_lease = true;
            r.lease = 5
        })),
        Err(Error::LeaseProvided)
    );
    assert_eq!(env.apply(p("", |_| {})), Err(Error::KeyNotProvided));
    let r = env
        .apply(p("s/a", |r| {
            r.ignore_lease = true;
            r.value = b"9".to_vec();
            r.prev_kv = true
        }))
        .unwrap();
    let Response::Put(r) = r else { panic!() };
    assert_eq!(r.revision, 6);
    let prev = r.prev_kv.unwrap();
    assert_eq!(
        (
            prev.create_revision,
            prev.mod_revision,
            prev.version,
            prev.value
        ),
        (2, 5, 2, b"4".to_vec())
    );
    // ignore_value keeps the value, bumps version
    env.apply(p("s/a", |r| r.ignore_value = true)).unwrap();
    let kv = &env.store.range(&get("s/a")).unwrap().kvs[0];
    assert_eq!(
        (kv.value.as_slice(), kv.version, kv.mod_revision),
        (&b"9"[..], 4, 7)
    );
    // deleting nothing: revision unchanged, deleted 0
    let r = env
        .apply(Request::DeleteRange(DeleteRangeRequest {
            key: b"nothere".to_vec(),
            ..Default::default()
        }))
        .unwrap();
    assert_eq!(
        r,
        Response::DeleteRange(DeleteRangeResponse {
            revision: 7,
            deleted: 0,
            prev_kvs: vec![]
        })
    );
}

#[test]
fn reads_around_the_compaction_point() {
    let mut env = sorted_setup();
    env.compact(3).unwrap();
    assert_eq!(
        env.store.range(&RangeRequest {
            revision: 2,
            ..get("s/a")
        }),
        Err(Error::Compacted)
    );
    let r = env
        .store
        .range(&RangeRequest {
            revision: 3,
            ..get("s/a")
        })
        .unwrap();
    assert_eq!(r.kvs[0].value, b"3");
    assert_eq!(
        r.revision, 5,
        "header revision is the current revision, not the one read"
    );
    assert_eq!(
        env.store.range(&RangeRequest {
            revision: 6,
            ..get("s/a")
        }),
        Err(Error::FutureRevision)
    );
    assert_eq!(env.store.hash_kv(2), Err(Error::Compacted));
    let h = env.store.hash_kv(0).unwrap();
    assert_eq!((h.compact_revision, h.hash_revision), (3, 5));
}

#[test]
fn watch_at_and_below_the_compaction_revision() {
    // etcd 3.4: put w1 (7), delete w1 (8), put w1 (9), compact 8; a watch from 7 gets
    // `created` then {canceled, compact_revision 8, no header revision}; a watch from 8 gets only
    // the put at 9: the tombstone at the compaction revision is gone with its generation.
    let mut env = Env::new();
    for i in 0..5 {
        env.put(&format!("pad{i}"), "x"); // revisions 2..6
    }
    env.put("w1", "1");
    env.apply(Request::DeleteRange(DeleteRangeRequest {
        key: b"w1".to_vec(),
        ..Default::default()
    }))
    .unwrap();
    env.put("w1", "2");
    env.compact(8).unwrap();
    let stream = env.store.watch_stream(|| {});
    let a = stream
        .watch(&WatchCreateRequest {
            key: b"w1".to_vec(),
            start_revision: 7,
            ..Default::default()
        })
        .unwrap();
    let b = stream
        .watch(&WatchCreateRequest {
            key: b"w1".to_vec(),
            start_revision: 8,
            ..Default::default()
        })
        .unwrap();
    env.store.sync_watchers().unwrap();
    let mut out = vec![];
    stream.drain_into(&mut out);
    let of = |id: i64| {
        out.iter()
            .filter(|r| r.watch_id == id)
            .cloned()
            .collect::<Vec<_>>()
    };
    let ra = of(a);
    assert_eq!(
        ra[0],
        WatchResponse {
            revision: 9,
            watch_id: a,
            created: true,
            ..Default::default()
        }
    );
    assert_eq!(
        ra[1],
        WatchResponse {
            revision: 0,
            watch_id: a,
            canceled: true,
            compact_revision: 8,
            ..Default::default()
        }
    );
    let rb = of(b);
    assert_eq!(rb.len(), 2);
    assert_eq!(rb[1].events.len(), 1);
    assert_eq!(
        (rb[1].events[0].kind, rb[1].events[0].kv.mod_revision),
        (EventType::Put, 9)
    );
    assert_eq!(rb[1].revision, 9);
    // a progress request on a stream whose watchers are all synced: watch_id -1, current revision
    let s2 = env.store.watch_stream(|| {});
    s2.request_progress();
    assert_eq!(
        s2.try_recv(),
        Some(WatchResponse {
            revision: 9,
            watch_id: -1,
            ..Default::default()
        })
    );
}
