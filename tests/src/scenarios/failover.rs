//! Requirement 2: kill -9 the leader of a 3-member cluster. A new leader is elected within two
//! election timeouts, writes continue through the survivors, and the old leader, restarted,
//! catches up: its HashKV equals the others' at the same revision.

use super::wait_hashes_agree;
use super::writers::{assert_all_present, Writers};
use crate::{grpc, Cluster};
use std::time::{Duration, Instant};

/// Cluster options for [`kill_leader`]: heartbeat 100 ms, election timeout 1 s (etcd's
/// defaults), so that the "two election timeouts" budget (2 s) is not dominated by scheduling
/// noise on a busy 2-core box.
pub fn options() -> crate::ClusterOptions {
    crate::ClusterOptions {
        heartbeat_ms: 100,
        election_ms: 1000,
        ..crate::ClusterOptions::default()
    }
}

/// Runs the scenario on a running 3-member `cluster` (see [`options`]).
pub fn kill_leader(cluster: &mut Cluster) {
    let all: Vec<usize> = (0..cluster.members.len()).collect();
    let leader = cluster.wait_leader(&all, Duration::from_secs(10));
    let old_id = cluster.member_id(leader);
    let old_term = grpc::status(&cluster.members[leader].endpoint())
        .expect("status")
        .raft_term;

    // Some writes before.
    let before = Writers::start(cluster.endpoints_of(&all), "before/", 2, 100).join();
    assert_eq!(before.acked.len(), 200, "writes before the kill failed");

    let election = Duration::from_millis(cluster.options.election_ms);
    cluster.kill(leader);
    let killed_at = Instant::now();
    let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();

    // Poll the survivors until one of them says it leads a newer term.
    let (new_leader, elapsed) = loop {
        let mut found = None;
        for &i in &survivors {
            if let Ok(s) = grpc::status(&cluster.members[i].endpoint()) {
                let me = s.header.as_ref().map(|h| h.member_id).unwrap_or(0);
                if s.leader == me && me != 0 && s.raft_term > old_term {
                    found = Some(i);
                }
            }
        }
        if let Some(i) = found {
            break (i, killed_at.elapsed());
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(10),
            "no new leader 10 s after killing the old one"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_ne!(cluster.member_id(new_leader), old_id);
    // The requirement (two election timeouts) is keel's. etcd, run as the reference, does not
    // always meet it: a follower's randomized timeout is anywhere in [1, 2) election timeouts
    // and, with check-quorum, the other survivor refuses its first pre-vote until its own timer
    // ran out (observed: 2.35 s with a 1 s timeout); it gets three.
    let budget = match cluster.flavor {
        crate::Flavor::Keel => 2,
        crate::Flavor::Etcd | crate::Flavor::Etcd35 => 3,
    };
    assert!(
        elapsed <= budget * election,
        "new leader after {elapsed:?}, more than {budget} election timeouts ({:?})",
        budget * election
    );
    // Both survivors agree on it.
    assert_eq!(
        cluster.wait_leader(&survivors, Duration::from_secs(5)),
        new_leader
    );

    // Writes continue through the survivors.
    let during = Writers::start(cluster.endpoints_of(&survivors), "during/", 2, 100).join();
    assert_eq!(
        during.acked.len(),
        200,
        "writes with the leader down failed ({} errors)",
        during.failed
    );
    let last_rev = during.acked.values().map(|a| a.revision).max().unwrap_or(0);

    // The old leader comes back and catches up.
    cluster.restart(leader);
    wait_hashes_agree(cluster, &all, last_rev, Duration::from_secs(30));
    for &i in &all {
        assert_all_present(&cluster.members[i].endpoint(), b"before/", &before);
        assert_all_present(&cluster.members[i].endpoint(), b"during/", &during);
    }
    // And the cluster still takes writes with all three.
    let after = Writers::start(cluster.endpoints_of(&all), "after/", 1, 20).join();
    assert_eq!(after.acked.len(), 20);
}

/// Design promises 1–3 around quorum loss, on a running 3-member `cluster`: with two members
/// killed the survivor accepts no write and answers no linearizable read (both fail within the
/// deadline), but still serves serializable reads of what it has; once one member is back,
/// writes resume and the survivor's earlier writes are all there.
pub fn quorum_loss(cluster: &mut Cluster) {
    let all: Vec<usize> = (0..cluster.members.len()).collect();
    let before = Writers::start(cluster.endpoints_of(&all), "q/", 1, 50).join();
    assert_eq!(before.acked.len(), 50);
    let last_rev = before.acked.values().map(|a| a.revision).max().unwrap_or(0);
    // Every member has everything before we cut the quorum.
    wait_hashes_agree(cluster, &all, last_rev, Duration::from_secs(20));
    cluster.kill(0);
    cluster.kill(1);
    let ep = cluster.members[2].endpoint();
    let mut c = grpc::connect(std::slice::from_ref(&ep), Duration::from_secs(2)).expect("connect");
    let w = grpc::put(&mut c, b"q/no-quorum", b"x");
    assert!(w.is_err(), "a write was acknowledged without a quorum");
    let mut c = grpc::connect(std::slice::from_ref(&ep), Duration::from_secs(2)).expect("connect");
    let r = grpc::range(&mut c, b"q/", b"q0", false);
    assert!(
        r.is_err(),
        "a linearizable read was answered without a quorum ({} keys)",
        r.map(|r| r.kvs.len()).unwrap_or(0)
    );
    // Serializable: the member's own (complete) state.
    assert_all_present(&ep, b"q/", &before);
    // One member back: quorum again.
    cluster.restart(1);
    let survivors = [1, 2];
    // The restarted member reports healthy once it knows a leader; wait until both agree on one.
    cluster.wait_leader(&survivors, Duration::from_secs(10));
    let after = Writers::start(cluster.endpoints_of(&survivors), "q2/", 1, 20).join();
    assert_eq!(
        after.acked.len(),
        20,
        "writes did not resume with a quorum back"
    );
    for &i in &survivors {
        assert_all_present(&cluster.members[i].endpoint(), b"q/", &before);
    }
}
