//! When accept fails for lack of file descriptors, connections already waiting in the backlog
//! are accepted later (edge-triggered readiness will not report them again by itself).
//! Alone in its binary because it lowers this process's RLIMIT_NOFILE (with `prlimit`); the
//! clients run in a child process so they are not limited.

mod grpc_support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const CLIENTS: &str = r#"
import socket, sys
port = int(sys.argv[1])
sys.stdin.readline()
socks = []
for i in range(5):
    s = socket.create_connection(('127.0.0.1', port))
    s.sendall(b'GET /health HTTP/1.1\r\nConnection: close\r\n\r\n')
    socks.append(s)
print('connected', flush=True)
ok = 0
for s in socks:
    s.settimeout(5)
    data = b''
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
    except Exception:
        pass
    ok += data.startswith(b'HTTP/1.1 200')
print(ok, flush=True)
"#;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn set_nofile(soft: &str, hard: &str) -> bool {
    Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={soft}:{hard}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn current_nofile() -> Option<(String, String)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    Some((f[3].to_string(), f[4].to_string()))
}

#[test]
fn backlog_is_accepted_after_descriptors_free_up() {
    let Some((soft, hard)) = current_nofile() else {
        grpc_support::missing_tool("/proc/self/limits unreadable");
        return;
    };
    if Command::new("prlimit").arg("--version").output().is_err() {
        grpc_support::missing_tool("prlimit (util-linux) is not available");
        return;
    }
    if Command::new("python3").arg("--version").output().is_err() {
        grpc_support::missing_tool("python3 is not available to run the clients");
        return;
    }
    let srv = grpc_support::start();
    let mut child = Command::new("python3")
        .args(["-c", CLIENTS, &srv.addr.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    std::thread::sleep(Duration::from_millis(50));
    // From now on this process (the server) cannot open a single descriptor.
    let base = open_fds();
    assert!(set_nofile(&base.saturating_sub(1).to_string(), &hard));
    stdin.write_all(b"go\n").unwrap();
    stdin.flush().unwrap();
    let connected = lines.next().unwrap().unwrap();
    assert_eq!(connected, "connected");
    std::thread::sleep(Duration::from_millis(300));
    assert!(set_nofile(&soft, &hard), "restore limit");
    // No new connection arrives: only the loop's own retry can accept the waiting ones.
    let served = lines.next().unwrap().unwrap();
    let _ = child.wait();
    assert_eq!(
        served, "5",
        "all five backlogged connections must be served"
    );
}
