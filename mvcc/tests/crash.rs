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

/// Deferred mode: the workload is applied with `apply_batch_deferred` (which must not touch
/// the disk), committed once part-way, then the rest is committed by one `commit_pending`
/// during which the power is cut at every write or sync. The reopened store's durable index is
/// either the old commit's or the new one's, and replaying the log after it gives exactly the
/// state of a store that applied everything durably and never crashed (ranges, leases, HashKV
/// and the whole-store hash).
#[test]
fn power_cut_during_deferred_commit_keeps_old_or_new_state() {
    let batches = workload();
    let split = 8; // batches before the first commit
    let old_durable = batches[split - 1].last().unwrap().0;
    let last = batches.last().unwrap().last().unwrap().0;
    // the reference: every batch applied durably, no crash
    let reference = open_mem(MemStorage::new()).unwrap();
    for b in &batches {
        reference.apply_batch(b);
    }
    let want_range = reference.range(&everything()).unwrap();
    let want_hash_kv = reference.hash_kv(0).unwrap();
    let want_hash = reference.hash().unwrap();
    let want_leases = reference.lease_list();

    // Applies the workload in deferred mode up to the final commit (not included).
    let run_until_final_commit = |storage: &MemStorage| -> Store {
        let store = open_mem(storage.clone()).unwrap();
        for (n, b) in batches.iter().enumerate() {
            let ops_before = storage.ops();
            for r in store.apply_batch_deferred(b) {
                assert!(!matches!(r, Err(Error::Storage(_) | Error::Corrupt(_))));
            }
            assert_eq!(
                storage.ops(),
                ops_before,
                "a deferred batch touched the disk"
            );
            if n + 1 == split {
                let stats = store.commit_pending().unwrap();
                assert_eq!(stats.entries as u64, old_durable);
                assert_eq!(store.durable_index(), old_durable);
            }
        }
        assert_eq!(store.durable_index(), old_durable);
        assert_eq!(store.consistent_index(), last);
        assert_eq!(store.pending_entries() as u64, last - old_durable);
        store
    };

    let clean = MemStorage::new();
    let store = run_until_final_commit(&clean);
    let commit_start = clean.ops();
    let stats = store.commit_pending().unwrap();
    assert_eq!(stats.entries as u64, last - old_durable);
    let commit_end = clean.ops();
    assert!(commit_end > commit_start, "the commit wrote nothing");
    drop(store);

    let mut seen_old = false;
    let mut seen_new = false;
    for fail_at in commit_start..=commit_end {
        for mode in [CrashMode::LoseUnsynced, CrashMode::Torn(fail_at * 17 + 3)] {
            let storage = MemStorage::new();
            let store = run_until_final_commit(&storage);
            storage.fail_at_op(Some(fail_at));
            let committed = store.commit_pending();
            if committed.is_err() {
                // poisoned until reopened
                assert!(matches!(store.range(&everything()), Err(Error::Storage(_))));
                assert!(store
                    .apply_batch_deferred(&batches[0])
                    .iter()
                    .all(|r| r.is_err()));
            }
            drop(store);
            let recovered = open_mem(MemStorage::from_bytes(storage.crash_image(mode)))
                .expect("a crash image must reopen");
            let durable = recovered.durable_index();
            assert_eq!(recovered.consistent_index(), durable);
            assert!(
                durable == old_durable || durable == last,
                "durable index {durable} is neither {old_durable} nor {last} (op {fail_at}, {mode:?})"
            );
            if committed.is_ok() {
                assert_eq!(durable, last, "an acknowledged commit was lost");
            }
            seen_old |= durable == old_durable;
            seen_new |= durable == last;
            // the server replays the log after the durable index
            let replay: Vec<(u64, Request)> = batches
                .iter()
                .flatten()
                .filter(|(i, _)| *i > durable)
                .cloned()
                .collect();
            for r in recovered.apply_batch_deferred(&replay) {
                assert!(!matches!(r, Err(Error::Storage(_) | Error::Corrupt(_))));
            }
            recovered.commit_pending().unwrap();
            assert_eq!(recovered.range(&everything()).unwrap(), want_range);
            assert_eq!(recovered.lease_list(), want_leases);
            assert_eq!(recovered.hash_kv(0).unwrap(), want_hash_kv);
            assert_eq!(recovered.hash().unwrap(), want_hash);
        }
    }
    assert!(
        seen_old && seen_new,
        "the sweep missed a side of the commit"
    );
}
