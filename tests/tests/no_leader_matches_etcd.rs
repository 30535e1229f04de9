//! A member without a leader (3 members, two SIGKILLed) answers etcdctl as etcd does, with
//! etcdctl 3.4 against etcd 3.4.23 and with etcdctl 3.5.1 against etcd 3.5.1:
//! * a write waits for a leader until the client gives up (`put --command-timeout=2s`:
//!   "context deadline exceeded"), and a `txn` (etcdctl sets no deadline on it) until the
//!   server's request timeout, then fails with code Unknown "context deadline exceeded" — keel
//!   used to fail both at once with "etcdserver: no leader", which clients do not retry;
//! * a linearizable read waits too; a serializable one is served;
//! * `member list` from etcdctl 3.5 is linearizable and waits; from 3.4 it is served locally;
//! * `endpoint status` lists "etcdserver: no leader" in its errors (keel's list was empty);
//! * a write issued while there is no leader succeeds once a member comes back and a leader is
//!   elected (keel used to refuse it at once).

use keel_tests::session::{assert_same_transcript, Steps};
use keel_tests::{Cluster, ClusterOptions, CtlOutput, Etcdctl, Flavor};
use std::time::{Duration, Instant};

/// etcd answers a deadline that passes in the server (the grpc-timeout the client sent) with
/// code Unknown, keel (which does not read grpc-timeout) lets the client's own timer fire: the
/// same deadline, two spellings, which one wins is a race.
fn client_deadline(o: CtlOutput) -> CtlOutput {
    CtlOutput {
        stderr: o.stderr.replace(
            "rpc error: code = Unknown desc = context deadline exceeded",
            "context deadline exceeded",
        ),
        ..o
    }
}

fn scenario(flavor: Flavor, ctl: Etcdctl) -> String {
    let mut c = Cluster::start(flavor, 3, ClusterOptions::default());
    let mut s = Steps::new(&c, &ctl, 0);
    s.step(&["put", "a", "1"]);
    c.kill(1);
    c.kill(2);
    // Wait until the survivor knows it has no leader (a leader steps down after an election
    // timeout without a quorum: check-quorum).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let st = keel_tests::grpc::status(&c.members[0].endpoint()).expect("status");
        if st.leader == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the survivor still follows {:x}",
            st.leader
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let t2 = "--command-timeout=2s";
    s.step_shaped(&["put", "x", "1", t2], client_deadline);
    s.step_shaped(&["get", "a", t2], client_deadline);
    s.step(&["get", "a", "--consistency=s"]);
    s.step_shaped(&["member", "list", t2], |o| {
        // One line per member, in ID order: IDs differ between clusters, sort by name.
        let mut lines: Vec<&str> = o.stdout.lines().collect();
        lines.sort_by_key(|l| l.split(", ").nth(2).unwrap_or("").to_string());
        let stdout = lines.join("\n");
        client_deadline(CtlOutput { stdout, ..o })
    });
    s.step_shaped(&["endpoint", "status", "-w", "json"], |o| {
        let errors = o
            .stdout
            .find("\"errors\":")
            .map(|at| o.stdout[at..].split(']').next().unwrap_or("").to_string() + "]")
            .unwrap_or_else(|| "no errors field".into());
        CtlOutput {
            stdout: errors,
            ..o
        }
    });
    s.step_stdin(&["txn"], "\n\nput t 1\n\n\n");

    // A write waiting for a leader completes once there is one again.
    let ctl0 = s.ctl().clone();
    let pending = std::thread::spawn(move || ctl0.run(&["put", "y", "2", "--command-timeout=20s"]));
    std::thread::sleep(Duration::from_millis(1000));
    c.restart(1);
    let o = pending.join().expect("pending put");
    s.record(&["put", "y", "2", "--command-timeout=20s"], &o);
    s.step(&["get", "y"]);
    s.text().to_string()
}

fn compare(etcd_flavor: Flavor, ctl: Etcdctl) {
    let (keel, etcd) = std::thread::scope(|sc| {
        let ctl2 = ctl.clone();
        let etcd = sc.spawn(move || scenario(etcd_flavor, ctl2));
        let keel = scenario(Flavor::Keel, ctl);
        (keel, etcd.join().expect("etcd scenario"))
    });
    assert!(
        etcd.contains("etcdserver: no leader") && etcd.contains("y\n2\n"),
        "{etcd}"
    );
    assert_same_transcript(&keel, &etcd);
    if std::env::var_os("KEEL_TESTS_PRINT").is_some() {
        println!("{keel}");
    }
}

#[test]
fn no_leader_matches_etcd34_with_etcdctl34() {
    compare(Flavor::Etcd, Etcdctl::new(Vec::new()));
}

#[test]
fn no_leader_matches_etcd35_with_etcdctl35() {
    keel_tests::binary::etcd35_dir();
    compare(Flavor::Etcd35, Etcdctl::v35(Vec::new()));
}
