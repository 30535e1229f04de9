//! Crash sweeps: for every byte offset of the last segment, simulate a crash there (truncate the
//! file, zero the rest, or flip one byte) and check that recovery returns exactly a durable
//! prefix or a clear `Corrupt` error — never a wrong record, never a panic.
//!
//! The rule under test (see `keel_wal::recovery`): damage is a torn tail, cut off, only in the
//! last segment, after its header group, and only if no intact record starting a later write
//! group follows it; otherwise it is `WalError::Corrupt` naming the file and the offset of the
//! first bad record.

mod common;

use std::path::PathBuf;

use common::*;
use keel_wal::codec::{scan, DecodedRecord};
use keel_wal::{
    recover, Batch, HardState, Record, Recovered, SegmentImage, SnapshotMarker, Wal, WalError,
};

struct Log {
    images: Vec<SegmentImage>,
    /// Decoded records of each (pristine) segment.
    records: Vec<Vec<DecodedRecord>>,
    /// What was appended, applied to the model batch by batch.
    appended: Recovered,
}

/// A deterministic pseudo-random batch stream: entries, hard states, an overwrite, a snapshot.
fn build_log(name: &str) -> (TempDir, Log) {
    const SEG: u64 = 4096;
    let d = TempDir::new(name);
    let mut model = Model::default();
    model.apply(&Record::Metadata(META));
    let mut rng = 0x1234_5678_9abc_def0u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut last = 0u64;
    let mut term = 1;
    let mut make_batch = |phase_small: bool, i: usize, next: &mut dyn FnMut(u64) -> u64| {
        let mut b = Batch::default();
        if i == 17 {
            b.snapshot = Some(SnapshotMarker {
                index: last.saturating_sub(2).max(1),
                term,
            });
            last = last.max(b.snapshot.unwrap().index);
        }
        if i % 11 == 5 && last > 3 {
            // A new leader overwrites a suffix.
            term += 1;
            last -= 2;
        }
        let n = if phase_small {
            1 + next(2)
        } else {
            1 + next(4)
        };
        let len = if phase_small {
            8 + next(40)
        } else {
            10 + next(150)
        };
        for _ in 0..n {
            last += 1;
            b.entries.push(entry(last, term, len as usize));
        }
        if next(3) == 0 {
            b.hard_state = Some(HardState {
                term,
                vote: next(3),
                commit: last - 1,
            });
        }
        b
    };
    let wal = Wal::create_with(d.path(), META, small_opts(SEG)).unwrap();
    for i in 0..60 {
        let b = make_batch(false, i, &mut next);
        for r in batch_records(&b) {
            model.apply(&r);
        }
        // Submit a few batches back to back so that some groups hold several batches.
        if i % 3 == 0 {
            wal.submit(b, Box::new(|r| r.unwrap())).unwrap();
        } else {
            wal.append_sync(b).unwrap();
        }
    }
    drop(wal);
    // Reopen: the fresh last segment gets a smaller workload that fits in it.
    let (wal, rec) = Wal::open_with(d.path(), small_opts(SEG)).unwrap();
    assert_eq!(rec, model.state());
    let segments_before = segment_files(d.path()).len();
    for i in 0..22 {
        let b = make_batch(true, i + 100, &mut next);
        for r in batch_records(&b) {
            model.apply(&r);
        }
        if i % 4 == 1 {
            wal.submit(b, Box::new(|r| r.unwrap())).unwrap();
        } else {
            wal.append_sync(b).unwrap();
        }
    }
    wal.append_sync(Batch::default()).unwrap();
    drop(wal); // a "crash": the last segment keeps its preallocated zeros
    let files = segment_files(d.path());
    assert_eq!(
        files.len(),
        segments_before,
        "the last phase must not cut a segment"
    );
    assert!(files.len() >= 3);
    let images: Vec<SegmentImage> = files
        .iter()
        .map(|p| SegmentImage {
            path: p.clone(),
            bytes: std::fs::read(p).unwrap(),
        })
        .collect();
    let mut seed = None;
    let mut records = Vec::new();
    for img in &images {
        let s = scan(&img.bytes, seed);
        seed = Some(s.end_crc);
        records.push(s.records);
    }
    let log = Log {
        images,
        records,
        appended: model.state(),
    };
    (d, log)
}

impl Log {
    fn last(&self) -> usize {
        self.images.len() - 1
    }
    /// Model of every record of the earlier segments plus the last segment's records that end
    /// at or before `end`.
    fn prefix_state(&self, end: u64) -> Recovered {
        let mut m = Model::default();
        for (i, recs) in self.records.iter().enumerate() {
            for r in recs {
                if i < self.last() || r.offset + r.frame_len <= end {
                    m.apply(&r.record);
                }
            }
        }
        m.state()
    }
    fn header_end(&self, seg: usize) -> u64 {
        let r = self.records[seg].iter().find(|r| r.header_end).unwrap();
        r.offset + r.frame_len
    }
    fn with_last(&self, bytes: Vec<u8>) -> Vec<SegmentImage> {
        let mut v = self.images.clone();
        let l = self.last();
        v[l].bytes = bytes;
        v
    }
}

fn expect_corrupt(
    r: Result<keel_wal::Recovery, WalError>,
    path: &PathBuf,
    offset: Option<u64>,
    what: &str,
) {
    match r {
        Err(WalError::Corrupt {
            path: p, offset: o, ..
        }) => {
            assert_eq!(&p, path, "{what}");
            if let Some(off) = offset {
                assert_eq!(o, off, "{what}");
            }
        }
        Err(e) => panic!("{what}: expected Corrupt, got {e}"),
        Ok(r) => panic!(
            "{what}: expected Corrupt, recovered {} entries",
            r.recovered.entries.len()
        ),
    }
}

#[test]
fn pristine_log_recovers_everything() {
    let (_d, log) = build_log("pristine");
    let r = recover(&log.images).unwrap();
    assert_eq!(r.recovered, log.appended);
    assert_eq!(r.recovered, log.prefix_state(u64::MAX));
    assert_eq!(r.torn_tail, None);
    assert!(
        log.records[log.last()].len() > 30,
        "last segment should hold many records"
    );
}

#[test]
fn crash_at_every_offset_of_the_last_segment() {
    let (_d, log) = build_log("sweep");
    let l = log.last();
    let path = log.images[l].path.clone();
    let pristine = log.images[l].bytes.clone();
    let header_end = log.header_end(l);
    let recs = &log.records[l];
    let valid_end = recs.last().map(|r| r.offset + r.frame_len).unwrap();
    let len = pristine.len() as u64;
    assert!(len > valid_end, "the last segment has preallocated zeros");
    let (mut torn, mut corrupt, mut clean) = (0, 0, 0);

    for o in 0..=len {
        // Mode 1: the file ends at `o`. Mode 2: everything from `o` on is zero.
        let mut zeroed = pristine.clone();
        zeroed[o as usize..].fill(0);
        // Zeroing bytes that already are zero changes nothing: the damage of mode 2 starts at
        // the first non-zero byte at or after `o`.
        let first_nonzero = (o..len).find(|&i| pristine[i as usize] != 0).unwrap_or(len);
        for (mode, bytes, at) in [
            ("truncate", pristine[..o as usize].to_vec(), o),
            ("zero", zeroed, first_nonzero),
        ] {
            let what = format!("{mode} at {o}");
            let r = recover(&log.with_last(bytes));
            if at < header_end {
                expect_corrupt(r, &path, None, &what);
                corrupt += 1;
                continue;
            }
            let r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(r.recovered, log.prefix_state(at), "{what}");
            // Clean end (no torn tail) iff the record containing `at` is left all zeros, i.e.
            // the damage starts at a record boundary (or the record's first bytes were zero).
            let at_boundary = at >= valid_end
                || recs.iter().any(|x| {
                    x.offset <= at
                        && at < x.offset + x.frame_len
                        && pristine[x.offset as usize..at as usize]
                            .iter()
                            .all(|&b| b == 0)
                });
            assert_eq!(
                r.torn_tail.is_none(),
                at_boundary,
                "{what}: {:?}",
                r.torn_tail
            );
            if r.torn_tail.is_some() {
                torn += 1
            } else {
                clean += 1
            }
        }

        // Mode 3: one byte flipped.
        if o == len {
            continue;
        }
        let mut flipped = pristine.clone();
        flipped[o as usize] ^= 0x5A;
        let what = format!("flip at {o}");
        let r = recover(&log.with_last(flipped));
        if o < header_end {
            expect_corrupt(r, &path, None, &what);
            corrupt += 1;
        } else if o >= valid_end {
            // Garbage in preallocated space after the last record: a torn write of nothing.
            let r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(r.recovered, log.appended, "{what}");
            let t = r.torn_tail.expect("flipped zero byte is dropped");
            assert_eq!(
                (t.offset, t.dropped_bytes),
                (valid_end, o - valid_end + 1),
                "{what}"
            );
            torn += 1;
        } else {
            let hit = recs
                .iter()
                .position(|x| x.offset <= o && o < x.offset + x.frame_len)
                .unwrap();
            let damaged = &recs[hit];
            let later_group = recs[hit + 1..].iter().any(|x| x.group_start);
            if later_group {
                // Acknowledged data is damaged: must be an error at that record.
                expect_corrupt(r, &path, Some(damaged.offset), &what);
                corrupt += 1;
            } else {
                // Inside the last write group: treated as torn, cut at the damaged record.
                let r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(r.recovered, log.prefix_state(damaged.offset), "{what}");
                assert_eq!(r.torn_tail.unwrap().offset, damaged.offset, "{what}");
                torn += 1;
            }
        }
    }
    eprintln!(
        "sweep of {len} offsets: {torn} torn tails, {corrupt} corruption errors, {clean} clean"
    );
    assert!(torn > 1000 && corrupt > 1000 && clean > 40);
}

#[test]
fn damage_in_earlier_segments_is_always_an_error() {
    let (_d, log) = build_log("earlier");
    for seg in 0..log.last() {
        let path = log.images[seg].path.clone();
        let pristine = &log.images[seg].bytes;
        for o in (0..pristine.len()).step_by(3) {
            let mut imgs = log.images.clone();
            imgs[seg].bytes[o] ^= 0x01;
            let rec = log.records[seg]
                .iter()
                .find(|x| x.offset as usize <= o && o < (x.offset + x.frame_len) as usize)
                .unwrap();
            expect_corrupt(
                recover(&imgs),
                &path,
                Some(rec.offset),
                &format!("flip {seg}:{o}"),
            );
        }
        // A lost tail of a non-last segment (even at a record boundary) breaks the chain into
        // the next segment.
        for r in &log.records[seg][1..] {
            let mut imgs = log.images.clone();
            imgs[seg].bytes.truncate(r.offset as usize);
            let err = recover(&imgs).expect_err("shortened middle segment");
            assert!(matches!(err, WalError::Corrupt { .. }), "{err}");
        }
    }
}

/// The same verdicts through the real files: `Wal::open` on a sample of damaged copies returns
/// what `recover` returns, and truncation is persisted (a second open agrees, without a log).
#[test]
fn open_applies_the_verdict_to_the_files() {
    let (d, log) = build_log("files");
    let l = log.last();
    let pristine = log.images[l].bytes.clone();
    let header_end = log.header_end(l) as usize;
    let mut cases = Vec::new();
    for k in 0..8 {
        let o = header_end + (pristine.len() - header_end) * k / 9 + 5;
        cases.push(pristine[..o].to_vec());
        let mut f = pristine.clone();
        f[o] ^= 0xFF;
        cases.push(f);
    }
    for (n, bytes) in cases.into_iter().enumerate() {
        let expected = recover(&log.with_last(bytes.clone()));
        let copy = TempDir::new(&format!("files-copy{n}"));
        for img in &log.images {
            std::fs::copy(&img.path, copy.path().join(img.path.file_name().unwrap())).unwrap();
        }
        std::fs::write(
            copy.path().join(log.images[l].path.file_name().unwrap()),
            &bytes,
        )
        .unwrap();
        let (logger, lines) = capture_logger();
        let opts = keel_wal::WalOptions {
            logger,
            ..small_opts(4096)
        };
        match (expected, Wal::open_with(copy.path(), opts.clone())) {
            (Ok(exp), Ok((wal, got))) => {
                assert_eq!(got, exp.recovered, "case {n}");
                assert_eq!(
                    lines
                        .lock()
                        .unwrap()
                        .iter()
                        .any(|l| l.contains("torn tail")),
                    exp.torn_tail.is_some(),
                    "case {n}"
                );
                drop(wal);
                lines.lock().unwrap().clear();
                let (_, again) = Wal::open_with(copy.path(), opts).unwrap();
                assert_eq!(again, exp.recovered, "case {n}: second open");
                assert!(
                    lines.lock().unwrap().is_empty(),
                    "case {n}: {:?}",
                    lines.lock().unwrap()
                );
            }
            (
                Err(WalError::Corrupt {
                    path: p1,
                    offset: o1,
                    ..
                }),
                Err(WalError::Corrupt {
                    path: p2,
                    offset: o2,
                    ..
                }),
            ) => assert_eq!((p1.file_name(), o1), (p2.file_name(), o2), "case {n}"),
            (a, b) => panic!(
                "case {n}: recover {:?} vs open {:?}",
                a.map(|r| r.recovered),
                b.map(|r| r.1)
            ),
        }
    }
    drop(d);
}

mod random_damage {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn log() -> &'static Log {
        static LOG: OnceLock<(TempDir, Log)> = OnceLock::new();
        &LOG.get_or_init(|| build_log("random-damage")).1
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Several random byte writes anywhere: never a panic; damage in an earlier segment is
        /// an error; otherwise the result is an exact prefix that ends before the first damage.
        #[test]
        fn random_multi_byte_damage(
            hits in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 1u8..=255), 1..5)
        ) {
            let log = log();
            let mut imgs = log.images.clone();
            let last = log.last();
            let mut earlier_hit = false;
            let mut first_last_hit = u64::MAX;
            for (seg, off, x) in hits {
                let s = seg.index(imgs.len());
                let o = off.index(imgs[s].bytes.len());
                imgs[s].bytes[o] ^= x;
                if s < last {
                    earlier_hit = true;
                } else {
                    first_last_hit = first_last_hit.min(o as u64);
                }
            }
            let r = recover(&imgs);
            if earlier_hit {
                prop_assert!(r.is_err(), "damage in an earlier segment was accepted");
            } else if let Ok(r) = r {
                let pristine_end = log.records[last]
                    .last()
                    .map(|x| x.offset + x.frame_len)
                    .unwrap();
                let bound = first_last_hit.min(pristine_end);
                prop_assert!(r.last_valid_end <= bound, "{} > {}", r.last_valid_end, bound);
                prop_assert_eq!(r.recovered, log.prefix_state(r.last_valid_end));
            }
        }

        /// Whole segments replaced by random bytes: never a panic, always an error for an
        /// earlier segment.
        #[test]
        fn random_segment_contents(seg in any::<prop::sample::Index>(),
                                   junk in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let log = log();
            let mut imgs = log.images.clone();
            let s = seg.index(imgs.len());
            imgs[s].bytes = junk;
            // An earlier segment must be intact; the last one must at least hold the header
            // group that continues the chain, which random bytes cannot.
            let _ = s;
            prop_assert!(recover(&imgs).is_err());
        }
    }
}
