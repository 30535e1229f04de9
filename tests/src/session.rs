//! The scripted etcdctl session of the compatibility tests.
//!
//! [`run_session`] drives a running cluster (keel or etcd) through the same etcdctl commands and
//! returns a normalised transcript: for every step the command, whether it succeeded, its stdout
//! and its stderr (see [`crate::normalize`]). Two transcripts, one from keel and one from a real
//! etcd, must be equal line for line. A few outputs carry values that differ by design (server
//! version, database size, raft index); those steps check the shape of each field and keep only
//! what must agree in the transcript.

use crate::cluster::Cluster;
use crate::etcdctl::{CtlOutput, Etcdctl};
use crate::normalize::Normalizer;
use std::fmt::Write as _;
use std::time::Duration;

struct Transcript {
    ctl: Etcdctl,
    norm: Normalizer,
    text: String,
}

impl Transcript {
    /// An empty transcript of `ctl` against `cluster`, normalising the cluster's ports, temp dir
    /// and its members' and cluster's IDs (asked of each member).
    fn new(cluster: &Cluster, ctl: Etcdctl) -> Transcript {
        let members: Vec<(u16, u16, String)> = cluster
            .members
            .iter()
            .map(|m| (m.client_port, m.peer_port, m.name.clone()))
            .collect();
        let mut t = Transcript {
            ctl,
            norm: Normalizer::new(&members, &cluster.dir().display().to_string()),
            text: String::new(),
        };
        for m in &cluster.members {
            let s = crate::grpc::status(&m.endpoint())
                .unwrap_or_else(|e| panic!("status of {}: {e}", m.name));
            let h = s.header.unwrap_or_default();
            t.norm.name_id(h.member_id, &format!("<member:{}>", m.name));
            t.norm.name_id(h.cluster_id, "<cluster>");
        }
        t
    }

    fn record(&mut self, args: &[&str], o: &CtlOutput) {
        let _ = writeln!(self.text, "$ etcdctl {}", self.norm.apply(&args.join(" ")));
        let _ = writeln!(self.text, "[{}]", if o.success { "ok" } else { "failed" });
        let out = self.norm.apply(&o.stdout);
        self.text.push_str(&out);
        if !out.ends_with('\n') && !out.is_empty() {
            self.text.push('\n');
        }
        let err = self.norm.apply_stderr(&o.stderr);
        if !err.is_empty() {
            let _ = writeln!(self.text, "[stderr] {}", err.trim_end());
        }
    }

    fn step(&mut self, args: &[&str]) -> CtlOutput {
        let o = self.ctl.run(args);
        self.record(args, &o);
        o
    }

    fn step_stdin(&mut self, args: &[&str], stdin: &str) -> CtlOutput {
        let o = self.ctl.run_stdin(args, Some(stdin));
        self.record(args, &o);
        o
    }

    /// A step whose output lines come in no defined order (one line per endpoint): sorted.
    /// stdout and stderr are merged (etcdctl prints some per-endpoint lines to either), client
    /// log lines dropped, and the normalised lines sorted.
    fn step_sorted(&mut self, args: &[&str]) -> CtlOutput {
        let o = self.ctl.run(args);
        let merged = format!("{}\n{}", o.stdout, o.stderr);
        let mut lines: Vec<String> = merged
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("{\"level\":"))
            .map(|l| sort_json_array(&self.norm.apply(l)))
            .collect();
        lines.sort();
        let _ = writeln!(self.text, "$ etcdctl {}", self.norm.apply(&args.join(" ")));
        let _ = writeln!(self.text, "[{}]", if o.success { "ok" } else { "failed" });
        for l in lines {
            let _ = writeln!(self.text, "{l}");
        }
        o
    }
}

/// A one-line JSON array of objects (`[{..},{..}]`, e.g. `endpoint health -w json`) lists the
/// endpoints in the order they answered: its elements are sorted. Other lines are unchanged.
fn sort_json_array(line: &str) -> String {
    match line.strip_prefix("[{").and_then(|l| l.strip_suffix("}]")) {
        Some(inner) => {
            let mut items: Vec<&str> = inner.split("},{").collect();
            items.sort();
            format!("[{{{}}}]", items.join("},{"))
        }
        None => line.to_string(),
    }
}

/// The `n`-th comma-separated field of a line, trimmed.
fn field(line: &str, n: usize) -> String {
    line.split(',').nth(n).unwrap_or("").trim().to_string()
}

/// The first integer after `"<name>":` in JSON output.
fn json_int(json: &str, name: &str) -> i64 {
    let pat = format!("\"{name}\":");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("no {name} in {json}"));
    json[at + pat.len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("bad {name} in {json}"))
}

/// Runs the session against `cluster` (all its members as endpoints) and returns the
/// normalised transcript. Panics only on harness failures (e.g. a lease ID that cannot be
/// parsed); differences in behaviour show up in the transcript.
pub fn run_session(cluster: &mut Cluster) -> String {
    run_session_with(cluster, Etcdctl::new(Vec::new()))
}

/// [`run_session`] driven by the etcdctl executable of `ctl` (e.g. [`Etcdctl::v35`]); its
/// endpoints are ignored (the cluster's are used).
pub fn run_session_with(cluster: &mut Cluster, ctl: Etcdctl) -> String {
    let all: Vec<usize> = (0..cluster.members.len()).collect();
    let endpoints = cluster.endpoints_of(&all);
    let dir = cluster.dir().to_path_buf();
    // Ordinary steps talk to the first member only, so that the member ID in response headers
    // is always the same one (with three members that one may be a follower: its writes are
    // forwarded to the leader). Cluster-wide steps (member list, endpoint *) use all members.
    let one = Etcdctl {
        endpoints: vec![endpoints[0].clone()],
        ..ctl
    };
    let mut t = Transcript::new(cluster, one.clone());

    // --- KV: put, get with ranges / limits / sorting / revisions, del.
    for (k, v) in [
        ("foo", "bar"),
        ("foo2", "bar2"),
        ("foo3", "bar3"),
        ("a", "1"),
        ("b", "2"),
        ("c", "3"),
    ] {
        t.step(&["put", k, v]);
    }
    t.step(&["put", "foo", "bar-new", "--prev-kv"]);
    t.step(&["put", "", "x"]); // error: empty key
    t.step(&["get", "foo"]);
    t.step(&["get", "nope"]);
    t.step(&["get", "foo", "--prefix"]);
    t.step(&["get", "foo", "--prefix", "--limit=2"]);
    t.step(&["get", "a", "c"]);
    t.step(&["get", "--from-key", "b"]);
    t.step(&["get", "--from-key", "", "--keys-only"]);
    t.step(&[
        "get",
        "foo",
        "--prefix",
        "--sort-by=MODIFY",
        "--order=DESCEND",
    ]);
    t.step(&[
        "get",
        "foo",
        "--prefix",
        "--sort-by=VALUE",
        "--order=ASCEND",
        "--keys-only",
    ]);
    t.step(&[
        "get",
        "foo",
        "--prefix",
        "--print-value-only",
        "--order=DESCEND",
    ]);
    t.step(&["get", "foo", "--rev=1"]);
    t.step(&["get", "foo", "--rev=2"]);
    t.step(&["get", "foo", "--prefix", "--rev=3"]);
    t.step(&["get", "foo", "-w", "json"]);
    t.step(&["get", "a", "--consistency=s", "-w", "json"]);
    t.step(&["get", "foo", "--prefix", "--keys-only", "-w", "json"]);
    t.step(&["get", "foo", "--rev=99"]); // error: future revision
                                         // Other output formats of the same reads.
    t.step(&["get", "foo", "--prefix", "-w", "fields"]);
    t.step(&["get", "foo", "--prefix", "--limit=1", "-w", "json"]);
    t.step(&["get", "a", "c", "-w", "table"]);
    t.step(&["put", "foo3", "bar3", "-w", "json"]);
    t.step(&["del", "b"]);
    t.step(&["del", "nothing"]);
    t.step(&["del", "foo", "--prefix", "--prev-kv"]);
    t.step(&["get", "", "--from-key"]);

    // --- txn: success branch, failure branch, duplicate key error.
    t.step_stdin(
        &["txn"],
        "value(\"a\") = \"1\"\n\nput a 11\nget c\n\nput x y\n\n",
    );
    t.step_stdin(
        &["txn"],
        "mod(\"a\") > \"100\"\nversion(\"c\") = \"1\"\n\nput a 12\n\nget a\nput z zz\n\n",
    );
    t.step_stdin(&["txn"], "\n\nput d 1\nput d 2\n\n\n");
    // --max-txn-ops (default 128): 129 operations are refused, 128 are fine.
    let ops = |n: usize| -> String {
        let puts: String = (0..n).map(|i| format!("put t{i:03} v\n")).collect();
        format!("\n{puts}\n\n")
    };
    t.step_stdin(&["txn"], &ops(129));
    t.step_stdin(&["txn", "-w", "json"], &ops(128));
    t.step(&["del", "t", "--prefix"]);
    t.step_stdin(&["txn", "-w", "json"], "\n\nget c\n\n\n");
    t.step(&["get", "", "--from-key"]);

    // --- compaction.
    let rev_json = t.step(&["get", "a", "-w", "json"]).stdout;
    let rev = json_int(&rev_json, "revision");
    t.step(&["compaction", &(rev - 2).to_string()]);
    t.step(&["get", "a", "--rev=2"]); // compacted
    t.step(&["get", "a", &format!("--rev={}", rev - 2)]);
    t.step(&["compaction", "1"]); // already compacted

    // --- watch from a revision: history then a live event.
    t.step(&["put", "w1", "one"]);
    t.step(&["put", "w2", "two"]);
    t.step(&["del", "w1"]);
    let w1 = t.step(&["get", "w2", "-w", "json"]).stdout;
    let from = json_int(&w1, "mod_revision") - 1;
    let ctl = t.ctl.clone();
    let args_owned = [
        "watch".to_string(),
        format!("--rev={from}"),
        "--prefix".into(),
        "w".into(),
        "--prev-kv".into(),
    ];
    let args: Vec<&str> = args_owned.iter().map(String::as_str).collect();
    let o = t.ctl.run_until(
        &args,
        Duration::from_secs(15),
        || {
            std::thread::sleep(Duration::from_millis(300));
            ctl.ok(&["put", "wz", "end"]);
        },
        |out| out.contains("wz\nend"),
    );
    t.record(&args, &o);

    // A watch from a compacted revision is cancelled by the server; etcdctl says so and exits.
    let args = ["watch", "--rev=2", "a"];
    let o = t
        .ctl
        .run_until(&args, Duration::from_secs(5), || {}, |_| false);
    t.record(&args, &o);

    // --- leases.
    let grant = t.step(&["lease", "grant", "60"]).stdout;
    let lease = grant
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no lease id in {grant:?}"))
        .to_string();
    t.step(&["put", "lk", "lv", &format!("--lease={lease}")]);
    t.step(&["lease", "keep-alive", "--once", &lease]);
    t.step(&["lease", "keep-alive", "--once", &lease, "-w", "json"]);
    t.step(&["lease", "timetolive", &lease, "--keys"]);
    t.step(&["lease", "list"]);
    t.step(&["lease", "revoke", &lease]);
    t.step(&["get", "lk"]);
    t.step(&["lease", "timetolive", &lease]);
    t.step(&["lease", "revoke", &lease]); // not found
    t.step(&["put", "lk", "lv", &format!("--lease={lease}")]); // not found

    // --- lock (with a command: it runs while the lock is held) and elect.
    t.step(&[
        "lock",
        "mylock",
        "--",
        "/bin/sh",
        "-c",
        "echo held $ETCD_LOCK_KEY rev $ETCD_LOCK_REV",
    ]);
    t.step(&["get", "mylock", "--prefix"]); // released afterwards
    let o = t.ctl.run_until(
        &["elect", "myelection", "p1"],
        Duration::from_secs(15),
        || {},
        |out| out.lines().count() >= 2,
    );
    t.record(&["elect", "myelection", "p1"], &o);
    let o = t.ctl.run_until(
        &["elect", "-l", "myelection"],
        Duration::from_secs(15),
        || {},
        |out| out.lines().count() >= 2,
    );
    t.record(&["elect", "-l", "myelection"], &o);

    // --- odds and ends: rarely used flags and their errors.
    t.step(&["put", "ig", "v1"]);
    t.step(&["put", "ig", "--ignore-value"]);
    t.step(&["get", "ig"]);
    t.step(&["put", "ig", "v2", "--ignore-lease"]); // key has no lease: etcd refuses
    t.step(&["put", "nokey-ignore", "--ignore-value"]); // key not found
    t.step(&[
        "get",
        "",
        "--prefix",
        "--keys-only",
        "--limit=3",
        "--sort-by=CREATE",
        "--order=DESCEND",
    ]);
    t.step(&["get", "--from-key", "c", "--rev=0", "-w", "fields"]);
    t.step(&["del", "--from-key", "x"]);
    t.step_stdin(
        &["txn"],
        "create(\"c\") > \"0\"\nmod(\"c\") < \"100\"\n\nget c\n\n\n",
    );
    t.step_stdin(&["txn"], "value(\"a\") != \"11\"\n\n\nput e 5\ndel a\n\n");
    t.step(&["lease", "timetolive", "1234abcd"]);
    t.step(&["lease", "keep-alive", "--once", "1234abcd"]);
    t.step(&["compaction", "--physical", &(rev - 1).to_string()]);
    t.step(&["alarm", "list"]);
    t.step(&["alarm", "disarm"]);

    // --- cluster and maintenance.
    let mut all_ctl = t.ctl.clone();
    all_ctl.endpoints = endpoints.clone();
    std::mem::swap(&mut t.ctl, &mut all_ctl);
    t.step_sorted(&["member", "list"]);
    t.step_sorted(&["endpoint", "health"]);
    t.step_sorted(&["member", "list", "-w", "table"]);
    t.step_sorted(&["endpoint", "health", "-w", "json"]);
    endpoint_status(&mut t, cluster.members.len());
    // The hash values are not compared with etcd's here: with a lease-attached key in the
    // history keel's HashKV still differs (pending/keel_hashkv_lease_matches_etcd.rs);
    // tests/hashkv_matches_etcd.rs compares the values for plain keys.
    let mut o = t.ctl.run(&["endpoint", "hashkv"]);
    let mut lines: Vec<String> = o
        .stdout
        .lines()
        .map(|l| {
            let line = format!(
                "{}, u32 hash {}",
                field(l, 0),
                field(l, 1).parse::<u32>().is_ok()
            );
            t.norm.apply(&line)
        })
        .collect();
    lines.sort();
    o.stdout = lines.join("\n");
    t.record(&["endpoint", "hashkv"], &o);
    t.step_sorted(&["defrag"]);
    let snap = dir.join("snap.db");
    let snap_arg = snap.display().to_string();
    let o = one.run(&["snapshot", "save", &snap_arg]);
    t.record(&["snapshot", "save", &snap_arg], &o);
    let size = std::fs::metadata(&snap).map(|m| m.len()).unwrap_or(0);
    let _ = writeln!(t.text, "snapshot file non-empty: {}", size > 0);
    t.text
}

/// `endpoint status`: one line per endpoint, `endpoint, ID, version, db size, is leader,
/// is learner, raft term, raft index, raft applied index, errors`. Version, size and the raft
/// figures differ between implementations; their shape is checked and a summary recorded.
fn endpoint_status(t: &mut Transcript, n: usize) {
    let o = t.ctl.run(&["endpoint", "status"]);
    let mut lines: Vec<String> = Vec::new();
    let mut leaders = 0;
    for l in o.stdout.lines() {
        let f: Vec<String> = (0..10).map(|i| field(l, i)).collect();
        let version_ok =
            f[2].split('.').count() == 3 && f[2].split('.').all(|p| p.parse::<u32>().is_ok());
        let size_ok = f[3].ends_with(" kB") || f[3].ends_with(" MB") || f[3].ends_with(" B");
        let term: u64 = f[6].parse().unwrap_or(0);
        let index: u64 = f[7].parse().unwrap_or(0);
        let applied: u64 = f[8].parse().unwrap_or(u64::MAX);
        if f[4] == "true" {
            leaders += 1;
        }
        let line = format!(
            "{}, {}, version ok {version_ok}, size ok {size_ok}, learner {}, term>0 {}, \
             applied<=index {}, index>0 {}, errors [{}]",
            f[0],
            f[1],
            f[5],
            term > 0,
            applied <= index,
            index > 0,
            f[9]
        );
        lines.push(t.norm.apply(&line));
    }
    lines.sort();
    let summary = CtlOutput {
        success: o.success,
        stdout: format!("{}\nleaders: {leaders} of {n}\n", lines.join("\n")),
        stderr: o.stderr,
    };
    t.record(&["endpoint", "status"], &summary);
}

/// A shorter session across a crash: writes, a compaction, a lease with a key, then SIGKILL
/// and restart of member 0, then reads of everything that must have survived (revisions,
/// compaction boundary, lease and its key, watch history) and a write continuing the revision
/// sequence. Returns the normalised transcript.
pub fn run_restart_session(cluster: &mut Cluster) -> String {
    let endpoints = cluster.endpoints_of(&[0]);
    let mut t = Transcript::new(cluster, Etcdctl::new(endpoints));

    for (k, v) in [("a", "1"), ("b", "2"), ("a", "3"), ("c", "4"), ("a", "5")] {
        t.step(&["put", k, v]);
    }
    t.step(&["del", "b"]);
    t.step(&["compaction", "3"]);
    let grant = t.step(&["lease", "grant", "600"]).stdout;
    let lease = grant.split_whitespace().nth(1).unwrap_or("0").to_string();
    t.step(&["put", "lk", "lv", &format!("--lease={lease}")]);
    t.step_stdin(&["txn"], "value(\"a\") = \"5\"\n\nput a 6\n\n\n");

    cluster.kill(0);
    cluster.restart(0);
    let _ = writeln!(t.text, "--- kill -9 and restart ---");

    t.step(&["get", "", "--from-key", "-w", "json"]);
    t.step(&["get", "a", "--rev=2"]);
    t.step(&["get", "a", "--rev=3"]);
    t.step(&["get", "a", "--rev=4"]);
    t.step(&["compaction", "3"]);
    t.step(&["lease", "list"]);
    t.step(&["lease", "timetolive", &lease, "--keys"]);
    let args = ["watch", "--rev=3", "--prefix", "a"];
    let o = t.ctl.run_until(
        &args,
        Duration::from_secs(10),
        || {},
        |out| out.contains("a\n6\n"),
    );
    t.record(&args, &o);
    t.step(&["put", "d", "7", "-w", "json"]);
    t.step(&["lease", "revoke", &lease]);
    t.step(&["get", "", "--from-key"]);
    t.text
}

/// Panics with a readable report of the first differing lines unless `keel` equals `etcd`.
pub fn assert_same_transcript(keel: &str, etcd: &str) {
    if keel == etcd {
        return;
    }
    let k: Vec<&str> = keel.lines().collect();
    let e: Vec<&str> = etcd.lines().collect();
    let mut report = String::new();
    let mut shown = 0;
    for i in 0..k.len().max(e.len()) {
        let (a, b) = (k.get(i).copied(), e.get(i).copied());
        if a != b && shown < 15 {
            report.push_str(&format!("line {}:\n  keel: {a:?}\n  etcd: {b:?}\n", i + 1));
            shown += 1;
        }
    }
    panic!("keel's transcript differs from etcd's:\n{report}\n=== keel ===\n{keel}\n=== etcd ===\n{etcd}");
}

/// A transcript of etcdctl steps against one cluster, for tests outside this module: every
/// step's command, exit, normalised stdout and stderr (see [`crate::normalize`]).
pub struct Steps {
    t: Transcript,
}

impl Steps {
    /// Steps run by `ctl`'s executable against member `i` of `cluster`; the members' IDs and
    /// ports are normalised.
    pub fn new(cluster: &Cluster, ctl: &Etcdctl, i: usize) -> Steps {
        let ctl = Etcdctl {
            endpoints: cluster.endpoints_of(&[i]),
            ..ctl.clone()
        };
        Steps {
            t: Transcript::new(cluster, ctl),
        }
    }

    /// Runs `etcdctl <args>` and records it.
    pub fn step(&mut self, args: &[&str]) -> CtlOutput {
        self.t.step(args)
    }

    /// Runs `etcdctl <args>` with `stdin` and records it.
    pub fn step_stdin(&mut self, args: &[&str], stdin: &str) -> CtlOutput {
        self.t.step_stdin(args, stdin)
    }

    /// Runs `etcdctl <args>`, lets `shape` reduce its output to what must agree, records that.
    pub fn step_shaped(&mut self, args: &[&str], shape: impl Fn(CtlOutput) -> CtlOutput) {
        let o = shape(self.t.ctl.run(args));
        self.t.record(args, &o);
    }

    /// Records an already obtained output under `args`.
    pub fn record(&mut self, args: &[&str], o: &CtlOutput) {
        self.t.record(args, o);
    }

    /// Appends a free-form line.
    pub fn note(&mut self, line: &str) {
        let _ = writeln!(self.t.text, "{line}");
    }

    /// The etcdctl the steps run.
    pub fn ctl(&self) -> &Etcdctl {
        &self.t.ctl
    }

    /// The transcript so far.
    pub fn text(&self) -> &str {
        &self.t.text
    }
}

/// The names of the JSON object members in `json` (`"name":`), in order, without duplicates:
/// the shape of a response whose values legitimately differ.
pub fn json_field_names(json: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut rest = json;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        let name = &after[..end];
        rest = &after[end + 1..];
        if rest.starts_with(':') && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}
