//! WAL throughput and time-to-durable, next to the raw rate of one fdatasync per append on the
//! same disk, in the same run.
//!
//! Run: `cargo bench -p keel-wal --bench wal_bench`
//! Env: `KEEL_BENCH_SECS` (seconds per configuration, default 3), `KEEL_BENCH_DIR` (scratch
//! directory; default: the target dir's tmp, on the same filesystem as the checkout).

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use keel_wal::{Batch, Entry, Metadata, Wal};

const RECORD: usize = 256;

/// Pause after creating a WAL (`KEEL_BENCH_SETTLE_MS`, default 700).
fn settle() -> Duration {
    Duration::from_millis(
        std::env::var("KEEL_BENCH_SETTLE_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(700),
    )
}

fn scratch_dir() -> PathBuf {
    let base = std::env::var_os("KEEL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let d = base.join(format!("wal-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One `pwrite` of a framed-size record + one `fdatasync`, repeated, into a zero-filled file.
fn raw_fdatasync_rate(dir: &Path, secs: Duration, preallocate: bool) -> f64 {
    let path = dir.join(if preallocate {
        "raw-prealloc"
    } else {
        "raw-append"
    });
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    if preallocate {
        let zeros = vec![0u8; 1 << 20];
        for i in 0..16u64 {
            f.write_all_at(&zeros, i << 20).unwrap();
        }
        f.sync_all().unwrap();
    }
    let rec = vec![0xA5u8; RECORD + 32];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < secs {
        f.write_all_at(&rec, n * rec.len() as u64).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(path).unwrap();
    rate
}

struct Run {
    producers: usize,
    appends: u64,
    rate: f64,
    p50: Duration,
    p99: Duration,
    fsyncs: u64,
    groups: u64,
}

fn wal_run(dir: &Path, producers: usize, secs: Duration) -> Run {
    let wdir = dir.join(format!("wal-{producers}"));
    let wal = Arc::new(
        Wal::create(
            &wdir,
            Metadata {
                member_id: 1,
                cluster_id: 1,
            },
        )
        .unwrap(),
    );
    // Let the pipeline finish zero-filling the next segment (a one-time start-up cost).
    std::thread::sleep(settle());
    let next = Arc::new(Mutex::new(1u64));
    let before = wal.stats();
    let start = Instant::now();
    let deadline = start + secs;
    let threads: Vec<_> = (0..producers)
        .map(|_| {
            let (wal, next) = (wal.clone(), next.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let data = vec![0x5Au8; RECORD];
                while Instant::now() < deadline {
                    let (tx, rx) = mpsc::sync_channel(1);
                    let t = Instant::now();
                    {
                        // The Raft loop assigns indexes in order; submit never blocks.
                        let mut n = next.lock().unwrap();
                        let e = Entry {
                            index: *n,
                            term: 1,
                            data: data.clone(),
                        };
                        wal.submit(
                            Batch::entries(vec![e]),
                            Box::new(move |r| {
                                let _ = tx.send(r);
                            }),
                        )
                        .unwrap();
                        *n += 1;
                    }
                    rx.recv().unwrap().unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let elapsed = start.elapsed();
    let after = wal.stats();
    drop(Arc::try_unwrap(wal).unwrap());
    std::fs::remove_dir_all(&wdir).unwrap();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    Run {
        producers,
        appends: lat.len() as u64,
        rate: lat.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        fsyncs: after.fsyncs - before.fsyncs,
        groups: after.group_commits - before.group_commits,
    }
}

/// The way the server drives the WAL: one event-loop thread keeps `in_flight` appends
/// outstanding; completions come back through a channel (where the server would also wake its
/// mio::Waker). Measures the WAL rather than OS thread wake-ups.
fn wal_event_loop_run(dir: &Path, in_flight: usize, secs: Duration) -> Run {
    let wdir = dir.join(format!("wal-loop-{in_flight}"));
    let wal = Wal::create(
        &wdir,
        Metadata {
            member_id: 1,
            cluster_id: 1,
        },
    )
    .unwrap();
    std::thread::sleep(settle()); // see wal_run
    let (tx, rx) = mpsc::channel::<Instant>();
    let data = vec![0x5Au8; RECORD];
    let mut next = 1u64;
    let submit = |next: &mut u64| {
        let t = Instant::now();
        let tx = tx.clone();
        let e = Entry {
            index: *next,
            term: 1,
            data: data.clone(),
        };
        wal.submit(
            Batch::entries(vec![e]),
            Box::new(move |r| {
                r.unwrap();
                let _ = tx.send(t);
            }),
        )
        .unwrap();
        *next += 1;
    };
    let before = wal.stats();
    let start = Instant::now();
    let deadline = start + secs;
    for _ in 0..in_flight {
        submit(&mut next);
    }
    let mut outstanding = in_flight;
    let mut lat = Vec::new();
    while outstanding > 0 {
        let t = rx.recv().unwrap();
        lat.push(t.elapsed());
        outstanding -= 1;
        if Instant::now() < deadline {
            submit(&mut next);
            outstanding += 1;
        }
    }
    let elapsed = start.elapsed();
    let after = wal.stats();
    drop(wal);
    std::fs::remove_dir_all(&wdir).unwrap();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    Run {
        producers: in_flight,
        appends: lat.len() as u64,
        rate: lat.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        fsyncs: after.fsyncs - before.fsyncs,
        groups: after.group_commits - before.group_commits,
    }
}

fn print_run(label: &str, r: &Run, raw: f64) {
    println!(
        "{:<8} {:>9} {:>12.0} {:>10.2?} {:>10.2?} {:>10} {:>8} {:>13.1} {:>9.0} {:>8.1}",
        label,
        r.producers,
        r.rate,
        r.p50,
        r.p99,
        r.appends,
        r.fsyncs,
        r.appends as f64 / r.groups.max(1) as f64,
        raw,
        r.rate / raw
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing else useful.
    let secs = Duration::from_secs_f64(
        std::env::var("KEEL_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0),
    );
    let dir = scratch_dir();
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    println!("scratch dir: {}", dir.display());
    println!(
        "same filesystem as /work: {}",
        match (dev(&dir), dev(Path::new("/work"))) {
            (Some(a), Some(b)) => (a == b).to_string(),
            _ => "unknown".into(),
        }
    );
    println!("record: {RECORD}-byte entry payload; {secs:?} per configuration\n");

    println!("raw = one pwrite + one fdatasync per append into a zero-filled file, measured for");
    println!(
        "{:?} right before each WAL configuration (the disk is shared and noisy);",
        secs / 2
    );
    println!("x raw = WAL appends/s divided by that adjacent raw rate.");
    println!("threads: one OS thread per producer, each blocks until its append is durable");
    println!("loop:    one event-loop thread keeps N appends in flight (how the server uses it)\n");
    println!(
        "{:<8} {:>9} {:>12} {:>10} {:>10} {:>10} {:>8} {:>13} {:>9} {:>8}",
        "driver",
        "producers",
        "appends/s",
        "p50",
        "p99",
        "appends",
        "fsyncs",
        "appends/fsync",
        "raw/s",
        "x raw"
    );
    let mut raws = Vec::new();
    let mut at256 = Vec::new();
    for (label, producers) in [
        ("threads", 1),
        ("threads", 16),
        ("threads", 256),
        ("loop", 1),
        ("loop", 16),
        ("loop", 256),
    ] {
        // KEEL_BENCH_ONLY=threads:256 runs one configuration (for A/B comparisons).
        if let Ok(only) = std::env::var("KEEL_BENCH_ONLY") {
            if only != format!("{label}:{producers}") {
                continue;
            }
        }
        let raw = raw_fdatasync_rate(&dir, secs / 2, true);
        raws.push(raw);
        let r = if label == "threads" {
            wal_run(&dir, producers, secs)
        } else {
            wal_event_loop_run(&dir, producers, secs)
        };
        print_run(label, &r, raw);
        if producers == 256 {
            at256.push((label, r.rate, raw));
        }
    }
    if raws.is_empty() {
        return;
    }
    raws.sort_by(|a, b| a.total_cmp(b));
    println!(
        "\nraw fdatasync rate over the run: min {:.0}/s, median {:.0}/s, max {:.0}/s",
        raws[0],
        raws[raws.len() / 2],
        raws[raws.len() - 1]
    );
    let median = raws[raws.len() / 2];
    let max = raws[raws.len() - 1];
    for (label, rate, raw) in at256 {
        println!(
            "goal ({label}, 256 producers: {rate:.0}/s) >= 100 x raw: {:.1} x adjacent raw, \
             {:.1} x median raw -> {}, {:.1} x max raw",
            rate / raw,
            rate / median,
            if rate >= 100.0 * median {
                "MET"
            } else {
                "NOT MET"
            },
            rate / max,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
