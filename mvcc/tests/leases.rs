//! Leases: leader-local deadlines from a caller clock, expiry through a replicated revoke,
//! renewal, checkpoints surviving a leader change, and leases with their keys surviving a
//! restart. Also snapshots: a store restored from another's snapshot is identical.

mod common;

use common::*;
use keel_mvcc::*;

fn grant(store: &Store, idx: &mut u64, id: i64, ttl: i64) {
    *idx += 1;
    store
        .apply(*idx, Request::LeaseGrant(LeaseGrantRequest { id, ttl }))
        .unwrap();
}

fn put_lease(store: &Store, idx: &mut u64, key: &str, lease: i64) {
    *idx += 1;
    store
        .apply(
            *idx,
            Request::Put(PutRequest {
                key: key.into(),
                value: b"v".to_vec(),
                lease,
                ..Default::default()
            }),
        )
        .unwrap();
}

#[test]
fn expiry_is_decided_by_the_callers_clock_and_applied_as_a_revoke() {
    let dir = TempDir::new("lease");
    let store = open(&dir);
    let mut idx = 0;
    grant(&store, &mut idx, 1, 10);
    grant(&store, &mut idx, 2, 30);
    put_lease(&store, &mut idx, "a", 1);
    put_lease(&store, &mut idx, "b", 1);
    put_lease(&store, &mut idx, "c", 2);
    // a follower tracks no deadlines
    assert!(store.lease_expired(1_000_000).is_empty());
    assert_eq!(store.lease_time_to_live(1, false, 0).unwrap().ttl, 10);
    // becoming leader at t=1000 ms starts every deadline
    store.lease_promote(1_000);
    assert_eq!(
        store.lease_time_to_live(1, false, 4_500).unwrap().ttl,
        6,
        "TTL is truncated like etcd's"
    );
    assert!(store.lease_expired(10_999).is_empty());
    assert_eq!(store.lease_expired(11_000), vec![1]);
    // keep-alive on lease 2 at t=20s pushes it to 50 s
    assert_eq!(
        store.lease_renew(2, 20_000).unwrap(),
        LeaseRenewal {
            ttl: 30,
            clear_checkpoint: false
        }
    );
    assert_eq!(store.lease_expired(45_000), vec![1]);
    assert_eq!(
        store.lease_renew(1, 45_000),
        Err(Error::LeaseNotFound),
        "an expired lease cannot be renewed"
    );
    assert_eq!(store.lease_time_to_live(1, false, 45_000).unwrap().ttl, -1);
    // the leader proposes the revoke; applying it deletes the keys in one revision
    let rev = store.current_revision();
    idx += 1;
    store
        .apply(idx, Request::LeaseRevoke(LeaseRevokeRequest { id: 1 }))
        .unwrap();
    assert_eq!(store.current_revision(), rev + 1);
    assert_eq!(store.range(&prefix("a")).unwrap().count, 0);
    assert_eq!(store.range(&get("b")).unwrap().count, 0);
    assert_eq!(store.range(&get("c")).unwrap().count, 1);
    assert_eq!(store.lease_list(), vec![2]);
    // losing leadership forgets deadlines
    store.lease_demote();
    assert!(store.lease_expired(u64::MAX).is_empty());
}

#[test]
fn checkpoints_survive_a_leader_change_and_leases_survive_restart() {
    let dir = TempDir::new("lease-restart");
    let mut idx = 0;
    {
        let store = open(&dir);
        grant(&store, &mut idx, 7, 100);
        put_lease(&store, &mut idx, "x/1", 7);
        put_lease(&store, &mut idx, "x/2", 7);
        // re-attach x/2 to no lease: it must leave lease 7
        idx += 1;
        store.apply(idx, put("x/2", "plain")).unwrap();
        store.lease_promote(0);
        // at t=60 s, 40 s remain: the leader checkpoints it through the log
        let cps = store.lease_checkpoints(60_000);
        assert_eq!(
            cps,
            vec![LeaseCheckpoint {
                id: 7,
                remaining_ttl: 40
            }]
        );
        idx += 1;
        store.apply(idx, Request::LeaseCheckpoint(cps)).unwrap();
    }
    // restart (e.g. on another member that becomes leader)
    let store = open(&dir);
    let ttl = store.lease_time_to_live(7, true, 0).unwrap();
    assert_eq!(ttl.keys, vec![b"x/1".to_vec()]);
    assert_eq!(
        (ttl.ttl, ttl.granted_ttl),
        (40, 100),
        "a follower reports the checkpointed TTL"
    );
    store.lease_promote(1_000);
    assert!(store.lease_expired(40_999).is_empty());
    assert_eq!(
        store.lease_expired(41_000),
        vec![7],
        "deadline = promotion + checkpointed 40 s, not 100 s"
    );
    // a renewal asks for the checkpoint to be cleared
    assert!(store.lease_renew(7, 30_000).unwrap().clear_checkpoint);
    // revoke after restart still finds the attached key
    idx += 1;
    store
        .apply(idx, Request::LeaseRevoke(LeaseRevokeRequest { id: 7 }))
        .unwrap();
    assert_eq!(store.range(&prefix("x/")).unwrap().count, 1);
}

#[test]
fn server_chosen_lease_ids_are_deterministic_and_positive() {
    let a = TempDir::new("lease-id-a");
    let b = TempDir::new("lease-id-b");
    let (sa, sb) = (open(&a), open(&b));
    for i in 1..=20u64 {
        let req = Request::LeaseGrant(LeaseGrantRequest { id: 0, ttl: 5 });
        let (ra, rb) = (sa.apply(i, req.clone()).unwrap(), sb.apply(i, req).unwrap());
        assert_eq!(ra, rb);
        let Response::LeaseGrant(g) = ra else {
            panic!()
        };
        assert!(g.id > 0);
    }
    assert_eq!(sa.lease_list().len(), 20);
}

#[test]
fn snapshot_restore_gives_an_identical_store() {
    let a = TempDir::new("snap-a");
    let store = open(&a);
    let mut idx = 0;
    grant(&store, &mut idx, 3, 50);
    for i in 0..200 {
        put_lease(
            &store,
            &mut idx,
            &format!("k{}", i % 37),
            if i % 5 == 0 { 3 } else { 0 },
        );
    }
    idx += 1;
    store
        .apply(
            idx,
            Request::Compact(CompactionRequest {
                revision: 100,
                physical: true,
            }),
        )
        .unwrap();
    let mut bytes = vec![];
    store.snapshot_to(&mut bytes).unwrap();
    let b = TempDir::new("snap-b");
    let restored =
        Store::restore_path(&mut bytes.as_slice(), b.db(), StoreConfig::default()).unwrap();
    assert_eq!(restored.hash().unwrap(), store.hash().unwrap());
    assert_eq!(restored.hash_kv(0).unwrap(), store.hash_kv(0).unwrap());
    let (sa, sb) = (store.status(), restored.status());
    assert_eq!(
        (
            sa.revision,
            sa.compact_revision,
            sa.consistent_index,
            sa.keys
        ),
        (
            sb.revision,
            sb.compact_revision,
            sb.consistent_index,
            sb.keys
        )
    );
    assert_eq!(
        restored.lease_time_to_live(3, true, 0).unwrap(),
        store.lease_time_to_live(3, true, 0).unwrap()
    );
    let all = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    };
    assert_eq!(restored.range(&all).unwrap(), store.range(&all).unwrap());
    // a different history hashes differently
    idx += 1;
    restored.apply(idx, put("k1", "changed")).unwrap();
    assert_ne!(
        restored.hash_kv(0).unwrap().hash,
        store.hash_kv(0).unwrap().hash
    );
    restored.defragment().unwrap();
    assert_eq!(restored.range(&get("k1")).unwrap().kvs[0].value, b"changed");
}
