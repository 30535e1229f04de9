//! Bad bytes and failing disks give typed errors, never panics.

mod common;

use common::*;
use keel_btree::{Db, MemStorage, Options};
use keel_mvcc::backend::{Backend, Bucket, WriteOp};
use keel_mvcc::btree_backend::BtreeBackend;
use keel_mvcc::*;
use std::sync::Arc;

#[test]
fn a_file_that_is_not_a_database_is_a_typed_error() {
    let dir = TempDir::new("garbage");
    std::fs::write(dir.db(), vec![0x5a; 20_000]).unwrap();
    match Store::open_path(dir.db(), StoreConfig::default()) {
        Err(Error::Corrupt(_)) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn malformed_records_in_any_bucket_are_typed_errors() {
    let rev_key = Revision::new(2, 0).to_key(false);
    let cases: Vec<WriteOp<'_>> = vec![
        WriteOp::Put(Bucket::Key, b"short", b"x"),
        WriteOp::Put(Bucket::Key, &rev_key, &[1, 2, 3]),
        WriteOp::Put(Bucket::Lease, &[1, 2], &[1]),
        WriteOp::Put(Bucket::Meta, b"consistent_index", &[1, 2, 3]),
        WriteOp::Put(Bucket::Meta, b"compact_rev", &[]),
    ];
    for op in cases {
        let backend = MemBackend::new();
        backend.commit(&[op].into_iter().collect()).unwrap();
        match Store::open(Box::new(backend), StoreConfig::default()) {
            Err(Error::Corrupt(_)) => {}
            other => panic!("{op:?}: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn a_failing_disk_poisons_the_store_with_storage_errors() {
    let storage = MemStorage::new();
    let db = Db::open_storage(Arc::new(storage.clone()), Options::default()).unwrap();
    let store = Store::open(
        Box::new(BtreeBackend::from_db(db).unwrap()),
        StoreConfig::default(),
    )
    .unwrap();
    store.apply(1, put("a", "1")).unwrap();
    storage.fail_at_op(Some(storage.ops())); // the disk dies now
    let r = store.apply(2, put("b", "1"));
    assert!(matches!(r, Err(Error::Storage(_))), "{r:?}");
    let said = r.unwrap_err().etcd_message();
    assert_eq!(
        said.matches("storage error").count(),
        1,
        "said once: {said}"
    );
    // every later call reports the failure instead of serving state the disk does not have
    assert!(matches!(
        store.apply(3, put("c", "1")),
        Err(Error::Storage(_))
    ));
    assert!(matches!(store.range(&get("a")), Err(Error::Storage(_))));
    assert!(matches!(store.hash_kv(0), Err(Error::Storage(_))));
    assert!(Error::Storage("x".into())
        .etcd_message()
        .starts_with("etcdserver: "));
}
