//! Group commit: these tests fail if batching breaks (one fsync per append, or a next group
//! that does not accumulate while the current fsync runs).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};

use common::*;
use keel_wal::{Batch, IoOp, Wal, WalOptions};

#[test]
fn a_thousand_concurrent_appends_need_far_fewer_fsyncs() {
    const THREADS: usize = 100;
    const PER_THREAD: usize = 10;
    let d = TempDir::new("thousand");
    let wal = Arc::new(Wal::create_with(d.path(), META, small_opts(8 << 20)).unwrap());
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
