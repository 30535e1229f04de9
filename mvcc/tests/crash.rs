//! Crash consistency: the store runs on keel-btree over a fault-injecting in-memory file that
//! stops working at operation N (for every N of the workload); the "disk" left by a power cut
//! (unsynced writes lost or torn) is reopened. The recovered store must hold exactly the
//! requests up to its consistent index, at least every batch that was acknowledged, and
//! re-applying the whole log must skip what was applied and apply the rest once.

mod common;

use common::model::Model;
use common::*;
use keel_btree::{CrashMode, Db, MemStorage, Options};
use keel_mvcc::btree_backend::BtreeBackend;
use keel_mvcc::*;
use std::sync::Arc;

fn workload() -> Vec<Vec<(u64, Request)>> {
    let mut idx = 0;
    let mut batches = vec![];
    for b in 0..24 {
        let mut reqs = vec![];
        match b % 6 {
            0 => reqs.push(Request::LeaseGrant(LeaseGrantRequest {
                id: 100 + b,
                ttl: 10,
            })),
            3 => reqs.push(Request::LeaseRevoke(LeaseRevokeRequest { id: 100 + b - 3 })),
            5 => reqs.push(Request::Compact(CompactionRequest {
                revision: 2 + b * 2,
                physical: true,
            })),
            _ => {}
        }
        for j in 0..4 {
            let k = format!("k{}", (b * 4 + j) % 11);
            reqs.push(match (b + j) % 4 {
                0 => Request::DeleteRange(DeleteRangeRequest {
                    key: k.into(),
                    ..Default::default()
                }),
                1 => Request::Put(PutRequest {
                    key: k.into(),
                    value: vec![b as u8; 40],
                    lease: 100 + b - b % 6,
                    ..Default::default()
                }),
                _ => put(&k, &format!("{b}-{j}")),
            });
        }
        batches.push(
            reqs.into_iter()
                .map(|r| {
                    idx += 1;
                    (idx, r)
                })
                .collect(),
        );
    }
    batches
}

fn open_mem(storage: MemStorage) -> Result<Store, Error> {
    let db = Db::open_storage(Arc::new(storage), Options::default())
        .map_err(|e| Error::Storage(e.to_string()))?;
    Store::open(Box::new(BtreeBackend::from_db(db)?), StoreConfig::default())
}

fn everything() -> RangeRequest {
    RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    }
}

#[test]
fn power_cut_at_every_operation_recovers_a_committed_prefix() {
    let batches = workload();
    // total operations of a clean run
    let clean = MemStorage::new();
    let store = open_mem(clean.clone()).unwrap();
    let base_ops = clean.ops();
    for b in &batches {
        store.apply_batch(b);
    }
    let total_ops = clean.ops();
    drop(store);
    let mut checked = 0;
    for fail_at in base_ops..=total_ops {
        for mode in [CrashMode::LoseUnsynced, CrashMode::Torn(fail_at * 31 + 7)] {
            let storage = MemStorage::new();
            let store = open_mem(storage.clone()).unwrap();
            storage.fail_at_op(Some(fail_at));
            let mut acked = 0u64;
            for b in &batches {
                let results = store.apply_batch(b);
                if results.iter().any(|r| matches!(r, Err(Error::Storage(_)))) {
                    break;
                }
                acked = b.last().unwrap().0;
            }
            drop(store);
            let image = storage.crash_image(mode);
            let recovered =
                open_mem(MemStorage::from_bytes(image)).expect("a crash image must reopen");
            let ci = recovered.consistent_index();
            assert!(ci >= acked, "lost an acknowledged batch: ci {ci} < acked {acked} (fail at op {fail_at}, {mode:?})");
            // the recovered state is exactly the log prefix up to ci
            let mut model = Model::new();
            for (i, r) in batches.iter().flatten().filter(|(i, _)| *i <= ci) {
                let _ = model.apply(*i, r);
            }
            assert_eq!(
                recovered.current_revision(),
                model.rev(),
                "fail at op {fail_at}"
            );
            assert_eq!(
                recovered.range(&everything()),
                model.range(&everything(), model.rev(), None)
            );
            assert_eq!(
                recovered.lease_list(),
                model.leases.keys().copied().collect::<Vec<_>>()
            );
            // replaying the whole log: applied entries are skipped, the rest applied once
            for b in &batches {
                for ((i, _), r) in b.iter().zip(recovered.apply_batch(b)) {
                    if *i <= ci {
                        assert!(matches!(r, Err(Error::AlreadyApplied { .. })));
                    } else {
                        assert_eq!(
                            r,
                            model.apply(*i, &b.iter().find(|(j, _)| j == i).unwrap().1)
                        );
                    }
                }
            }
            assert_eq!(
                recovered.range(&everything()),
                model.range(&everything(), model.rev(), None)
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "sweep too small: {checked}");
}
