//! Fault injection: failed writes, fsyncs, renames and preallocations reach every waiting
//! producer as typed errors, poison the WAL, and lose nothing that was acknowledged.

mod common;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use common::*;
use keel_wal::{Batch, IoOp, Wal, WalError, WalOptions};

/// A hook that, once `armed` is set, fails the `n`-th operation `op` with `kind`, and every
/// later one too (a dead disk stays dead).
fn fail_from(op: IoOp, n: u64, kind: io::ErrorKind) -> (keel_wal::FaultHook, Arc<AtomicBool>) {
    let count = Arc::new(AtomicU64::new(0));
    let armed = Arc::new(AtomicBool::new(false));
    let a = armed.clone();
    let hook: keel_wal::FaultHook = Arc::new(move |o, _path| {
        if a.load(Ordering::SeqCst) && o == op && count.fetch_add(1, Ordering::SeqCst) + 1 >= n {
            return Err(io::Error::new(kind, "injected fault"));
        }
        Ok(())
    });
    (hook, armed)
}

/// Eight producers append until the WAL fails; returns (acknowledged indexes, errors seen).
fn run_until_failure(wal: &Arc<Wal>) -> (Vec<u64>, Vec<WalError>) {
    let next = Arc::new(Mutex::new(1u64));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (wal, next, acked, errors) =
                (wal.clone(), next.clone(), acked.clone(), errors.clone());
            std::thread::spawn(move || loop {
                let (tx, rx) = mpsc::sync_channel(1);
                let index = {
                    let mut n = next.lock().unwrap();
                    let b = Batch::entries(vec![entry(*n, 1, 64)]);
                    if let Err(e) = wal.submit(b, Box::new(move |r| tx.send(r).unwrap())) {
                        errors.lock().unwrap().push(e);
                        return;
                    }
                    *n += 1;
                    *n - 1
                };
                match rx.recv().unwrap() {
                    Ok(()) => acked.lock().unwrap().push(index),
                    Err(e) => {
                        errors.lock().unwrap().push(e);
                        return;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let a = acked.lock().unwrap().clone();
    let e = errors.lock().unwrap().clone();
    (a, e)
}

/// Reopen without faults: every acknowledged entry is there, and what is there is a contiguous
/// prefix of what was submitted.
fn check_nothing_acknowledged_is_lost(dir: &std::path::Path, acked: &[u64], seg: u64) {
    let (_, rec) = Wal::open_with(dir, small_opts(seg)).unwrap();
    let max_acked = acked.iter().copied().max().unwrap_or(0);
    assert!(
        rec.entries.len() as u64 >= max_acked,
        "recovered {} entries, {max_acked} were acknowledged",
        rec.entries.len()
    );
    for (i, e) in rec.entries.iter().enumerate() {
        assert_eq!(*e, entry(i as u64 + 1, 1, 64));
    }
}

fn check_poisoned(wal: &Wal, errors: &[WalError], expect: fn(&WalError) -> bool) {
    assert_eq!(errors.len(), 8, "every producer saw an error: {errors:?}");
    assert!(errors.iter().any(expect), "{errors:?}");
    assert!(errors
        .iter()
        .all(|e| expect(e) || matches!(e, WalError::Poisoned { .. })));
    assert!(wal.poisoned().is_some());
    let later = wal.append_sync(Batch::default());
    assert!(matches!(later, Err(WalError::Poisoned { .. })), "{later:?}");
}

#[test]
fn fsync_failure_reaches_every_producer_and_poisons() {
    let d = TempDir::new("fsync-fail");
    let (hook, armed) = fail_from(IoOp::Sync, 40, io::ErrorKind::Other);
    let opts = WalOptions {
        fault_hook: Some(hook),
        ..small_opts(1 << 20)
    };
    let wal = Arc::new(Wal::create_with(d.path(), META, opts).unwrap());
    armed.store(true, Ordering::SeqCst);
    let (acked, errors) = run_until_failure(&wal);
    assert!(acked.len() > 10);
    check_poisoned(&wal, &errors, |e| {
        matches!(
            e,
            WalError::Io {
                op: "fdatasync",
                ..
            }
        )
    });
    assert!(wal.stats().group_commits < 40);
    drop(Arc::try_unwrap(wal).unwrap());
    check_nothing_acknowledged_is_lost(d.path(), &acked, 1 << 20);
}

#[test]
fn full_disk_on_write_is_a_typed_error() {
    let d = TempDir::new("enospc");
    let (hook, armed) = fail_from(IoOp::Write, 30, io::ErrorKind::StorageFull);
    let opts = WalOptions {
        fault_hook: Some(hook),
        ..small_opts(1 << 20)
    };
    let wal = Arc::new(Wal::create_with(d.path(), META, opts).unwrap());
    armed.store(true, Ordering::SeqCst);
    let (acked, errors) = run_until_failure(&wal);
    check_poisoned(&wal, &errors, |e| {
        matches!(e, WalError::DiskFull { op: "write", .. })
    });
    assert!(errors
        .iter()
        .any(|e| e.to_string().contains("no space left")));
    drop(Arc::try_unwrap(wal).unwrap());
    check_nothing_acknowledged_is_lost(d.path(), &acked, 1 << 20);
}

#[test]
fn failed_segment_cut_poisons_without_losing_acknowledged_records() {
    for op in [
        IoOp::Rename,
        IoOp::Preallocate,
        IoOp::Truncate,
        IoOp::SyncDir,
    ] {
        let d = TempDir::new("cut-fail");
        // Armed after create: the first such operation of a segment cut (or of the background
        // preparation of the next segment, which surfaces at the cut) fails.
        let (hook, armed) = fail_from(op, 1, io::ErrorKind::Other);
        let opts = WalOptions {
            fault_hook: Some(hook),
            ..small_opts(2048)
        };
        let wal = Arc::new(Wal::create_with(d.path(), META, opts).unwrap());
        armed.store(true, Ordering::SeqCst);
        let (acked, errors) = run_until_failure(&wal);
        assert!(!acked.is_empty(), "{op:?}");
        // The cut runs after the group's producers were told "durable", so the producers that
        // see the failure are the queued ones: Poisoned, naming the injected fault.
        check_poisoned(
            &wal,
            &errors,
            |e| matches!(e, WalError::Poisoned { cause } if cause.contains("injected fault")),
        );
        drop(Arc::try_unwrap(wal).unwrap());
        check_nothing_acknowledged_is_lost(d.path(), &acked, 2048);
    }
}

#[test]
fn failed_release_is_reported_and_poisons() {
    let d = TempDir::new("release-fail");
    let (hook, armed) = fail_from(IoOp::Remove, 1, io::ErrorKind::PermissionDenied);
    let opts = WalOptions {
        fault_hook: Some(hook),
        ..small_opts(512)
    };
    let wal = Wal::create_with(d.path(), META, opts).unwrap();
    for i in 1..=40 {
        wal.append_sync(Batch::entries(vec![entry(i, 1, 64)]))
            .unwrap();
    }
    wal.append_sync(Batch {
        snapshot: Some(keel_wal::SnapshotMarker { index: 30, term: 1 }),
        ..Batch::default()
    })
    .unwrap();
    armed.store(true, Ordering::SeqCst);
    let r = wal.release_to(30);
    assert!(
        matches!(
            &r,
            Err(WalError::Io {
                op: "remove",
                kind: io::ErrorKind::PermissionDenied,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(wal.poisoned().is_some());
    drop(wal);
    let (_, rec) = Wal::open_with(d.path(), small_opts(512)).unwrap();
    assert_eq!(rec.entries.len(), 10);
    assert_eq!(rec.entries[0], entry(31, 1, 64));
}

#[test]
fn a_panicking_callback_does_not_stop_the_writer() {
    let d = TempDir::new("panic-callback");
    let (logger, lines) = capture_logger();
    let opts = WalOptions {
        logger,
        ..small_opts(1 << 20)
    };
    let wal = Wal::create_with(d.path(), META, opts).unwrap();
    wal.submit(
        Batch::entries(vec![entry(1, 1, 8)]),
        Box::new(|_| panic!("callback bug")),
    )
    .unwrap();
    wal.append_sync(Batch::entries(vec![entry(2, 1, 8)]))
        .unwrap();
    assert!(lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("callback panicked")));
    drop(wal);
    let (_, rec) = Wal::open_with(d.path(), small_opts(1 << 20)).unwrap();
    assert_eq!(rec.entries.len(), 2);
}
