//! The loop driver against an in-process gRPC server (keel-net's event loop with a small KV
//! handler): op and error counts, exactly-once delivery, `--total`, deadlines, connection loss,
//! refused endpoints, flow control with large values, and agreement with the threads driver.

use super::*;
use crate::bench::args::Driver;
use crate::bench::load::{key_bytes, paths, run_closed_loop};
use keel_net::event_loop::{Ctx, EventLoop, Handler, LoopConfig, LoopWaker};
use keel_net::grpc::{CallEvent, CallId, Code, GrpcConfig, Status};
use keel_net::proto::etcdserverpb::{
    PutRequest, PutResponse, RangeResponse, ResponseHeader, TxnRequest, TxnResponse,
};
use keel_net::proto::Message;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

const TOO_MANY: &str = "etcdserver: too many requests";

/// What the test server saw.
#[derive(Default)]
struct Seen {
    /// Put key → how many times it arrived; and each value's length.
    puts: HashMap<Vec<u8>, u32>,
    value_lens: Vec<usize>,
    ranges: u64,
    txns: u64,
}

/// Answers Put (refusing keys whose number is ≡ 3 mod 7 with `Unavailable`, and never
/// answering keys ≡ 1 mod `silent` when `silent > 0`), Range and Txn.
struct Kv {
    calls: HashMap<CallId, (String, Vec<u8>)>,
    seen: Arc<Mutex<Seen>>,
    silent: u64,
}

struct Stop;

fn header() -> Option<ResponseHeader> {
    Some(ResponseHeader {
        cluster_id: 1,
        member_id: 2,
        revision: 3,
        raft_term: 4,
    })
}

impl Handler<Stop> for Kv {
    fn on_call(&mut self, ctx: &mut Ctx<Stop>, ev: CallEvent) {
        match ev {
            CallEvent::Started { call, path, .. } => {
                self.calls.insert(call, (path, Vec::new()));
            }
            CallEvent::Message { call, message } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.1 = message;
                }
            }
            CallEvent::HalfClosed { call } => {
                let Some((path, msg)) = self.calls.remove(&call) else {
                    return;
                };
                let mut seen = self.seen.lock().unwrap();
                match path.as_str() {
                    paths::PUT => {
                        let req = PutRequest::decode(msg.as_slice()).expect("PutRequest");
                        *seen.puts.entry(req.key.clone()).or_default() += 1;
                        seen.value_lens.push(req.value.len());
                        let n: u64 = std::str::from_utf8(&req.key).unwrap().parse().unwrap();
                        if n % 7 == 3 {
                            let _ = ctx.finish(call, Status::new(Code::Unavailable, TOO_MANY));
                        } else if self.silent > 0 && n % self.silent == 1 {
                            // never answered: the client's deadline must fire
                        } else {
                            let r = PutResponse {
                                header: header(),
                                prev_kv: None,
                            };
                            let _ = ctx.reply(call, &r.encode_to_vec());
                        }
                    }
                    paths::RANGE => {
                        seen.ranges += 1;
                        let r = RangeResponse {
                            header: header(),
                            ..Default::default()
                        };
                        let _ = ctx.reply(call, &r.encode_to_vec());
                    }
                    paths::TXN => {
                        let t = TxnRequest::decode(msg.as_slice()).expect("TxnRequest");
                        assert!(!t.success.is_empty());
                        seen.txns += 1;
                        let r = TxnResponse {
                            header: header(),
                            succeeded: true,
                            responses: vec![],
                        };
                        let _ = ctx.reply(call, &r.encode_to_vec());
                    }
                    _ => {
                        let _ = ctx.finish(call, Status::new(Code::Unimplemented, "no"));
                    }
                }
            }
            CallEvent::Cancelled { call, .. } => {
                self.calls.remove(&call);
            }
        }
    }

    fn on_wake(&mut self, ctx: &mut Ctx<Stop>, _: Stop) {
        ctx.stop();
    }
}

struct Server {
    addr: SocketAddr,
    waker: LoopWaker<Stop>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.waker.wake(Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn server_with(silent: u64, grpc: GrpcConfig) -> Server {
    let mut lp = EventLoop::new(LoopConfig {
        grpc,
        ..LoopConfig::default()
    })
    .expect("loop");
    let addr = lp.listen("127.0.0.1:0".parse().unwrap()).expect("listen");
    let waker = lp.waker();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut kv = Kv {
        calls: HashMap::new(),
        seen: seen.clone(),
        silent,
    };
    let thread = std::thread::spawn(move || lp.run(&mut kv).expect("server loop"));
    Server {
        addr,
        waker,
        seen,
        thread: Some(thread),
    }
}

fn server() -> Server {
    server_with(0, GrpcConfig::default())
}

fn put_options(endpoints: Vec<String>, clients: usize, total: u64) -> Options {
    Options {
        mode: Mode::Put,
        endpoints,
        clients,
        total: Some(total),
        duration: Some(Duration::from_secs(60)),
        key_size: 8,
        val_size: 64,
        sequential_keys: true,
        call_timeout: Duration::from_secs(5),
        ..Options::default()
    }
}

/// The errors the KV handler produces for sequential keys `0..total`.
fn expected_refusals(total: u64) -> u64 {
    (0..total).filter(|n| n % 7 == 3).count() as u64
}

#[test]
fn split_is_even_contiguous_and_complete() {
    assert_eq!(split_clients(256, 1), vec![0..256]);
    assert_eq!(split_clients(10, 3), vec![0..4, 4..7, 7..10]);
    assert_eq!(split_clients(2, 5), vec![0..1, 1..2]);
    assert_eq!(split_clients(0, 2), Vec::<Range<usize>>::new());
    for clients in 1..40 {
        for threads in 1..9 {
            let r = split_clients(clients, threads);
            assert_eq!(r.len(), threads.min(clients));
            assert_eq!(r.first().unwrap().start, 0);
            assert_eq!(r.last().unwrap().end, clients);
            assert!(r.windows(2).all(|w| w[0].end == w[1].start));
            let sizes: Vec<usize> = r.iter().map(|x| x.len()).collect();
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(max - min <= 1 && *min >= 1, "{clients} {threads} {sizes:?}");
        }
    }
}

#[test]
fn every_put_arrives_once_and_total_is_exact() {
    let srv = server();
    let a = srv.addr.to_string();
    let total = 3000;
    let mut o = put_options(vec![a.clone(), a], 24, total);
    o.loop_threads = 2;
    let out = run(&o);
    let refused = expected_refusals(total);
    assert_eq!(out.latency_us.count(), total - refused);
    let want: BTreeMap<String, u64> = [(format!("Unavailable: {TOO_MANY}"), refused)].into();
    assert_eq!(out.errors, want);
    let seen = srv.seen.lock().unwrap();
    assert_eq!(seen.puts.len() as u64, total, "distinct keys seen");
    for n in 0..total {
        assert_eq!(seen.puts.get(&key_bytes("", n, 8)), Some(&1), "key {n}");
    }
    assert!(seen.value_lens.iter().all(|&l| l == 64));
    assert!(out.elapsed > Duration::ZERO);
}

#[test]
fn threads_driver_reports_the_same_counts_and_messages() {
    let total = 700;
    let mut results = Vec::new();
    for driver in [Driver::Threads, Driver::Loop] {
        let srv = server();
        let mut o = put_options(vec![srv.addr.to_string()], 8, total);
        o.driver = driver;
        let out = run_closed_loop(&o);
        assert_eq!(srv.seen.lock().unwrap().puts.len() as u64, total);
        results.push((out.latency_us.count(), out.errors));
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[1].0, total - expected_refusals(total));
}

#[test]
fn call_timeout_counts_deadline_errors_and_goes_on() {
    let srv = server_with(25, GrpcConfig::default());
    let total = 200;
    let mut o = put_options(vec![srv.addr.to_string()], 4, total);
    o.call_timeout = Duration::from_millis(200);
    let started = Instant::now();
    let out = run(&o);
    let silent = (0..total).filter(|n| n % 25 == 1 && n % 7 != 3).count() as u64;
    let refused = expected_refusals(total);
    // The client's deadline or the server's (grpc-timeout) fires first: either way a
    // deadline error, and exactly one per silent key.
    let deadline: u64 = out
        .errors
        .iter()
        .filter(|(m, _)| m.to_lowercase().contains("deadline"))
        .map(|(_, c)| c)
        .sum();
    assert_eq!(deadline, silent, "{:?}", out.errors);
    assert_eq!(out.error_count(), silent + refused, "{:?}", out.errors);
    assert_eq!(out.latency_us.count(), total - silent - refused);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(srv.seen.lock().unwrap().puts.len() as u64, total);
}

#[test]
fn range_and_txn_modes() {
    let srv = server();
    let mut o = put_options(vec![srv.addr.to_string()], 6, 300);
    o.mode = Mode::Range;
    o.serializable = true;
    let out = run(&o);
    assert_eq!((out.latency_us.count(), out.error_count()), (300, 0));
    o.mode = Mode::Txn;
    o.txn_ops = 3;
    o.total = Some(200);
    let out = run(&o);
    assert_eq!((out.latency_us.count(), out.error_count()), (200, 0));
    let seen = srv.seen.lock().unwrap();
    assert_eq!((seen.ranges, seen.txns), (300, 200));
}

#[test]
fn duration_ends_the_run() {
    let srv = server();
    let mut o = put_options(vec![srv.addr.to_string()], 4, 0);
    o.total = None;
    o.duration = Some(Duration::from_millis(300));
    o.sequential_keys = false;
    o.key_space_size = 7; // random keys 0..7: some refused (3), the rest answered
    let out = run(&o);
    assert!(out.latency_us.count() > 0);
    assert!(
        out.elapsed >= Duration::from_millis(300),
        "{:?}",
        out.elapsed
    );
    assert!(out.elapsed < Duration::from_secs(3), "{:?}", out.elapsed);
    let seen = srv.seen.lock().unwrap().puts.values().sum::<u32>() as u64;
    assert_eq!(seen, out.latency_us.count() + out.error_count());
}

#[test]
fn large_values_pass_small_flow_control_windows() {
    // The server lets 64 KiB in per stream and per connection: a 300 KB request needs several
    // WINDOW_UPDATEs and partial socket writes.
    let mut grpc = GrpcConfig::default();
    grpc.h2.initial_window_size = 65_535;
    grpc.h2.connection_window_size = 65_535;
    let srv = server_with(0, grpc);
    let mut o = put_options(vec![srv.addr.to_string()], 16, 120);
    o.val_size = 300_000;
    o.loop_threads = 2;
    let out = run(&o);
    assert_eq!(out.latency_us.count(), 120 - expected_refusals(120));
    let seen = srv.seen.lock().unwrap();
    assert_eq!(seen.value_lens.len(), 120);
    assert!(seen.value_lens.iter().all(|&l| l == 300_000));
}

#[test]
fn lost_connections_fail_their_calls_and_are_replaced() {
    // Accepts connections and closes them at once.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (s2, a2) = (stop.clone(), accepted.clone());
    let t = std::thread::spawn(move || {
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            match l.accept() {
                Ok((s, _)) => {
                    a2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    drop(s);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    });
    let o = put_options(vec![addr.to_string()], 3, 30);
    let out = run(&o);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    t.join().unwrap();
    assert_eq!(out.latency_us.count(), 0);
    assert_eq!(out.error_count(), 30, "{:?}", out.errors);
    // Every failed call but the first of each client needed a new connection.
    assert!(
        accepted.load(std::sync::atomic::Ordering::Relaxed) >= 30,
        "{accepted:?}"
    );
}

#[test]
fn refused_endpoint_stops_each_client_after_one_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let srv = server();
    // Clients 0, 2, 4 get the dead endpoint, 1 and 3 the live one.
    let o = put_options(vec![addr.to_string(), srv.addr.to_string()], 5, 100);
    let out = run(&o);
    assert_eq!(
        out.error_count() - expected_refusals(100),
        3,
        "{:?}",
        out.errors
    );
    let connect: u64 = out
        .errors
        .iter()
        .filter(|(m, _)| m.starts_with("could not connect to any endpoint"))
        .map(|(_, c)| c)
        .sum();
    assert_eq!(connect, 3);
    assert_eq!(out.latency_us.count(), 100 - expected_refusals(100));
}

#[test]
fn partial_writes_resume_on_writable_events() {
    // A hand-driven HTTP/2 server that grants big windows, then reads nothing for a while and
    // writes nothing until the whole request is in: the 16 MB request fills the socket
    // buffers, and only WRITABLE events (no incoming frames) can get the rest out.
    use keel_net::grpc::MessageDecoder;
    use keel_net::http2::{Connection, Event as H2Event, H2Config, Role};
    use std::io::{Read, Write};
    const VALUE: usize = 16_000_000;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || -> usize {
        let (mut s, _) = l.accept().unwrap();
        let mut h2 = Connection::new(
            Role::Server,
            H2Config {
                initial_window_size: 64 << 20,
                connection_window_size: 64 << 20,
                ..H2Config::default()
            },
        );
        s.write_all(h2.output()).unwrap();
        let n = h2.output().len();
        h2.consume_output(n);
        std::thread::sleep(Duration::from_millis(300));
        let mut dec = MessageDecoder::new(usize::MAX);
        let mut msgs = Vec::new();
        let mut buf = vec![0; 1 << 16];
        loop {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "client closed early");
            h2.recv(&buf[..n]).unwrap();
            while let Some(ev) = h2.poll_event() {
                if let H2Event::Data {
                    stream,
                    data,
                    end_stream,
                } = ev
                {
                    dec.push(&data, &mut msgs).unwrap();
                    if end_stream {
                        let req = PutRequest::decode(msgs[0].as_slice()).unwrap();
                        let body = PutResponse {
                            header: header(),
                            prev_kv: None,
                        }
                        .encode_to_vec();
                        let ok: [(&[u8], &[u8]); 2] =
                            [(b":status", b"200"), (b"content-type", b"application/grpc")];
                        h2.send_headers(stream, &ok, false).unwrap();
                        h2.send_data(stream, keel_net::grpc::encode_message(&body), false)
                            .unwrap();
                        h2.send_headers(stream, &[(b"grpc-status", b"0")], true)
                            .unwrap();
                        while h2.has_output() {
                            let n = s.write(h2.output()).unwrap();
                            h2.consume_output(n);
                        }
                        // Wait for the client to go away.
                        while s.read(&mut buf).is_ok_and(|n| n > 0) {}
                        return req.value.len();
                    }
                }
            }
        }
    });
    let mut o = put_options(vec![addr.to_string()], 1, 1);
    o.val_size = VALUE;
    o.call_timeout = Duration::from_secs(3);
    let out = run(&o);
    assert_eq!(
        (out.latency_us.count(), out.error_count()),
        (1, 0),
        "{:?}",
        out.errors
    );
    assert!(out.elapsed >= Duration::from_millis(300));
    assert_eq!(t.join().unwrap(), VALUE);
}
