//! Interop with a client no one here wrote: the real etcdctl (grpc-go) against a small service
//! built on keel-net. etcdctl is mandatory (scripts/test installs Debian's etcd-client).

mod grpc_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn etcdctl(addr: std::net::SocketAddr, args: &[&str]) -> Output {
    Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={addr}"))
        .arg("--dial-timeout=3s")
        .arg("--command-timeout=5s")
        .args(args)
        .output()
        .expect("etcdctl must be installed (apt-get install etcd-client)")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn etcdctl_put_get_watch_and_errors() {
    let srv = grpc_support::start();
    let addr = srv.addr;

    let put = etcdctl(addr, &["put", "foo", "bar"]);
    assert!(
        put.status.success(),
        "put failed: {}",
        String::from_utf8_lossy(&put.stderr)
    );
    assert_eq!(stdout(&put).trim(), "OK");

    let get = etcdctl(addr, &["get", "foo"]);
    assert!(
        get.status.success(),
        "get failed: {}",
        String::from_utf8_lossy(&get.stderr)
    );
    assert_eq!(stdout(&get), "foo\nbar\n");

    etcdctl(addr, &["put", "fob", "baz"]);
    let prefix = etcdctl(addr, &["get", "--prefix", "fo", "-w", "json"]);
    let text = stdout(&prefix);
    assert!(text.contains("\"count\":2"), "{text}");
    assert!(text.contains("\"revision\":3"), "{text}");

    // A missing key: empty output, success.
    let none = etcdctl(addr, &["get", "nothing"]);
    assert!(none.status.success());
    assert_eq!(stdout(&none), "");

    // A 1 MiB value both ways: grpc-go's client starts with 64 KiB windows, so this needs our
    // WINDOW_UPDATEs (request) and our send-side flow control (response).
    let big: String = (0..(1 << 20))
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={addr}"))
        .args(["put", "big"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(big.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out).trim(), "OK");
    let got = etcdctl(addr, &["get", "big", "--print-value-only"]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(stdout(&got).trim_end().len(), big.len());
    assert!(stdout(&got).trim_end() == big);

    // Unknown service → UNIMPLEMENTED with grpc-go's message, as a trailers-only response.
    let lease = etcdctl(addr, &["lease", "grant", "10"]);
    assert!(!lease.status.success());
    let err = String::from_utf8_lossy(&lease.stderr);
    assert!(
        err.contains("unknown service etcdserverpb.Lease"),
        "stderr: {err}"
    );

    // Watch: a bidi stream stays open while unary Puts run on other connections.
    let mut watch = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={addr}"))
        .args(["watch", "foo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn etcdctl watch");
    let deadline = Instant::now() + Duration::from_secs(10);
    while srv.observed.lock().watchers == 0 {
        assert!(Instant::now() < deadline, "watch never registered");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(etcdctl(addr, &["put", "foo", "changed"]).status.success());
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let got: Vec<String> = (0..3).map(|_| lines.next().unwrap().unwrap()).collect();
    assert_eq!(got, vec!["PUT", "foo", "changed"]);
    watch.kill().unwrap();
    let _ = watch.wait();
    // The client going away reaches the handler as a cancellation.
    while srv.observed.lock().watchers != 0 {
        assert!(
            Instant::now() < deadline,
            "watch not cancelled after client exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Metadata reaches the handler: etcdctl's Watch carries hasleader=true.
    let obs = srv.observed.lock();
    let (_, md) = obs
        .metadata
        .iter()
        .find(|(p, _)| p == "/etcdserverpb.Watch/Watch")
        .expect("watch seen");
    assert_eq!(md.get_str("hasleader"), Some("true"));
}
