//! Model test: random sequences of append / overwrite / truncate-suffix / hard state /
//! compact (snapshot marker + release) / reopen, checked against an in-memory model after every
//! reopen. Case count: `PROPTEST_CASES` (default 64; raise it for a soak).

mod common;

use common::*;
use keel_wal::{Batch, HardState, SnapshotMarker, Wal, WalOptions};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Append `n` entries of `len` bytes, optionally in a new term, with a hard state.
    Append {
        n: u64,
        len: usize,
        new_term: bool,
        hs: bool,
    },
    /// A new leader overwrites the last `back` entries with `n` new ones.
    Overwrite { back: u64, n: u64 },
    /// Truncate the last `back` entries without replacing them.
    TruncateSuffix { back: u64 },
    /// Snapshot at `back` entries below the last one, then release segments below it.
    Compact { back: u64 },
    /// Several batches submitted without waiting (they share group commits).
    Burst { batches: u64 },
    /// Close and reopen; the recovered state must equal the model.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..5, 0usize..120, any::<bool>(), any::<bool>())
            .prop_map(|(n, len, new_term, hs)| Op::Append { n, len, new_term, hs }),
        2 => (1u64..6, 1u64..4).prop_map(|(back, n)| Op::Overwrite { back, n }),
        1 => (0u64..5).prop_map(|back| Op::TruncateSuffix { back }),
        1 => (0u64..10).prop_map(|back| Op::Compact { back }),
        1 => (2u64..8).prop_map(|batches| Op::Burst { batches }),
        2 => Just(Op::Reopen),
    ]
}

const SEG: u64 = 1024;

fn opts() -> WalOptions {
    let (logger, _) = capture_logger();
    WalOptions {
        logger,
        ..small_opts(SEG)
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let d = TempDir::new("model");
    let mut wal = Wal::create_with(d.path(), META, opts()).unwrap();
    let mut m = Model::default();
    m.apply(&keel_wal::Record::Metadata(META));
    let mut term = 1;
    for op in ops {
        let last = m.last_index();
        let snap = m.snap_index();
        match op {
            Op::Append {
                n,
                len,
                new_term,
                hs,
            } => {
                if new_term {
                    term += 1;
                }
                let b = Batch {
                    entries: (last + 1..=last + n).map(|i| entry(i, term, len)).collect(),
                    hard_state: hs.then_some(HardState {
                        term,
                        vote: term % 3,
                        commit: last,
                    }),
                    ..Batch::default()
                };
                wal.append_sync(b.clone()).unwrap();
                m.apply_batch(&b);
            }
            Op::Overwrite { back, n } => {
                term += 1;
                let from = last.saturating_sub(back).max(snap) + 1;
                let b = Batch::entries((from..from + n).map(|i| entry(i, term, 33)).collect());
                wal.append_sync(b.clone()).unwrap();
                m.apply_batch(&b);
            }
            Op::TruncateSuffix { back } => {
                let from = (last + 1).saturating_sub(back).max(snap + 1);
                let b = Batch {
                    truncate_from: Some(from),
                    ..Batch::default()
                };
                wal.append_sync(b.clone()).unwrap();
                m.apply_batch(&b);
            }
            Op::Compact { back } => {
                let index = last.saturating_sub(back);
                if index > snap {
                    let b = Batch {
                        snapshot: Some(SnapshotMarker { index, term }),
                        ..Batch::default()
                    };
                    wal.append_sync(b.clone()).unwrap();
                    m.apply_batch(&b);
                    wal.release_to(index).unwrap();
                }
            }
            Op::Burst { batches } => {
                let (tx, rx) = std::sync::mpsc::channel();
                for k in 0..batches {
                    let i = last + 1 + k;
                    let b = Batch::entries(vec![entry(i, term, 50)]);
                    m.apply_batch(&b);
                    let tx = tx.clone();
                    wal.submit(b, Box::new(move |r| tx.send(r).unwrap()))
                        .unwrap();
                }
                for _ in 0..batches {
                    rx.recv().unwrap().unwrap();
                }
            }
            Op::Reopen => {
                drop(wal);
                let (w, rec) = Wal::open_with(d.path(), opts()).unwrap();
                prop_assert_eq!(rec, m.state());
                wal = w;
            }
        }
    }
    drop(wal);
    let (_, rec) = Wal::open_with(d.path(), opts()).unwrap();
    prop_assert_eq!(rec, m.state());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64),
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]
    #[test]
    fn wal_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}

/// Compaction actually releases: a long log with a snapshot near its end keeps few segments.
#[test]
fn compaction_bounds_the_segment_count() {
    let d = TempDir::new("compact-bound");
    let wal = Wal::create_with(d.path(), META, opts()).unwrap();
    for i in 1..=300 {
        wal.append_sync(Batch::entries(vec![entry(i, 1, 40)]))
            .unwrap();
        if i % 50 == 0 {
            wal.append_sync(Batch {
                snapshot: Some(SnapshotMarker {
                    index: i - 5,
                    term: 1,
                }),
                ..Batch::default()
            })
            .unwrap();
            wal.release_to(i - 5).unwrap();
        }
    }
    wal.append_sync(Batch::default()).unwrap();
    let n = segment_files(d.path()).len();
    assert!(wal.stats().segments_created > 20);
    assert!(n <= 6, "{n} segments left");
    drop(wal);
    let (_, rec) = Wal::open_with(d.path(), opts()).unwrap();
    assert_eq!(rec.snapshot.unwrap().index, 295);
    assert_eq!(rec.entries.len(), 5);
}
