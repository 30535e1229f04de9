//! keel-mvcc benchmark (harness = false).
//!
//!     CARGO_TARGET_DIR=/work/target-mvcc cargo bench -p keel-mvcc --bench mvcc_bench
//!
//! Measures: puts/s applied in batches (with fsync per batch, and redb doing the same raw
//! inserts in one transaction per batch as the peer); a 1,000-key range at the head and at an
//! old revision; watch fan-out to 10,000 watchers; heap bytes per key of the in-memory index
//! (counted by a global allocator wrapper, after reopening so only rebuilt state is counted).
//! Sizes can be scaled down with KEEL_BENCH_KEYS (default 100000). KEEL_BENCH_INDEX_ONLY=1 runs
//! only the reopen + index rebuild part (heap bytes per key of the key index).
//! KEEL_BENCH_SERVER_LIKE=1 runs only the server-shaped put load (an apply thread with
//! `apply_batch_deferred_owned` + a commit thread with `commit_pending`): CPU time and heap
//! allocations per put of each thread (KEEL_BENCH_PUTS, default 200000; KEEL_BENCH_RATE paces
//! the apply thread at that many puts/s).

use keel_mvcc::*;
use redb::ReadableDatabase;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// This thread's (allocations, bytes allocated, frees): `alloc` and `realloc` count as
    /// allocations (a realloc may move the block). Plain cells without destructors, so using
    /// them from the allocator never allocates.
    static THREAD_ALLOCS: std::cell::Cell<(u64, u64, u64)> = const { std::cell::Cell::new((0, 0, 0)) };
}

fn count_alloc(bytes: usize) {
    let _ = THREAD_ALLOCS.try_with(|c| {
        let (n, b, f) = c.get();
        c.set((n + 1, b + bytes as u64, f));
    });
}

fn count_free() {
    let _ = THREAD_ALLOCS.try_with(|c| {
        let (n, b, f) = c.get();
        c.set((n, b, f + 1));
    });
}

/// This thread's (allocations, bytes allocated, frees) so far.
fn thread_allocs() -> (u64, u64, u64) {
    THREAD_ALLOCS.with(|c| c.get())
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        count_alloc(l.size());
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        count_free();
        // SAFETY: `p` was allocated by `System.alloc` with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        count_alloc(new);
        // SAFETY: `p` was allocated by `System` with layout `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn tmp(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("keel-mvcc-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn key(i: usize) -> Vec<u8> {
    format!("key/{i:08}").into_bytes()
}

/// Puts/s and mean time per apply call (what a client's acknowledgement waits for) with 100
/// entries per call: durable apply_batch vs apply_batch_deferred + commit_pending every 1,000
/// entries (the final commit included in the time).
/// Put requests of `value` under `keys`, numbered as Raft entries on from `*idx`.
fn put_entries(
    idx: &mut u64,
    keys: impl IntoIterator<Item = Vec<u8>>,
    value: &[u8],
) -> Vec<(u64, Request)> {
    keys.into_iter()
        .map(|key| {
            *idx += 1;
            (
                *idx,
                Request::Put(PutRequest {
                    key,
                    value: value.to_vec(),
                    ..Default::default()
                }),
            )
        })
        .collect()
}

fn deferred_vs_durable(n: usize, value: &[u8]) {
    let mut rates = [0f64; 2];
    let mut per_call = [0f64; 2];
    for (mode, deferred) in [false, true].into_iter().enumerate() {
        let dir = tmp(&format!("deferred{mode}"));
        let store = Store::open_path(dir.join("db"), StoreConfig::default()).unwrap();
        let mut idx = 0u64;
        let mut in_calls = std::time::Duration::ZERO;
        let mut calls = 0u32;
        let mut commits = 0u32;
        let t = Instant::now();
        for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
            let entries = put_entries(&mut idx, chunk.iter().map(|i| key(*i)), value);
            let call = Instant::now();
            let results = if deferred {
                store.apply_batch_deferred(&entries)
            } else {
                store.apply_batch(&entries)
            };
            in_calls += call.elapsed();
            calls += 1;
            for r in results {
                r.unwrap();
            }
            if deferred && store.pending_entries() >= 1000 {
                store.commit_pending().unwrap();
                commits += 1;
            }
        }
        if deferred {
            commits += (store.commit_pending().unwrap().entries > 0) as u32;
            assert_eq!(store.durable_index(), idx);
        } else {
            commits = calls;
        }
        rates[mode] = n as f64 / t.elapsed().as_secs_f64();
        per_call[mode] = in_calls.as_secs_f64() * 1e3 / calls as f64;
        println!(
            "put, 100 per call, {}: {:>9.0} puts/s, {:.3} ms per apply call, {} btree commits",
            if deferred {
                "apply_batch_deferred + commit_pending every 1,000"
            } else {
                "apply_batch (commit per call)                    "
            },
            rates[mode],
            per_call[mode],
            commits
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!(
        "deferred / durable: {:.2}x puts/s, apply call {:.1}x shorter",
        rates[1] / rates[0],
        per_call[0] / per_call[1]
    );
}

/// Apply latency with commits every 100 ms, `inline` (the apply thread calls commit_pending
/// itself, so batches arriving during the commit wait for it) or on a committer thread (the
/// commit is in flight while batches apply). Batches of `per_batch` puts arrive on a fixed
/// schedule (one every `period`); a batch's latency is from its arrival to its apply call's
/// return, so waiting behind a commit counts. Returns latency (p50, p99, max) in ms, the p99 of
/// the apply call alone, and the commits made.
fn apply_latency_with_commits(
    committer_thread: bool,
    batches: usize,
    per_batch: usize,
    period: std::time::Duration,
    value: &[u8],
) -> (f64, f64, f64, f64, u32) {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    let dir = tmp(&format!("committer{}", committer_thread as u8));
    let store = Store::open_path(dir.join("db"), StoreConfig::default()).unwrap();
    let commit_every = Duration::from_millis(100);
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU32::new(0));
    let committer = committer_thread.then(|| {
        let (store, stop, commits) = (store.clone(), stop.clone(), commits.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(commit_every);
                if store.commit_pending().unwrap().entries > 0 {
                    commits.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    });
    let mut latencies = Vec::with_capacity(batches);
    let mut calls = Vec::with_capacity(batches);
    let mut idx = 0u64;
    let start = Instant::now();
    let mut last_commit = start;
    for b in 0..batches {
        let keys = (0..per_batch).map(|j| key((b * per_batch + j) % 50_000));
        let entries = put_entries(&mut idx, keys, value);
        let arrival = start + period * b as u32;
        let now = Instant::now();
        if now < arrival {
            std::thread::sleep(arrival - now);
        }
        let call = Instant::now();
        for r in store.apply_batch_deferred(&entries) {
            r.unwrap();
        }
        calls.push(call.elapsed().as_secs_f64() * 1e3);
        latencies.push(arrival.elapsed().as_secs_f64() * 1e3);
        if !committer_thread && last_commit.elapsed() >= commit_every {
            if store.commit_pending().unwrap().entries > 0 {
                commits.fetch_add(1, Ordering::SeqCst);
            }
            last_commit = Instant::now();
        }
    }
    stop.store(true, Ordering::SeqCst);
    if let Some(c) = committer {
        c.join().unwrap();
    }
    store.commit_pending().unwrap();
    assert_eq!(store.durable_index(), idx);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    latencies.sort_by(|a, b| a.total_cmp(b));
    calls.sort_by(|a, b| a.total_cmp(b));
    let pct = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p) as usize];
    (
        pct(&latencies, 0.50),
        pct(&latencies, 0.99),
        *latencies.last().unwrap(),
        pct(&calls, 0.99),
        commits.load(Ordering::SeqCst),
    )
}

/// Inline commits vs a committer thread, 1 KiB values.
fn committer_overlap() {
    let value = vec![b'v'; 1024];
    let (batches, per_batch, period) = (2_000, 20, std::time::Duration::from_millis(1));
    println!(
        "apply latency, {per_batch} x 1 KiB puts per batch, one batch every {period:?}, commit every 100 ms:"
    );
    let mut p99 = [0f64; 2];
    for (mode, thread) in [false, true].into_iter().enumerate() {
        let (p50, p, max, call_p99, commits) =
            apply_latency_with_commits(thread, batches, per_batch, period, &value);
        p99[mode] = p;
        println!(
            "  {}: latency p50 {p50:.3} ms, p99 {p:.3} ms, max {max:.3} ms; apply call p99 {call_p99:.3} ms; {commits} commits",
            if thread {
                "committer thread (commit in flight while applying)"
            } else {
                "inline on the apply thread (applies wait)         "
            }
        );
    }
    println!(
        "committer thread / inline: p99 apply latency {:.1}x shorter",
        p99[0] / p99[1]
    );
}

/// This thread's CPU time so far in nanoseconds: `/proc/thread-self/schedstat` (time on CPU,
/// ns), else utime + stime of `/proc/thread-self/stat` (fields 14 + 15, clock ticks of 10 ms).
fn thread_cpu_ns() -> u64 {
    if let Ok(s) = std::fs::read_to_string("/proc/thread-self/schedstat") {
        if let Some(ns) = s.split_whitespace().next().and_then(|v| v.parse().ok()) {
            return ns;
        }
    }
    let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // after ')' the first field is field 3 (state): utime = field 14, stime = field 15
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * 10_000_000
}

/// What the server does under put load: an apply thread applying batches of 10 puts (8-byte
/// sequential keys, 256-byte values) with `apply_batch_deferred_owned`, and a commit thread
/// calling `commit_pending` every 100 ms or as soon as 10,000 entries are pending. Prints wall
/// time, CPU time per put of each thread and heap allocations per put (the apply thread's,
/// split into building the requests and the apply calls, and the commit thread's).
fn server_like(puts: usize, rate: Option<f64>) {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;
    let dir = tmp("serverlike");
    let store = Store::open_path(dir.join("db"), StoreConfig::default()).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let committer = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            let (cpu0, a0) = (thread_cpu_ns(), thread_allocs());
            let mut commits = 0u32;
            let mut last = Instant::now();
            loop {
                let finished = done.load(Ordering::SeqCst);
                if finished
                    || last.elapsed() >= Duration::from_millis(100)
                    || store.pending_entries() >= 10_000
                {
                    if store.commit_pending().unwrap().entries > 0 {
                        commits += 1;
                    }
                    last = Instant::now();
                    if finished {
                        break;
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            let a1 = thread_allocs();
            (
                thread_cpu_ns() - cpu0,
                (a1.0 - a0.0, a1.1 - a0.1, a1.2 - a0.2),
                commits,
            )
        })
    };
    let value = vec![b'v'; 256];
    let (cpu0, a0) = (thread_cpu_ns(), thread_allocs());
    let mut in_calls = (0u64, 0u64, 0u64);
    let start = Instant::now();
    let mut idx = 0u64;
    while (idx as usize) < puts {
        if let Some(rate) = rate {
            // paced: batch k starts at k * 10 / rate seconds
            let due = start + Duration::from_secs_f64(idx as f64 / rate);
            let now = Instant::now();
            if now < due {
                std::thread::sleep(due - now);
            }
        }
        let first = idx + 1;
        let keys = (first..first + 10).map(|i| format!("{:08}", i % 100_000_000).into_bytes());
        let entries = put_entries(&mut idx, keys, &value);
        let before = thread_allocs();
        let results = store.apply_batch_deferred_owned(entries);
        let after = thread_allocs();
        in_calls.0 += after.0 - before.0;
        in_calls.1 += after.1 - before.1;
        in_calls.2 += after.2 - before.2;
        for r in results {
            r.unwrap();
        }
    }
    let apply_wall = start.elapsed();
    let a1 = thread_allocs();
    let apply_cpu = thread_cpu_ns() - cpu0;
    done.store(true, Ordering::SeqCst);
    let (commit_cpu, commit_allocs, commits) = committer.join().unwrap();
    let wall = start.elapsed();
    assert_eq!(store.durable_index(), idx);
    assert_eq!(store.pending_entries(), 0);
    let n = idx as f64;
    let apply_allocs = (a1.0 - a0.0, a1.1 - a0.1, a1.2 - a0.2);
    println!(
        "server-like: {idx} puts (batches of 10, 8 B keys, 256 B values{}), committer every 100 ms or 10,000 entries: {commits} commits",
        rate.map_or(String::new(), |r| format!(", paced at {r:.0} puts/s"))
    );
    println!(
        "  wall: apply {:.3} s ({:.0} puts/s), until the last commit {:.3} s",
        apply_wall.as_secs_f64(),
        n / apply_wall.as_secs_f64(),
        wall.as_secs_f64()
    );
    println!(
        "  CPU per put: apply thread {:.0} ns, commit thread {:.0} ns, sum {:.0} ns",
        apply_cpu as f64 / n,
        commit_cpu as f64 / n,
        (apply_cpu + commit_cpu) as f64 / n
    );
    println!(
        "  allocations per put: apply thread {:.2} ({:.0} B; frees {:.2}), of which in apply_batch_deferred_owned {:.2} ({:.0} B; frees {:.2}); commit thread {:.2} ({:.0} B; frees {:.2})",
        apply_allocs.0 as f64 / n,
        apply_allocs.1 as f64 / n,
        apply_allocs.2 as f64 / n,
        in_calls.0 as f64 / n,
        in_calls.1 as f64 / n,
        in_calls.2 as f64 / n,
        commit_allocs.0 as f64 / n,
        commit_allocs.1 as f64 / n,
        commit_allocs.2 as f64 / n,
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let n: usize = std::env::var("KEEL_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let value = vec![b'v'; 256];
    println!("keel-mvcc bench: {n} keys, 256-byte values");
    // KEEL_BENCH_INDEX_ONLY=1: only the reopen + index rebuild figures (heap bytes per key)
    let index_only = std::env::var_os("KEEL_BENCH_INDEX_ONLY").is_some();
    // KEEL_BENCH_SERVER_LIKE=1: only the apply thread + commit thread run (KEEL_BENCH_PUTS
    // puts, default 200,000; KEEL_BENCH_RATE=<puts/s> paces the apply thread, default flat out)
    if std::env::var_os("KEEL_BENCH_SERVER_LIKE").is_some() {
        let puts = std::env::var("KEEL_BENCH_PUTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200_000);
        let rate = std::env::var("KEEL_BENCH_RATE")
            .ok()
            .and_then(|v| v.parse().ok());
        server_like(puts, rate);
        return;
    }
    if !index_only {
        // ---- puts/s in batches, vs redb raw inserts with the same batching
        for batch in [1usize, 100, 1000] {
            let total = if batch == 1 { 2_000 } else { n };
            let dir = tmp(&format!("put{batch}"));
            let store = Store::open_path(dir.join("db"), StoreConfig::default()).unwrap();
            let t = Instant::now();
            let mut idx = 0u64;
            for chunk in (0..total).collect::<Vec<_>>().chunks(batch) {
                let entries = put_entries(&mut idx, chunk.iter().map(|i| key(*i)), &value);
                for r in store.apply_batch(&entries) {
                    r.unwrap();
                }
            }
            let keel = total as f64 / t.elapsed().as_secs_f64();
            drop(store);

            let rdb = redb::Database::create(dir.join("redb")).unwrap();
            let table: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("kv");
            let t = Instant::now();
            for chunk in (0..total).collect::<Vec<_>>().chunks(batch) {
                let tx = rdb.begin_write().unwrap();
                {
                    let mut tb = tx.open_table(table).unwrap();
                    for i in chunk {
                        tb.insert(key(*i).as_slice(), value.as_slice()).unwrap();
                    }
                }
                tx.commit().unwrap();
            }
            let peer = total as f64 / t.elapsed().as_secs_f64();
            println!(
            "put, batch {batch:>4}: keel-mvcc {keel:>9.0} puts/s | redb raw insert {peer:>9.0} puts/s | ratio {:.2}",
            keel / peer
        );
            let _ = std::fs::remove_dir_all(&dir);
        }

        // ---- deferred apply: 100 entries per call, either committed by each call (apply_batch)
        // or applied in memory and committed every 1,000 entries (apply_batch_deferred +
        // commit_pending), the way the server can batch btree commits like etcd's backend
        deferred_vs_durable(n, &value);
        // ---- commits every 100 ms: inline on the apply thread vs a committer thread
        committer_overlap();
        if std::env::var_os("KEEL_BENCH_DEFERRED_ONLY").is_some() {
            return;
        }
    }

    // ---- ranges of 1,000 keys at head and at an old revision; memory per key
    let dir = tmp("range");
    let mut idx = 0u64;
    {
        let store = Store::open_path(dir.join("db"), StoreConfig::default()).unwrap();
        for round in 0..2 {
            for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
                let entries: Vec<(u64, Request)> = chunk
                    .iter()
                    .map(|i| {
                        idx += 1;
                        let v = format!("{round}")
                            .into_bytes()
                            .into_iter()
                            .chain(value.iter().copied())
                            .collect();
                        (
                            idx,
                            Request::Put(PutRequest {
                                key: key(*i),
                                value: v,
                                ..Default::default()
                            }),
                        )
                    })
                    .collect();
                store.apply_batch(&entries);
            }
        }
    }
    let before = LIVE.load(Ordering::SeqCst);
    let t = Instant::now();
    let store = Store::open_path(dir.join("db"), StoreConfig::default()).unwrap();
    let open_time = t.elapsed();
    let after = LIVE.load(Ordering::SeqCst);
    let st = store.status();
    println!(
        "reopen + index rebuild: {} keys, {} revisions in {:.2?}; index heap {:.0} B/key ({:.0} B/revision), db {} MB",
        st.keys,
        st.index_revisions,
        open_time,
        (after - before) as f64 / st.keys as f64,
        (after - before) as f64 / st.index_revisions as f64,
        st.db_size / 1_000_000
    );
    if index_only {
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let old_rev = 1 + n as i64; // end of the first round: every key at its first version
    for (label, rev) in [("head", 0), ("old revision", old_rev)] {
        let iters = 200;
        let t = Instant::now();
        let mut got = 0;
        for i in 0..iters {
            let start = (i * 7919) % (n - 1000);
            let r = store
                .range(&RangeRequest {
                    key: key(start),
                    range_end: key(start + 1000),
                    revision: rev,
                    ..Default::default()
                })
                .unwrap();
            got += r.kvs.len();
        }
        assert_eq!(got, iters * 1000);
        let per = t.elapsed() / iters as u32;
        println!(
            "range 1000 keys at {label:<12}: {per:.2?} per range ({:.0} keys/s)",
            1000.0 / per.as_secs_f64()
        );
    }
    // peer: redb range of 1000 keys
    let rdb = redb::Database::create(dir.join("redb")).unwrap();
    let table: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("kv");
    {
        let tx = rdb.begin_write().unwrap();
        {
            let mut tb = tx.open_table(table).unwrap();
            for i in 0..n {
                tb.insert(key(i).as_slice(), value.as_slice()).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let iters = 200;
    let t = Instant::now();
    for i in 0..iters {
        let start = (i * 7919) % (n - 1000);
        let tx = rdb.begin_read().unwrap();
        let tb = tx.open_table(table).unwrap();
        let c = tb
            .range(key(start).as_slice()..key(start + 1000).as_slice())
            .unwrap()
            .map(|e| e.unwrap().1.value().to_vec())
            .collect::<Vec<_>>()
            .len();
        assert_eq!(c, 1000);
    }
    println!(
        "range 1000 keys, redb raw   : {:.2?} per range",
        t.elapsed() / iters as u32
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);

    // ---- watch fan-out
    let dir = tmp("watch");
    let store = Store::open_path(
        dir.join("db"),
        StoreConfig {
            watch_stream_capacity: 100_000,
            ..Default::default()
        },
    )
    .unwrap();
    let streams: Vec<WatchStream> = (0..100).map(|_| store.watch_stream(|| {})).collect();
    // 10,000 watchers on one prefix: every write fans out to all of them
    for i in 0..10_000 {
        streams[i % 100]
            .watch(&WatchCreateRequest {
                key: b"w/".to_vec(),
                range_end: b"w0".to_vec(),
                ..Default::default()
            })
            .unwrap();
    }
    for s in &streams {
        let mut v = vec![];
        s.drain_into(&mut v);
    }
    let writes = 50;
    let t = Instant::now();
    let mut delivered = 0;
    for i in 0..writes {
        store
            .apply(
                i as u64 + 1,
                Request::Put(PutRequest {
                    key: format!("w/{i}").into_bytes(),
                    value: value.clone(),
                    ..Default::default()
                }),
            )
            .unwrap();
        for s in &streams {
            let mut v = vec![];
            s.drain_into(&mut v);
            delivered += v.iter().map(|r| r.events.len()).sum::<usize>();
        }
    }
    let el = t.elapsed();
    assert_eq!(delivered, writes * 10_000);
    println!(
        "watch fan-out, 10,000 watchers on one prefix: {:.2?} per write (commit + deliver + drain), {:.0} events/s",
        el / writes as u32,
        delivered as f64 / el.as_secs_f64()
    );
    drop(streams);
    // 10,000 watchers on distinct keys; batches of 1,000 writes to random keys
    let stream = store.watch_stream(|| {});
    for i in 0..10_000 {
        stream
            .watch(&WatchCreateRequest {
                key: format!("d/{i:05}").into_bytes(),
                ..Default::default()
            })
            .unwrap();
    }
    let mut v = vec![];
    stream.drain_into(&mut v);
    let mut idx = 1000u64;
    let t = Instant::now();
    let mut delivered = 0;
    for b in 0..20 {
        let keys = (0..1000).map(|j| format!("d/{:05}", (b * 1000 + j) * 7 % 10_000).into_bytes());
        let entries = put_entries(&mut idx, keys, &value);
        store.apply_batch(&entries);
        v.clear();
        stream.drain_into(&mut v);
        delivered += v.iter().map(|r| r.events.len()).sum::<usize>();
    }
    let el = t.elapsed();
    assert_eq!(delivered, 20_000);
    println!(
        "10,000 single-key watchers, 20 batches of 1,000 puts: {:.0} puts/s including delivery",
        20_000.0 / el.as_secs_f64()
    );
    drop(stream);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
