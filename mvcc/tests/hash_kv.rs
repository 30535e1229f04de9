//! HashKV equals etcd's for the same history.
//!
//! Every expected number below was printed by a real etcd 3.4.23 (one member, `etcdctl endpoint
//! hashkv [--rev R] -w json`) after the same operations, applied there with etcdctl:
//!
//! ```text
//! endpoint hashkv                                    1084519789  (revision 1)
//! put foo bar                                        3305255506  (2)
//! put foo2 bar; put foo baz; del foo2                595593017   (5)
//! compaction 3                                       3784705895  (5); --rev 4: 1400964005;
//!                                                    --rev 5: 3784705895; --rev 3, --rev 2: compacted
//! lease grant 600 (id 45d7a21445c89c0b); put --lease=45d7a21445c89c0b k1 v1          (6)
//! txn: value("foo") = "baz" ? put a 1, put b "", del foo : put x y   SUCCESS          (7)
//!                                                    1067802559  (7); --rev 6: 3391750531
//! lease revoke 45d7a21445c89c0b                      43028430    (8)
//! compaction 7                                       1333872713  (8)
//! del "" --from-key                                  1623953404  (9)
//! ```
//! The last step covers an etcd quirk: when the index keeps nothing at the hash revision (every
//! key deleted), the revisions at or below the compaction point are all hashed.

mod common;

use common::*;
use keel_mvcc::*;

const LEASE: i64 = 0x45d7_a214_45c8_9c0b;

fn apply(store: &Store, idx: &mut u64, req: Request) {
    *idx += 1;
    store.apply(*idx, req).expect("apply");
}

fn delete(key: &[u8], range_end: &[u8]) -> Request {
    Request::DeleteRange(DeleteRangeRequest {
        key: key.to_vec(),
        range_end: range_end.to_vec(),
        prev_kv: false,
    })
}

fn compact(revision: i64) -> Request {
    Request::Compact(CompactionRequest {
        revision,
        physical: false,
    })
}

fn put_op(key: &str, value: &str) -> RequestOp {
    RequestOp::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    })
}

/// HashKV at `revision` (0 = current) as (hash, compact revision, hash revision).
fn hash(store: &Store, revision: i64) -> (u32, i64, i64) {
    let h = store.hash_kv(revision).expect("hash_kv");
    (h.hash, h.compact_revision, h.hash_revision)
}

#[test]
fn hash_kv_matches_etcd_3_4() {
    let dir = TempDir::new("hashkv");
    let mut store = open(&dir);
    let mut idx = 0;
    assert_eq!(hash(&store, 0), (1084519789, -1, 1));

    apply(&store, &mut idx, put("foo", "bar"));
    assert_eq!(hash(&store, 0), (3305255506, -1, 2));

    apply(&store, &mut idx, put("foo2", "bar"));
    apply(&store, &mut idx, put("foo", "baz"));
    apply(&store, &mut idx, delete(b"foo2", b""));
    assert_eq!(hash(&store, 0), (595593017, -1, 5));

    apply(&store, &mut idx, compact(3));
    assert_eq!(hash(&store, 0), (3784705895, 3, 5));
    assert_eq!(hash(&store, 5), (3784705895, 3, 5));
    assert_eq!(hash(&store, 4), (1400964005, 3, 4));
    // etcd 3.4: the compaction revision itself is already "compacted" for HashKV
    assert_eq!(store.hash_kv(3), Err(Error::Compacted));
    assert_eq!(store.hash_kv(2), Err(Error::Compacted));
    assert_eq!(store.hash_kv(6), Err(Error::FutureRevision));

    apply(
        &store,
        &mut idx,
        Request::LeaseGrant(LeaseGrantRequest {
            id: LEASE,
            ttl: 600,
        }),
    );
    apply(
        &store,
        &mut idx,
        Request::Put(PutRequest {
            key: b"k1".to_vec(),
            value: b"v1".to_vec(),
            lease: LEASE,
            ..Default::default()
        }),
    );
    apply(
        &store,
        &mut idx,
        Request::Txn(TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal,
                target: CompareTarget::Value(b"baz".to_vec()),
                key: b"foo".to_vec(),
                range_end: vec![],
            }],
            success: vec![
                put_op("a", "1"),
                put_op("b", ""),
                RequestOp::DeleteRange(DeleteRangeRequest {
                    key: b"foo".to_vec(),
                    ..Default::default()
                }),
            ],
            failure: vec![put_op("x", "y")],
        }),
    );
    assert_eq!(store.current_revision(), 7);
    assert_eq!(hash(&store, 0), (1067802559, 3, 7));
    assert_eq!(hash(&store, 6), (3391750531, 3, 6));

    apply(
        &store,
        &mut idx,
        Request::LeaseRevoke(LeaseRevokeRequest { id: LEASE }),
    );
    assert_eq!(hash(&store, 0), (43028430, 3, 8));

    apply(&store, &mut idx, compact(7));
    assert_eq!(hash(&store, 0), (1333872713, 7, 8));

    // A restart rebuilds the index from the stored history: same hash.
    drop(store);
    store = open(&dir);
    assert_eq!(hash(&store, 0), (1333872713, 7, 8));

    // etcdctl's `del "" --from-key` is key "\0", range end "\0" (everything).
    apply(&store, &mut idx, delete(b"\0", b"\0"));
    assert_eq!(store.current_revision(), 9);
    assert_eq!(hash(&store, 0), (1623953404, 7, 9));
    drop(store);
    store = open(&dir);
    assert_eq!(hash(&store, 0), (1623953404, 7, 9));
}

#[test]
fn members_with_the_same_log_agree_and_a_different_value_changes_the_hash() {
    let (a_dir, b_dir) = (TempDir::new("hashkv-a"), TempDir::new("hashkv-b"));
    let (a, b) = (open(&a_dir), open(&b_dir));
    let (mut ia, mut ib) = (0, 0);
    for i in 0..50 {
        let key = format!("k{}", i % 7);
        apply(&a, &mut ia, put(&key, &i.to_string()));
        apply(&b, &mut ib, put(&key, &i.to_string()));
    }
    apply(&a, &mut ia, compact(20));
    apply(&b, &mut ib, compact(20));
    assert_eq!(a.hash_kv(0).unwrap(), b.hash_kv(0).unwrap());
    assert_eq!(a.hash_kv(30).unwrap(), b.hash_kv(30).unwrap());
    apply(&a, &mut ia, put("k1", "x"));
    apply(&b, &mut ib, put("k1", "y"));
    assert_ne!(a.hash_kv(0).unwrap().hash, b.hash_kv(0).unwrap().hash);
    // ... but history up to the common revision still agrees
    assert_eq!(a.hash_kv(51).unwrap(), b.hash_kv(51).unwrap());
}
