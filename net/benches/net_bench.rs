//! keel-net benchmark: unary gRPC round trips over loopback (1 and 64 connections) with an
//! empty handler, CPU time per call, the protocol layer alone (in memory, no sockets), and the
//! server path alone (ns and heap allocations per call).
//!
//! Run: `CARGO_TARGET_DIR=/work/target-net cargo bench -p keel-net --bench net_bench`
//! (`KEEL_BENCH_SECS=N` changes the duration of each phase; default 3;
//! `KEEL_BENCH_ONLY=server_path` runs only the server-path phase, `KEEL_BENCH_ONLY=grpc` only the
//! loopback gRPC phases).
//!
//! Peer for ratios: a raw TCP ping-pong of the same payload size on the same loopback (no
//! HTTP/2, no gRPC) — the floor any protocol over these sockets pays.

use keel_net::client::{Client, ClientConfig};
use keel_net::event_loop::{Ctx, EventLoop, Handler, LoopConfig};
use keel_net::grpc::{encode_message, CallEvent, GrpcConfig, GrpcServerConn, Status};
use keel_net::hpack::{huffman_encode, Decoder, HeaderField};
use keel_net::http2::frame::{self as h2frame, FrameHeader, FRAME_HEADER_LEN, PREFACE};
use keel_net::http2::{Connection, Event, H2Config, Role};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts heap allocations (and reallocations) made by the current thread, then defers to the
/// system allocator. Used to report allocations per call on the server path.
struct CountingAlloc;

thread_local! {
    static THREAD_ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count_alloc() {
    // `try_with`: during thread teardown the slot may be gone; such allocations are not counted.
    let _ = THREAD_ALLOCS.try_with(|c| c.set(c.get() + 1));
}

/// Allocations (including reallocations) made by this thread so far.
fn thread_allocs() -> u64 {
    THREAD_ALLOCS.with(|c| c.get())
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is exactly the system allocator's; the counter is a const-initialised
// thread-local `Cell` (no lazy initialisation, no destructor, no allocation) so counting cannot
// re-enter the allocator.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_alloc();
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_alloc();
        // SAFETY: `ptr` was allocated by `System` (all allocations go through this wrapper)
        // with `layout`; forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`; forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// CPU time (user + system) of this process, from /proc/self/stat (clock ticks of 10 ms).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// CPU time of the calling thread (/proc/thread-self/stat).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

enum Wake {
    Stop,
    /// Reply with the loop thread's CPU time and allocation count.
    ReportCpu(std::sync::mpsc::Sender<(Duration, u64)>),
}

struct Empty;

impl Handler<Wake> for Empty {
    fn on_call(&mut self, ctx: &mut Ctx<Wake>, event: CallEvent) {
        if let CallEvent::HalfClosed { call } = event {
            let _ = ctx.reply(call, b"");
        }
    }
    fn on_wake(&mut self, ctx: &mut Ctx<Wake>, payload: Wake) {
        match payload {
            Wake::Stop => ctx.stop(),
            Wake::ReportCpu(tx) => {
                let _ = tx.send((thread_cpu(), thread_allocs()));
            }
        }
    }
}

fn server_cpu(waker: &keel_net::event_loop::LoopWaker<Wake>) -> (Duration, u64) {
    let (tx, rx) = std::sync::mpsc::channel();
    waker.wake(Wake::ReportCpu(tx)).unwrap();
    rx.recv().unwrap()
}

struct Phase {
    calls: u64,
    wall: Duration,
    process_cpu: Duration,
    server_cpu: Duration,
    /// Heap allocations made by the server loop thread.
    server_allocs: u64,
}

fn grpc_phase(connections: usize, secs: u64) -> Phase {
    let mut lp = EventLoop::new(LoopConfig::default()).unwrap();
    let addr = lp.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let waker = lp.waker();
    let server = std::thread::spawn(move || lp.run(&mut Empty).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let mut clients: Vec<Client> = (0..connections)
        .map(|_| Client::connect(&[addr.to_string()], ClientConfig::default()).unwrap())
        .collect();
    for c in clients.iter_mut() {
        c.unary("/bench.Svc/Empty", b"").unwrap(); // warm up
    }
    let (cpu0, (scpu0, sallocs0), t0) = (process_cpu(), server_cpu(&waker), Instant::now());
    let threads: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let (stop, calls) = (stop.clone(), calls.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    c.unary("/bench.Svc/Empty", b"").unwrap();
                    n += 1;
                }
                calls.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let (scpu1, sallocs1) = server_cpu(&waker);
    let phase = Phase {
        calls: calls.load(Ordering::Relaxed),
        wall: t0.elapsed(),
        process_cpu: process_cpu() - cpu0,
        server_cpu: scpu1 - scpu0,
        server_allocs: sallocs1 - sallocs0,
    };
    waker.wake(Wake::Stop).unwrap();
    server.join().unwrap();
    phase
}

/// The peer: blocking TCP ping-pong of a 5-byte "message" on loopback, one connection.
fn tcp_pingpong(secs: u64) -> Phase {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut b = [0u8; 5];
        while s.read_exact(&mut b).is_ok() {
            if s.write_all(&b).is_err() {
                break;
            }
        }
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    let (cpu0, t0) = (process_cpu(), Instant::now());
    let mut n = 0u64;
    let mut b = [0u8; 5];
    while t0.elapsed() < Duration::from_secs(secs) {
        c.write_all(&[0, 0, 0, 0, 0]).unwrap();
        c.read_exact(&mut b).unwrap();
        n += 1;
    }
    let phase = Phase {
        calls: n,
        wall: t0.elapsed(),
        process_cpu: process_cpu() - cpu0,
        server_cpu: Duration::ZERO,
        server_allocs: 0,
    };
    drop(c);
    server.join().unwrap();
    phase
}

/// The protocol layer alone: client HTTP/2 + server HTTP/2/HPACK/gRPC, bytes passed in memory.
fn in_memory(calls: u64) -> (Duration, Duration) {
    let mut client = Connection::new(Role::Client, H2Config::default());
    let mut server = GrpcServerConn::new(&GrpcConfig::default(), 0, 0);
    let mut events = Vec::new();
    let pump =
        |client: &mut Connection, server: &mut GrpcServerConn, events: &mut Vec<CallEvent>| {
            let out = client.output().to_vec();
            client.consume_output(out.len());
            server.recv(&out, events).unwrap();
        };
    pump(&mut client, &mut server, &mut events);
    let req: Vec<(&[u8], &[u8])> = vec![
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", b"/bench.Svc/Empty"),
        (b":authority", b"127.0.0.1:2379"),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        (b"grpc-timeout", b"4992641u"),
    ];
    let t0 = Instant::now();
    let cpu0 = thread_cpu();
    for _ in 0..calls {
        let id = client.open_stream(&req, false).unwrap();
        client.send_data(id, encode_message(b""), true).unwrap();
        pump(&mut client, &mut server, &mut events);
        for ev in events.drain(..) {
            if let CallEvent::HalfClosed { call } = ev {
                server.send_message(call.stream(), b"").unwrap();
                server.finish(call.stream(), &Status::ok()).unwrap();
            }
        }
        let out = server.h2().output().to_vec();
        server.h2().consume_output(out.len());
        client.recv(&out).unwrap();
        let mut done = false;
        while let Some(e) = client.poll_event() {
            done |= matches!(
                e,
                Event::Headers {
                    end_stream: true,
                    ..
                }
            );
        }
        assert!(done);
    }
    (t0.elapsed(), thread_cpu() - cpu0)
}

/// A request header block as grpc-go sends it: the first one inserts `:path`, `:authority`,
/// `content-type`, `user-agent` and `te` into the dynamic table (literal with incremental
/// indexing); later ones refer to them with one byte each. With `timeout`, a `grpc-timeout`
/// literal (without indexing) follows, as a client with a deadline sends on every call.
fn grpc_go_request_block(first: bool, timeout: bool) -> Vec<u8> {
    let mut b = vec![0x83, 0x86]; // :method POST, :scheme http (static 3, 6)
    if first {
        let lit = |b: &mut Vec<u8>, prefix: u8, name: Option<&[u8]>, value: &[u8]| {
            b.push(prefix);
            if let Some(n) = name {
                b.push(n.len() as u8);
                b.extend_from_slice(n);
            }
            b.push(value.len() as u8);
            b.extend_from_slice(value);
        };
        lit(&mut b, 0x44, None, b"/etcdserverpb.KV/Put"); // name = static 4 (:path)
        lit(&mut b, 0x41, None, b"127.0.0.1:2379"); // :authority
        lit(&mut b, 0x5f, None, b"application/grpc"); // content-type (static 31)
        lit(&mut b, 0x7a, None, b"grpc-go/1.41.0"); // user-agent (static 58)
        lit(&mut b, 0x40, Some(b"te"), b"trailers");
    } else {
        // Dynamic entries, newest first: te 62, user-agent 63, content-type 64, authority 65,
        // path 66.
        b.extend_from_slice(&[0xc2, 0xc1, 0xc0, 0xbf, 0xbe]);
    }
    if timeout {
        b.push(0x00);
        b.push(12);
        b.extend_from_slice(b"grpc-timeout");
        b.push(8);
        b.extend_from_slice(b"4999865u");
    }
    b
}

/// An HPACK encoder that behaves like Go's (`golang.org/x/net/http2/hpack`, used by grpc-go):
/// every field that fits is added to the table (literal with incremental indexing), strings are
/// Huffman-coded when that is shorter. Only the static entries the request fields need.
struct GoLikeEncoder {
    table: std::collections::VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
}

fn put_int(value: usize, prefix_bits: u8, flags: u8, out: &mut Vec<u8>) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

fn put_string(s: &[u8], out: &mut Vec<u8>) {
    let mut h = Vec::new();
    huffman_encode(s, &mut h);
    if h.len() < s.len() {
        put_int(h.len(), 7, 0x80, out);
        out.extend_from_slice(&h);
    } else {
        put_int(s.len(), 7, 0, out);
        out.extend_from_slice(s);
    }
}

impl GoLikeEncoder {
    fn encode(&mut self, fields: &[(&[u8], &[u8])], out: &mut Vec<u8>) {
        for &(name, value) in fields {
            let exact_static = match (name, value) {
                (b":method", b"POST") => Some(3),
                (b":scheme", b"http") => Some(6),
                _ => None,
            };
            let dynamic = self.table.iter().position(|(n, v)| n == name && v == value);
            if let Some(i) = exact_static.or(dynamic.map(|i| 62 + i)) {
                put_int(i, 7, 0x80, out);
                continue;
            }
            let name_index = match name {
                b":authority" => 1,
                b":path" => 4,
                b"content-type" => 31,
                b"user-agent" => 58,
                _ => self
                    .table
                    .iter()
                    .position(|(n, _)| n == name)
                    .map_or(0, |i| 62 + i),
            };
            put_int(name_index, 6, 0x40, out);
            if name_index == 0 {
                put_string(name, out);
            }
            put_string(value, out);
            self.size += name.len() + value.len() + 32;
            self.table.push_front((name.to_vec(), value.to_vec()));
            while self.size > 4096 {
                let (n, v) = self.table.pop_back().expect("size > 0");
                self.size -= n.len() + v.len() + 32;
            }
        }
    }
}

/// Request blocks of a grpc-go client calling with a deadline: a different `grpc-timeout` on
/// every call, which Go's encoder adds to the table each time (evicting older entries, so the
/// fixed fields are re-sent as literals now and then).
fn grpc_go_deadline_blocks(calls: u32) -> Vec<Vec<u8>> {
    let mut e = GoLikeEncoder {
        table: Default::default(),
        size: 0,
    };
    (0..calls)
        .map(|i| {
            let timeout = format!("{}u", 4_999_000 - (i % 100_000) * 7);
            let mut b = Vec::new();
            e.encode(
                &[
                    (b":method", b"POST"),
                    (b":scheme", b"http"),
                    (b":path", b"/etcdserverpb.KV/Put"),
                    (b":authority", b"127.0.0.1:2379"),
                    (b"content-type", b"application/grpc"),
                    (b"user-agent", b"grpc-go/1.41.0"),
                    (b"te", b"trailers"),
                    (b"grpc-timeout", timeout.as_bytes()),
                ],
                &mut b,
            );
            b
        })
        .collect()
}

/// Which request headers the server-path bench sends.
#[derive(Clone, Copy, PartialEq)]
enum Requests {
    /// grpc-go's fixed request headers, all indexed after the first call.
    Indexed,
    /// The same plus a `grpc-timeout` literal without indexing.
    TimeoutLiteral,
    /// As Go's encoder sends a deadline: indexed and Huffman-coded, a new entry per call.
    GoDeadline,
}

/// What the server wrote for the calls, decoded with a fresh HPACK decoder: the number of
/// complete responses whose headers, message and trailers are exactly the expected ones.
fn count_good_responses(out: &[u8], response: &[u8]) -> usize {
    let mut decoder = Decoder::new(4096);
    let mut pos = 0;
    let mut good = 0;
    // Per stream: 0 nothing yet, 1 headers ok, 2 message ok.
    let mut state = std::collections::HashMap::new();
    while out.len() - pos >= FRAME_HEADER_LEN {
        let h = FrameHeader::parse(&out[pos..]);
        let payload = &out[pos + FRAME_HEADER_LEN..pos + FRAME_HEADER_LEN + h.len as usize];
        pos += FRAME_HEADER_LEN + h.len as usize;
        match h2frame::decode_frame(h, payload).expect("server output is well formed") {
            h2frame::Frame::Headers { stream, block, .. } => {
                let mut fields = Vec::new();
                decoder.decode(block, &mut fields).expect("HPACK decodes");
                let st = state.entry(stream).or_insert(0);
                if fields
                    == [
                        HeaderField::new(":status", "200"),
                        HeaderField::new("content-type", "application/grpc"),
                    ]
                    && *st == 0
                {
                    *st = 1;
                } else if fields == [HeaderField::new("grpc-status", "0")] && *st == 2 {
                    good += 1;
                    state.remove(&stream);
                }
            }
            h2frame::Frame::Data { stream, data, .. } => {
                let st = state.entry(stream).or_insert(0);
                if *st == 1 && data.len() == 5 + response.len() && data[5..] == *response {
                    *st = 2;
                }
            }
            _ => {}
        }
    }
    good
}

/// The server path alone: `calls` unary calls whose client bytes were built once (HEADERS as
/// grpc-go encodes them + one DATA frame with a 30-byte request) are fed one call per `recv`
/// into a `GrpcServerConn`; each is answered with a 30-byte message and OK, and the output is
/// taken. Returns (ns per call, allocations per call) and checks the output decodes to exactly
/// `calls` correct responses.
fn server_path(calls: u32, requests: Requests) -> (f64, f64) {
    let request = [7u8; 30];
    let response = [9u8; 30];
    // Connection start: preface, empty SETTINGS, the largest connection window.
    let mut start = PREFACE.to_vec();
    h2frame::write_settings(&mut start, &[]);
    h2frame::write_window_update(&mut start, 0, h2frame::MAX_WINDOW - h2frame::DEFAULT_WINDOW);
    let mut framed = vec![0, 0, 0, 0, request.len() as u8];
    framed.extend_from_slice(&request);
    let deadline_blocks = match requests {
        Requests::GoDeadline => grpc_go_deadline_blocks(calls),
        _ => Vec::new(),
    };
    let per_call: Vec<Vec<u8>> = (0..calls)
        .map(|i| {
            let stream = 2 * i + 1;
            let mut b = Vec::new();
            let block = match requests {
                Requests::Indexed => grpc_go_request_block(i == 0, false),
                Requests::TimeoutLiteral => grpc_go_request_block(i == 0, true),
                Requests::GoDeadline => deadline_blocks[i as usize].clone(),
            };
            h2frame::write_header_block(&mut b, stream, &block, false, 16_384);
            h2frame::write_data(&mut b, stream, &framed, true);
            b
        })
        .collect();
    let mut server = GrpcServerConn::new(&GrpcConfig::default(), 0, 0);
    let mut events = Vec::with_capacity(16);
    let mut collected = Vec::with_capacity(calls as usize * 128);
    server.recv(&start, &mut events).unwrap();
    let n = server.h2().output().len();
    server.h2().consume_output(n);
    let mut answered = 0u32;
    let mut one_call = |server: &mut GrpcServerConn, bytes: &[u8], collected: &mut Vec<u8>| {
        server.recv(bytes, &mut events).unwrap();
        for ev in events.drain(..) {
            if let CallEvent::HalfClosed { call } = ev {
                server.send_message(call.stream(), &response).unwrap();
                server.finish(call.stream(), &Status::ok()).unwrap();
                answered += 1;
            }
        }
        let out = server.h2().output();
        collected.extend_from_slice(out);
        let n = out.len();
        server.h2().consume_output(n);
    };
    // The first 1,000 calls warm up (table insertions, buffers reaching their size).
    let warm = 1000.min(calls as usize);
    for b in &per_call[..warm] {
        one_call(&mut server, b, &mut collected);
    }
    let (a0, t0) = (thread_allocs(), Instant::now());
    for b in &per_call[warm..] {
        one_call(&mut server, b, &mut collected);
    }
    let (elapsed, allocs) = (t0.elapsed(), thread_allocs() - a0);
    assert_eq!(answered, calls);
    assert_eq!(
        count_good_responses(&collected, &response),
        calls as usize,
        "every call got :status 200, its message and grpc-status 0"
    );
    let timed = (calls as usize - warm) as f64;
    (elapsed.as_nanos() as f64 / timed, allocs as f64 / timed)
}

fn server_path_report() {
    for requests in [
        Requests::Indexed,
        Requests::TimeoutLiteral,
        Requests::GoDeadline,
    ] {
        // Median of five runs of 100,000 calls (the machine is shared and noisy).
        let mut runs: Vec<(f64, f64)> = (0..5).map(|_| server_path(100_000, requests)).collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (ns, allocs) = runs[2];
        println!(
            "server path in memory (GrpcServerConn, grpc-go request headers{}, 30 B request and response): {:.0} ns/call, {:.2} allocations/call (runs: {})",
            match requests {
                Requests::Indexed => "",
                Requests::TimeoutLiteral => " + grpc-timeout literal",
                Requests::GoDeadline => " + grpc-timeout indexed and Huffman-coded as Go does",
            },
            ns,
            allocs,
            runs.iter().map(|r| format!("{:.0}", r.0)).collect::<Vec<_>>().join(", ")
        );
    }
}

fn main() {
    let only = std::env::var("KEEL_BENCH_ONLY").unwrap_or_default();
    if only == "server_path" {
        server_path_report();
        return;
    }
    let secs: u64 = std::env::var("KEEL_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    println!("keel-net bench ({secs} s per phase)");
    if only == "grpc" {
        // Socket phases only (no peer, no in-memory phases).
        for conns in [1usize, 64] {
            let p = grpc_phase(conns, secs);
            println!(
                "gRPC unary, {conns} connection(s): {:.0} calls/s, server loop thread CPU {:.2} µs/call, {:.2} allocations/call",
                p.calls as f64 / p.wall.as_secs_f64(),
                p.server_cpu.as_secs_f64() * 1e6 / p.calls as f64,
                p.server_allocs as f64 / p.calls as f64
            );
        }
        return;
    }
    server_path_report();
    let n = 200_000;
    let (wall, cpu) = in_memory(n);
    println!(
        "protocol layer in memory (client+server HTTP/2, HPACK, gRPC): {:.2} µs wall/call, {:.2} µs CPU/call",
        wall.as_secs_f64() * 1e6 / n as f64,
        cpu.as_secs_f64() * 1e6 / n as f64
    );
    let peer = tcp_pingpong(secs);
    let peer_rate = peer.calls as f64 / peer.wall.as_secs_f64();
    println!(
        "peer: raw TCP ping-pong, 1 connection: {:.0} round trips/s, {:.2} µs process CPU/round trip",
        peer_rate,
        peer.process_cpu.as_secs_f64() * 1e6 / peer.calls as f64
    );
    for conns in [1usize, 64] {
        let p = grpc_phase(conns, secs);
        let rate = p.calls as f64 / p.wall.as_secs_f64();
        println!(
            "gRPC unary, {conns} connection(s): {:.0} calls/s ({:.2}x peer), process CPU {:.2} µs/call, server loop thread CPU {:.2} µs/call, {:.2} allocations/call",
            rate,
            rate / peer_rate,
            p.process_cpu.as_secs_f64() * 1e6 / p.calls as f64,
            p.server_cpu.as_secs_f64() * 1e6 / p.calls as f64,
            p.server_allocs as f64 / p.calls as f64
        );
    }
}
