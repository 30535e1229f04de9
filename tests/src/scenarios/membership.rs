//! Requirement 4: while writes continue, add a fourth member as a learner (`etcdctl member add
//! --learner`, then start it with `--initial-cluster-state existing`), promote it once it has
//! caught up, and remove another (non-leader) member. Afterwards the three remaining voters
//! agree (HashKV) and hold every acknowledged write; the joined member restarts with its
//! MemberAdd id; `move-leader` hands leadership to another voter.

use super::wait_hashes_agree;
use super::writers::{assert_all_present, Writers};
use crate::etcdctl::Etcdctl;
use crate::{grpc, Cluster};
use std::time::{Duration, Instant};

fn member_line(list: &str, name: &str) -> String {
    list.lines()
        .find(|l| l.split(", ").nth(2) == Some(name))
        .unwrap_or_else(|| panic!("{name} not in member list:\n{list}"))
        .to_string()
}

/// The value of `KEY="value"` in `etcdctl member add` output.
fn env_line(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=\"")))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no {key} in member add output:\n{out}"))
        .to_string()
}

/// Runs a membership command. etcd refuses reconfiguration with "unhealthy cluster" until the
/// members that would remain have been connected for a few seconds (--strict-reconfig-check:
/// just after start, or just after a member joined); retried on exactly that error, for 20 s.
fn reconfigure(ctl: &Etcdctl, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = ctl.run(args);
        if o.success {
            return o.stdout;
        }
        assert!(
            o.stderr.contains("Error: etcdserver: unhealthy cluster") && Instant::now() < deadline,
            "etcdctl {args:?} failed: {}",
            o.stderr
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs the scenario on a running 3-member `cluster`.
pub fn learner_promote_remove(cluster: &mut Cluster) {
    let voters: Vec<usize> = (0..cluster.members.len()).collect();
    let w = Writers::start(cluster.endpoints_of(&voters), "member/", 2, 1_000_000);
    w.wait_acked(100, Duration::from_secs(30));
    let ctl = Etcdctl::new(cluster.endpoints_of(&voters));

    // Add the learner.
    let new = cluster.new_member_slot("m4");
    let peer = cluster.members[new].peer_url();
    let add = [
        "member",
        "add",
        "m4",
        "--learner",
        &format!("--peer-urls={peer}"),
    ];
    let out = reconfigure(&ctl, &add);
    let first = out.lines().next().unwrap_or("");
    assert!(
        first.starts_with("Member ") && first.contains(" added to cluster "),
        "member add said:\n{out}"
    );
    let new_id = first.split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(env_line(&out, "ETCD_NAME"), "m4");
    assert_eq!(env_line(&out, "ETCD_INITIAL_ADVERTISE_PEER_URLS"), peer);
    assert_eq!(env_line(&out, "ETCD_INITIAL_CLUSTER_STATE"), "existing");
    let ic = env_line(&out, "ETCD_INITIAL_CLUSTER");
    let mut want: Vec<String> = (0..=new)
        .map(|i| {
            format!(
                "{}={}",
                cluster.members[i].name,
                cluster.members[i].peer_url()
            )
        })
        .collect();
    let mut got: Vec<String> = ic.split(',').map(str::to_string).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "ETCD_INITIAL_CLUSTER");
    let list = ctl.ok(&["member", "list"]);
    let line = member_line(&list, "")
        .split(", ")
        .map(str::to_string)
        .collect::<Vec<_>>();
    // Not started yet: etcd lists it as "unstarted" with an empty name.
    assert_eq!(line[0], new_id);
    assert_eq!(line[1], "unstarted");
    assert_eq!(line[5], "true", "the new member must be a learner:\n{list}");

    cluster.members[new].initial_cluster = ic;
    cluster.members[new].initial_state = "existing".into();
    cluster.spawn(new);
    let acked = w.acked();
    w.wait_acked(acked + 100, Duration::from_secs(30));

    // A learner serves Status and serializable reads only (etcd's isRPCSupportedForLearner).
    let learner = Etcdctl::new(cluster.endpoints_of(&[new]));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = learner.run(&["put", "learner-key", "v"]);
        assert!(!o.success, "a put on the learner succeeded");
        if o.stderr
            .contains("etcdserver: rpc not supported for learner")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "put on the learner failed otherwise: {}",
            o.stderr
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = learner.run(&["get", "member/", "--prefix", "--consistency=s", "--limit=1"]);
    assert!(o.success, "serializable get on the learner: {}", o.stderr);

    // Promote once it is in sync (the leader refuses before that).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = ctl.run(&["member", "promote", &new_id]);
        if o.success {
            assert!(
                o.stdout.split_whitespace().take(5).collect::<Vec<_>>()
                    == ["Member", new_id.as_str(), "promoted", "in", "cluster"],
                "promote said: {}",
                o.stdout
            );
            break;
        }
        assert!(
            o.stderr
                .contains("can only promote a learner member which is in sync with leader"),
            "unexpected promote failure: {}",
            o.stderr
        );
        assert!(
            Instant::now() < deadline,
            "learner never in sync: {}",
            o.stderr
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.wait_healthy(new);
    let list = ctl.ok(&["member", "list"]);
    let line = member_line(&list, "m4");
    assert!(
        line.starts_with(&format!("{new_id}, started, m4, {peer}, ")),
        "{line}"
    );
    assert!(line.ends_with(", false"), "m4 still a learner: {line}");
    assert_eq!(list.lines().count(), 4, "{list}");
    let acked = w.acked();
    w.wait_acked(acked + 100, Duration::from_secs(30));

    // Remove a member that is not the leader.
    let all4: Vec<usize> = (0..=new).collect();
    let leader = cluster.wait_leader(&all4, Duration::from_secs(10));
    let gone = voters.iter().copied().find(|&i| i != leader).unwrap();
    let gone_id = format!("{:x}", cluster.member_id(gone));
    // Ask a member that stays: the removed one stops serving as soon as it applies its removal.
    let remaining: Vec<usize> = all4.iter().copied().filter(|&i| i != gone).collect();
    let ctl = Etcdctl::new(cluster.endpoints_of(&remaining));
    let out = reconfigure(&ctl, &["member", "remove", &gone_id]);
    assert!(
        // etcdctl prints IDs with %16x: space-padded when shorter than 16 digits.
        out.split_whitespace().take(5).collect::<Vec<_>>()
            == ["Member", gone_id.as_str(), "removed", "from", "cluster"],
        "member remove said: {out}"
    );
    let list = ctl.ok(&["member", "list"]);
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(
        !list.contains(&cluster.members[gone].name.to_string()),
        "removed member still listed:\n{list}"
    );
    let acked = w.acked();
    w.wait_acked(acked + 100, Duration::from_secs(30));
    w.stop();
    let writes = w.join();
    cluster.kill(gone);

    let last_rev = writes.acked.values().map(|a| a.revision).max().unwrap_or(0);
    wait_hashes_agree(cluster, &remaining, last_rev, Duration::from_secs(30));
    for &i in &remaining {
        assert_all_present(&cluster.members[i].endpoint(), b"member/", &writes);
        let s = grpc::status(&cluster.members[i].endpoint()).expect("status");
        assert!(!s.is_learner, "{} still a learner", cluster.members[i].name);
    }

    // The joined member restarts from its own data: its id came from MemberAdd, not from its
    // flags, and the membership it comes back with is the current one.
    cluster.kill(new);
    cluster.restart(new);
    let s = grpc::status(&cluster.members[new].endpoint()).expect("status of m4");
    assert_eq!(
        format!("{:x}", s.header.map(|h| h.member_id).unwrap_or(0)),
        new_id,
        "m4 restarted with another id"
    );
    let list = Etcdctl::new(cluster.endpoints_of(&[new])).ok(&["member", "list"]);
    assert_eq!(
        list.lines().count(),
        3,
        "m4's member list after restart:\n{list}"
    );

    // MoveLeader: the leader hands leadership to another voter.
    let leader = cluster.wait_leader(&remaining, Duration::from_secs(10));
    let target = remaining.iter().copied().find(|&i| i != leader).unwrap();
    let target_id = format!("{:x}", cluster.member_id(target));
    let leader_id = format!("{:x}", cluster.member_id(leader));
    let out = Etcdctl::new(cluster.endpoints_of(&remaining)).ok(&["move-leader", &target_id]);
    assert_eq!(
        out.trim_end(),
        format!("Leadership transferred from {leader_id} to {target_id}"),
        "move-leader said: {out}"
    );
    assert_eq!(
        cluster.wait_leader(&remaining, Duration::from_secs(10)),
        target,
        "leadership did not move"
    );
}
