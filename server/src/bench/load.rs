//! The closed-loop load: `--clients` clients, each with its own connection to one endpoint
//! (client `i` → `endpoints[i % n]`, as etcd's benchmark spreads its connections), each sending
//! its next request as soon as the previous one is answered. What is shared by both drivers
//! lives here (budget, keys, requests, error texts) along with the `threads` driver (one OS
//! thread and blocking connection per client); the `loop` driver is in `loop_driver.rs`.

use super::args::{Driver, Mode, Options};
use super::histogram::Histogram;
use keel_net::client::{Client, ClientConfig, ClientError};
use keel_net::proto::etcdserverpb::{
    compare, request_op, Compare, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp,
    TxnRequest, TxnResponse,
};
use keel_net::proto::Message;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

/// gRPC paths of the calls the bench makes.
pub mod paths {
    /// KV.Put.
    pub const PUT: &str = "/etcdserverpb.KV/Put";
    /// KV.Range.
    pub const RANGE: &str = "/etcdserverpb.KV/Range";
    /// KV.Txn.
    pub const TXN: &str = "/etcdserverpb.KV/Txn";
    /// Watch.Watch.
    pub const WATCH: &str = "/etcdserverpb.Watch/Watch";
}

/// What a run (or one client of it) measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latencies of successful operations, in microseconds.
    pub latency_us: Histogram,
    /// Failed operations by error message.
    pub errors: BTreeMap<String, u64>,
    /// Wall time from the common start to the last client's end.
    pub elapsed: Duration,
}

impl Outcome {
    /// Adds another client's figures (elapsed is the longest).
    pub fn merge(&mut self, other: &Outcome) {
        self.latency_us.merge(&other.latency_us);
        for (m, c) in &other.errors {
            *self.errors.entry(m.clone()).or_default() += c;
        }
        self.elapsed = self.elapsed.max(other.elapsed);
    }

    /// Number of failed operations.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Successful operations per second of wall time.
    pub fn ops_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s == 0.0 {
            0.0
        } else {
            self.latency_us.count() as f64 / s
        }
    }
}

/// A small xorshift64* generator: fast, seedable, good enough for key choice and filler bytes.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced: xorshift must not start at 0).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The key for number `n`: `prefix` followed by `n` in decimal, zero-padded (or cut to its last
/// digits) to exactly `size` bytes.
pub fn key_bytes(prefix: &str, n: u64, size: usize) -> Vec<u8> {
    let digits = format!("{n:0size$}");
    let mut k = prefix.as_bytes().to_vec();
    k.extend_from_slice(&digits.as_bytes()[digits.len() - size..]);
    k
}

/// Appends the key for number `n` to `out`: the same bytes as [`key_bytes`], without allocating.
pub fn write_key(prefix: &str, n: u64, size: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(prefix.as_bytes());
    let mut digits = [b'0'; 20];
    let mut v = n;
    let mut i = digits.len();
    while v > 0 {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    // `digits` holds n zero-padded to 20 places; a wider key is padded with more zeros.
    if size > digits.len() {
        out.resize(out.len() + size - digits.len(), b'0');
        out.extend_from_slice(&digits);
    } else {
        out.extend_from_slice(&digits[digits.len() - size..]);
    }
}

/// Appends a protobuf varint.
fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends one gRPC-framed `PutRequest{key, value}` (5-byte prefix + protobuf) to `out`,
/// encoded by hand: byte for byte what [`build_request`] + `encode_message` produce for `put`,
/// with the key number drawn the same way, but with no allocation besides `out`'s.
pub fn put_message_into(o: &Options, rng: &mut Rng, seq: u64, value: &[u8], out: &mut Vec<u8>) {
    let n = if o.sequential_keys {
        seq % o.key_space_size
    } else {
        rng.next_u64() % o.key_space_size
    };
    let start = out.len();
    out.extend_from_slice(&[0; 5]);
    let key_len = o.prefix.len() + o.key_size;
    out.push(0x0a); // field 1 (key), length-delimited
    put_varint(key_len as u64, out);
    write_key(&o.prefix, n, o.key_size, out);
    if !value.is_empty() {
        out.push(0x12); // field 2 (value), length-delimited
        put_varint(value.len() as u64, out);
        out.extend_from_slice(value);
    }
    let len = (out.len() - start - 5) as u32;
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
}

/// Hands out operation numbers until `--total` is reached or `--duration` has passed.
pub struct Budget {
    next: AtomicU64,
    total: Option<u64>,
    deadline: OnceLock<Instant>,
    stop: AtomicBool,
}

impl Budget {
    /// A budget of at most `total` operations; [`Budget::start_clock`] adds a time limit.
    pub fn new(total: Option<u64>) -> Budget {
        Budget {
            next: AtomicU64::new(0),
            total,
            deadline: OnceLock::new(),
            stop: AtomicBool::new(false),
        }
    }

    /// Ends the run `duration` from now (the first call wins).
    pub fn start_clock(&self, duration: Duration) {
        let _ = self.deadline.set(Instant::now() + duration);
    }

    /// The next operation's sequence number, or `None` when the run is over.
    pub fn claim(&self) -> Option<u64> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        if self.deadline.get().is_some_and(|d| Instant::now() >= *d) {
            self.stop.store(true, Ordering::Relaxed);
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if self.total.is_some_and(|t| i >= t) {
            self.stop.store(true, Ordering::Relaxed);
            return None;
        }
        Some(i)
    }
}

/// One request of the chosen mode.
pub fn build_request(
    o: &Options,
    rng: &mut Rng,
    seq: u64,
    value: &[u8],
) -> (&'static str, Vec<u8>) {
    let key_no = |rng: &mut Rng| {
        if o.sequential_keys {
            seq % o.key_space_size
        } else {
            rng.next_u64() % o.key_space_size
        }
    };
    match o.mode {
        Mode::Put | Mode::WatchLatency => {
            let req = PutRequest {
                key: key_bytes(&o.prefix, key_no(rng), o.key_size),
                value: value.to_vec(),
                ..Default::default()
            };
            (paths::PUT, req.encode_to_vec())
        }
        Mode::Range => {
            let req = RangeRequest {
                key: key_bytes(&o.prefix, key_no(rng), o.key_size),
                serializable: o.serializable,
                ..Default::default()
            };
            (paths::RANGE, req.encode_to_vec())
        }
        Mode::Txn => {
            let first = key_bytes(&o.prefix, key_no(rng), o.key_size);
            let mut success = Vec::with_capacity(o.txn_ops);
            for i in 0..o.txn_ops {
                let key = if i == 0 {
                    first.clone()
                } else {
                    key_bytes(&o.prefix, key_no(rng), o.key_size)
                };
                success.push(RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        key,
                        value: value.to_vec(),
                        ..Default::default()
                    })),
                });
            }
            // version(first) >= 0 always holds: the success branch runs, as etcd's txn-put.
            let req = TxnRequest {
                compare: vec![Compare {
                    result: compare::CompareResult::Greater as i32,
                    target: compare::CompareTarget::Version as i32,
                    key: first,
                    target_union: Some(compare::TargetUnion::Version(-1)),
                    ..Default::default()
                }],
                success,
                failure: vec![],
            };
            (paths::TXN, req.encode_to_vec())
        }
    }
}

/// Checks that a response decodes as the call's response type.
pub fn check_response(path: &str, bytes: &[u8]) -> Result<(), String> {
    let r = match path {
        paths::PUT => PutResponse::decode(bytes).map(|_| ()),
        paths::RANGE => RangeResponse::decode(bytes).map(|_| ()),
        _ => TxnResponse::decode(bytes).map(|_| ()),
    };
    r.map_err(|e| format!("bad response message: {e}"))
}

/// The text an error is counted under (a gRPC status prints just its message, like etcd's tool).
pub fn error_text(e: &ClientError) -> String {
    match e {
        ClientError::Status(s) => format!("{:?}: {}", s.code, s.message),
        other => other.to_string(),
    }
}

/// Filler bytes for values.
pub fn filler(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| b'a' + (rng.next_u64() % 26) as u8).collect()
}

/// Runs the closed-loop load for `put`, `range` and `txn` with the driver `--driver` names.
pub fn run_closed_loop(o: &Options) -> Outcome {
    match o.driver {
        Driver::Loop => super::loop_driver::run(o),
        Driver::Threads => run_threads(o),
    }
}

/// The `threads` driver: one OS thread with a blocking [`Client`] per client.
pub fn run_threads(o: &Options) -> Outcome {
    let budget = Arc::new(Budget::new(o.total));
    // Everyone connects first; the clock starts when all are ready.
    let barrier = Arc::new(Barrier::new(o.clients + 1));
    let mut handles = Vec::with_capacity(o.clients);
    for i in 0..o.clients {
        let o = o.clone();
        let budget = budget.clone();
        let barrier = barrier.clone();
        let endpoint = o.endpoints[i % o.endpoints.len()].clone();
        let h = std::thread::Builder::new()
            .name(format!("client-{i}"))
            .stack_size(256 << 10)
            .spawn(move || {
                let config = ClientConfig {
                    call_timeout: o.call_timeout,
                    ..ClientConfig::default()
                };
                let client = Client::connect(&[endpoint.as_str()], config);
                barrier.wait();
                barrier.wait(); // start signal, after the budget got its deadline
                let mut out = Outcome::default();
                let mut client = match client {
                    Ok(c) => c,
                    Err(e) => {
                        *out.errors.entry(error_text(&e)).or_default() += 1;
                        return out;
                    }
                };
                let mut rng = Rng::new(i as u64 + 1);
                let value = filler(&mut rng, o.val_size);
                while let Some(seq) = budget.claim() {
                    let (path, req) = build_request(&o, &mut rng, seq, &value);
                    let started = Instant::now();
                    let r = client.unary_with(path, &req, &[], o.call_timeout);
                    let took = started.elapsed();
                    match r
                        .map_err(|e| error_text(&e))
                        .and_then(|b| check_response(path, &b))
                    {
                        Ok(()) => out.latency_us.record(took.as_micros() as u64),
                        Err(msg) => {
                            *out.errors.entry(msg).or_default() += 1;
                            // Do not spin on a dead server.
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
                out
            })
            .expect("spawn client thread");
        handles.push(h);
    }
    barrier.wait();
    let start = Instant::now();
    if let Some(d) = o.duration {
        budget.start_clock(d);
    }
    barrier.wait();
    let mut total = Outcome::default();
    for h in handles {
        match h.join() {
            Ok(out) => total.merge(&out),
            Err(_) => {
                *total
                    .errors
                    .entry("client thread panicked".into())
                    .or_default() += 1
            }
        }
    }
    total.elapsed = start.elapsed();
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_requested_size() {
        assert_eq!(key_bytes("", 42, 8), b"00000042");
        assert_eq!(key_bytes("p/", 42, 3), b"p/042");
        assert_eq!(key_bytes("", 123_456, 4), b"3456");
        assert_eq!(key_bytes("", 0, 1), b"0");
    }

    #[test]
    fn write_key_matches_key_bytes() {
        for (prefix, n, size) in [
            ("", 42, 8),
            ("p/", 42, 3),
            ("", 123_456, 4),
            ("", 0, 1),
            ("x", u64::MAX, 20),
            ("x", u64::MAX, 25),
            ("", 7, 30),
        ] {
            let mut out = b"old".to_vec();
            write_key(prefix, n, size, &mut out);
            assert_eq!(
                &out[3..],
                key_bytes(prefix, n, size).as_slice(),
                "{n} {size}"
            );
        }
    }

    #[test]
    fn hand_encoded_put_equals_prost() {
        for (val, seq_keys, prefix) in [
            (256, true, "b/"),
            (0, true, ""),
            (100, false, "k/"),
            (1024, false, ""),
        ] {
            let o = Options {
                val_size: val,
                sequential_keys: seq_keys,
                prefix: prefix.into(),
                ..Options::default()
            };
            let value = filler(&mut Rng::new(9), val);
            let (mut a, mut b) = (Rng::new(3), Rng::new(3));
            let mut out = Vec::new();
            for seq in [0, 5, 1_000_001] {
                out.clear();
                put_message_into(&o, &mut a, seq, &value, &mut out);
                let (path, req) = build_request(&o, &mut b, seq, &value);
                assert_eq!(path, paths::PUT);
                assert_eq!(
                    out,
                    keel_net::grpc::encode_message(&req),
                    "val {val} seq {seq}"
                );
            }
        }
    }

    #[test]
    fn budget_stops_at_total() {
        let b = Budget::new(Some(3));
        assert_eq!(b.claim(), Some(0));
        assert_eq!(b.claim(), Some(1));
        assert_eq!(b.claim(), Some(2));
        assert_eq!(b.claim(), None);
        assert_eq!(b.claim(), None);
        let t = Budget::new(None);
        assert!(t.claim().is_some());
        t.start_clock(Duration::ZERO);
        assert_eq!(t.claim(), None);
    }

    #[test]
    fn rng_is_deterministic_and_varied() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let distinct: std::collections::HashSet<_> = xs.iter().collect();
        assert_eq!(distinct.len(), 100);
        let mut z = Rng::new(0);
        assert_ne!(z.next_u64(), 0);
    }

    #[test]
    fn txn_request_puts_txn_ops_keys() {
        let o = Options {
            mode: Mode::Txn,
            txn_ops: 3,
            sequential_keys: true,
            ..Options::default()
        };
        let (path, bytes) = build_request(&o, &mut Rng::new(1), 5, b"v");
        assert_eq!(path, paths::TXN);
        let t = TxnRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(t.success.len(), 3);
        assert_eq!(t.compare.len(), 1);
        assert_eq!(t.compare[0].key, b"00000005");
    }
}
