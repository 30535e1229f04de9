//! keel-net benchmark: unary gRPC round trips over loopback (1 and 64 connections) with an
//! empty handler, CPU time per call, and the protocol layer alone (in memory, no sockets).
//!
//! Run: `CARGO_TARGET_DIR=/work/target-net cargo bench -p keel-net --bench net_bench`
//! (`KEEL_BENCH_SECS=N` changes the duration of each phase; default 3).
//!
//! Peer for ratios: a raw TCP ping-pong of the same payload size on the same loopback (no
//! HTTP/2, no gRPC) — the floor any protocol over these sockets pays.

use keel_net::client::{Client, ClientConfig};
use keel_net::event_loop::{Ctx, EventLoop, Handler, LoopConfig};
use keel_net::grpc::{encode_message, CallEvent, GrpcConfig, GrpcServerConn, Status};
use keel_net::http2::{Connection, Event, H2Config, Role};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    ReportCpu(std::sync::mpsc::Sender<Duration>),
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
                let _ = tx.send(thread_cpu());
            }
        }
    }
}

fn server_cpu(waker: &keel_net::event_loop::LoopWaker<Wake>) -> Duration {
    let (tx, rx) = std::sync::mpsc::channel();
    waker.wake(Wake::ReportCpu(tx)).unwrap();
    rx.recv().unwrap()
}

struct Phase {
    calls: u64,
    wall: Duration,
    process_cpu: Duration,
    server_cpu: Duration,
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
    let (cpu0, scpu0, t0) = (process_cpu(), server_cpu(&waker), Instant::now());
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
    let phase = Phase {
        calls: calls.load(Ordering::Relaxed),
        wall: t0.elapsed(),
        process_cpu: process_cpu() - cpu0,
        server_cpu: server_cpu(&waker) - scpu0,
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

fn main() {
    let secs: u64 = std::env::var("KEEL_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    println!("keel-net bench ({secs} s per phase)");
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
            "gRPC unary, {conns} connection(s): {:.0} calls/s ({:.2}x peer), process CPU {:.2} µs/call, server loop thread CPU {:.2} µs/call",
            rate,
            rate / peer_rate,
            p.process_cpu.as_secs_f64() * 1e6 / p.calls as f64,
            p.server_cpu.as_secs_f64() * 1e6 / p.calls as f64
        );
    }
}
