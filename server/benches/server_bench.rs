//! End-to-end benchmark: the real `keel` binary against the real etcd (when installed), same
//! machine, same client, same workload, one after the other.
//!
//! Workload (after etcd's op-guide/performance tables): puts of 8-byte sequential keys with
//! 256-byte values from `CLIENTS` concurrent clients (one connection each, net's blocking gRPC
//! client), then linearizable and serializable single-key ranges. Reports throughput and latency
//! percentiles, and keel/etcd ratios.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-server cargo bench -p keel-server --bench server_bench
//! KEEL_BENCH_OPS=20000 KEEL_BENCH_CLIENTS=32 ... (defaults 10000 ops, 16 clients)
//! ```

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_net::client::{Client, ClientConfig};
use keel_net::proto::etcdserverpb as pb;
use prost::Message;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    name: &'static str,
    child: Child,
    endpoint: String,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(name: &'static str, binary: &Path, extra: &[&str]) -> Server {
    let (port, peer) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("keel-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = vec![
        "--data-dir".to_string(),
        dir.join("data").to_string_lossy().to_string(),
        "--listen-client-urls".into(),
        format!("http://127.0.0.1:{port}"),
        "--advertise-client-urls".into(),
        format!("http://127.0.0.1:{port}"),
        "--listen-peer-urls".into(),
        format!("http://127.0.0.1:{peer}"),
        "--initial-advertise-peer-urls".into(),
        format!("http://127.0.0.1:{peer}"),
        "--initial-cluster".into(),
        format!("default=http://127.0.0.1:{peer}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Command::new(binary)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
    let endpoint = format!("127.0.0.1:{port}");
    let server = Server {
        name,
        child,
        endpoint,
        dir,
    };
    // Ready when a put succeeds.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut c) = Client::connect(&[&server.endpoint], ClientConfig::default()) {
            let put = pb::PutRequest {
                key: b"ready".to_vec(),
                value: b"1".to_vec(),
                ..Default::default()
            };
            if c.unary("/etcdserverpb.KV/Put", &put.encode_to_vec())
                .is_ok()
            {
                return server;
            }
        }
        assert!(Instant::now() < deadline, "{name} did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Run `ops` calls spread over `clients` threads; returns (ops/s, latencies sorted).
fn run(
    endpoint: &str,
    clients: usize,
    ops: usize,
    make: Arc<dyn Fn(usize) -> (&'static str, Vec<u8>) + Send + Sync>,
) -> (f64, Vec<Duration>) {
    let per = ops / clients;
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let endpoint = endpoint.to_string();
            let make = make.clone();
            std::thread::spawn(move || {
                let mut client =
                    Client::connect(&[&endpoint], ClientConfig::default()).expect("connect");
                let mut lat = Vec::with_capacity(per);
                for i in 0..per {
                    let (path, req) = make(c * per + i);
                    let t = Instant::now();
                    client.unary(path, &req).expect("call");
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    ((per * clients) as f64 / secs, all)
}

fn pct(lat: &[Duration], p: f64) -> f64 {
    let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
    lat[i].as_secs_f64() * 1000.0
}

fn main() {
    let ops = env_usize("KEEL_BENCH_OPS", 10_000);
    let clients = env_usize("KEEL_BENCH_CLIENTS", 16);
    let value = vec![b'v'; 256];
    let put: Arc<dyn Fn(usize) -> (&'static str, Vec<u8>) + Send + Sync> = Arc::new(move |i| {
        let req = pb::PutRequest {
            key: format!("{i:08}").into_bytes(),
            value: value.clone(),
            ..Default::default()
        };
        ("/etcdserverpb.KV/Put", req.encode_to_vec())
    });
    let range =
        |serializable: bool| -> Arc<dyn Fn(usize) -> (&'static str, Vec<u8>) + Send + Sync> {
            Arc::new(move |_| {
                let req = pb::RangeRequest {
                    key: b"00000001".to_vec(),
                    serializable,
                    ..Default::default()
                };
                ("/etcdserverpb.KV/Range", req.encode_to_vec())
            })
        };

    let mut servers = vec![start("keel", Path::new(env!("CARGO_BIN_EXE_keel")), &[])];
    if Path::new("/usr/bin/etcd").exists() {
        servers.push(start(
            "etcd",
            Path::new("/usr/bin/etcd"),
            &["--logger", "zap", "--log-level", "error"],
        ));
    } else {
        println!("(no /usr/bin/etcd: keel only)");
    }
    println!("workload: {ops} ops per phase, {clients} clients, 8-byte keys, 256-byte values");
    println!(
        "{:<6} {:<16} {:>10} {:>9} {:>9} {:>9}",
        "server", "phase", "ops/s", "p50 ms", "p99 ms", "max ms"
    );
    let mut results: Vec<(&str, &str, f64)> = Vec::new();
    for s in &servers {
        for (phase, make) in [
            ("put", put.clone()),
            ("range linear", range(false)),
            ("range serial", range(true)),
        ] {
            let (rate, lat) = run(&s.endpoint, clients, ops, make);
            println!(
                "{:<6} {:<16} {:>10.0} {:>9.2} {:>9.2} {:>9.2}",
                s.name,
                phase,
                rate,
                pct(&lat, 0.5),
                pct(&lat, 0.99),
                lat.last().unwrap().as_secs_f64() * 1000.0
            );
            results.push((s.name, phase, rate));
        }
    }
    if servers.len() == 2 {
        for phase in ["put", "range linear", "range serial"] {
            let k = results
                .iter()
                .find(|r| r.0 == "keel" && r.1 == phase)
                .unwrap()
                .2;
            let e = results
                .iter()
                .find(|r| r.0 == "etcd" && r.1 == phase)
                .unwrap()
                .2;
            println!("ratio keel/etcd {phase:<14} {:.2}", k / e);
        }
    }
}
