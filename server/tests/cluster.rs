//! End-to-end: a static 3-member cluster of real `keel` processes on free loopback ports,
//! driven by the real `etcdctl` (ETCDCTL_API=3): writes on any member, linearizable and
//! serializable reads on followers, kill -9 of the leader, a new election, writes on the
//! survivors, and the old leader catching up after a restart.
//!
//! Skipped (with a message) when `etcdctl` is not installed.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ETCDCTL: &str = "/usr/bin/etcdctl";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "keel-cluster-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// How to start one member (kept to restart it with the same flags).
#[derive(Clone)]
struct Spec {
    name: String,
    data_dir: PathBuf,
    client: u16,
    peer: u16,
    initial_cluster: String,
    extra: Vec<String>,
}

/// A `keel` member process, killed (SIGKILL) on drop.
struct Member {
    spec: Spec,
    child: Option<Child>,
    log: PathBuf,
}

impl Member {
    fn start(spec: &Spec) -> Member {
        let log = spec.data_dir.with_extension("log");
        let mut m = Member {
            spec: spec.clone(),
            child: None,
            log,
        };
        m.restart();
        m
    }

    /// (Re)start the process with the same flags; the log is appended to.
    fn restart(&mut self) {
        let s = &self.spec;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keel"));
        let client = format!("http://127.0.0.1:{}", s.client);
        let peer = format!("http://127.0.0.1:{}", s.peer);
        cmd.args([
            "--name",
            &s.name,
            "--data-dir",
            s.data_dir.to_str().unwrap(),
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &s.initial_cluster,
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            "keel-test-cluster",
            "--heartbeat-interval",
            "50",
            "--election-timeout",
            "500",
        ]);
        cmd.args(&s.extra);
        for (k, _) in std::env::vars() {
            if k.starts_with("ETCD_") {
                cmd.env_remove(k);
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        cmd.stdout(Stdio::null()).stderr(log);
        self.child = Some(cmd.spawn().expect("start keel"));
        self.wait_listening();
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.as_mut().unwrap().try_wait() {
                panic!(
                    "keel {} exited with {status}; log:\n{}",
                    self.spec.name,
                    self.log_text()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.spec.client)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "keel {} did not listen; log:\n{}",
            self.spec.name,
            self.log_text()
        );
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.spec.client)
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Command::new(ETCDCTL)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .arg("--command-timeout=5s")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("run etcdctl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "etcdctl {args:?} on {} failed: {}\nlog:\n{}",
            self.spec.name,
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `endpoint status` in etcdctl's simple format: (id, is leader, raft term, raft index).
    fn status(&self) -> Option<(String, bool, u64, u64)> {
        let out = self.ctl(&["endpoint", "status"]);
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8(out.stdout).ok()?;
        let f: Vec<&str> = text.trim().split(", ").collect();
        if f.len() < 9 {
            return None;
        }
        Some((
            f[1].to_string(),
            f[4] == "true",
            f[6].parse().ok()?,
            f[7].parse().ok()?,
        ))
    }

    fn cleanup(mut self) {
        self.kill9();
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_dir_all(&self.spec.data_dir);
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Start a static cluster of `n` members with extra flags for every member.
fn start_cluster(tag: &str, n: usize, extra: &[&str]) -> (PathBuf, Vec<Member>) {
    let dir = temp_dir(tag);
    let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
    let initial_cluster = ports
        .iter()
        .enumerate()
        .map(|(i, (_, p))| format!("m{i}=http://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let specs: Vec<Spec> = ports
        .iter()
        .enumerate()
        .map(|(i, (c, p))| Spec {
            name: format!("m{i}"),
            data_dir: dir.join(format!("m{i}")),
            client: *c,
            peer: *p,
            initial_cluster: initial_cluster.clone(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        })
        .collect();
    let members = specs.iter().map(Member::start).collect();
    (dir, members)
}

/// Wait until exactly one of `alive` reports itself leader and all agree on the term; returns
/// the leader's position in `members`.
fn wait_for_leader(members: &[Member], alive: &[usize]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let st: Vec<Option<(String, bool, u64, u64)>> =
            alive.iter().map(|&i| members[i].status()).collect();
        if st.iter().all(|s| s.is_some()) {
            let st: Vec<_> = st.into_iter().map(|s| s.unwrap()).collect();
            let leaders: Vec<usize> = alive
                .iter()
                .zip(&st)
                .filter(|(_, s)| s.1)
                .map(|(i, _)| *i)
                .collect();
            if leaders.len() == 1 && st.iter().all(|s| s.2 == st[0].2) {
                return leaders[0];
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs: String = members.iter().map(|m| m.log_text()).collect();
    panic!("no single leader among {alive:?}; logs:\n{logs}");
}

/// Poll `get key` on `m` (with extra flags) until it prints `value` (up to 10 s).
fn eventually_reads(m: &Member, key: &str, value: &str, flags: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while Instant::now() < deadline {
        let mut args = vec!["get", key];
        args.extend_from_slice(flags);
        let out = m.ctl(&args);
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() && last == format!("{key}\n{value}\n") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{} never read {key}={value} with {flags:?}; last answer: {last}\nlog:\n{}",
        m.spec.name,
        m.log_text()
    );
}

fn etcdctl_available() -> bool {
    if Path::new(ETCDCTL).exists() {
        return true;
    }
    eprintln!("skipping: {ETCDCTL} not installed");
    false
}

#[test]
fn three_members_replicate_fail_over_and_catch_up() {
    if !etcdctl_available() {
        return;
    }
    let (dir, mut ms) = start_cluster("basic", 3, &[]);
    let leader = wait_for_leader(&ms, &[0, 1, 2]);

    // Every member lists all three, with the peer URLs of --initial-cluster.
    let list = ms[1].ok(&["member", "list"]);
    assert_eq!(list.lines().count(), 3, "{list}");
    for m in &ms {
        assert!(
            list.contains(&format!("http://127.0.0.1:{}", m.spec.peer)),
            "{list}"
        );
        assert!(list.contains(&format!(", {}, ", m.spec.name)), "{list}");
    }

    // Each member publishes its client URLs through Raft: every MemberList shows them all.
    let deadline = Instant::now() + Duration::from_secs(10);
    for m in &ms {
        loop {
            let list = m.ok(&["member", "list"]);
            if ms
                .iter()
                .all(|o| list.contains(&format!("http://127.0.0.1:{}, false", o.spec.client)))
            {
                break;
            }
            assert!(Instant::now() < deadline, "client URLs missing: {list}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // Writes on every member (followers forward to the leader); linearizable reads anywhere.
    for (i, m) in ms.iter().enumerate() {
        assert_eq!(m.ok(&["put", &format!("k{i}"), &format!("v{i}")]), "OK\n");
    }
    for m in &ms {
        for i in 0..3 {
            assert_eq!(
                m.ok(&["get", &format!("k{i}")]),
                format!("k{i}\nv{i}\n"),
                "linearizable read on {}",
                m.spec.name
            );
        }
        eventually_reads(m, "k2", "v2", &["--consistency=s"]);
    }
    // Status agrees everywhere: same term, same index once replicated.
    let st: Vec<_> = ms.iter().map(|m| m.status().unwrap()).collect();
    assert!(st.iter().all(|s| s.2 == st[0].2), "{st:?}");
    assert_eq!(st.iter().filter(|s| s.1).count(), 1, "{st:?}");
    assert!(st[leader].1);

    // Leases: granted through a follower, kept alive through a follower (forwarded to the
    // leader, which alone tracks deadlines), expired by the leader once nobody renews.
    let follower = (leader + 1) % 3;
    let grant = ms[follower].ok(&["lease", "grant", "2"]);
    let lease = grant.split_whitespace().nth(1).unwrap().to_string();
    ms[follower].ok(&["put", "--lease", &lease, "leased", "v"]);
    let once = ms[follower].ok(&["lease", "keep-alive", "--once", &lease]);
    assert!(once.contains("keepalived with TTL(2)"), "{once}");
    // The answer's header is the follower's own (etcd's follower forwards the renewal, then
    // fills the header itself), not the leader's passed through.
    let json = ms[follower].ok(&["lease", "keep-alive", "--once", &lease, "-w", "json"]);
    let json_field = |name: &str| -> u64 {
        let at = json
            .find(&format!("\"{name}\":"))
            .unwrap_or_else(|| panic!("{json}"));
        let rest = &json[at + name.len() + 3..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end]
            .parse()
            .unwrap_or_else(|_| panic!("{name} in {json}"))
    };
    let own_id = u64::from_str_radix(&st[follower].0, 16).unwrap();
    let leader_id = u64::from_str_radix(&st[leader].0, 16).unwrap();
    assert_ne!(own_id, leader_id);
    assert_eq!(
        json_field("member_id"),
        own_id,
        "keep-alive via a follower: {json}"
    );
    let mut keeper = Command::new(ETCDCTL)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", ms[follower].endpoint()))
        .args(["lease", "keep-alive", &lease])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let alive = ms[leader].ok(&["get", "leased"]);
    let _ = keeper.kill();
    let _ = keeper.wait();
    assert_eq!(
        alive, "leased\nv\n",
        "kept alive through a follower for 4 s > TTL 2 s"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ms[follower].ok(&["get", "leased"]).is_empty() {
        assert!(Instant::now() < deadline, "the lease never expired");
        std::thread::sleep(Duration::from_millis(200));
    }

    // TimeToLive through a follower is the leader's countdown (forwarded), not a frozen copy.
    let grant = ms[follower].ok(&["lease", "grant", "10"]);
    let lease10 = grant.split_whitespace().nth(1).unwrap().to_string();
    std::thread::sleep(Duration::from_millis(2500));
    let ttl = ms[follower].ok(&["lease", "timetolive", &lease10]);
    let remaining: i64 = ttl
        .split("remaining(")
        .nth(1)
        .and_then(|r| r.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected timetolive answer: {ttl}"));
    assert!(remaining <= 8, "TTL not counting down on a follower: {ttl}");

    // kill -9 the leader: the survivors elect a new one and keep serving writes.
    ms[leader].kill9();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let new_leader = wait_for_leader(&ms, &survivors);
    assert_ne!(new_leader, leader);
    for &i in &survivors {
        assert_eq!(ms[i].ok(&["put", "after", &format!("from-m{i}")]), "OK\n");
    }
    let last_writer = *survivors.last().unwrap();
    let newest = format!("from-m{last_writer}");
    for &i in &survivors {
        assert_eq!(ms[i].ok(&["get", "after"]), format!("after\n{newest}\n"));
    }

    // The old leader comes back and catches up.
    ms[leader].restart();
    eventually_reads(&ms[leader], "after", &newest, &[]);
    eventually_reads(&ms[leader], "after", &newest, &["--consistency=s"]);
    assert_eq!(ms[leader].ok(&["put", "back", "yes"]), "OK\n");
    for m in &ms {
        assert_eq!(m.ok(&["get", "back"]), "back\nyes\n");
    }
    let st: Vec<_> = ms.iter().map(|m| m.status().unwrap()).collect();
    assert!(st.iter().all(|s| s.2 == st[0].2), "one term: {st:?}");

    // Without a quorum there is no leader: a write waits for one, as etcd's does (its raft
    // node takes no proposal without a leader), until the client gives up; serializable reads
    // are still served.
    let lone = leader;
    for &i in &survivors {
        ms[i].kill9();
    }
    let out = ms[lone].ctl(&["put", "x", "y"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "a write without quorum succeeded");
    assert!(
        err.contains("context deadline exceeded") && !err.contains("no leader"),
        "a write without quorum must wait for the client's deadline: {err}"
    );
    assert_eq!(
        ms[lone].ok(&["get", "back", "--consistency=s"]),
        "back\nyes\n"
    );

    for m in ms {
        m.cleanup();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Puts `n` keys `<prefix><i>` through net's blocking client on `m`, from 4 threads.
fn put_many(m: &Member, prefix: &str, n: usize) {
    use keel_net::client::{Client, ClientConfig};
    use keel_net::proto::etcdserverpb as pb;
    use prost::Message;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let ep = m.endpoint();
            let prefix = prefix.to_string();
            std::thread::spawn(move || {
                let mut c = Client::connect(&[ep], ClientConfig::default()).unwrap();
                for i in (t..n).step_by(4) {
                    let put = pb::PutRequest {
                        key: format!("{prefix}{i:04}").into_bytes(),
                        value: format!("value-{i}").into_bytes(),
                        ..Default::default()
                    };
                    c.unary("/etcdserverpb.KV/Put", &put.encode_to_vec())
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_member_down_past_log_compaction_catches_up_by_snapshot() {
    if !etcdctl_available() {
        return;
    }
    // --snapshot-count 100: the leader keeps about 100 entries behind its applied index, so a
    // member that misses 400 writes can only catch up through a snapshot (Raft §7).
    let (dir, mut ms) = start_cluster("snap", 3, &["--snapshot-count", "100"]);
    let leader = wait_for_leader(&ms, &[0, 1, 2]);
    let down = (leader + 1) % 3;
    let up = (leader + 2) % 3;
    assert_eq!(ms[down].ok(&["put", "early", "1"]), "OK\n");
    eventually_reads(&ms[down], "early", "1", &["--consistency=s"]);
    ms[down].kill9();
    put_many(&ms[leader], "key", 200);
    put_many(&ms[up], "key", 400); // overwrites half of them, from a follower
    assert_eq!(ms[leader].ok(&["put", "last", "final"]), "OK\n");

    ms[down].restart();
    eventually_reads(&ms[down], "last", "final", &["--consistency=s"]);
    assert!(
        ms[down].log_text().contains("installing a snapshot"),
        "caught up without a snapshot?\n{}",
        ms[down].log_text()
    );
    assert!(
        ms[down].log_text().contains("snapshot installed in place"),
        "{}",
        ms[down].log_text()
    );
    assert_eq!(ms[down].ok(&["get", "last"]), "last\nfinal\n");
    let keys = ms[down].ok(&["get", "key", "--prefix", "--keys-only"]);
    assert_eq!(keys.lines().filter(|l| !l.is_empty()).count(), 400);
    assert_eq!(ms[down].ok(&["get", "key0399"]), "key0399\nvalue-399\n");
    // It is a full member again: writes through it work, and all three hash the same.
    assert_eq!(ms[down].ok(&["put", "after-snapshot", "yes"]), "OK\n");
    for m in &ms {
        assert_eq!(m.ok(&["get", "after-snapshot"]), "after-snapshot\nyes\n");
    }
    let hashes: Vec<String> = ms
        .iter()
        .map(|m| {
            let out = m.ok(&["endpoint", "hashkv"]);
            out.trim().rsplit(", ").next().unwrap().to_string()
        })
        .collect();
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");
    for m in ms {
        m.cleanup();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `f` while `m`'s process is stopped (SIGSTOP; SIGCONT after): its connections stay
/// open but it reads nothing, as a member behind a stalled link.
fn while_paused<T>(m: &Member, f: impl FnOnce() -> T) -> T {
    let pid = m.child.as_ref().expect("running").id().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP");
    let out = f();
    signal("-CONT");
    out
}

/// A member paused (SIGSTOP) while the others write past the leader's log compaction installs
/// the leader's snapshot in place when it resumes: the process goes on, a client connection
/// opened before keeps working, and a watch stream opened before the pause delivers every put
/// it missed, once each, in revision order (its watcher resyncs from the installed history).
#[test]
fn a_paused_member_installs_a_snapshot_in_place_and_keeps_its_watchers() {
    use keel_net::client::{Client, ClientConfig};
    use keel_net::proto::etcdserverpb as pb;
    use prost::Message;
    use std::time::{Duration, Instant};
    // put_many keeps 4 puts in flight, so the leader sends at least WRITES / 4 appends: well
    // over the 512 it keeps in flight to a silent follower.
    const WRITES: usize = 5000;
    if !etcdctl_available() {
        return;
    }
    // No strict reconfiguration check: a learner is added while the member is paused.
    let (dir, ms) = start_cluster(
        "snap-pause",
        3,
        &["--snapshot-count", "100", "--strict-reconfig-check=false"],
    );
    let leader = wait_for_leader(&ms, &[0, 1, 2]);
    let lag = (leader + 1) % 3;
    assert_eq!(ms[lag].ok(&["put", "early", "1"]), "OK\n");
    eventually_reads(&ms[lag], "early", "1", &["--consistency=s"]);

    let mut c = Client::connect(&[ms[lag].endpoint()], ClientConfig::default()).unwrap();
    let watch = c
        .open_stream("/etcdserverpb.Watch/Watch", &[], None)
        .unwrap();
    let create = pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
            pb::WatchCreateRequest {
                key: b"key".to_vec(),
                range_end: b"kez".to_vec(),
                ..Default::default()
            },
        )),
    };
    c.send(watch, &create.encode_to_vec()).unwrap();
    let created = c.recv(watch, Duration::from_secs(10)).unwrap().unwrap();
    assert!(pb::WatchResponse::decode(&created[..]).unwrap().created);

    let learner_url = while_paused(&ms[lag], || {
        // More appends than the leader keeps in flight to a silent follower (512), so that
        // it stops sending and compacts its log past what the follower has.
        put_many(&ms[leader], "key", WRITES);
        // A membership change the paused member learns only from the snapshot's database
        // (the leader stopped sending to it long before).
        let learner_url = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let added = ms[leader].ok(&[
            "member",
            "add",
            "extra",
            "--learner",
            &format!("--peer-urls={learner_url}"),
        ]);
        assert!(added.contains("added to cluster"), "{added}");
        put_many(&ms[leader], "tail", 50);
        learner_url
    });

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = std::collections::BTreeMap::new();
    let mut last_rev = 0;
    while seen.len() < WRITES {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{} of {WRITES} events", seen.len());
        let Some(msg) = c.recv(watch, left).unwrap() else {
            panic!("the watch ended after {} events", seen.len());
        };
        let resp = pb::WatchResponse::decode(&msg[..]).unwrap();
        assert!(!resp.canceled, "{resp:?}");
        for ev in resp.events {
            let kv = ev.kv.unwrap();
            assert!(kv.mod_revision > last_rev, "out of order: {kv:?}");
            last_rev = kv.mod_revision;
            let key = String::from_utf8(kv.key).unwrap();
            let i: usize = key["key".len()..].parse().unwrap();
            assert_eq!(kv.value, format!("value-{i}").into_bytes(), "{key}");
            assert!(seen.insert(key, kv.mod_revision).is_none(), "twice: {i}");
        }
    }
    assert!(
        ms[lag].log_text().contains("snapshot installed in place"),
        "caught up without a snapshot?\n{}",
        ms[lag].log_text()
    );
    // The snapshot was reassembled in a spool file of the member directory, removed once
    // restored.
    let member_dir = ms[lag].spec.data_dir.join("member");
    let leftovers: Vec<String> = std::fs::read_dir(&member_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("snapshot-") || n.ends_with(".installing"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Its membership table is the snapshot's: it lists the learner added while it was paused.
    let list = ms[lag].ok(&["member", "list"]);
    assert!(
        list.contains(&format!(", unstarted, , {learner_url}, , true")),
        "{list}"
    );
    // The connection opened before the pause still serves unary calls.
    let range = pb::RangeRequest {
        key: format!("key{:04}", WRITES - 1).into_bytes(),
        serializable: true,
        ..Default::default()
    };
    let got = c
        .unary("/etcdserverpb.KV/Range", &range.encode_to_vec())
        .unwrap();
    let got = pb::RangeResponse::decode(&got[..]).unwrap();
    assert_eq!(
        got.kvs[0].value,
        format!("value-{}", WRITES - 1).into_bytes()
    );
    for m in ms {
        m.cleanup();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// kill -9 right after a member installed a snapshot in place (its WAL may not hold the
/// snapshot marker yet: the database is ahead of the log): it restarts, catches up, serves
/// every write, and all members hash the same.
#[test]
fn a_member_killed_just_after_installing_a_snapshot_recovers() {
    use std::time::{Duration, Instant};
    if !etcdctl_available() {
        return;
    }
    let (dir, mut ms) = start_cluster("snap-kill", 3, &["--snapshot-count", "100"]);
    let leader = wait_for_leader(&ms, &[0, 1, 2]);
    let lag = (leader + 1) % 3;
    assert_eq!(ms[lag].ok(&["put", "early", "1"]), "OK\n");
    eventually_reads(&ms[lag], "early", "1", &["--consistency=s"]);
    // Over 512 appends in flight (see the test above): the leader stops sending, compacts.
    while_paused(&ms[lag], || put_many(&ms[leader], "key", 5000));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ms[lag].log_text().contains("snapshot installed in place") {
        assert!(Instant::now() < deadline, "{}", ms[lag].log_text());
        std::thread::sleep(Duration::from_millis(1));
    }
    ms[lag].kill9();
    assert_eq!(ms[leader].ok(&["put", "last", "final"]), "OK\n");
    ms[lag].restart();
    eventually_reads(&ms[lag], "last", "final", &["--consistency=s"]);
    let keys = ms[lag].ok(&["get", "key", "--prefix", "--keys-only", "--consistency=s"]);
    assert_eq!(keys.lines().filter(|l| !l.is_empty()).count(), 5000);
    assert_eq!(ms[lag].ok(&["put", "after", "yes"]), "OK\n");
    let hashes: Vec<String> = ms
        .iter()
        .map(|m| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                // Every member has applied "after" before it is hashed at the same revision.
                if m.ok(&["get", "after", "--consistency=s"]) == "after\nyes\n" {
                    let out = m.ok(&["endpoint", "hashkv"]);
                    break out.trim().rsplit(", ").next().unwrap().to_string();
                }
                assert!(Instant::now() < deadline);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .collect();
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");
    for m in ms {
        m.cleanup();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
