//! Peer transport benchmark: two transports on loopback.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-netpeer cargo bench -p keel-net --bench peer_bench`
//! (`PEER_BENCH_SECS=N` changes the time per throughput case, default 2.)
//!
//! Measures
//! - one-way throughput (messages/s, MB/s) with 256-byte and 64 KiB messages, against a
//!   baseline measured in the same run: the same payloads over one plain blocking TCP
//!   connection with only a 4-byte length prefix (no CRC, no queue, no threads in between) —
//!   the ceiling the transport is compared to;
//! - round-trip latency of 256-byte messages (ping-pong through both transports);
//! - the same round trips while a 64 MiB snapshot is streaming on the snapshot lane, and the
//!   snapshot's own throughput.

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_net::peer::{Inbox, PeerEvent, PeerTransport, PeerTransportConfig, SendError};

fn pair() -> (PeerTransport, Inbox, PeerTransport, Inbox) {
    let addr = "127.0.0.1:0".parse().unwrap();
    let quiet = |mut c: PeerTransportConfig| {
        c.log = Arc::new(|_: &str| {});
        c
    };
    let (a, a_in) =
        PeerTransport::start(quiet(PeerTransportConfig::new(1, 1, addr)), || {}).unwrap();
    let (b, b_in) =
        PeerTransport::start(quiet(PeerTransportConfig::new(1, 2, addr)), || {}).unwrap();
    a.add_peer(2, b.local_addr()).unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    (a, a_in, b, b_in)
}

/// Sends `size`-byte messages from A to B for `secs`; returns (messages/s, MB/s, drops seen).
fn transport_throughput(size: usize, secs: f64) -> (f64, f64, u64) {
    let (a, _a_in, _b, b_in) = pair();
    let a = Arc::new(a);
    let stop = Arc::new(AtomicBool::new(false));
    let (sender, flag) = (a.clone(), stop.clone());
    let producer = std::thread::spawn(move || {
        let payload = vec![0xab; size];
        let mut full = 0u64;
        while !flag.load(Ordering::Relaxed) {
            match sender.send(2, payload.clone()) {
                Ok(()) => {}
                Err(SendError::QueueFull { .. }) => {
                    full += 1;
                    std::thread::yield_now();
                }
                Err(e) => panic!("{e}"),
            }
        }
        full
    });
    // Warm up, then count what arrives in the measured window.
    let warmup = Instant::now() + Duration::from_millis(200);
    while Instant::now() < warmup {
        b_in.recv_timeout(Duration::from_millis(50));
    }
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        if let Some(PeerEvent::Message { .. }) = b_in.recv_timeout(Duration::from_millis(100)) {
            count += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let full = producer.join().unwrap();
    let rate = count as f64 / elapsed;
    (rate, rate * size as f64 / 1e6, full)
}

/// The baseline: one blocking TCP connection, 4-byte length prefix, reader thread allocating
/// each message like the transport does.
fn raw_tcp_throughput(size: usize, secs: f64) -> (f64, f64) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let producer = std::thread::spawn(move || {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut w = BufWriter::with_capacity(1 << 20, stream);
        let payload = vec![0xab; size];
        while !flag.load(Ordering::Relaxed) {
            if w.write_all(&(size as u32).to_le_bytes())
                .and_then(|_| w.write_all(&payload))
                .is_err()
            {
                break;
            }
        }
    });
    let (stream, _) = listener.accept().unwrap();
    let mut r = BufReader::with_capacity(64 << 10, stream);
    let read_one = |r: &mut BufReader<TcpStream>| -> Vec<u8> {
        let mut len = [0u8; 4];
        r.read_exact(&mut len).unwrap();
        let mut msg = vec![0u8; u32::from_le_bytes(len) as usize];
        r.read_exact(&mut msg).unwrap();
        msg
    };
    let warmup = Instant::now() + Duration::from_millis(200);
    while Instant::now() < warmup {
        read_one(&mut r);
    }
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..64 {
            std::hint::black_box(read_one(&mut r));
        }
        count += 64;
    }
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    drop(r);
    producer.join().unwrap();
    let rate = count as f64 / elapsed;
    (rate, rate * size as f64 / 1e6)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Ping-pong round trips of 256-byte messages; optionally while a snapshot streams A→B.
/// Returns (p50, p99, max, snapshot MB/s if any).
fn round_trips(
    iterations: usize,
    snapshot_bytes: usize,
) -> (Duration, Duration, Duration, Option<f64>) {
    let (a, a_in, b, b_in) = pair();
    let b = Arc::new(b);
    let stop = Arc::new(AtomicBool::new(false));
    let (echo_b, flag) = (b.clone(), stop.clone());
    let echo = std::thread::spawn(move || {
        let mut snapshot_done = None;
        while !flag.load(Ordering::Relaxed) {
            match b_in.recv_timeout(Duration::from_millis(20)) {
                Some(PeerEvent::Message { payload, .. }) => {
                    let _ = echo_b.send(1, payload);
                }
                Some(PeerEvent::Snapshot { data, .. }) => {
                    snapshot_done = Some((Instant::now(), data.len()))
                }
                _ => {}
            }
        }
        snapshot_done
    });
    let payload = vec![7u8; 256];
    // Warm up the connections in both directions.
    for _ in 0..100 {
        a.send(2, payload.clone()).unwrap();
        while !matches!(
            a_in.recv_timeout(Duration::from_secs(5)),
            Some(PeerEvent::Message { .. })
        ) {}
    }
    let snapshot_start = Instant::now();
    if snapshot_bytes > 0 {
        a.send_snapshot(2, 1, vec![0x33; snapshot_bytes]).unwrap();
    }
    let mut samples = Vec::with_capacity(iterations);
    let mut snapshot_finished = None;
    for _ in 0..iterations {
        let t = Instant::now();
        a.send(2, payload.clone()).unwrap();
        loop {
            match a_in.recv_timeout(Duration::from_secs(5)).expect("echo") {
                PeerEvent::Message { .. } => break,
                PeerEvent::SnapshotStatus { result, .. } => {
                    result.unwrap();
                    snapshot_finished = Some(snapshot_start.elapsed());
                }
                _ => {}
            }
        }
        samples.push(t.elapsed());
    }
    if snapshot_bytes > 0 && snapshot_finished.is_none() {
        loop {
            if let Some(PeerEvent::SnapshotStatus { result, .. }) =
                a_in.recv_timeout(Duration::from_secs(30))
            {
                result.unwrap();
                snapshot_finished = Some(snapshot_start.elapsed());
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let received = echo.join().unwrap();
    samples.sort_unstable();
    let snapshot_rate = snapshot_finished.map(|d| {
        assert_eq!(received.map(|(_, len)| len), Some(snapshot_bytes));
        snapshot_bytes as f64 / d.as_secs_f64() / 1e6
    });
    (
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        *samples.last().unwrap(),
        snapshot_rate,
    )
}

fn main() {
    let secs: f64 = std::env::var("PEER_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    println!("peer transport, two members on loopback ({secs} s per throughput case)");
    println!(
        "{:<10} {:>14} {:>10} {:>14} {:>10} {:>8} {:>12}",
        "size", "keel msg/s", "keel MB/s", "raw msg/s", "raw MB/s", "ratio", "queue-full"
    );
    for size in [256usize, 64 << 10] {
        let (rate, mbs, full) = transport_throughput(size, secs);
        let (raw_rate, raw_mbs) = raw_tcp_throughput(size, secs);
        println!(
            "{:<10} {:>14.0} {:>10.1} {:>14.0} {:>10.1} {:>8.2} {:>12}",
            if size == 256 {
                "256 B".to_string()
            } else {
                "64 KiB".to_string()
            },
            rate,
            mbs,
            raw_rate,
            raw_mbs,
            rate / raw_rate,
            full
        );
    }
    let iterations = 5000;
    let (p50, p99, max, _) = round_trips(iterations, 0);
    println!("round trip 256 B, idle:                 p50 {p50:?}  p99 {p99:?}  max {max:?}  ({iterations} samples)");
    let (p50, p99, max, rate) = round_trips(iterations, 64 << 20);
    println!(
        "round trip 256 B, during 64 MiB snapshot: p50 {p50:?}  p99 {p99:?}  max {max:?}  (snapshot {:.0} MB/s)",
        rate.unwrap_or(0.0)
    );
}
