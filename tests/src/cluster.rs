//! A cluster of real member processes (`keel`, or a real `etcd` for comparison) on loopback.
//!
//! Every member gets two free ports (client, peer), a data directory and a log file (stdout and
//! stderr, appended across restarts) inside the cluster's [`TempDir`]. Members are started with
//! etcd's own flags, so the same [`Cluster`] code starts either binary. Dropping the cluster
//! SIGKILLs every member process; if the test is failing (the thread is panicking) the tail of
//! every member's log is printed first and the directory is kept.

use crate::grpc;
use crate::ports::free_port;
use crate::temp::TempDir;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which server binary the members run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// The keel binary under test (see [`crate::binary::keel`]).
    Keel,
    /// The real etcd, as the reference to compare with.
    Etcd,
    /// The real etcd 3.5.1 (see [`crate::binary::etcd35`]), the reference for etcdctl 3.5.
    Etcd35,
}

impl Flavor {
    fn binary(self) -> PathBuf {
        match self {
            Flavor::Keel => crate::binary::keel(),
            Flavor::Etcd => crate::binary::etcd(),
            Flavor::Etcd35 => crate::binary::etcd35(),
        }
    }
}

/// Settings shared by all members of a cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// `--heartbeat-interval` in milliseconds.
    pub heartbeat_ms: u64,
    /// `--election-timeout` in milliseconds.
    pub election_ms: u64,
    /// Extra flags given to every member (e.g. `--max-request-bytes=...`).
    pub extra_args: Vec<String>,
    /// How long to wait for a member to report healthy.
    pub health_timeout: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            // Short for speed, but not so short that a busy 2-core box elects all the time.
            heartbeat_ms: 50,
            election_ms: 500,
            extra_args: Vec::new(),
            health_timeout: Duration::from_secs(30),
        }
    }
}

/// The guard shell (see [`Cluster::spawn`]): `$@` is the member's command line; stdin is the
/// pipe from the test. The member itself gets no stdin. The guard exits with the member's status.
const GUARD: &str = r#"
exec 3<&0
"$@" </dev/null &
member=$!
{ read -r _ignored <&3; kill -9 "$member" 2>/dev/null; } &
watcher=$!
wait "$member"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// One member: its ports, directories and (while running) its process.
#[derive(Debug)]
pub struct Member {
    /// `--name`.
    pub name: String,
    /// Client port (gRPC + HTTP `/health`).
    pub client_port: u16,
    /// Peer port.
    pub peer_port: u16,
    /// `--data-dir`.
    pub data_dir: PathBuf,
    /// Where stdout and stderr go (appended across restarts).
    pub log_path: PathBuf,
    /// `--initial-cluster` this member was (or will be) started with.
    pub initial_cluster: String,
    /// `--initial-cluster-state` (`new` or `existing`).
    pub initial_state: String,
    child: Option<Child>,
}

impl Member {
    /// `127.0.0.1:<client port>`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// `http://127.0.0.1:<client port>`.
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// `http://127.0.0.1:<peer port>`.
    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    /// Whether the process is running (started and not exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(c) => matches!(c.try_wait(), Ok(None)),
        }
    }

    /// The member's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// A set of members started together. See the module documentation.
#[derive(Debug)]
pub struct Cluster {
    /// Which binary the members run.
    pub flavor: Flavor,
    /// Shared settings.
    pub options: ClusterOptions,
    /// The members, in the order they were created (removed members stay in the list).
    pub members: Vec<Member>,
    dir: TempDir,
}

impl Cluster {
    /// Starts `n` members as a new cluster (names `m1`..`mN`) and waits until all are healthy.
    pub fn start(flavor: Flavor, n: usize, options: ClusterOptions) -> Cluster {
        let tag = match flavor {
            Flavor::Keel => "keel",
            Flavor::Etcd => "etcd",
            Flavor::Etcd35 => "etcd35",
        };
        let mut c = Cluster {
            flavor,
            options,
            members: Vec::new(),
            dir: TempDir::new(tag),
        };
        for i in 1..=n {
            c.new_member_slot(&format!("m{i}"));
        }
        let ic = c.initial_cluster_of(&(0..n).collect::<Vec<_>>());
        for i in 0..n {
            c.members[i].initial_cluster = ic.clone();
            c.members[i].initial_state = "new".into();
        }
        for i in 0..n {
            c.spawn(i);
        }
        for i in 0..n {
            c.wait_healthy(i);
        }
        c
    }

    /// The cluster's temporary directory (for snapshots and other files of the test).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Allocates ports and directories for a new member, without starting it. Returns its index.
    pub fn new_member_slot(&mut self, name: &str) -> usize {
        let data_dir = self.dir.path().join(format!("{name}.data"));
        let log_path = self.dir.path().join(format!("{name}.log"));
        self.members.push(Member {
            name: name.to_string(),
            client_port: free_port(),
            peer_port: free_port(),
            data_dir,
            log_path,
            initial_cluster: String::new(),
            initial_state: String::new(),
            child: None,
        });
        self.members.len() - 1
    }

    /// `name=peerURL,...` for the given member indexes.
    pub fn initial_cluster_of(&self, members: &[usize]) -> String {
        members
            .iter()
            .map(|&i| format!("{}={}", self.members[i].name, self.members[i].peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Client endpoints (`127.0.0.1:port`) of the given members.
    pub fn endpoints_of(&self, members: &[usize]) -> Vec<String> {
        members
            .iter()
            .map(|&i| self.members[i].endpoint())
            .collect()
    }

    /// Client endpoints of every member currently running.
    pub fn running_endpoints(&mut self) -> Vec<String> {
        let idx = self.running();
        self.endpoints_of(&idx)
    }

    /// Indexes of the members whose process is running.
    pub fn running(&mut self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].is_running())
            .collect()
    }

    /// Starts member `i` with its recorded `initial_cluster` / `initial_state` (also used to
    /// restart a killed member: the data directory is kept). Does not wait.
    pub fn spawn(&mut self, i: usize) {
        assert!(
            !self.members[i].is_running(),
            "member {} already running",
            self.members[i].name
        );
        let o = &self.options;
        let m = &self.members[i];
        // The member runs under a small shell guard that holds a pipe from this process on fd 3:
        // when the pipe closes — `kill` dropped it, or this test process died for any reason,
        // even SIGKILL — the guard SIGKILLs the member. So no member outlives its test.
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(GUARD)
            .arg("keel-tests-guard")
            .arg(self.flavor.binary())
            .arg(format!("--name={}", m.name))
            .arg(format!("--data-dir={}", m.data_dir.display()))
            .arg(format!("--listen-client-urls={}", m.client_url()))
            .arg(format!("--advertise-client-urls={}", m.client_url()))
            .arg(format!("--listen-peer-urls={}", m.peer_url()))
            .arg(format!("--initial-advertise-peer-urls={}", m.peer_url()))
            .arg(format!("--initial-cluster={}", m.initial_cluster))
            .arg(format!("--initial-cluster-state={}", m.initial_state))
            .arg("--initial-cluster-token=keel-tests")
            .arg(format!("--heartbeat-interval={}", o.heartbeat_ms))
            .arg(format!("--election-timeout={}", o.election_ms))
            .args(&o.extra_args);
        if self.flavor != Flavor::Keel {
            cmd.arg("--logger=zap");
        }
        for (k, _) in std::env::vars() {
            if k.starts_with("ETCD_") {
                cmd.env_remove(k);
            }
        }
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log_path)
            .expect("open member log");
        let _ = writeln!(log, "=== keel-tests: starting {:?}", cmd);
        let err = log.try_clone().expect("clone log handle");
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
        self.members[i].child = Some(child);
    }

    /// Restarts a stopped member and waits until it is healthy.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
        self.wait_healthy(i);
    }

    /// SIGKILLs member `i` and reaps it (closing the guard's pipe makes the guard `kill -9` the
    /// member and exit once it is gone).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            drop(c.stdin.take());
            let _ = c.wait();
        }
    }

    /// Waits until `GET /health` on member `i` says `"health":"true"`. Panics (with the log) if
    /// the process exits or the timeout passes.
    pub fn wait_healthy(&mut self, i: usize) {
        let deadline = Instant::now() + self.options.health_timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            let m = &mut self.members[i];
            if let Some(c) = m.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "member {} exited with {status} while starting; log:\n{}",
                        m.name,
                        m.log_tail(80)
                    );
                }
            }
            match http_get(m.client_port, "/health") {
                Ok((200, body)) if body.contains("\"health\":\"true\"") => return,
                Ok((code, body)) => last = format!("HTTP {code}: {body}"),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "member {} not healthy after {:?} (last: {last}); log:\n{}",
            self.members[i].name,
            self.options.health_timeout,
            self.members[i].log_tail(80)
        );
    }

    /// The index of the member that the members agree is the leader: every running member in
    /// `among` is asked (Status); returns once they all name the same leader that is itself
    /// among them. Panics after `timeout`.
    pub fn wait_leader(&mut self, among: &[usize], timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            let mut ids = Vec::new();
            let mut leaders = Vec::new();
            for &i in among {
                match grpc::status(&self.members[i].endpoint()) {
                    Ok(s) => {
                        ids.push((s.header.map(|h| h.member_id).unwrap_or(0), i));
                        leaders.push(s.leader);
                    }
                    Err(e) => last = format!("{}: {e}", self.members[i].name),
                }
            }
            if leaders.len() == among.len() && leaders.iter().all(|&l| l != 0 && l == leaders[0]) {
                if let Some(&(_, i)) = ids.iter().find(|(id, _)| *id == leaders[0]) {
                    return i;
                }
                last = format!("leader {:x} is not among {among:?}", leaders[0]);
            } else if leaders.len() == among.len() {
                last = format!("leaders disagree: {leaders:x?}");
            }
            if Instant::now() >= deadline {
                panic!("no agreed leader among {among:?} after {timeout:?}: {last}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The member ID (from Status) of member `i`.
    pub fn member_id(&self, i: usize) -> u64 {
        grpc::status(&self.members[i].endpoint())
            .unwrap_or_else(|e| panic!("status of {}: {e}", self.members[i].name))
            .header
            .expect("status header")
            .member_id
    }

    /// Prints the tail of every member's log to stderr (done automatically when a test fails).
    pub fn dump_logs(&self) {
        for m in &self.members {
            eprintln!(
                "----- {} log ({}) -----\n{}\n----- end of {} log -----",
                m.name,
                m.log_path.display(),
                m.log_tail(150),
                m.name
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        if std::thread::panicking() {
            self.dump_logs();
        }
    }
}

/// A plain HTTP/1.1 GET on the client port: `(status, body)`.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not HTTP: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// Opens (creating) a file for appending; used for logs.
pub fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}
