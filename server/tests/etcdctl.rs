//! End-to-end: the real `keel` binary on free ports with a temporary data directory, driven by
//! the real `etcdctl` (ETCDCTL_API=3), as an operator would.
//!
//! Skipped (with a message) when `etcdctl` is not installed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ETCDCTL: &str = "/usr/bin/etcdctl";

fn etcdctl_available() -> bool {
    Path::new(ETCDCTL).exists()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "keel-e2e-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A `keel` process, killed (SIGKILL) on drop.
struct Keel {
    child: Child,
    port: u16,
    peer: u16,
    log: PathBuf,
}

impl Keel {
    fn start(data_dir: &Path, port: u16, peer: u16) -> Keel {
        let log = data_dir.with_extension(format!("{port}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keel"));
        cmd.args([
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--listen-client-urls",
            &format!("http://127.0.0.1:{port}"),
            "--advertise-client-urls",
            &format!("http://127.0.0.1:{port}"),
            "--listen-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
        ]);
        for (k, _) in std::env::vars() {
            if k.starts_with("ETCD_") {
                cmd.env_remove(k);
            }
        }
        cmd.stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd.spawn().expect("start keel");
        let mut k = Keel {
            child,
            port,
            peer,
            log,
        };
        k.wait_ready();
        k
    }

    /// The member ID etcd (and keel) derive from the peer URL and the default cluster token.
    fn member_id(&self) -> String {
        let url = keel_server::url::Url::parse(&format!("http://127.0.0.1:{}", self.peer)).unwrap();
        format!(
            "{:x}",
            keel_server::config::member_id(&[url], "etcd-cluster", None)
        )
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "keel exited with {status}; log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "keel did not listen on {}; log:\n{}",
            self.port,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_stdin(args, None)
    }

    fn ctl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(ETCDCTL);
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .arg("--command-timeout=10s")
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run etcdctl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Run etcdctl, assert success, return stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed: {}\nkeel log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run etcdctl, assert failure, return stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            !out.status.success(),
            "etcdctl {args:?} unexpectedly succeeded"
        );
        String::from_utf8(out.stderr).unwrap()
    }

    fn http_get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let status: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// Kill the process at the end of a passing test and remove its log (a failing test panics
    /// before this and keeps the log for inspection).
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Drop for Keel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn put_get_delete_txn_compact_with_etcdctl() {
    if !etcdctl_available() {
        eprintln!("skipping: {ETCDCTL} not installed");
        return;
    }
    let dir = temp_dir("kv");
    let k = Keel::start(&dir, free_port(), free_port());

    assert_eq!(k.ok(&["put", "foo", "bar"]), "OK\n");
    assert_eq!(k.ok(&["get", "foo"]), "foo\nbar\n");
    assert_eq!(k.ok(&["get", "foo", "--consistency=s"]), "foo\nbar\n");
    assert_eq!(k.ok(&["put", "--prev-kv", "foo", "baz"]), "OK\nfoo\nbar\n");
    for i in 0..5 {
        k.ok(&["put", &format!("dir/{i}"), &format!("v{i}")]);
    }
    assert_eq!(
        k.ok(&["get", "dir/", "--prefix", "--keys-only"]),
        "dir/0\n\ndir/1\n\ndir/2\n\ndir/3\n\ndir/4\n\n"
    );
    assert!(k
        .ok(&["get", "dir/", "--prefix", "-w", "json"])
        .contains("\"count\":5"));
    assert_eq!(k.ok(&["del", "dir/", "--prefix"]), "5\n");
    assert_eq!(k.ok(&["get", "dir/", "--prefix"]), "");

    // JSON output carries the header: 2 puts of foo, 5 puts under dir/, 1 delete → revision 9.
    let json = k.ok(&["get", "foo", "-w", "json"]);
    assert!(json.contains("\"revision\":9"), "{json}");
    assert!(json.contains("\"raft_term\":"), "{json}");

    // Txn: compare on value, success branch.
    let out = k.ctl_stdin(
        &["txn"],
        Some("value(\"foo\") = \"baz\"\n\nput foo qux\nget foo\n\nput foo nope\n\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "SUCCESS\n\nOK\n\nfoo\nqux\n"
    );
    // Failure branch.
    let out = k.ctl_stdin(
        &["txn"],
        Some("value(\"foo\") = \"zzz\"\n\nput foo nope\n\nget foo\n\n"),
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "FAILURE\n\nfoo\nqux\n"
    );

    // Errors carry etcd's messages.
    assert!(k
        .fails(&["put", "", "x"])
        .contains("etcdserver: key is not provided"));
    let out = k.ctl_stdin(&["txn"], Some("\nput a 1\nput a 2\n\n\n"));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("etcdserver: duplicate key given in txn request"));
    assert_eq!(k.ok(&["compaction", "3"]), "compacted revision 3\n");
    assert!(k
        .fails(&["get", "foo", "--rev=2"])
        .contains("etcdserver: mvcc: required revision has been compacted"));
    assert!(k
        .fails(&["get", "foo", "--rev=1000"])
        .contains("etcdserver: mvcc: required revision is a future revision"));

    // Operator commands.
    let status = k.ok(&["endpoint", "status"]);
    assert!(
        status.contains(&k.member_id()) && status.contains("3.5.0") && status.contains("true"),
        "{status}"
    );
    let out = k.ctl(&["endpoint", "health"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let members = k.ok(&["member", "list"]);
    assert!(
        members.starts_with(&format!(
            "{}, started, default, http://127.0.0.1:{}, http://127.0.0.1:{}",
            k.member_id(),
            k.peer,
            k.port
        )),
        "{members}"
    );
    assert!(k
        .ok(&["lease", "grant", "30"])
        .contains("granted with TTL(30s)"));

    // HTTP/1.1 on the client port.
    assert_eq!(
        k.http_get("/health"),
        (200, r#"{"health":"true","reason":""}"#.to_string())
    );
    assert_eq!(
        k.http_get("/version"),
        (
            200,
            r#"{"etcdserver":"3.5.0","etcdcluster":"3.5.0"}"#.to_string()
        )
    );
    let (code, metrics) = k.http_get("/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("etcd_server_has_leader 1"), "{metrics}");
    assert!(metrics
        .lines()
        .any(|l| l.starts_with("process_resident_memory_bytes ")));
    assert_eq!(k.http_get("/nope").0, 404);

    k.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    if !etcdctl_available() {
        eprintln!("skipping: {ETCDCTL} not installed");
        return;
    }
    let dir = temp_dir("restart");
    let (port, peer) = (free_port(), free_port());
    let k = Keel::start(&dir, port, peer);
    for i in 0..20 {
        assert_eq!(
            k.ok(&["put", &format!("key{i:02}"), &format!("value{i}")]),
            "OK\n"
        );
    }
    let before = k.ok(&["get", "key", "--prefix", "-w", "json"]);
    k.kill(); // SIGKILL: no shutdown path runs

    let k = Keel::start(&dir, port, peer);
    let after = k.ok(&["get", "key", "--prefix", "-w", "json"]);
    let kvs = |s: &str| {
        s.split("\"kvs\":")
            .nth(1)
            .unwrap()
            .split("\"count\"")
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        kvs(&before),
        kvs(&after),
        "same keys, values and revisions after restart"
    );
    assert!(after.contains("\"count\":20"), "{after}");
    // And the member keeps working, at the next revision.
    assert_eq!(k.ok(&["put", "key20", "x"]), "OK\n");
    assert!(k
        .ok(&["get", "key20", "-w", "json"])
        .contains("\"mod_revision\":22"));
    k.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn watch_lease_lock_and_elect_with_etcdctl() {
    if !etcdctl_available() {
        eprintln!("skipping: {ETCDCTL} not installed");
        return;
    }
    let dir = temp_dir("watch");
    let k = Keel::start(&dir, free_port(), free_port());

    // A live watch sees puts and deletes in order, with previous values.
    let mut watch = Command::new(ETCDCTL)
        .env("ETCDCTL_API", "3")
        .args([
            &format!("--endpoints={}", k.endpoint()),
            "watch",
            "w",
            "--prefix",
            "--prev-kv",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    k.ok(&["put", "w1", "a"]);
    k.ok(&["put", "w1", "b"]);
    k.ok(&["del", "w1"]);
    std::thread::sleep(Duration::from_millis(500));
    let _ = watch.kill();
    let out = watch.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "PUT\nw1\na\nPUT\nw1\na\nw1\nb\nDELETE\nw1\nb\nw1\n\n"
    );

    // A watch from an old revision replays history (revisions 2..4).
    let mut replay = Command::new(ETCDCTL)
        .env("ETCDCTL_API", "3")
        .args([
            &format!("--endpoints={}", k.endpoint()),
            "watch",
            "w1",
            "--rev=1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let _ = replay.kill();
    let out = replay.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "PUT\nw1\na\nPUT\nw1\nb\nDELETE\nw1\n\n"
    );

    // Leases: attached keys, time-to-live, list, keep-alive, expiry deletes the key.
    let grant = k.ok(&["lease", "grant", "2"]);
    let id = grant.split_whitespace().nth(1).unwrap().to_string();
    k.ok(&["put", "--lease", &id, "ephemeral", "v"]);
    let ttl = k.ok(&["lease", "timetolive", &id, "--keys"]);
    assert!(
        ttl.contains("granted with TTL(2s)") && ttl.contains("attached keys([ephemeral])"),
        "{ttl}"
    );
    assert!(k.ok(&["lease", "list"]).contains(&id));
    assert!(k
        .ok(&["lease", "keep-alive", "--once", &id])
        .contains("keepalived with TTL(2)"));
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        k.ok(&["get", "ephemeral"]),
        "",
        "the key went with its lease"
    );
    assert!(k
        .ok(&["lease", "timetolive", &id])
        .contains("already expired"));

    // etcdctl's lock and elect recipes (Txn on create_revision, sorted ranges, Watch, leases).
    assert_eq!(k.ok(&["lock", "mylock", "echo", "got-lock"]), "got-lock\n");
    let holder = Command::new(ETCDCTL)
        .env("ETCDCTL_API", "3")
        .args([
            &format!("--endpoints={}", k.endpoint()),
            "lock",
            "l2",
            "sleep",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(k.ok(&["lock", "l2", "echo", "second"]), "second\n");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the second locker waited for the first"
    );
    let _ = holder.wait_with_output();

    k.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn maintenance_hashkv_defrag_snapshot_with_etcdctl() {
    if !etcdctl_available() {
        eprintln!("skipping: {ETCDCTL} not installed");
        return;
    }
    let dir = temp_dir("maint");
    let k = Keel::start(&dir, free_port(), free_port());
    for i in 0..10 {
        k.ok(&["put", &format!("m{i}"), &"x".repeat(100)]);
    }
    let h1 = k.ok(&["endpoint", "hashkv"]);
    let h2 = k.ok(&["endpoint", "hashkv"]);
    assert_eq!(h1, h2, "the hash of unchanged history is stable");
    assert!(k.ok(&["defrag"]).contains("Finished defragmenting"));
    assert_eq!(
        k.ok(&["endpoint", "hashkv"]),
        h1,
        "defragmenting does not change the data"
    );
    k.ok(&["put", "m0", "changed"]);
    assert_ne!(k.ok(&["endpoint", "hashkv"]), h1);

    // Snapshot: etcdctl accepts it only if size % 512 == 32 and the trailing SHA-256 matches.
    let snap = dir.join("snap.db");
    let out = k.ok(&["snapshot", "save", snap.to_str().unwrap()]);
    assert!(out.contains("Snapshot saved at"), "{out}");
    let bytes = std::fs::read(&snap).unwrap();
    assert!(bytes.len() > 32);
    k.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn request_size_limit_gives_etcds_error() {
    if !etcdctl_available() {
        eprintln!("skipping: {ETCDCTL} not installed");
        return;
    }
    let dir = temp_dir("limits");
    let (port, peer) = (free_port(), free_port());
    // A keel with a 1 KiB request limit: a 2 KiB value is refused with etcd's message.
    let log = dir.with_extension("log");
    let child = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--max-request-bytes",
            "1024",
            "--listen-client-urls",
            &format!("http://127.0.0.1:{port}"),
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
            "--listen-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut k = Keel {
        child,
        port,
        peer,
        log,
    };
    k.wait_ready();
    assert_eq!(k.ok(&["put", "small", "x"]), "OK\n");
    let err = k.fails(&["put", "big", &"x".repeat(2048)]);
    assert!(err.contains("etcdserver: request is too large"), "{err}");
    assert_eq!(k.ok(&["get", "big"]), "", "nothing was written");
    k.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn space_quota_raises_nospace_until_defrag_and_disarm() {
    if !etcdctl_available() {
        eprintln!("skipping: {ETCDCTL} not installed");
        return;
    }
    let dir = temp_dir("quota");
    let (port, peer) = (free_port(), free_port());
    let log = dir.with_extension("log");
    let child = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--quota-backend-bytes",
            "200000",
            "--listen-client-urls",
            &format!("http://127.0.0.1:{port}"),
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
            "--listen-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut k = Keel {
        child,
        port,
        peer,
        log,
    };
    k.wait_ready();
    let value = "x".repeat(2000);
    let mut refused_at = None;
    for i in 0..400 {
        let out = k.ctl(&["put", &format!("k{i:03}"), &value]);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(
                err.contains("etcdserver: mvcc: database space exceeded"),
                "{err}"
            );
            refused_at = Some(i);
            break;
        }
    }
    assert!(
        refused_at.is_some(),
        "a 200 kB quota must stop 800 kB of puts"
    );
    // etcdctl prints `%+v` of the AlarmMember: the decimal member id, a trailing space.
    let listed = k.ok(&["alarm", "list"]);
    assert_eq!(listed.lines().count(), 1, "{listed:?}");
    let id = listed
        .strip_prefix("memberID:")
        .and_then(|l| l.strip_suffix(" alarm:NOSPACE \n"))
        .unwrap_or_else(|| panic!("alarm list: {listed:?}"));
    assert!(id.parse::<u64>().is_ok_and(|id| id != 0), "{listed:?}");
    assert_eq!(
        k.http_get("/health"),
        (
            503,
            r#"{"health":"false","reason":"ALARM NOSPACE"}"#.to_string()
        )
    );
    // Reads and deletes still work; writes wait for compaction + defragment + disarm.
    assert!(k.ok(&["get", "k000", "--keys-only"]).starts_with("k000"));
    k.ok(&["del", "k", "--prefix"]);
    let json = k.ok(&["get", "k000", "-w", "json"]);
    let rev = json
        .split("\"revision\":")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    k.ok(&["compaction", &rev]);
    k.ok(&["defrag"]);
    assert!(k
        .fails(&["put", "still", "refused"])
        .contains("database space exceeded"));
    assert_eq!(
        k.ok(&["alarm", "disarm"]),
        listed,
        "disarm prints what it cleared"
    );
    assert_eq!(k.ok(&["alarm", "list"]), "");
    assert_eq!(k.ok(&["put", "after", "ok"]), "OK\n");
    assert_eq!(k.http_get("/health").0, 200);
    k.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn periodic_auto_compaction_keeps_the_retention_window() {
    if !etcdctl_available() {
        eprintln!("skipping: {ETCDCTL} not installed");
        return;
    }
    let dir = temp_dir("autocompact");
    let (port, peer) = (free_port(), free_port());
    let log = dir.with_extension("log");
    let child = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--auto-compaction-mode",
            "periodic",
            "--auto-compaction-retention",
            "2s",
            "--listen-client-urls",
            &format!("http://127.0.0.1:{port}"),
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
            "--listen-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut k = Keel {
        child,
        port,
        peer,
        log,
    };
    k.wait_ready();
    k.ok(&["put", "a", "1"]); // revision 2
    k.ok(&["put", "a", "2"]); // revision 3
    assert_eq!(k.ok(&["get", "a", "--rev=2", "--print-value-only"]), "1\n");
    // Within a few periods the history older than 2 s is compacted away.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = k.ctl(&["get", "a", "--rev=2"]);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(
                err.contains("required revision has been compacted"),
                "{err}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no auto compaction within 10 s");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(k.ok(&["get", "a", "--print-value-only"]), "2\n");
    let log = std::fs::read_to_string(&k.log).unwrap();
    assert!(
        log.contains("auto compaction: compacting at revision"),
        "{log}"
    );
    k.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn raft_log_compaction_then_kill_9_keeps_everything() {
    if !etcdctl_available() {
        eprintln!("skipping: {ETCDCTL} not installed");
        return;
    }
    let dir = temp_dir("snapcount");
    let (port, peer) = (free_port(), free_port());
    let start = |dir: &Path| {
        let log = dir.with_extension(format!("{port}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_keel"))
            .args([
                "--data-dir",
                dir.to_str().unwrap(),
                "--snapshot-count",
                "20",
                "--listen-client-urls",
                &format!("http://127.0.0.1:{port}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut k = Keel {
            child,
            port,
            peer,
            log,
        };
        k.wait_ready();
        k
    };
    let k = start(&dir);
    for i in 0..100 {
        k.ok(&["put", &format!("s{i:03}"), &format!("v{i}")]);
    }
    std::thread::sleep(Duration::from_millis(300)); // a tick or two for the compaction
    let log = std::fs::read_to_string(&k.log).unwrap();
    assert!(log.contains("raft log compacted up to index"), "{log}");
    let before = k.ok(&["get", "s", "--prefix", "-w", "json"]);
    k.kill();

    let k = start(&dir);
    let after = k.ok(&["get", "s", "--prefix", "-w", "json"]);
    let kvs = |s: &str| s.split("\"kvs\":").nth(1).unwrap().to_string();
    assert_eq!(kvs(&before), kvs(&after));
    assert!(after.contains("\"count\":100"));
    assert_eq!(k.ok(&["put", "s100", "x"]), "OK\n");
    assert!(k
        .ok(&["get", "s100", "-w", "json"])
        .contains("\"mod_revision\":102"));
    k.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_watcher_that_stops_reading_still_gets_every_event_in_order() {
    use keel_net::client::{Client, ClientConfig};
    use keel_net::proto::etcdserverpb as pb;
    use prost::Message;
    let dir = temp_dir("slowwatch");
    let k = Keel::start(&dir, free_port(), free_port());
    let mut watcher = Client::connect(&[k.endpoint()], ClientConfig::default()).unwrap();
    let h = watcher
        .open_stream("/etcdserverpb.Watch/Watch", &[], None)
        .unwrap();
    let create = pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
            pb::WatchCreateRequest {
                key: b"w".to_vec(),
                range_end: b"x".to_vec(),
                ..Default::default()
            },
        )),
    };
    watcher.send(h, &create.encode_to_vec()).unwrap();
    let created =
        pb::WatchResponse::decode(&watcher.recv(h, Duration::from_secs(5)).unwrap().unwrap()[..])
            .unwrap();
    assert!(created.created);

    // 2000 puts of 10 KiB (20 MiB of events) while the watcher reads nothing: the member must
    // hold back (bounded memory) and deliver everything once the watcher reads again.
    let mut writer = Client::connect(&[k.endpoint()], ClientConfig::default()).unwrap();
    let value = vec![b'v'; 10 * 1024];
    const N: usize = 2000;
    for i in 0..N {
        let put = pb::PutRequest {
            key: format!("w{i:04}").into_bytes(),
            value: value.clone(),
            ..Default::default()
        };
        writer
            .unary("/etcdserverpb.KV/Put", &put.encode_to_vec())
            .unwrap();
    }
    let mut seen = Vec::with_capacity(N);
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < N {
        assert!(
            Instant::now() < deadline,
            "only {} of {N} events arrived",
            seen.len()
        );
        let msg = watcher
            .recv(h, Duration::from_secs(10))
            .unwrap()
            .expect("stream open");
        let resp = pb::WatchResponse::decode(&msg[..]).unwrap();
        assert!(!resp.canceled, "watch cancelled: {}", resp.cancel_reason);
        for ev in resp.events {
            let kv = ev.kv.unwrap();
            seen.push((String::from_utf8(kv.key).unwrap(), kv.mod_revision));
        }
    }
    for (i, (key, rev)) in seen.iter().enumerate() {
        assert_eq!(key, &format!("w{i:04}"), "event {i} out of order");
        assert_eq!(*rev, i as i64 + 2, "event {i} has the wrong revision");
    }
    k.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn v3lock_service_lock_waits_for_unlock() {
    use keel_net::client::{Client, ClientConfig};
    use keel_net::proto::etcdserverpb as pb;
    use keel_net::proto::v3lockpb;
    use prost::Message;
    let dir = temp_dir("v3lock");
    let k = Keel::start(&dir, free_port(), free_port());
    let mut c = Client::connect(&[k.endpoint()], ClientConfig::default()).unwrap();
    let grant = |c: &mut Client| {
        let r = c
            .unary(
                "/etcdserverpb.Lease/LeaseGrant",
                &pb::LeaseGrantRequest { ttl: 30, id: 0 }.encode_to_vec(),
            )
            .unwrap();
        pb::LeaseGrantResponse::decode(&r[..]).unwrap().id
    };
    let (l1, l2) = (grant(&mut c), grant(&mut c));
    let lock = |c: &mut Client, lease: i64| {
        c.unary(
            "/v3lockpb.Lock/Lock",
            &v3lockpb::LockRequest {
                name: b"L".to_vec(),
                lease,
            }
            .encode_to_vec(),
        )
        .map(|r| v3lockpb::LockResponse::decode(&r[..]).unwrap())
    };
    let first = lock(&mut c, l1).unwrap();
    assert_eq!(first.key, format!("L/{l1:x}").into_bytes());
    // Locking again with the same lease is a no-op that returns at once.
    assert_eq!(lock(&mut c, l1).unwrap().key, first.key);

    let endpoint = k.endpoint();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let mut c2 = Client::connect(&[endpoint], ClientConfig::default()).unwrap();
        let r = lock(&mut c2, l2);
        tx.send(r.map(|r| r.key).map_err(|e| e.to_string()))
            .unwrap();
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(rx.try_recv().is_err(), "the second locker must wait");
    let unlock = v3lockpb::UnlockRequest {
        key: first.key.clone(),
    };
    c.unary("/v3lockpb.Lock/Unlock", &unlock.encode_to_vec())
        .unwrap();
    let second = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("granted after unlock")
        .unwrap();
    assert_eq!(second, format!("L/{l2:x}").into_bytes());
    waiter.join().unwrap();

    // A lease that does not exist: etcd's lease error.
    let err = lock(&mut c, 0x1234).unwrap_err().to_string();
    assert!(
        err.contains("etcdserver: requested lease not found"),
        "{err}"
    );
    k.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn v3election_campaign_proclaim_leader_resign() {
    use keel_net::client::{Client, ClientConfig};
    use keel_net::proto::etcdserverpb as pb;
    use keel_net::proto::v3electionpb as el;
    use prost::Message;
    let dir = temp_dir("v3election");
    let k = Keel::start(&dir, free_port(), free_port());
    let mut c = Client::connect(&[k.endpoint()], ClientConfig::default()).unwrap();
    let grant = |c: &mut Client| {
        let r = c
            .unary(
                "/etcdserverpb.Lease/LeaseGrant",
                &pb::LeaseGrantRequest { ttl: 30, id: 0 }.encode_to_vec(),
            )
            .unwrap();
        pb::LeaseGrantResponse::decode(&r[..]).unwrap().id
    };
    let (l1, l2) = (grant(&mut c), grant(&mut c));
    let campaign = |c: &mut Client, lease: i64, value: &str| {
        let req = el::CampaignRequest {
            name: b"E".to_vec(),
            lease,
            value: value.as_bytes().to_vec(),
        };
        let r = c
            .unary("/v3electionpb.Election/Campaign", &req.encode_to_vec())
            .unwrap();
        el::CampaignResponse::decode(&r[..])
            .unwrap()
            .leader
            .unwrap()
    };
    let leader_value = |c: &mut Client| {
        let r = c
            .unary(
                "/v3electionpb.Election/Leader",
                &el::LeaderRequest {
                    name: b"E".to_vec(),
                }
                .encode_to_vec(),
            )
            .map(|r| {
                el::LeaderResponse::decode(&r[..])
                    .unwrap()
                    .kv
                    .unwrap()
                    .value
            });
        r.map(|v| String::from_utf8(v).unwrap())
            .map_err(|e| e.to_string())
    };
    assert!(leader_value(&mut c)
        .unwrap_err()
        .contains("election: no leader"));
    let a = campaign(&mut c, l1, "a");
    assert_eq!(a.key, format!("E/{l1:x}").into_bytes());
    assert_eq!(leader_value(&mut c).unwrap(), "a");

    let endpoint = k.endpoint();
    let (tx, rx) = std::sync::mpsc::channel();
    let second = std::thread::spawn(move || {
        let mut c2 = Client::connect(&[endpoint], ClientConfig::default()).unwrap();
        tx.send(campaign(&mut c2, l2, "b")).unwrap();
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(rx.try_recv().is_err(), "the second candidate waits");

    let proclaim = |c: &mut Client, leader: &el::LeaderKey, value: &str| {
        let req = el::ProclaimRequest {
            leader: Some(leader.clone()),
            value: value.as_bytes().to_vec(),
        };
        c.unary("/v3electionpb.Election/Proclaim", &req.encode_to_vec())
            .map_err(|e| e.to_string())
    };
    proclaim(&mut c, &a, "a2").unwrap();
    assert_eq!(leader_value(&mut c).unwrap(), "a2");
    let stale = el::LeaderKey {
        rev: a.rev + 1000,
        ..a.clone()
    };
    assert!(proclaim(&mut c, &stale, "x")
        .unwrap_err()
        .contains("election: not leader"));

    let resign = el::ResignRequest {
        leader: Some(a.clone()),
    };
    c.unary("/v3electionpb.Election/Resign", &resign.encode_to_vec())
        .unwrap();
    let b = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("elected after resign");
    assert_eq!(b.key, format!("E/{l2:x}").into_bytes());
    assert_eq!(leader_value(&mut c).unwrap(), "b");
    second.join().unwrap();
    k.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn v3election_observe_streams_leader_changes() {
    use keel_net::client::{Client, ClientConfig};
    use keel_net::proto::etcdserverpb as pb;
    use keel_net::proto::v3electionpb as el;
    use prost::Message;
    let dir = temp_dir("observe");
    let k = Keel::start(&dir, free_port(), free_port());
    let mut c = Client::connect(&[k.endpoint()], ClientConfig::default()).unwrap();
    let mut obs = Client::connect(&[k.endpoint()], ClientConfig::default()).unwrap();
    let h = obs
        .open_stream("/v3electionpb.Election/Observe", &[], None)
        .unwrap();
    obs.send(
        h,
        &el::LeaderRequest {
            name: b"O".to_vec(),
        }
        .encode_to_vec(),
    )
    .unwrap();
    obs.close_send(h).unwrap();
    let mut next = || {
        let m = obs
            .recv(h, Duration::from_secs(5))
            .unwrap()
            .expect("stream open");
        String::from_utf8(
            el::LeaderResponse::decode(&m[..])
                .unwrap()
                .kv
                .unwrap()
                .value,
        )
        .unwrap()
    };
    let r = c
        .unary(
            "/etcdserverpb.Lease/LeaseGrant",
            &pb::LeaseGrantRequest { ttl: 30, id: 0 }.encode_to_vec(),
        )
        .unwrap();
    let lease = pb::LeaseGrantResponse::decode(&r[..]).unwrap().id;
    let req = el::CampaignRequest {
        name: b"O".to_vec(),
        lease,
        value: b"first".to_vec(),
    };
    let r = c
        .unary("/v3electionpb.Election/Campaign", &req.encode_to_vec())
        .unwrap();
    let leader = el::CampaignResponse::decode(&r[..])
        .unwrap()
        .leader
        .unwrap();
    assert_eq!(next(), "first");
    let p = el::ProclaimRequest {
        leader: Some(leader),
        value: b"second".to_vec(),
    };
    c.unary("/v3electionpb.Election/Proclaim", &p.encode_to_vec())
        .unwrap();
    assert_eq!(next(), "second");
    k.kill();
    let _ = std::fs::remove_dir_all(&dir);
}
