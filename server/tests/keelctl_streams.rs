//! keelctl vs etcdctl on the long-running commands: `watch` (bounded: read N lines, then kill),
//! `lock` and `elect`.

mod keelctl_support;
use keelctl_support::*;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(10);

/// Waits until some key under `prefix` exists on `server` (a lock holder or candidate is in
/// place).
fn wait_for_key(server: &Server, prefix: &str) {
    let start = std::time::Instant::now();
    while start.elapsed() < LIMIT {
        let o = run(
            Tool::Etcdctl,
            server,
            &["get", prefix, "--prefix", "--keys-only"],
            None,
        );
        if !o.stdout.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no key under {prefix} after {LIMIT:?}");
}

/// Runs a long-running command with both tools, each against its own server, reading `n`
/// lines; returns the normalized lines (etcdctl's, keelctl's).
fn lines_both(p: &Pair, args: &[&str], n: usize) -> (Vec<String>, Vec<String>) {
    let e = run_lines(Tool::Etcdctl, &p.etcd_side, args, n, LIMIT);
    let k = run_lines(Tool::Keelctl, &p.keel_side, args, n, LIMIT);
    let norm = |v: Vec<String>, s: &Server| -> Vec<String> {
        v.iter().map(|l| normalize_text(l, s)).collect()
    };
    (norm(e, &p.etcd_side), norm(k, &p.keel_side))
}

#[test]
fn watch_with_rev_replays_history_like_etcdctl() {
    if !available() {
        return;
    }
    let p = Pair::start();
    p.same(&["put", "w1", "a"]);
    p.same(&["put", "w1", "b"]);
    p.same(&["put", "w2", "c"]);
    p.same(&["del", "w1"]);
    p.same(&["put", "x", "not watched"]);
    // PUT w1 a | PUT (prev) w1 a w1 b | DELETE (prev) w1 b w1 "" = 3 + 5 + 5 lines.
    let (e, k) = lines_both(&p, &["watch", "w1", "--rev=1", "--prev-kv"], 13);
    assert_eq!(e.len(), 13, "etcdctl printed {e:?}");
    assert_eq!(k, e);
    let (e, k) = lines_both(&p, &["watch", "w", "--prefix", "--rev=2"], 12);
    assert_eq!(e.len(), 12, "etcdctl printed {e:?}");
    assert_eq!(k, e);
    let (e, k) = lines_both(&p, &["watch", "w", "--prefix", "--rev=2", "-w", "json"], 1);
    assert_eq!(e.len(), 1, "etcdctl printed {e:?}");
    assert_eq!(k, e);
    let (e, k) = lines_both(
        &p,
        &["watch", "w1", "--rev=2", "--prev-kv", "-w", "fields"],
        17,
    );
    assert_eq!(e.len(), 17, "etcdctl printed {e:?}");
    assert_eq!(k, e);
    let (e, k) = lines_both(&p, &["watch", "w1", "w3", "--rev=3", "--hex"], 4);
    assert_eq!(k, e);
    // A watch from a compacted revision is canceled: same message, same exit code (5).
    p.same(&["compaction", "4"]);
    p.same(&["watch", "w1", "--rev=2"]);
}

#[test]
fn watch_sees_live_events() {
    if !available() {
        return;
    }
    let s = Server::start();
    let ep = s.endpoint();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        for v in ["1", "2"] {
            let o = std::process::Command::new(ETCDCTL)
                .env("ETCDCTL_API", "3")
                .args([&format!("--endpoints={ep}"), "put", "live", v])
                .output()
                .unwrap();
            assert!(o.status.success());
        }
    });
    let k = run_lines(Tool::Keelctl, &s, &["watch", "live"], 6, LIMIT);
    writer.join().unwrap();
    assert_eq!(k, vec!["PUT", "live", "1", "PUT", "live", "2"]);
}

#[test]
fn lock_prints_key_or_runs_command_like_etcdctl() {
    if !available() {
        return;
    }
    let p = Pair::start();
    p.same(&["lock", "mylock", "echo", "hi"]);
    p.same(&["lock", "mylock", "--", "sh", "-c", "echo out; exit 3"]);
    // Without a command: the held key (name/lease) and its empty value.
    let (e, k) = lines_both(&p, &["lock", "mylock"], 2);
    assert_eq!(
        e,
        vec!["mylock/IDIDIDIDIDIDIDID".to_string(), String::new()]
    );
    assert_eq!(k, e);
    // While keelctl holds the lock, a second locker waits.
    let _holder = Background::start(
        Tool::Keelctl,
        &p.keel_side,
        &["lock", "busy", "sleep", "30"],
    );
    wait_for_key(&p.keel_side, "busy/");
    let waiting = run_lines(
        Tool::Keelctl,
        &p.keel_side,
        &["lock", "busy"],
        1,
        Duration::from_secs(2),
    );
    assert!(
        waiting.is_empty(),
        "got the lock while another holder had it: {waiting:?}"
    );
    // The held key is visible to etcdctl with the lock's lease attached.
    let o = run(
        Tool::Etcdctl,
        &p.keel_side,
        &["get", "busy/", "--prefix", "--keys-only"],
        None,
    );
    assert!(o.stdout.starts_with("busy/"), "{o:?}");
}

#[test]
fn elect_campaigns_and_observes_like_etcdctl() {
    if !available() {
        return;
    }
    let p = Pair::start();
    let (e, k) = lines_both(&p, &["elect", "myel", "prop1"], 2);
    assert_eq!(
        e,
        vec!["myel/IDIDIDIDIDIDIDID".to_string(), "prop1".to_string()]
    );
    assert_eq!(k, e);
    // With a leader in place (each side's own tool campaigning), an observer prints it.
    let _le = Background::start(Tool::Etcdctl, &p.etcd_side, &["elect", "obs", "leader-e"]);
    let _lk = Background::start(Tool::Keelctl, &p.keel_side, &["elect", "obs", "leader-e"]);
    wait_for_key(&p.etcd_side, "obs/");
    wait_for_key(&p.keel_side, "obs/");
    let (e, k) = lines_both(&p, &["elect", "-l", "obs"], 2);
    assert_eq!(
        e,
        vec!["obs/IDIDIDIDIDIDIDID".to_string(), "leader-e".to_string()]
    );
    assert_eq!(k, e);
    p.same(&["elect", "obs"]);
}
