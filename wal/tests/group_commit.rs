//! Group commit: these tests fail if batching breaks (one fsync per append, or a next group
//! that does not accumulate while the current fsync runs).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};

use common::*;
use keel_wal::{Batch, IoOp, Wal, WalError, WalOptions};

#[test]
fn a_thousand_concurrent_appends_need_far_fewer_fsyncs() {
    const THREADS: usize = 100;
    const PER_THREAD: usize = 10;
    let d = TempDir::new("thousand");
    // The real fdatasync runs too; the hook adds 1 ms so that the test does not depend on how
    // fast this machine's disk happens to be (on a RAM-backed disk groups would be tiny).
    let opts = WalOptions {
        fault_hook: Some(Arc::new(|op, path| {
            if op == IoOp::Sync && path.extension().is_some_and(|e| e == "wal") {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Ok(())
        })),
        ..small_opts(8 << 20)
    };
    let wal = Arc::new(Wal::create_with(d.path(), META, opts).unwrap());
    let before = wal.stats();
    let next_index = Arc::new(Mutex::new(1u64));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (wal, next_index) = (wal.clone(), next_index.clone());
            std::thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    let (tx, rx) = mpsc::sync_channel(1);
                    {
                        // Raft assigns indexes in order; submit does not block, so holding the
                        // lock across it is cheap.
                        let mut n = next_index.lock().unwrap();
                        let b = Batch::entries(vec![entry(*n, 1, 256)]);
                        wal.submit(b, Box::new(move |r| tx.send(r).unwrap()))
                            .unwrap();
                        *n += 1;
                    }
                    rx.recv().unwrap().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let after = wal.stats();
    let appends = (THREADS * PER_THREAD) as u64;
    let fsyncs = after.fsyncs - before.fsyncs;
    let groups = after.group_commits - before.group_commits;
    eprintln!(
        "{appends} appends: {groups} group commits, {fsyncs} fsyncs, max {} batches per group",
        after.max_batches_per_group
    );
    assert_eq!(after.batches - before.batches, appends);
    assert!(
        fsyncs * 5 <= appends,
        "{fsyncs} fsyncs for {appends} appends"
    );
    assert!(groups <= fsyncs);
    assert!(after.max_batches_per_group > 10);
    drop(Arc::try_unwrap(wal).unwrap());
    let (_, rec) = Wal::open_with(d.path(), small_opts(8 << 20)).unwrap();
    assert_eq!(rec.entries.len() as u64, appends);
    for (i, e) in rec.entries.iter().enumerate() {
        assert_eq!(*e, entry(i as u64 + 1, 1, 256));
    }
}

#[derive(Default)]
struct Gate {
    armed: bool,
    blocked: bool,
    released: bool,
}

#[test]
fn the_next_group_accumulates_while_an_fsync_runs() {
    let d = TempDir::new("accumulate");
    let gate: Arc<(Mutex<Gate>, Condvar)> = Arc::default();
    let g = gate.clone();
    let opts = WalOptions {
        fault_hook: Some(Arc::new(move |op, path| {
            if op == IoOp::Sync && path.extension().is_some_and(|e| e == "wal") {
                let (m, cv) = &*g;
                let mut s = m.lock().unwrap();
                if s.armed {
                    s.armed = false;
                    s.blocked = true;
                    cv.notify_all();
                    while !s.released {
                        s = cv.wait(s).unwrap();
                    }
                }
            }
            Ok(())
        })),
        ..small_opts(8 << 20)
    };
    let wal = Wal::create_with(d.path(), META, opts).unwrap();
    let before = wal.stats();
    let done = Arc::new(AtomicUsize::new(0));
    gate.0.lock().unwrap().armed = true;
    let d1 = done.clone();
    wal.submit(
        Batch::entries(vec![entry(1, 1, 10)]),
        Box::new(move |r| {
            r.unwrap();
            d1.fetch_add(1, Ordering::SeqCst);
        }),
    )
    .unwrap();
    {
        let (m, cv) = &*gate;
        let mut s = m.lock().unwrap();
        while !s.blocked {
            s = cv.wait(s).unwrap();
        }
    }
    // The writer is inside the first group's fsync. Queue 50 more batches meanwhile.
    for i in 2..=51 {
        let d = done.clone();
        wal.submit(
            Batch::entries(vec![entry(i, 1, 10)]),
            Box::new(move |r| {
                r.unwrap();
                d.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(
        done.load(Ordering::SeqCst),
        0,
        "nothing is durable before its fsync"
    );
    {
        let (m, cv) = &*gate;
        m.lock().unwrap().released = true;
        cv.notify_all();
    }
    let t = std::time::Instant::now();
    while done.load(Ordering::SeqCst) < 51 {
        assert!(t.elapsed().as_secs() < 30, "batches never became durable");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let after = wal.stats();
    assert_eq!(after.group_commits - before.group_commits, 2);
    assert_eq!(after.max_batches_per_group, 50);
}

/// A hook that, once armed, holds the next segment fdatasync until released.
fn gated() -> (Arc<(Mutex<Gate>, Condvar)>, keel_wal::FaultHook) {
    let gate: Arc<(Mutex<Gate>, Condvar)> = Arc::default();
    let g = gate.clone();
    let hook: keel_wal::FaultHook = Arc::new(move |op, path| {
        if op == IoOp::Sync && path.extension().is_some_and(|e| e == "wal") {
            let (m, cv) = &*g;
            let mut s = m.lock().unwrap();
            if s.armed {
                s.armed = false;
                s.blocked = true;
                cv.notify_all();
                while !s.released {
                    s = cv.wait(s).unwrap();
                }
            }
        }
        Ok(())
    });
    (gate, hook)
}

fn block_first_group(wal: &Wal, gate: &Arc<(Mutex<Gate>, Condvar)>, done: &Arc<AtomicUsize>) {
    gate.0.lock().unwrap().armed = true;
    let d = done.clone();
    wal.submit(
        Batch::entries(vec![entry(1, 1, 10)]),
        Box::new(move |r| {
            r.unwrap();
            d.fetch_add(1, Ordering::SeqCst);
        }),
    )
    .unwrap();
    let (m, cv) = &**gate;
    let mut s = m.lock().unwrap();
    while !s.blocked {
        s = cv.wait(s).unwrap();
    }
}

fn release(gate: &Arc<(Mutex<Gate>, Condvar)>) {
    gate.0.lock().unwrap().released = true;
    gate.1.notify_all();
}

fn wait_for(done: &Arc<AtomicUsize>, n: usize) {
    let t = std::time::Instant::now();
    while done.load(Ordering::SeqCst) < n {
        assert!(t.elapsed().as_secs() < 30, "batches never became durable");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn a_full_queue_is_an_explicit_error_not_a_wait() {
    let d = TempDir::new("queue-full");
    let (gate, hook) = gated();
    let opts = WalOptions {
        fault_hook: Some(hook),
        queue_capacity: 10,
        ..small_opts(1 << 20)
    };
    let wal = Wal::create_with(d.path(), META, opts).unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    block_first_group(&wal, &gate, &done);
    for i in 2..=11 {
        let d = done.clone();
        wal.submit(
            Batch::entries(vec![entry(i, 1, 10)]),
            Box::new(move |r| {
                r.unwrap();
                d.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
    }
    let full = wal.submit(Batch::entries(vec![entry(12, 1, 10)]), Box::new(|_| {}));
    assert_eq!(
        full,
        Err(WalError::QueueFull {
            requests: 10,
            bytes: full.as_ref().err().map_or(0, |e| match e {
                WalError::QueueFull { bytes, .. } => *bytes,
                _ => 0,
            }),
        })
    );
    release(&gate);
    wait_for(&done, 11);
    // The rejected entry 12 was not queued: 12 is still the next index.
    wal.append_sync(Batch::entries(vec![entry(12, 1, 10)]))
        .unwrap();
    drop(wal);
    let (_, rec) = Wal::open_with(d.path(), small_opts(1 << 20)).unwrap();
    assert_eq!(rec.entries.len(), 12);
}

#[test]
fn a_group_stops_at_its_byte_budget() {
    let d = TempDir::new("group-budget");
    let (gate, hook) = gated();
    let opts = WalOptions {
        fault_hook: Some(hook),
        max_group_bytes: 1000,
        queue_capacity_bytes: 5000,
        ..small_opts(1 << 20)
    };
    let wal = Wal::create_with(d.path(), META, opts).unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    block_first_group(&wal, &gate, &done);
    let before = wal.stats();
    let mut queued = 0;
    for i in 2..=40 {
        let d = done.clone();
        match wal.submit(
            Batch::entries(vec![entry(i, 1, 200)]),
            Box::new(move |r| {
                r.unwrap();
                d.fetch_add(1, Ordering::SeqCst);
            }),
        ) {
            Ok(()) => queued += 1,
            Err(WalError::QueueFull { bytes, .. }) => {
                assert!(bytes <= 5000);
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    // ~376 bytes per request: the byte bound (5,000) stops the queue well before 39 requests.
    assert!((10..20).contains(&queued), "{queued} queued");
    release(&gate);
    wait_for(&done, queued + 1);
    let after = wal.stats();
    let groups = after.group_commits - before.group_commits;
    assert!(after.max_batches_per_group <= 2, "{after:?}");
    assert!(
        groups as usize >= queued / 2,
        "{groups} groups for {queued} batches"
    );
}

#[test]
fn the_fsync_observer_sees_every_fsync_the_stats_count() {
    let d = TempDir::new("observer");
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let opts = WalOptions {
        fsync_observer: Some(Arc::new(move |_d| {
            counter.fetch_add(1, Ordering::Relaxed);
        })),
        ..small_opts(8 << 20)
    };
    let wal = Wal::create_with(d.path(), META, opts).unwrap();
    for i in 1..=5u64 {
        wal.append_sync(Batch::entries(vec![keel_wal::Entry {
            index: i,
            term: 1,
            data: vec![i as u8; 10],
        }]))
        .unwrap();
    }
    let stats = wal.stats();
    assert!(stats.fsyncs >= 5, "{stats:?}");
    assert_eq!(seen.load(Ordering::Relaxed) as u64, stats.fsyncs);
}
