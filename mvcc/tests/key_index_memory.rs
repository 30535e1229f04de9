//! Heap bytes per key of the in-memory key index (`TreeIndex`), counted by a global allocator
//! wrapper that lives only in this test binary.
//!
//!     CARGO_TARGET_DIR=/work/target-keyidx cargo test --release -p keel-mvcc \
//!         --test key_index_memory -- --nocapture
//!
//! Three workloads over 100,000 distinct 8-byte keys (big-endian counters, inserted in key
//! order, as a client writing `key/00000001`, ... does): every key put once; every key put
//! three times (three rounds over all keys); every key put once and deleted once; and 100,000
//! 24-byte keys put once (too long to be stored inline). Dropping each index must give back
//! every byte. Two figures
//! per workload: the bytes the index *requested* from the allocator, and an estimate of what
//! glibc malloc really reserves for them (each block rounded up to 16 bytes with 8 bytes of
//! header, at least 32), which is what resident memory pays. The assertions are ceilings a
//! little above the measured figures, so a representation that grows again fails here.

use keel_mvcc::key_index::TreeIndex;
use keel_mvcc::Revision;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static REQUESTED: AtomicIsize = AtomicIsize::new(0);
static CHUNKS: AtomicIsize = AtomicIsize::new(0);

/// glibc malloc's chunk size for a request of `size` bytes on 64-bit Linux.
fn chunk(size: usize) -> isize {
    ((size + 8 + 15) & !15).max(32) as isize
}

// SAFETY: forwards every call to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        REQUESTED.fetch_add(l.size() as isize, Ordering::Relaxed);
        CHUNKS.fetch_add(chunk(l.size()), Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        REQUESTED.fetch_sub(l.size() as isize, Ordering::Relaxed);
        CHUNKS.fetch_sub(chunk(l.size()), Ordering::Relaxed);
        // SAFETY: `p` was allocated by `System.alloc` with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        REQUESTED.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        CHUNKS.fetch_add(chunk(new) - chunk(l.size()), Ordering::Relaxed);
        // SAFETY: `p` was allocated by `System` with layout `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const KEYS: u64 = 100_000;

fn key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

/// Builds an index with `work`, returns (requested, chunk) bytes per key it holds.
fn measure(work: impl FnOnce(&mut TreeIndex)) -> (f64, f64, TreeIndex) {
    let (r0, c0) = (
        REQUESTED.load(Ordering::SeqCst),
        CHUNKS.load(Ordering::SeqCst),
    );
    let mut index = TreeIndex::new();
    work(&mut index);
    let (r1, c1) = (
        REQUESTED.load(Ordering::SeqCst),
        CHUNKS.load(Ordering::SeqCst),
    );
    let n = KEYS as f64;
    ((r1 - r0) as f64 / n, (c1 - c0) as f64 / n, index)
}

// One test function only: the harness runs tests on parallel threads, which would mix their
// allocations into the counters.
#[test]
fn index_heap_bytes_per_key() {
    let mut rev = 1i64;
    let mut next = || {
        rev += 1;
        Revision::new(rev, 0)
    };

    let baseline = REQUESTED.load(Ordering::SeqCst);
    // dropping an index must give back every byte it took (keys included)
    let assert_freed = |what: &str| {
        assert_eq!(
            REQUESTED.load(Ordering::SeqCst),
            baseline,
            "{what}: heap not freed"
        )
    };

    let (once_req, once_chunk, index) = measure(|ix| {
        for i in 0..KEYS {
            ix.put(&key(i), next());
        }
    });
    assert_eq!(index.live_keys(), KEYS);
    assert_eq!(index.get(&key(7), i64::MAX).unwrap().version, 1);
    drop(index);
    assert_freed("1 put");

    let (three_req, three_chunk, index) = measure(|ix| {
        for _round in 0..3 {
            for i in 0..KEYS {
                ix.put(&key(i), next());
            }
        }
    });
    assert_eq!(index.revision_count(), 3 * KEYS);
    assert_eq!(index.get(&key(7), i64::MAX).unwrap().version, 3);
    drop(index);
    assert_freed("3 puts");

    let (del_req, del_chunk, index) = measure(|ix| {
        for i in 0..KEYS {
            ix.put(&key(i), next());
        }
        for i in 0..KEYS {
            assert!(ix.tombstone(&key(i), next()));
        }
    });
    assert_eq!(index.live_keys(), 0);
    assert_eq!(index.revision_count(), 2 * KEYS);
    drop(index);
    assert_freed("put + delete");

    // longer keys (24 bytes, as `/registry/pods/ns/name` style keys are), put once each
    let long_key = |i: u64| format!("/registry/pods/{i:09}").into_bytes();
    let (long_req, long_chunk, index) = measure(|ix| {
        for i in 0..KEYS {
            ix.put(&long_key(i), next());
        }
    });
    assert_eq!(long_key(1).len(), 24);
    assert_eq!(index.live_keys(), KEYS);
    assert!(index.get(&long_key(9), i64::MAX).is_some());
    drop(index);
    assert_freed("24-byte keys");

    println!("key index heap, {KEYS} keys of 8 bytes (requested / glibc chunks, bytes per key):");
    println!("  1 put each:          {once_req:6.1} / {once_chunk:6.1}");
    println!("  3 puts each:         {three_req:6.1} / {three_chunk:6.1}");
    println!("  1 put + 1 delete:    {del_req:6.1} / {del_chunk:6.1}");
    println!("  1 put, 24-byte keys: {long_req:6.1} / {long_chunk:6.1}");

    // Ceilings (chunk estimates): see mvcc/README.md for the measured figures.
    let ceilings = [
        ("1 put", once_chunk, CEIL_ONCE),
        ("3 puts", three_chunk, CEIL_THREE),
        ("put + delete", del_chunk, CEIL_DELETED),
        ("24-byte keys", long_chunk, CEIL_LONG_KEYS),
    ];
    for (what, got, ceiling) in ceilings {
        assert!(
            got <= ceiling,
            "{what}: {got:.1} B/key of heap, more than the {ceiling} B/key ceiling"
        );
    }
}

// Measured 79.6 / 143.6 / 191.6 / 111.6 (223.6 / 271.6 / 319.6 / 223.6 before the compact
// forms and inline keys).
const CEIL_ONCE: f64 = 90.0;
const CEIL_THREE: f64 = 155.0;
const CEIL_DELETED: f64 = 205.0;
const CEIL_LONG_KEYS: f64 = 125.0;
