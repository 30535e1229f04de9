//! Server-owned meta blobs (`Request::SetMeta`): each key is stored with the consistent index
//! of the entry that set it, independently of the others, survives reopening, travels in
//! snapshots, and `SetMembership` is the same blob as `SetMeta(MetaKey::Membership, ..)`.

mod common;

use common::*;
use keel_mvcc::*;

#[test]
fn meta_blobs_are_independent_durable_and_travel_in_snapshots() {
    let dir = TempDir::new("meta_blobs");
    let store = Store::open_path(dir.db(), StoreConfig::default()).unwrap();
    assert_eq!(store.meta(MetaKey::Alarms).unwrap(), None);
    assert_eq!(store.meta(MetaKey::Membership).unwrap(), None);
    let res = store
        .apply(3, Request::SetMeta(MetaKey::Alarms, b"a1".to_vec()))
        .unwrap();
    assert!(matches!(res, Response::Noop { revision: 1 }));
    // Setting the alarms does not touch the membership, and the reverse.
    assert_eq!(store.membership().unwrap(), None);
    store
        .apply(4, Request::SetMembership(b"m1".to_vec()))
        .unwrap();
    assert_eq!(
        store.meta(MetaKey::Alarms).unwrap().as_deref(),
        Some(&b"a1"[..])
    );
    assert_eq!(
        store.meta(MetaKey::Membership).unwrap().as_deref(),
        Some(&b"m1"[..])
    );
    // The generic form of the membership request writes the same blob.
    store
        .apply(5, Request::SetMeta(MetaKey::Membership, b"m2".to_vec()))
        .unwrap();
    assert_eq!(store.membership().unwrap().as_deref(), Some(&b"m2"[..]));
    // An empty blob is a value, not an absence (no alarm raised).
    store
        .apply(6, Request::SetMeta(MetaKey::Alarms, Vec::new()))
        .unwrap();
    assert_eq!(
        store.meta(MetaKey::Alarms).unwrap().as_deref(),
        Some(&b""[..])
    );
    store
        .apply(7, Request::SetMeta(MetaKey::Alarms, b"a2".to_vec()))
        .unwrap();
    // Already applied (index <= consistent index): must not overwrite.
    assert!(store
        .apply(7, Request::SetMeta(MetaKey::Alarms, b"stale".to_vec()))
        .is_err());
    assert_eq!(
        store.meta(MetaKey::Alarms).unwrap().as_deref(),
        Some(&b"a2"[..])
    );
    let mut snap = Vec::new();
    store.snapshot_to(&mut snap).unwrap();
    drop(store);

    let store = Store::open_path(dir.db(), StoreConfig::default()).unwrap();
    assert_eq!(store.consistent_index(), 7);
    assert_eq!(
        store.meta(MetaKey::Alarms).unwrap().as_deref(),
        Some(&b"a2"[..])
    );
    assert_eq!(store.membership().unwrap().as_deref(), Some(&b"m2"[..]));

    let restored_path = dir.0.join("restored.db");
    let restored =
        Store::restore_path(&mut &snap[..], &restored_path, StoreConfig::default()).unwrap();
    assert_eq!(
        restored.meta(MetaKey::Alarms).unwrap().as_deref(),
        Some(&b"a2"[..])
    );
    assert_eq!(restored.membership().unwrap().as_deref(), Some(&b"m2"[..]));
}

#[test]
fn meta_keys_are_distinct() {
    assert_ne!(MetaKey::Alarms.key(), MetaKey::Membership.key());
    assert_eq!(MetaKey::Membership.key(), b"membership");
}
