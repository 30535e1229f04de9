//! The server's membership blob is stored with the consistent index of the entry that set it,
//! survives reopening, and travels in snapshots.

mod common;

use common::*;
use keel_mvcc::*;

#[test]
fn membership_blob_is_durable_with_its_index_and_travels_in_snapshots() {
    let dir = TempDir::new("membership");
    let store = Store::open_path(dir.db(), StoreConfig::default()).unwrap();
    assert_eq!(store.membership().unwrap(), None);
    let res = store
        .apply(3, Request::SetMembership(b"v1".to_vec()))
        .unwrap();
    assert!(matches!(res, Response::Noop { revision: 1 }));
    store
        .apply(4, Request::SetMembership(b"v2".to_vec()))
        .unwrap();
    // Already applied (index <= consistent index): must not overwrite.
    assert!(store
        .apply(4, Request::SetMembership(b"stale".to_vec()))
        .is_err());
    assert_eq!(store.membership().unwrap().as_deref(), Some(&b"v2"[..]));
    let mut snap = Vec::new();
    store.snapshot_to(&mut snap).unwrap();
    drop(store);

    let store = Store::open_path(dir.db(), StoreConfig::default()).unwrap();
    assert_eq!(store.consistent_index(), 4);
    assert_eq!(store.membership().unwrap().as_deref(), Some(&b"v2"[..]));

    let restored_path = dir.0.join("restored.db");
    let restored =
        Store::restore_path(&mut &snap[..], &restored_path, StoreConfig::default()).unwrap();
    assert_eq!(restored.membership().unwrap().as_deref(), Some(&b"v2"[..]));
}
