//! The system under test: one `keel` member per namespace, started with etcd's flags, killed
//! with SIGKILL, paused with SIGSTOP and resumed with SIGCONT, restarted with its data.

use crate::netns::Network;
use keel_net::client::{Client, ClientConfig};
use keel_net::proto::etcdserverpb::{StatusRequest, StatusResponse};
use keel_net::proto::Message;
use std::fs::OpenOptions;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Client port of every member (each has its own IP).
pub const CLIENT_PORT: u16 = 2379;
/// Peer port of every member.
pub const PEER_PORT: u16 = 2380;

/// How the members run.
#[derive(Clone, Debug)]
pub struct DbConfig {
    /// The `keel` binary.
    pub keel: PathBuf,
    /// Where data directories and logs go (`n<i>/`, `n<i>.log`).
    pub dir: PathBuf,
    /// `--heartbeat-interval` (ms).
    pub heartbeat_ms: u64,
    /// `--election-timeout` (ms).
    pub election_ms: u64,
}

/// A member's process state.
#[derive(Debug)]
enum State {
    Running(Child),
    Paused(Child),
    Down,
}

/// The members and the network they live on.
#[derive(Debug)]
pub struct Db {
    config: DbConfig,
    net: Network,
    members: Vec<State>,
}

impl Db {
    /// Starts a member in every namespace of `net` as one new cluster.
    pub fn start(config: DbConfig, net: Network) -> io::Result<Db> {
        std::fs::create_dir_all(&config.dir)?;
        let members = (0..net.len()).map(|_| State::Down).collect();
        let mut db = Db {
            config,
            net,
            members,
        };
        for i in 0..db.members.len() {
            db.spawn(i)?;
        }
        Ok(db)
    }

    /// The network (to partition it).
    pub fn net(&mut self) -> &mut Network {
        &mut self.net
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True if there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Member `i`'s client endpoint (`ip:port`).
    pub fn endpoint(&self, i: usize) -> String {
        format!("{}:{CLIENT_PORT}", self.net.ip(i))
    }

    /// Every member's client endpoint.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.endpoint(i)).collect()
    }

    /// Member `i`'s log file.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.config.dir.join(format!("n{i}.log"))
    }

    fn spawn(&mut self, i: usize) -> io::Result<()> {
        let peer = |j: usize| format!("http://{}:{PEER_PORT}", self.net.ip(j));
        let client_url = format!("http://{}", self.endpoint(i));
        let initial_cluster: Vec<String> = (0..self.len())
            .map(|j| format!("n{j}={}", peer(j)))
            .collect();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))?;
        let child = self
            .net
            .command(i, &self.config.keel)
            .arg("--name")
            .arg(format!("n{i}"))
            .arg("--data-dir")
            .arg(self.config.dir.join(format!("n{i}")))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer(i)])
            .args(["--initial-advertise-peer-urls", &peer(i)])
            .args(["--initial-cluster", &initial_cluster.join(",")])
            .args(["--initial-cluster-token", "keel-jepsen"])
            .arg(format!("--heartbeat-interval={}", self.config.heartbeat_ms))
            .arg(format!("--election-timeout={}", self.config.election_ms))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.members[i] = State::Running(child);
        Ok(())
    }

    /// SIGKILL member `i` (paused or running) and wait for it.
    pub fn kill(&mut self, i: usize) {
        if let State::Running(mut c) | State::Paused(mut c) =
            std::mem::replace(&mut self.members[i], State::Down)
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restart member `i` if it is down (same flags, same data).
    pub fn restart(&mut self, i: usize) -> io::Result<()> {
        if matches!(self.members[i], State::Down) {
            self.spawn(i)?;
        }
        Ok(())
    }

    /// SIGSTOP member `i` if it runs.
    pub fn pause(&mut self, i: usize) {
        self.members[i] = match std::mem::replace(&mut self.members[i], State::Down) {
            State::Running(c) => {
                signal(&c, "STOP");
                State::Paused(c)
            }
            other => other,
        };
    }

    /// SIGCONT member `i` if it is paused.
    pub fn resume(&mut self, i: usize) {
        self.members[i] = match std::mem::replace(&mut self.members[i], State::Down) {
            State::Paused(c) => {
                signal(&c, "CONT");
                State::Running(c)
            }
            other => other,
        };
    }

    /// Heal the network, resume paused members and restart killed ones.
    pub fn recover_all(&mut self) -> io::Result<()> {
        self.net.heal()?;
        for i in 0..self.len() {
            self.resume(i);
            self.restart(i)?;
        }
        Ok(())
    }

    /// Waits until some member reports a leader, or `timeout`.
    pub fn wait_for_leader(&self, timeout: Duration) -> io::Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            for e in self.endpoints() {
                if let Ok(s) = status(&e) {
                    if s.leader != 0 {
                        return Ok(s.leader);
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("no leader elected in time"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The tail of every member's log (for a failing test).
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for i in 0..self.len() {
            let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- n{i} ---\n"));
            for l in &all[all.len().saturating_sub(lines)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        for i in 0..self.len() {
            self.kill(i);
        }
    }
}

fn signal(c: &Child, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(c.id().to_string())
        .status();
}

fn status(endpoint: &str) -> Result<StatusResponse, String> {
    let config = ClientConfig {
        connect_timeout: Duration::from_millis(500),
        call_timeout: Duration::from_millis(500),
        ..ClientConfig::default()
    };
    let mut c = Client::connect(&[endpoint], config).map_err(|e| e.to_string())?;
    let bytes = c
        .unary(
            "/etcdserverpb.Maintenance/Status",
            &StatusRequest::default().encode_to_vec(),
        )
        .map_err(|e| e.to_string())?;
    StatusResponse::decode(bytes.as_slice()).map_err(|e| e.to_string())
}
