//! Behaviour of the public API: round trips, suffix truncation, rotation, release, torn tails,
//! corruption, directory fsyncs.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use keel_wal::{Batch, HardState, IoOp, SegmentName, SnapshotMarker, Wal, WalError, WalOptions};

#[test]
fn create_append_reopen_roundtrip() {
    let d = TempDir::new("roundtrip");
    let wal = Wal::create_with(d.path(), META, small_opts(64 << 10)).unwrap();
    let hs = HardState {
        term: 3,
        vote: 2,
        commit: 4,
    };
    wal.append_sync(Batch {
        entries: (1..=5).map(|i| entry(i, 3, 40)).collect(),
        hard_state: Some(hs),
        ..Batch::default()
    })
    .unwrap();
    wal.append_sync(Batch::entries(vec![entry(6, 3, 0)]))
        .unwrap();
    drop(wal);
    let (wal, rec) = Wal::open_with(d.path(), small_opts(64 << 10)).unwrap();
    assert_eq!(rec.metadata, META);
    assert_eq!(rec.hard_state, Some(hs));
    assert_eq!(rec.snapshot, None);
    let want: Vec<_> = (1..=5)
        .map(|i| entry(i, 3, 40))
        .chain([entry(6, 3, 0)])
        .collect();
    assert_eq!(rec.entries, want);
    // Appending continues after a reopen.
    wal.append_sync(Batch::entries(vec![entry(7, 4, 9)]))
        .unwrap();
    drop(wal);
    let (_, rec) = Wal::open_with(d.path(), small_opts(64 << 10)).unwrap();
    assert_eq!(rec.entries.len(), 7);
    assert_eq!(rec.entries[6], entry(7, 4, 9));
}

#[test]
fn create_refuses_existing_and_open_refuses_empty() {
    let d = TempDir::new("exists");
    assert!(matches!(
        Wal::open(d.path()),
        Err(WalError::NotFound { .. })
    ));
    drop(Wal::create_with(d.path(), META, small_opts(4096)).unwrap());
    assert!(matches!(
        Wal::create_with(d.path(), META, small_opts(4096)),
        Err(WalError::AlreadyExists { .. })
    ));
}

#[test]
fn overwritten_suffix_never_reappears() {
    let d = TempDir::new("overwrite");
    let opts = || small_opts(1024); // several segments
    let wal = Wal::create_with(d.path(), META, opts()).unwrap();
    for i in 1..=30 {
        wal.append_sync(Batch::entries(vec![entry(i, 1, 50)]))
            .unwrap();
    }
    // A new leader (term 2) overwrites from index 10 on (Raft §5.3).
    wal.append_sync(Batch::entries(vec![entry(10, 2, 7), entry(11, 2, 7)]))
        .unwrap();
    drop(wal);
    let (wal, rec) = Wal::open_with(d.path(), opts()).unwrap();
    assert!(segment_files(d.path()).len() > 2, "test must span segments");
    let mut want: Vec<_> = (1..10).map(|i| entry(i, 1, 50)).collect();
    want.extend([entry(10, 2, 7), entry(11, 2, 7)]);
    assert_eq!(rec.entries, want);
    // Explicit truncation, then reopen twice: the old entries stay gone.
    wal.append_sync(Batch {
        truncate_from: Some(5),
        ..Batch::default()
    })
    .unwrap();
    drop(wal);
    for _ in 0..2 {
        let (_, rec) = Wal::open_with(d.path(), opts()).unwrap();
        assert_eq!(rec.entries, want[..4].to_vec());
    }
}

#[test]
fn segments_are_named_by_sequence_and_first_index() {
    let d = TempDir::new("names");
    let wal = Wal::create_with(d.path(), META, small_opts(512)).unwrap();
    for i in 1..=40 {
        wal.append_sync(Batch::entries(vec![entry(i, 1, 100)]))
            .unwrap();
    }
    // An empty batch is a barrier: its callback runs after any segment cut the previous group
    // triggered.
    wal.append_sync(Batch::default()).unwrap();
    let stats = wal.stats();
    drop(wal);
    let files = segment_files(d.path());
    assert_eq!(files.len() as u64, stats.segments_created);
    assert!(files.len() > 5);
    let names: Vec<SegmentName> = files
        .iter()
        .map(|p| SegmentName::parse(p.file_name().unwrap().to_str().unwrap()).unwrap())
        .collect();
    assert_eq!(names[0].first_index, 1);
    for w in names.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1);
        assert!(w[1].first_index > w[0].first_index);
    }
    // No temporary files are left behind.
    assert!(std::fs::read_dir(d.path())
        .unwrap()
        .all(|e| e.unwrap().path().extension().unwrap() == "wal"));
}

#[test]
fn release_drops_segments_below_a_durable_snapshot_only() {
    let d = TempDir::new("release");
    let opts = || small_opts(512);
    let wal = Wal::create_with(d.path(), META, opts()).unwrap();
    for i in 1..=60 {
        wal.append_sync(Batch::entries(vec![entry(i, 1, 100)]))
            .unwrap();
    }
    wal.append_sync(Batch::default()).unwrap(); // barrier: pending segment cut done
    let before = segment_files(d.path()).len();
    // Without a snapshot marker nothing may go.
    wal.release_to(40).unwrap();
    assert_eq!(segment_files(d.path()).len(), before);
    wal.append_sync(Batch {
        snapshot: Some(SnapshotMarker { index: 40, term: 1 }),
        ..Batch::default()
    })
    .unwrap();
    wal.release_to(40).unwrap();
    wal.append_sync(Batch::default()).unwrap();
    let after = segment_files(d.path()).len();
    assert!(after < before, "{after} segments left of {before}");
    let s = wal.stats();
    assert_eq!(
        s.segments_released as usize,
        before - after + (s.segments_created as usize - before)
    );
    // Every remaining segment but the first could hold an entry above the snapshot.
    for p in &segment_files(d.path())[1..] {
        let n = SegmentName::parse(p.file_name().unwrap().to_str().unwrap()).unwrap();
        assert!(n.first_index > 40, "{p:?} should have been released");
    }
    drop(wal);
    let (_, rec) = Wal::open_with(d.path(), opts()).unwrap();
    assert_eq!(rec.snapshot, Some(SnapshotMarker { index: 40, term: 1 }));
    assert_eq!(
        rec.entries,
        (41..=60).map(|i| entry(i, 1, 100)).collect::<Vec<_>>()
    );
}

#[test]
fn invalid_batches_are_rejected_without_writing() {
    let d = TempDir::new("invalid");
    let wal = Wal::create_with(d.path(), META, small_opts(4096)).unwrap();
    wal.append_sync(Batch::entries(vec![entry(1, 1, 1), entry(2, 1, 1)]))
        .unwrap();
    let gap = wal.append_sync(Batch::entries(vec![entry(4, 1, 1)]));
    assert!(matches!(gap, Err(WalError::InvalidBatch { .. })), "{gap:?}");
    let zero = wal.append_sync(Batch::entries(vec![entry(0, 1, 1)]));
    assert!(matches!(zero, Err(WalError::InvalidBatch { .. })));
    wal.append_sync(Batch {
        snapshot: Some(SnapshotMarker { index: 2, term: 1 }),
        ..Batch::default()
    })
    .unwrap();
    let below = wal.append_sync(Batch::entries(vec![entry(2, 1, 1)]));
    assert!(matches!(below, Err(WalError::InvalidBatch { .. })));
    let older = wal.append_sync(Batch {
        snapshot: Some(SnapshotMarker { index: 1, term: 1 }),
        ..Batch::default()
    });
    assert!(matches!(older, Err(WalError::InvalidBatch { .. })));
    let beyond = wal.append_sync(Batch {
        truncate_from: Some(9),
        ..Batch::default()
    });
    assert!(matches!(beyond, Err(WalError::InvalidBatch { .. })));
    // A follower that installed a snapshot continues right after it.
    wal.append_sync(Batch::entries(vec![entry(3, 2, 1)]))
        .unwrap();
    drop(wal);
    let (_, rec) = Wal::open_with(d.path(), small_opts(4096)).unwrap();
    assert_eq!(rec.entries, vec![entry(3, 2, 1)]);
}

#[test]
fn torn_tail_is_cut_and_logged() {
    let d = TempDir::new("torn");
    let wal = Wal::create_with(d.path(), META, small_opts(8192)).unwrap();
    for i in 1..=5 {
        wal.append_sync(Batch::entries(vec![entry(i, 1, 30)]))
            .unwrap();
    }
    drop(wal);
    // Simulate half of a sixth record: a non-zero header claiming more bytes than were written.
    let last = segment_files(d.path()).pop().unwrap();
    let (_, rec) = Wal::open_with(d.path(), small_opts(8192)).unwrap();
    assert_eq!(rec.entries.len(), 5);
    let (valid_end, bytes) = {
        let b = std::fs::read(&last).unwrap();
        (b.len(), b)
    };
    let _ = bytes;
    // After the reopen the old tail segment was truncated to its valid end; tear it again.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    f.write_all(&[0xEE; 37]).unwrap();
    drop(f);
    // The segment is no longer the last one (reopen cut a new one), so remove the newer one to
    // make the torn segment the tail again.
    for p in segment_files(d.path()) {
        if p > last {
            std::fs::remove_file(p).unwrap();
        }
    }
    let (logger, lines) = capture_logger();
    let opts = WalOptions {
        logger,
        ..small_opts(8192)
    };
    let (_, rec) = Wal::open_with(d.path(), opts).unwrap();
    assert_eq!(rec.entries.len(), 5);
    let lines = lines.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("dropped 37 bytes")),
        "{lines:?}"
    );
    assert_eq!(std::fs::metadata(&last).unwrap().len() as usize, valid_end);
}

#[test]
fn corruption_before_the_tail_is_an_error_naming_file_and_offset() {
    let d = TempDir::new("corrupt");
    let wal = Wal::create_with(d.path(), META, small_opts(1024)).unwrap();
    for i in 1..=30 {
        wal.append_sync(Batch::entries(vec![entry(i, 1, 60)]))
            .unwrap();
    }
    drop(wal);
    let first = segment_files(d.path()).remove(0);
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[200] ^= 0x10;
    std::fs::write(&first, &bytes).unwrap();
    let err = Wal::open_with(d.path(), small_opts(1024)).unwrap_err();
    match &err {
        WalError::Corrupt { path, offset, .. } => {
            assert_eq!(path, &first);
            assert!(*offset <= 200 && *offset + 200 > 200, "offset {offset}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(err
        .to_string()
        .contains(first.file_name().unwrap().to_str().unwrap()));
    // Nothing was "repaired": the file is untouched.
    assert_eq!(std::fs::read(&first).unwrap(), bytes);
}

#[test]
fn a_missing_segment_is_an_error() {
    let d = TempDir::new("missing");
    let wal = Wal::create_with(d.path(), META, small_opts(512)).unwrap();
    for i in 1..=30 {
        wal.append_sync(Batch::entries(vec![entry(i, 1, 60)]))
            .unwrap();
    }
    drop(wal);
    let files = segment_files(d.path());
    std::fs::remove_file(&files[files.len() / 2]).unwrap();
    let err = Wal::open_with(d.path(), small_opts(512)).unwrap_err();
    assert!(matches!(err, WalError::Inconsistent { .. }), "{err:?}");
}

#[test]
fn a_shortened_middle_segment_is_an_error() {
    // Losing the tail of a non-last segment breaks the CRC chain into the next one.
    let d = TempDir::new("shortened");
    let wal = Wal::create_with(d.path(), META, small_opts(512)).unwrap();
    for i in 1..=30 {
        wal.append_sync(Batch::entries(vec![entry(i, 1, 60)]))
            .unwrap();
    }
    drop(wal);
    let files = segment_files(d.path());
    let victim = &files[files.len() - 2];
    let bytes = std::fs::read(victim).unwrap();
    // Drop the last record exactly (records here are 96 bytes: 16 header + 16 + 60 + pad).
    std::fs::write(victim, &bytes[..bytes.len() - 96]).unwrap();
    let err = Wal::open_with(d.path(), small_opts(512)).unwrap_err();
    assert!(matches!(err, WalError::Corrupt { .. }), "{err:?}");
}

#[test]
fn directory_is_fsynced_after_every_create_rename_and_remove() {
    let d = TempDir::new("dirsync");
    let ops: Arc<Mutex<Vec<IoOp>>> = Arc::default();
    let o = ops.clone();
    let opts = WalOptions {
        fault_hook: Some(Arc::new(move |op, _| {
            // The preallocation thread runs concurrently; only the writer's order matters.
            if std::thread::current().name() != Some("wal-prealloc") {
                o.lock().unwrap().push(op);
            }
            Ok(())
        })),
        ..small_opts(512)
    };
    let wal = Wal::create_with(d.path(), META, opts.clone()).unwrap();
    for i in 1..=40 {
        wal.append_sync(Batch::entries(vec![entry(i, 1, 60)]))
            .unwrap();
    }
    wal.append_sync(Batch {
        snapshot: Some(SnapshotMarker { index: 30, term: 1 }),
        ..Batch::default()
    })
    .unwrap();
    wal.release_to(30).unwrap();
    assert!(wal.stats().segments_released > 0);
    drop(wal);
    let ops = ops.lock().unwrap().clone();
    let renames = ops.iter().filter(|o| **o == IoOp::Rename).count();
    assert!(renames > 3);
    // After a rename or a (batch of) removes, the next non-remove operation is a SyncDir.
    for (i, op) in ops.iter().enumerate() {
        if matches!(op, IoOp::Rename | IoOp::Remove) {
            let next = ops[i + 1..]
                .iter()
                .find(|o| **o != IoOp::Remove)
                .unwrap_or_else(|| panic!("nothing after {op:?} at {i}: {ops:?}"));
            assert_eq!(*next, IoOp::SyncDir, "after {op:?} at {i}");
        }
    }
}

#[test]
fn dropping_the_wal_leaves_no_temporary_files() {
    // Default 64 MiB segments: the pipeline is zero-filling the next segment when the WAL is
    // dropped right away; the fill is cancelled and its file deleted.
    let d = TempDir::new("no-tmp");
    let t = std::time::Instant::now();
    let wal = Wal::create(d.path(), META).unwrap();
    wal.append_sync(Batch::entries(vec![entry(1, 1, 10)]))
        .unwrap();
    drop(wal);
    let names: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 1, "{names:?} after {:?}", t.elapsed());
    assert!(names[0].ends_with(".wal"));
}

#[test]
fn leftover_tmp_files_are_ignored_and_removed_on_open() {
    // A crash while a segment was being prepared leaves `N.tmp` behind; it holds no
    // acknowledged data (it was never renamed), so recovery ignores it and open deletes it.
    let d = TempDir::new("leftover-tmp");
    let wal = Wal::create_with(d.path(), META, small_opts(4096)).unwrap();
    wal.append_sync(Batch::entries(vec![entry(1, 1, 10)]))
        .unwrap();
    drop(wal);
    std::fs::write(d.path().join("7.tmp"), [0xAB; 300]).unwrap();
    let (wal, rec) = Wal::open_with(d.path(), small_opts(4096)).unwrap();
    assert_eq!(rec.entries, vec![entry(1, 1, 10)]);
    assert!(!d.path().join("7.tmp").exists());
    drop(wal);
}
