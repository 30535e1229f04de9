//! `--strict-reconfig-check=false` turns etcd's reconfiguration safety checks off: with a voter
//! down, a learner is added (the strict check answers "unhealthy cluster", see
//! `membership_more`), and removed again. Run on a real etcd 3.4 first, then on keel; the same
//! cluster with the default flag refuses the add on both.

use keel_tests::ports::free_port;
use keel_tests::{Cluster, ClusterOptions, Etcdctl, Flavor};
use std::time::Duration;

/// The hex member id in `etcdctl member add`'s first line ("Member <id> added to cluster ...").
fn added_id(out: &str) -> String {
    out.strip_prefix("Member ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("member add printed: {out}"))
        .to_string()
}

/// With member 2 down, adds a learner through member 0; returns etcdctl's outcome (and removes
/// the learner again when it was added).
fn add_learner_with_a_voter_down(flavor: Flavor, strict: bool) -> Result<(), String> {
    let options = ClusterOptions {
        extra_args: vec![format!("--strict-reconfig-check={strict}")],
        ..ClusterOptions::default()
    };
    let mut c = Cluster::start(flavor, 3, options);
    c.kill(2);
    // Long enough for etcd's peer transport to see member 2 inactive.
    std::thread::sleep(Duration::from_millis(1500));
    let ctl = Etcdctl::new(vec![c.members[0].endpoint()]);
    let url = format!("http://127.0.0.1:{}", free_port());
    let o = ctl.run(&[
        "member",
        "add",
        "extra",
        "--learner",
        &format!("--peer-urls={url}"),
    ]);
    if !o.success {
        return Err(o.stderr.trim().to_string());
    }
    let id = added_id(&o.stdout);
    let list = ctl.ok(&["member", "list"]);
    assert!(
        list.contains(&format!("{id}, unstarted, , {url}, , true")),
        "{list}"
    );
    assert_eq!(ctl.ok(&["member", "remove", &id]).lines().count(), 1);
    assert_eq!(ctl.ok(&["member", "list"]).lines().count(), 3);
    Ok(())
}

fn check(flavor: Flavor) {
    assert_eq!(
        add_learner_with_a_voter_down(flavor, false),
        Ok(()),
        "{flavor:?}"
    );
    let strict = add_learner_with_a_voter_down(flavor, true);
    assert_eq!(
        strict.as_ref().err().and_then(|e| e.lines().last()),
        Some("Error: etcdserver: unhealthy cluster"),
        "{flavor:?}: {strict:?}"
    );
}

#[test]
fn etcd_adds_a_learner_with_a_voter_down_without_strict_check() {
    check(Flavor::Etcd);
}

#[test]
fn keel_adds_a_learner_with_a_voter_down_without_strict_check() {
    check(Flavor::Keel);
}
