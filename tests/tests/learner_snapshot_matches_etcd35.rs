//! A started learner serves the Snapshot stream, as etcd 3.5's does (its stream interceptor
//! refuses every stream on a learner "except Snapshot"; etcd 3.4.23 still refused it, and keel,
//! which emulates 3.5, refused it too — etcdctl then retried forever). With etcdctl 3.5.1
//! against etcd 3.5.1 and keel: 1 voter, `member add --learner`, start the learner, then on the
//! learner: `snapshot save` succeeds, a put is refused, a serializable get is served.

use keel_tests::{Cluster, ClusterOptions, CtlOutput, Etcdctl, Flavor};
use std::time::{Duration, Instant};

fn scenario(flavor: Flavor) -> Vec<String> {
    let mut c = Cluster::start(flavor, 1, ClusterOptions::default());
    let ctl = Etcdctl::v35(c.endpoints_of(&[0]));
    ctl.ok(&["put", "k", "v"]);
    let new = c.new_member_slot("m2");
    let peer = c.members[new].peer_url();
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = loop {
        let o = ctl.run(&[
            "member",
            "add",
            "m2",
            "--learner",
            &format!("--peer-urls={peer}"),
        ]);
        if o.success {
            break o.stdout;
        }
        // etcd's strict reconfiguration check right after start.
        assert!(
            o.stderr.contains("unhealthy cluster") && Instant::now() < deadline,
            "member add: {}",
            o.stderr
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let ic = out
        .lines()
        .find_map(|l| l.strip_prefix("ETCD_INITIAL_CLUSTER="))
        .expect("ETCD_INITIAL_CLUSTER")
        .trim_matches('"')
        .to_string();
    c.members[new].initial_cluster = ic;
    c.members[new].initial_state = "existing".into();
    c.spawn(new);
    let learner = Etcdctl::v35(c.endpoints_of(&[new]));
    // Until it has caught up it may not know it is a learner; wait for the data.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !learner
        .run(&["get", "k", "--consistency=s"])
        .stdout
        .contains("v")
    {
        assert!(Instant::now() < deadline, "the learner never caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let snap = c.dir().join("learner.db");
    let summary = |o: CtlOutput| {
        let err = o
            .stderr
            .lines()
            .filter(|l| !l.starts_with('{'))
            .collect::<Vec<_>>()
            .join(" | ");
        format!(
            "ok {} out {:?} err {err:?}",
            o.success,
            o.stdout.replace(&c.dir().display().to_string(), "<dir>")
        )
    };
    let o = learner.run(&[
        "snapshot",
        "save",
        &snap.display().to_string(),
        "--command-timeout=10s",
    ]);
    let size = std::fs::metadata(&snap).map(|m| m.len()).unwrap_or(0);
    vec![
        summary(o),
        format!("snapshot file non-empty: {}", size > 0),
        summary(learner.run(&["put", "x", "y"])),
        summary(learner.run(&["get", "k", "--consistency=s"])),
    ]
}

#[test]
fn learner_serves_snapshot_like_etcd35() {
    keel_tests::binary::etcd35_dir();
    let (keel, etcd) = std::thread::scope(|s| {
        let etcd = s.spawn(|| scenario(Flavor::Etcd35));
        let keel = scenario(Flavor::Keel);
        (keel, etcd.join().expect("etcd scenario"))
    });
    assert!(etcd[0].starts_with("ok true"), "{etcd:?}");
    assert_eq!(keel, etcd);
}
