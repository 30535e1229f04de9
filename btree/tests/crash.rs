//! Crash consistency through the fault-injecting in-memory file.
//!
//! A deterministic random workload runs against a [`MemStorage`] that fails at storage operation
//! N (a write, a sync or a file growth), for every N (or a sample) and for three crash modes:
//! every write reached the disk, every write after the last sync was lost, and unsynced writes
//! torn at random sector boundaries. The crash image must open, pass the integrity check, and
//! hold exactly the last committed state, or the state of the commit in flight if (and only if)
//! that commit's data sync had already happened. The recovered database must then accept and
//! commit new writes cleanly.

use std::collections::BTreeMap;
use std::sync::Arc;

use keel_btree::{CommitMode, CrashMode, Db, MemStorage, Options, Storage};

type Model = BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>>;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn opts(mode: CommitMode) -> Options {
    Options {
        page_size: 1024,
        commit_mode: mode,
        ..Options::default()
    }
}

fn dump(db: &Db) -> Model {
    let r = db.begin_read();
    let mut m = Model::new();
    for name in r.bucket_names().unwrap() {
        let b = r.bucket(&name).unwrap();
        let bm: BTreeMap<Vec<u8>, Vec<u8>> = b
            .iter()
            .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
            .collect();
        m.insert(name, bm);
    }
    m
}

/// What the workload observed before the fault.
struct Outcome {
    committed: Model,
    in_flight: Option<Model>,
    /// The failed commit had completed its data sync (so its meta may be durable).
    in_flight_synced: bool,
}

/// Run the seeded workload on `storage`; stops at the first error.
fn workload(seed: u64, storage: &MemStorage, txns: usize, mode: CommitMode) -> Outcome {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let db = Db::open_storage(Arc::new(storage.clone()), opts(mode)).expect("fresh open");
    let mut committed = Model::new();
    for t in 0..txns {
        let mut model = committed.clone();
        let mut w = match db.begin_write() {
            Ok(w) => w,
            Err(_) => break,
        };
        let ops = 1 + rng.below(40);
        for _ in 0..ops {
            let b = [&b"key"[..], b"meta", b"lease"][rng.below(3) as usize];
            w.create_bucket_if_missing(b).unwrap();
            model.entry(b.to_vec()).or_default();
            let k = if rng.below(2) == 0 {
                // Mostly increasing keys, like revisions.
                format!("r{:08}", t * 100 + rng.below(100) as usize).into_bytes()
            } else {
                format!("k{:03}", rng.below(300)).into_bytes()
            };
            match rng.below(10) {
                0..=5 => {
                    let len = match rng.below(20) {
                        0 => 2000 + rng.below(3000) as usize,
                        _ => rng.below(120) as usize,
                    };
                    let v = vec![rng.below(256) as u8; len];
                    w.bucket_mut(b).unwrap().put(&k, &v).unwrap();
                    model.get_mut(b).unwrap().insert(k, v);
                }
                6..=8 => {
                    let present = model.get_mut(b).unwrap().remove(&k).is_some();
                    assert_eq!(w.bucket_mut(b).unwrap().delete(&k).unwrap(), present);
                }
                _ => {
                    if rng.below(8) == 0 {
                        w.delete_bucket(b).unwrap();
                        model.remove(b);
                    }
                }
            }
        }
        if rng.below(10) == 0 {
            w.rollback();
            continue;
        }
        let syncs_before = storage.syncs();
        match w.commit() {
            Ok(()) => committed = model,
            Err(_) => {
                return Outcome {
                    committed,
                    in_flight: Some(model),
                    in_flight_synced: storage.syncs() > syncs_before,
                }
            }
        }
    }
    Outcome {
        committed,
        in_flight: None,
        in_flight_synced: false,
    }
}

fn verify_recovery(
    seed: u64,
    crash_op: u64,
    mode: CrashMode,
    cm: CommitMode,
    img: Vec<u8>,
    out: &Outcome,
) {
    let ctx = format!("seed {seed} crash at op {crash_op} mode {mode:?} {cm:?}");
    let storage = MemStorage::from_bytes(img);
    let db = Db::open_storage(Arc::new(storage.clone()), opts(cm))
        .unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
    db.check()
        .unwrap_or_else(|e| panic!("{ctx}: check failed: {e}"));
    let got = dump(&db);
    let is_committed = got == out.committed;
    let is_in_flight = out.in_flight.as_ref() == Some(&got);
    // Two fsyncs: the in-flight commit may survive only if its data sync completed (its meta
    // was written after that). One fsync: it may survive whenever its writes reached the disk
    // (never when everything unsynced was lost), and then only complete (checked on open).
    let in_flight_ok = match cm {
        CommitMode::TwoFsyncs => out.in_flight_synced,
        _ => mode != CrashMode::LoseUnsynced || out.in_flight_synced,
    };
    assert!(
        is_committed || (is_in_flight && in_flight_ok),
        "{ctx}: recovered state is neither the last committed state nor (after its data sync) the in-flight one"
    );
    // The recovered database keeps working: a new commit on top passes the check and reopens.
    let mut w = db.begin_write().unwrap();
    w.create_bucket_if_missing(b"after").unwrap();
    for i in 0..50u32 {
        w.bucket_mut(b"after")
            .unwrap()
            .put(&i.to_be_bytes(), &[7; 300])
            .unwrap();
    }
    w.commit()
        .unwrap_or_else(|e| panic!("{ctx}: commit after recovery: {e}"));
    db.check()
        .unwrap_or_else(|e| panic!("{ctx}: check after new commit: {e}"));
    drop(db);
    let db = Db::open_storage(
        Arc::new(MemStorage::from_bytes(storage.live_bytes())),
        opts(cm),
    )
    .unwrap();
    db.check().unwrap();
    assert_eq!(db.begin_read().bucket(b"after").unwrap().len(), 50);
}

fn crash_sweep(
    seeds: std::ops::Range<u64>,
    txns: usize,
    max_points_per_seed: u64,
    cm: CommitMode,
) -> usize {
    let mut cases = 0;
    for seed in seeds {
        // Dry run: count the operations after creation.
        let probe = MemStorage::new();
        let base = {
            // Creation alone: two metas and a sync.
            let s = MemStorage::new();
            drop(Db::open_storage(Arc::new(s.clone()), opts(cm)).unwrap());
            s.ops()
        };
        let full = workload(seed, &probe, txns, cm);
        assert!(full.in_flight.is_none());
        let total = probe.ops() - base;
        let step = (total / max_points_per_seed).max(1);
        let mut op = seed % step;
        while op < total {
            for (mi, mode) in [
                CrashMode::KeepAll,
                CrashMode::LoseUnsynced,
                CrashMode::Torn(seed ^ op),
            ]
            .into_iter()
            .enumerate()
            {
                let s = MemStorage::new();
                s.fail_at_op(Some(base + op));
                let out = workload(seed, &s, txns, cm);
                assert!(
                    s.has_failed(),
                    "seed {seed}: op {op} of {total} never reached"
                );
                let img = s.crash_image(mode);
                verify_recovery(seed, op, mode, cm, img, &out);
                cases += 1;
                let _ = mi;
            }
            op += step;
        }
    }
    cases
}

#[test]
fn crash_at_every_storage_operation() {
    // Small databases, every operation of the first seeds, sampled points for more seeds.
    let n = crash_sweep(0..3, 12, u64::MAX, CommitMode::TwoFsyncs);
    let m = crash_sweep(3..40, 25, 30, CommitMode::TwoFsyncs);
    eprintln!("crash cases (two fsyncs): {}", n + m);
    assert!(
        n + m > 2000,
        "expected thousands of crash cases, ran {}",
        n + m
    );
}

#[test]
fn crash_at_every_storage_operation_one_fsync() {
    let n = crash_sweep(0..2, 12, u64::MAX, CommitMode::OneFsync);
    let m = crash_sweep(40..70, 25, 30, CommitMode::OneFsync);
    eprintln!("crash cases (one fsync): {}", n + m);
    assert!(
        n + m > 2000,
        "expected thousands of crash cases, ran {}",
        n + m
    );
}

#[test]
fn soak_crashes_if_requested() {
    if std::env::var("KEEL_SOAK").is_err() {
        return;
    }
    let n = crash_sweep(100..400, 40, 60, CommitMode::TwoFsyncs)
        + crash_sweep(400..700, 40, 60, CommitMode::OneFsync);
    eprintln!("soak crash cases: {n}");
}

#[test]
fn lose_unsynced_after_clean_commits_keeps_everything() {
    let s = MemStorage::new();
    let out = workload(7, &s, 30, CommitMode::TwoFsyncs);
    assert!(out.in_flight.is_none());
    let db = Db::open_storage(
        Arc::new(MemStorage::from_bytes(
            s.crash_image(CrashMode::LoseUnsynced),
        )),
        opts(CommitMode::TwoFsyncs),
    )
    .unwrap();
    assert_eq!(dump(&db), out.committed);
    db.check().unwrap();
    // And the durable image is what sync made durable: same length as live.
    assert_eq!(s.crash_image(CrashMode::LoseUnsynced), s.live_bytes());
    assert!(s.len().unwrap() > 0);
}

/// A failed write (full disk) during a commit: the commit reports an I/O error. If the failure
/// came before the meta write, the same handle stays usable and later commits succeed; if it hit
/// the meta write or its sync, the handle refuses writes (`Poisoned`) and a reopen recovers.
#[test]
fn failed_commit_keeps_the_handle_usable_or_poisons_it() {
    for mode in [CommitMode::TwoFsyncs, CommitMode::OneFsync] {
        let mut saw_usable = false;
        let mut saw_poisoned = false;
        for fail_after in 0..12u64 {
            let s = MemStorage::new();
            let db = Db::open_storage(Arc::new(s.clone()), opts(mode)).unwrap();
            let mut w = db.begin_write().unwrap();
            w.create_bucket(b"b").unwrap();
            for i in 0..100u32 {
                w.bucket_mut(b"b")
                    .unwrap()
                    .put(&i.to_be_bytes(), &[1; 200])
                    .unwrap();
            }
            w.commit().unwrap();
            // Rewrite them so the failing commit allocates from freed pages (exercises the undo).
            let mut w = db.begin_write().unwrap();
            for i in 0..100u32 {
                w.bucket_mut(b"b")
                    .unwrap()
                    .put(&i.to_be_bytes(), &[3; 200])
                    .unwrap();
            }
            w.commit().unwrap();
            let mut w = db.begin_write().unwrap();
            for i in 100..400u32 {
                w.bucket_mut(b"b")
                    .unwrap()
                    .put(&i.to_be_bytes(), &[2; 200])
                    .unwrap();
            }
            s.fail_at_op(Some(s.ops() + fail_after));
            let r = w.commit();
            s.fail_at_op(None);
            let Err(e) = r else {
                continue; // the commit needed fewer operations than `fail_after`
            };
            assert!(matches!(e, keel_btree::Error::Io(_)), "{e}");
            match db.begin_write() {
                Ok(mut w) => {
                    saw_usable = true;
                    // Still the first commit's state, and the handle keeps working.
                    assert_eq!(w.bucket(b"b").unwrap().len(), 100);
                    w.bucket_mut(b"b").unwrap().put(b"after", b"x").unwrap();
                    w.commit().unwrap();
                    db.check().unwrap();
                    assert_eq!(db.begin_read().bucket(b"b").unwrap().len(), 101);
                }
                Err(keel_btree::Error::Poisoned) => {
                    saw_poisoned = true;
                    // Reads still work; a reopen recovers one of the two states.
                    assert!(db.begin_read().bucket(b"b").unwrap().len() >= 100);
                    drop(db);
                    let db = Db::open_storage(
                        Arc::new(MemStorage::from_bytes(s.live_bytes())),
                        opts(mode),
                    )
                    .unwrap();
                    db.check().unwrap();
                    let n = db.begin_read().bucket(b"b").unwrap().len();
                    assert!(n == 100 || n == 400, "{n}");
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(
            saw_usable && saw_poisoned,
            "{mode:?}: usable {saw_usable} poisoned {saw_poisoned}"
        );
    }
}
