//! Alarms are cluster state: a NOSPACE alarm raised by one member of a 3-member cluster (its
//! backend reached `--quota-backend-bytes`) is replicated through Raft, listed by every member,
//! makes every member refuse writes with "etcdserver: mvcc: database space exceeded", survives a
//! restart, and `alarm disarm` (after compaction + defragment on every member) clears it
//! everywhere. A member whose backend crosses its own quota while applying writes that other
//! members received raises NOSPACE for itself. Run on a real etcd as the reference, and on keel.

use keel_tests::{grpc, Cluster, ClusterOptions, Etcdctl, Flavor};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// A quota small enough to fill quickly with [`VALUE_BYTES`]-byte values.
const QUOTA_BYTES: usize = 200_000;
const VALUE_BYTES: usize = 2_000;
const NO_SPACE: &str = "Error: etcdserver: mvcc: database space exceeded";

fn options() -> ClusterOptions {
    ClusterOptions {
        extra_args: vec![format!("--quota-backend-bytes={QUOTA_BYTES}")],
        ..ClusterOptions::default()
    }
}

/// etcdctl talking to member `i` only.
fn ctl(c: &Cluster, i: usize) -> Etcdctl {
    Etcdctl::new(vec![c.members[i].endpoint()])
}

/// The error lines etcdctl printed (its JSON log lines, e.g. retries, left out).
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| !l.starts_with("{\"level\"") && !l.is_empty())
        .collect()
}

/// `etcdctl put` on member `i` must fail with exactly the NOSPACE error.
fn assert_put_refused(c: &Cluster, i: usize, key: &str) {
    let o = ctl(c, i).run(&["put", key, "v"]);
    assert!(!o.success, "put on {} succeeded: {o:?}", c.members[i].name);
    assert_eq!(error_lines(&o.stderr), [NO_SPACE], "stderr: {}", o.stderr);
}

/// `etcdctl alarm list` on member `i`, as a set of lines (etcd lists alarms in map order).
fn alarm_list(c: &Cluster, i: usize) -> BTreeSet<String> {
    ctl(c, i)
        .ok(&["alarm", "list"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// How etcdctl prints one alarm (`%+v` of the protobuf message: note the trailing space).
fn nospace_line(member_id: u64) -> String {
    format!("memberID:{member_id} alarm:NOSPACE ")
}

/// Waits until every member lists the same non-empty set of NOSPACE alarms, all raised by
/// members of the cluster (`allowed`: their lines), and returns it.
fn wait_same_alarms(c: &Cluster, allowed: &BTreeSet<String>) -> BTreeSet<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lists: Vec<BTreeSet<String>> = (0..3).map(|i| alarm_list(c, i)).collect();
        for (i, l) in lists.iter().enumerate() {
            assert!(l.is_subset(allowed), "m{} lists {l:?}", i + 1);
        }
        if !lists[0].is_empty() && lists.iter().all(|l| *l == lists[0]) {
            return lists[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "members do not agree on the alarms: {lists:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until member `i` answers a serializable get (it may be unhealthy: alarms).
fn wait_serving(c: &Cluster, i: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = ctl(c, i).run(&["get", "any", "--consistency=s"]);
        if o.success {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} does not serve after restart: {o:?}",
            c.members[i].name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Puts values through member 0 until one is refused with "database space exceeded" (any
/// other error fails the test); the number of the refused put, None if 4× the quota fit.
fn fill_until_refused(c: &Cluster) -> Option<usize> {
    let value = "x".repeat(VALUE_BYTES);
    for n in 0..(4 * QUOTA_BYTES / VALUE_BYTES) {
        let o = ctl(c, 0).run(&["put", &format!("k{n:04}"), &value]);
        if !o.success {
            assert_eq!(error_lines(&o.stderr), [NO_SPACE], "stderr: {}", o.stderr);
            return Some(n);
        }
    }
    None
}

fn nospace_is_replicated(flavor: Flavor) {
    let mut c = Cluster::start(flavor, 3, options());
    let ids: Vec<u64> = (0..3).map(|i| c.member_id(i)).collect();
    let allowed: BTreeSet<String> = ids.iter().map(|&id| nospace_line(id)).collect();

    // Fill member 0 until its quota check refuses a put (and raises NOSPACE for it).
    let refused_at = fill_until_refused(&c);
    let refused_at = refused_at.expect("a 200 kB quota must stop 800 kB of puts");
    assert!(refused_at > 10, "refused too early, at put {refused_at}");

    // Every member lists the same NOSPACE alarms. Which members raised one depends on their
    // own backends: in etcd, the member that answered the put raises NOSPACE when its quota
    // check fails, and every member whose backend crosses the quota while applying a put raises
    // one for itself (`quotaApplierV3`) unless a NOSPACE alarm is already raised.
    let raised = wait_same_alarms(&c, &allowed);
    for i in 0..3 {
        let st = grpc::status(&c.members[i].endpoint()).expect("status");
        let errors: BTreeSet<String> = st.errors.iter().cloned().collect();
        assert!(
            !errors.is_empty() && errors.is_subset(&allowed),
            "Status errors of m{}: {errors:?} (alarms {raised:?})",
            i + 1
        );
    }

    // Other members refuse writes too. Reads still work.
    assert_put_refused(&c, 1, "other");
    assert_put_refused(&c, 2, "third");
    let raised = wait_same_alarms(&c, &allowed);
    eprintln!("{flavor:?}: refused at put {refused_at}; alarms {raised:?}");
    assert_eq!(ctl(&c, 1).ok(&["get", "k0000", "--keys-only"]), "k0000\n\n");
    // A read-only txn costs 0 bytes in the quota check and the capped applier applies
    // read-only txns: every member serves it, even one whose backend is over the quota (etcd
    // 3.4 does; checked against it by `etcd_replicates_nospace`).
    let mut sizes = Vec::new();
    for i in 0..3 {
        let db_size = grpc::status(&c.members[i].endpoint())
            .expect("status")
            .db_size;
        sizes.push(db_size);
        let o = ctl(&c, i).run_stdin(&["txn"], Some("\nget k0000\n\n\n"));
        assert!(o.success, "m{} (db {db_size}) refused: {o:?}", i + 1);
        assert!(o.stdout.starts_with("SUCCESS\n\nk0000\nxx"), "{}", o.stdout);
    }
    eprintln!("{flavor:?}: read-only txns served with db sizes {sizes:?} (quota {QUOTA_BYTES})");

    // Free the space: delete, compact, defragment every member; writes stay refused until
    // the alarms are disarmed.
    ctl(&c, 0).ok(&["del", "k", "--prefix"]);
    let rev = grpc::status(&c.members[0].endpoint())
        .expect("status")
        .header
        .expect("header")
        .revision;
    ctl(&c, 0).ok(&["compaction", "--physical", &rev.to_string()]);
    for i in 0..3 {
        ctl(&c, i).ok(&["defrag"]);
    }
    // Every member is under its quota again, yet refuses writes: the replicated alarms.
    for i in 0..3 {
        assert_put_refused(&c, i, "before-disarm");
    }
    // A restarted member (under its quota now) still knows the alarms and refuses writes.
    c.kill(2);
    c.spawn(2);
    wait_serving(&c, 2);
    let health =
        keel_tests::cluster::http_get(c.members[2].client_port, "/health").expect("GET /health");
    assert!(
        health.1.contains(r#""health":"false""#),
        "/health of the restarted member: {health:?}"
    );
    if flavor == Flavor::Keel {
        assert_eq!(
            health,
            (
                503,
                r#"{"health":"false","reason":"ALARM NOSPACE"}"#.to_string()
            )
        );
    }
    assert_eq!(alarm_list(&c, 2), raised, "alarms after the restart");
    assert_put_refused(&c, 2, "after-restart");

    let raised = alarm_list(&c, 1);
    let disarmed: BTreeSet<String> = ctl(&c, 1)
        .ok(&["alarm", "disarm"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(disarmed, raised, "disarm prints the alarms it cleared");
    for i in 0..3 {
        assert_eq!(
            alarm_list(&c, i),
            BTreeSet::new(),
            "m{} after disarm",
            i + 1
        );
        let st = grpc::status(&c.members[i].endpoint()).expect("status");
        assert!(st.errors.is_empty(), "m{}: {:?}", i + 1, st.errors);
        assert_eq!(ctl(&c, i).ok(&["put", &format!("ok{i}"), "v"]), "OK\n");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while keel_tests::cluster::http_get(c.members[2].client_port, "/health")
        .map(|(code, _)| code)
        .unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "m3 stays unhealthy after disarm");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Member 2 alone runs with a small quota; every write goes through member 0 (far under its
/// own quota). Member 2 finds its backend over the quota while applying them (etcd's
/// `quotaApplierV3`) and raises NOSPACE for itself through Raft, after which member 0 refuses
/// writes too.
fn member_over_quota_at_apply_raises_nospace(flavor: Flavor) {
    let mut c = Cluster::start(
        flavor,
        3,
        ClusterOptions {
            extra_args: vec!["--quota-backend-bytes=20000000".into()],
            ..ClusterOptions::default()
        },
    );
    c.kill(2);
    c.options.extra_args = vec![format!("--quota-backend-bytes={QUOTA_BYTES}")];
    c.restart(2);
    let ids: Vec<u64> = (0..3).map(|i| c.member_id(i)).collect();
    let allowed: BTreeSet<String> = ids.iter().map(|&id| nospace_line(id)).collect();

    let refused_at = fill_until_refused(&c);
    let refused_at = refused_at.expect("member 2's 200 kB quota must stop 800 kB of puts");
    eprintln!("{flavor:?}: member 0 refused put {refused_at}");
    assert_eq!(
        wait_same_alarms(&c, &allowed),
        BTreeSet::from([nospace_line(ids[2])]),
        "only member 2 is over its quota"
    );
    assert_put_refused(&c, 1, "other");
}

#[test]
fn etcd_member_over_quota_at_apply_raises_nospace() {
    member_over_quota_at_apply_raises_nospace(Flavor::Etcd);
}

#[test]
fn keel_member_over_quota_at_apply_raises_nospace() {
    member_over_quota_at_apply_raises_nospace(Flavor::Keel);
}

#[test]
fn etcd_replicates_nospace() {
    nospace_is_replicated(Flavor::Etcd);
}

#[test]
fn keel_replicates_nospace() {
    nospace_is_replicated(Flavor::Keel);
}
