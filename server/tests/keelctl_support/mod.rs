//! Shared harness of the keelctl tests: start a fresh single-member server (a real etcd by
//! default; `KEELCTL_TEST_TARGET=keel` starts the `keel` binary instead) on free ports with a
//! temporary data directory, killed on drop; run `etcdctl` (ETCDCTL_API=3) and `keelctl` with the
//! same arguments; normalize only what legitimately differs (lease IDs, ports, durations).
//!
//! Each comparison uses two servers started identically, one per tool, so mutating commands see
//! the same state and produce the same revisions. Both servers advertise the same (unused) peer
//! and client URLs, which makes their cluster and member IDs equal too (etcd derives them from
//! the advertised peer URLs and the cluster token).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A tool that runs longer than this is killed and the test fails.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// The real etcdctl.
pub const ETCDCTL: &str = "/usr/bin/etcdctl";
/// The real etcd server.
pub const ETCD: &str = "/usr/bin/etcd";
/// The advertised peer URL of every test server (not contacted: the clusters have one member).
pub const FAKE_PEER_URL: &str = "http://127.0.0.1:2380";
/// The advertised client URL of every test server.
pub const FAKE_CLIENT_URL: &str = "http://127.0.0.1:2379";

/// Which tool runs a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// `/usr/bin/etcdctl`.
    Etcdctl,
    /// This crate's `keelctl`.
    Keelctl,
}

/// True when the tests can run (etcd and etcdctl installed, or the keel target chosen).
pub fn available() -> bool {
    let ok = Path::new(ETCDCTL).exists() && (target_is_keel() || Path::new(ETCD).exists());
    if !ok {
        eprintln!("skipping: {ETCDCTL} or {ETCD} not installed");
    }
    ok
}

/// True when `KEELCTL_TEST_TARGET=keel`.
pub fn target_is_keel() -> bool {
    std::env::var("KEELCTL_TEST_TARGET").as_deref() == Ok("keel")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir() -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "keelctl-test-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A single-member server process, killed and its data removed on drop.
pub struct Server {
    child: Child,
    /// Temporary directory (data dir inside).
    pub dir: PathBuf,
    /// Client port.
    pub port: u16,
    /// Peer listen port.
    pub peer_port: u16,
}

impl Server {
    /// Starts a fresh server and waits until it answers.
    pub fn start() -> Server {
        for _attempt in 0..3 {
            let dir = temp_dir();
            let port = free_port();
            let peer_port = free_port();
            let bin = if target_is_keel() {
                env!("CARGO_BIN_EXE_keel")
            } else {
                ETCD
            };
            let log = std::fs::File::create(dir.join("server.log")).unwrap();
            let mut cmd = Command::new(bin);
            cmd.args([
                "--name",
                "kt",
                "--data-dir",
                dir.join("data").to_str().unwrap(),
                "--listen-client-urls",
                &format!("http://127.0.0.1:{port}"),
                "--advertise-client-urls",
                FAKE_CLIENT_URL,
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer_port}"),
                "--initial-advertise-peer-urls",
                FAKE_PEER_URL,
                "--initial-cluster",
                &format!("kt={FAKE_PEER_URL}"),
            ]);
            cmd.stdout(log.try_clone().unwrap()).stderr(log);
            let child = cmd.spawn().expect("start server");
            let mut s = Server {
                child,
                dir,
                port,
                peer_port,
            };
            if s.wait_ready(Duration::from_secs(20)) {
                return s;
            }
            let _ = s.child.kill();
        }
        panic!("server did not start (3 attempts)");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let o = run(Tool::Etcdctl, self, &["put", "ready-probe", "x"], None);
                if o.code == 0 {
                    let o = run(Tool::Etcdctl, self, &["del", "ready-probe"], None);
                    if o.code == 0 {
                        return true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// `127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a command printed and its exit code.
#[derive(Debug, Clone)]
pub struct Out {
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error without etcd's JSON log lines.
    pub stderr: String,
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
}

impl Out {
    /// The distinct `Error: ...` lines of stderr, in order (etcdctl prints flag errors twice).
    pub fn error_lines(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for l in self.stderr.lines().filter(|l| l.starts_with("Error:")) {
            if !v.iter().any(|x| x == l) {
                v.push(l.to_string());
            }
        }
        v
    }
}

fn command(tool: Tool, server: Option<&Server>, args: &[&str]) -> Command {
    let mut cmd = match tool {
        Tool::Etcdctl => {
            let mut c = Command::new(ETCDCTL);
            c.env("ETCDCTL_API", "3");
            c
        }
        Tool::Keelctl => Command::new(env!("CARGO_BIN_EXE_keelctl")),
    };
    for (k, _) in std::env::vars() {
        if k.starts_with("ETCDCTL_") && k != "ETCDCTL_API" {
            cmd.env_remove(k);
        }
    }
    if let Some(s) = server {
        cmd.arg(format!("--endpoints={}", s.endpoint()));
    }
    cmd.args(args);
    cmd
}

fn finish(output: std::process::Output) -> Out {
    let stderr: String = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| !l.starts_with("{\"level\""))
        .map(|l| format!("{l}\n"))
        .collect();
    Out {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
        code: output.status.code().unwrap_or(-1),
    }
}

/// Runs a tool to completion (`server` adds `--endpoints`), feeding `stdin` if given.
pub fn run(tool: Tool, server: &Server, args: &[&str], stdin: Option<&str>) -> Out {
    run_opt(tool, Some(server), args, stdin)
}

/// Like [`run`], with no `--endpoints` when `server` is `None`.
pub fn run_opt(tool: Tool, server: Option<&Server>, args: &[&str], stdin: Option<&str>) -> Out {
    let mut cmd = command(tool, server, args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn tool");
    let mut stdin_pipe = child.stdin.take().unwrap();
    let input = stdin.map(|s| s.as_bytes().to_vec());
    let feeder = std::thread::spawn(move || {
        if let Some(b) = input {
            let _ = stdin_pipe.write_all(&b);
        }
    });
    let reader = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait tool") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{tool:?} {args:?} did not finish within {TOOL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = feeder.join();
    finish(std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    })
}

/// Starts a long-running command (watch, lock, elect), reads `n` stdout lines (or until
/// `limit`), then kills it and returns the lines read.
pub fn run_lines(
    tool: Tool,
    server: &Server,
    args: &[&str],
    n: usize,
    limit: Duration,
) -> Vec<String> {
    let mut cmd = command(tool, Some(server), args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn tool");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + limit;
    let mut lines = Vec::new();
    while lines.len() < n {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match rx.recv_timeout(deadline - now) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

/// Replaces what legitimately differs between two runs: the client/peer ports of the two
/// servers, 16-hex-digit IDs (lease IDs are time-based), long decimal IDs, Go durations.
pub fn normalize(o: &Out, server: &Server) -> Out {
    Out {
        stdout: normalize_text(&o.stdout, server),
        stderr: normalize_text(&o.stderr, server),
        code: o.code,
    }
}

/// [`normalize`] for one text.
pub fn normalize_text(s: &str, server: &Server) -> String {
    let s = s
        .replace(&server.port.to_string(), "CPORT")
        .replace(&server.peer_port.to_string(), "PPORT")
        .replace(&server.dir.to_string_lossy().to_string(), "TMPDIR");
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphanumeric() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == 'µ')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push_str(&normalize_word(&word));
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn normalize_word(w: &str) -> String {
    // A word may end with '.' (end of sentence): keep it.
    let (core, tail) = match w.strip_suffix('.') {
        Some(c) => (c, "."),
        None => (w, ""),
    };
    let is_hex = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    };
    // Lease and member IDs in hex: etcd pads lease IDs to 16 digits where it prints them with
    // %016x, but `name/<lease>` keys use %x (13-16 digits).
    let has_letter = core.chars().any(|c| c.is_ascii_alphabetic());
    if is_hex(core) && (core.len() == 16 || (core.len() >= 13 && core.len() < 16 && has_letter)) {
        return format!("IDIDIDIDIDIDIDID{tail}");
    }
    if core.len() >= 15 && core.chars().all(|c| c.is_ascii_digit()) {
        return format!("ID{tail}");
    }
    if is_go_duration(core) {
        return format!("DURATION{tail}");
    }
    w.to_string()
}

fn is_go_duration(s: &str) -> bool {
    for unit in ["ns", "µs", "ms", "s", "m", "h"] {
        if let Some(num) = s.strip_suffix(unit) {
            if !num.is_empty()
                && num.chars().next().unwrap().is_ascii_digit()
                && num.chars().all(|c| c.is_ascii_digit() || c == '.')
                && num.contains('.')
            {
                return true;
            }
        }
    }
    false
}

/// Two identical fresh servers: one for etcdctl, one for keelctl.
pub struct Pair {
    /// The server etcdctl talks to.
    pub etcd_side: Server,
    /// The server keelctl talks to.
    pub keel_side: Server,
}

impl Pair {
    /// Starts both servers (in parallel).
    pub fn start() -> Pair {
        let a = std::thread::spawn(Server::start);
        let b = Server::start();
        Pair {
            etcd_side: a.join().unwrap(),
            keel_side: b,
        }
    }

    /// Runs the same command with both tools; returns normalized (etcdctl, keelctl) outputs.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> (Out, Out) {
        self.run2(args, args, stdin)
    }

    /// Runs etcdctl with `etcd_args` and keelctl with `keel_args` (when an argument is an ID
    /// that differs between the two servers); returns normalized outputs.
    pub fn run2(&self, etcd_args: &[&str], keel_args: &[&str], stdin: Option<&str>) -> (Out, Out) {
        let e = run(Tool::Etcdctl, &self.etcd_side, etcd_args, stdin);
        let k = run(Tool::Keelctl, &self.keel_side, keel_args, stdin);
        (
            normalize(&e, &self.etcd_side),
            normalize(&k, &self.keel_side),
        )
    }

    /// Runs the same command with both tools and asserts the same stdout, stderr (without
    /// etcd's log lines) and exit code. Returns keelctl's output.
    pub fn same(&self, args: &[&str]) -> Out {
        self.same_stdin(args, None)
    }

    /// [`Pair::same`] with standard input.
    pub fn same_stdin(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let (e, k) = self.run(args, stdin);
        assert_same(args, &e, &k);
        k
    }

    /// For read-only commands whose output shows server internals that may differ between two
    /// servers (db size, raft index): runs both tools against the same server and compares.
    ///
    /// The server may change between the two runs (etcd's background commit moves
    /// `dbSizeInUse`), so a difference is retried a few times before it counts.
    pub fn same_on_one_server(&self, args: &[&str]) -> Out {
        let s = &self.keel_side;
        for _ in 0..4 {
            let e = normalize(&run(Tool::Etcdctl, s, args, None), s);
            let k = normalize(&run(Tool::Keelctl, s, args, None), s);
            if e.stdout == k.stdout && e.error_lines() == k.error_lines() {
                return k;
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        let e = normalize(&run(Tool::Etcdctl, s, args, None), s);
        let k = normalize(&run(Tool::Keelctl, s, args, None), s);
        assert_same(args, &e, &k);
        k
    }

    /// [`Pair::same`] with different arguments per tool (see [`Pair::run2`]).
    pub fn same2(&self, etcd_args: &[&str], keel_args: &[&str]) -> Out {
        let (e, k) = self.run2(etcd_args, keel_args, None);
        assert_same(keel_args, &e, &k);
        k
    }
}

/// Asserts two normalized outputs are the same: stdout, `Error:` lines, other stderr lines,
/// exit code.
pub fn assert_same(args: &[&str], e: &Out, k: &Out) {
    {
        assert_eq!(
            k.stdout, e.stdout,
            "stdout differs for {args:?}\n--- keelctl:\n{}\n--- etcdctl:\n{}",
            k.stdout, e.stdout
        );
        assert_eq!(
            k.error_lines(),
            e.error_lines(),
            "errors differ for {args:?}"
        );
        let strip = |s: &str| -> String {
            s.lines()
                .filter(|l| !l.starts_with("Error:"))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        assert_eq!(
            strip(&k.stderr),
            strip(&e.stderr),
            "stderr differs for {args:?}"
        );
        assert_eq!(
            k.code, e.code,
            "exit code differs for {args:?}: {e:?} vs {k:?}"
        );
    }
}

/// A background process (a lock holder, a campaigner), killed on drop.
pub struct Background(Child);

impl Background {
    /// Starts `args` with `tool` against `server`, output discarded.
    pub fn start(tool: Tool, server: &Server, args: &[&str]) -> Background {
        let mut cmd = command(tool, Some(server), args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Background(cmd.spawn().expect("spawn background tool"))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// etcd's snapshot check: the last 32 bytes are the SHA-256 of everything before them.
pub fn snapshot_digest_ok(data: &[u8]) -> bool {
    data.len() > 32
        && keel_server::sha256::digest(&data[..data.len() - 32])[..] == data[data.len() - 32..]
}
