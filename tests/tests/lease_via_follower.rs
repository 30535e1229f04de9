//! Lease keep-alives and time-to-live asked of a follower are answered by the leader (only it
//! knows lease deadlines): many in a row, and again after the leader was killed and another
//! took over (the follower's forwarding connection must follow the new leader). Run on a real
//! etcd 3.4 first, then on keel.

use keel_tests::{Cluster, ClusterOptions, Etcdctl, Flavor};
use std::time::Duration;

/// `lease grant` through `ctl`; returns the lease id (hex) printed.
fn grant(ctl: &Etcdctl, ttl: u32) -> String {
    let out = ctl.ok(&["lease", "grant", &ttl.to_string()]);
    // "lease 694d7a3c0a1b5a0b granted with TTL(30s)"
    let id = out.split_whitespace().nth(1).expect("lease id").to_string();
    assert_eq!(out, format!("lease {id} granted with TTL({ttl}s)\n"));
    id
}

/// Keeps `id` alive `n` times through `ctl`, each answer checked.
fn keep_alive(ctl: &Etcdctl, id: &str, ttl: u32, n: usize) {
    for _ in 0..n {
        let out = ctl.ok(&["lease", "keep-alive", "--once", id]);
        assert_eq!(out, format!("lease {id} keepalived with TTL({ttl})\n"));
    }
    let out = ctl.ok(&["lease", "timetolive", id]);
    let remaining: u32 = out
        .split("remaining(")
        .nth(1)
        .and_then(|r| r.split('s').next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("timetolive printed: {out}"));
    assert!(
        out.starts_with(&format!("lease {id} granted with TTL({ttl}s), remaining(")),
        "{out}"
    );
    assert!(
        remaining + 3 >= ttl,
        "just renewed, yet {remaining}s left: {out}"
    );
}

fn scenario(flavor: Flavor) {
    let mut c = Cluster::start(flavor, 3, ClusterOptions::default());
    let all = [0, 1, 2];
    let leader = c.wait_leader(&all, Duration::from_secs(10));
    let follower = (leader + 1) % 3;
    let ctl = Etcdctl::new(vec![c.members[follower].endpoint()]);
    let ttl = 30;
    let id = grant(&ctl, ttl);
    keep_alive(&ctl, &id, ttl, 15);

    c.kill(leader);
    let rest: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
    let new_leader = c.wait_leader(&rest, Duration::from_secs(10));
    let follower = rest.iter().copied().find(|&i| i != new_leader).unwrap();
    let ctl = Etcdctl::new(vec![c.members[follower].endpoint()]);
    // The lease survives the leader change (etcd renews every lease on promotion).
    keep_alive(&ctl, &id, ttl, 5);
}

#[test]
fn etcd_lease_calls_via_a_follower() {
    scenario(Flavor::Etcd);
}

#[test]
fn keel_lease_calls_via_a_follower() {
    scenario(Flavor::Keel);
}
