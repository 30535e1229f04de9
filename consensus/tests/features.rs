//! Tests of the features beyond the basic paper: pre-vote, check-quorum, ReadIndex,
//! snapshots, leadership transfer, membership changes, flow control and proposal dropping.
//! Each cites the thesis section it implements.

mod common;

use common::*;
use keel_consensus::{
    ConfChange, ConfChangeType, Error, Message, MessageType, ProgressState, Role,
};

fn cc(t: ConfChangeType, id: u64) -> ConfChange {
    ConfChange {
        change_type: t,
        node_id: id,
        context: Vec::new(),
    }
}

/// Thesis §9.6: with pre-vote, a partitioned member does not inflate its term, so when it
/// rejoins it does not depose the leader. Without pre-vote it does.
#[test]
fn prevote_keeps_a_rejoining_member_from_disrupting_the_leader() {
    for pre_vote in [true, false] {
        let mut c = Cluster::new(3, |cfg| cfg.pre_vote = pre_vote);
        c.elect(1);
        let term = c.term(1);
        c.isolate(3);
        // The cluster moves on without 3, so 3's log falls behind.
        c.node(1).propose(b"while 3 was away".to_vec()).unwrap();
        c.stabilize();
        for _ in 0..100 {
            c.node(3).tick();
            c.stabilize();
        }
        if pre_vote {
            assert_eq!(c.term(3), term, "pre-candidate kept its term");
            assert_eq!(c.role(3), Role::PreCandidate);
        } else {
            assert!(c.term(3) > term);
        }
        c.recover();
        c.node(3).campaign();
        c.stabilize();
        c.tick_all(2);
        if pre_vote {
            assert_eq!(c.role(1), Role::Leader, "leader undisturbed");
            assert_eq!(c.term(1), term);
        } else {
            assert!(c.term(1) > term, "the rejoining member forced a new term");
        }
    }
}

/// Thesis §6.2: "a leader steps down if an election timeout elapses without a successful
/// round of heartbeats to a majority of its cluster".
#[test]
fn check_quorum_leader_steps_down_when_cut_off() {
    let mut c = Cluster::new(3, |cfg| cfg.check_quorum = true);
    c.elect(1);
    c.tick_all(25);
    assert_eq!(c.role(1), Role::Leader, "a connected leader stays");
    c.isolate(1);
    for _ in 0..21 {
        c.node(1).tick();
        c.stabilize();
    }
    assert_eq!(c.role(1), Role::Follower);
}

/// Thesis §4.2.3: with check-quorum, a member that hears from a leader ignores vote requests
/// (the "leader lease"), so a disruptive candidate gets no vote.
#[test]
fn followers_in_lease_ignore_vote_requests() {
    let mut c = Cluster::new(3, |cfg| cfg.check_quorum = true);
    c.elect(1);
    let term = c.term(2);
    let mut m = Message::new(MessageType::RequestVote, 3, 2);
    m.term = term + 5;
    m.index = 100;
    m.log_term = 100;
    c.node(2).step(m).unwrap();
    assert_eq!(c.term(2), term, "term not bumped");
    assert!(msgs(c.node(2)).is_empty(), "no vote response at all");
}

/// Thesis §6.4: a ReadIndex read is answered only after a heartbeat round confirms the
/// leadership; the read index is the commit index. Followers ask the leader.
#[test]
fn read_index_confirms_leadership_with_a_heartbeat_round() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.node(1).propose(b"w".to_vec()).unwrap();
    c.stabilize();
    let commit = c.commit(1);

    c.node(1).read_index(b"r1".to_vec()).unwrap();
    let h = handle(c.node(1));
    assert!(h.read_states.is_empty(), "not before the heartbeat round");
    let hb: Vec<_> = h
        .msgs
        .iter()
        .filter(|m| m.msg_type == MessageType::Heartbeat && m.context == b"r1")
        .collect();
    assert_eq!(hb.len(), 2);
    c.queue.extend(h.msgs);
    c.stabilize();
    let rs = &c.read_states[&1];
    assert_eq!(rs.len(), 1);
    assert_eq!(
        (rs[0].index, rs[0].context.as_slice()),
        (commit, &b"r1"[..])
    );

    // A follower's read is forwarded and answered.
    c.node(2).read_index(b"r2".to_vec()).unwrap();
    c.stabilize();
    let rs = &c.read_states[&2];
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].index, commit);

    // An isolated leader cannot confirm: no answer.
    c.isolate(1);
    c.node(1).read_index(b"r3".to_vec()).unwrap();
    c.stabilize();
    assert_eq!(c.read_states[&1].len(), 1, "stale leader must not answer");
}

/// Thesis §6.4 step 1: a new leader answers reads only after committing an entry of its term.
#[test]
fn read_index_waits_for_the_first_commit_of_the_term() {
    let mut n = node(1, &[1, 2, 3], |_| {});
    make_leader(&mut n);
    handle(&mut n);
    n.read_index(b"r".to_vec()).unwrap();
    let h = handle(&mut n);
    assert!(
        h.msgs.iter().all(|m| m.context.is_empty()),
        "no read heartbeat yet"
    );
    let mut r = Message::new(MessageType::AppendResponse, 2, 1);
    r.term = 1;
    r.index = 1;
    n.step(r).unwrap();
    let h = handle(&mut n);
    assert!(h
        .msgs
        .iter()
        .any(|m| m.msg_type == MessageType::Heartbeat && m.context == b"r"));
}

/// §7: a follower that needs compacted entries receives the leader's snapshot.
#[test]
fn lagging_follower_catches_up_through_a_snapshot() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.isolate(3);
    for i in 0..10u8 {
        c.node(1).propose(vec![i]).unwrap();
    }
    c.stabilize();
    let applied = c.nodes[&1].raft().log.applied;
    let cs = c.nodes[&1].status().conf_state;
    c.node(1)
        .store_mut()
        .create_snapshot(applied, cs, b"state".to_vec())
        .unwrap();
    c.recover();
    c.node(1).propose(b"after".to_vec()).unwrap();
    c.stabilize();
    c.tick_all(3);
    assert_eq!(c.commit(3), c.commit(1));
    assert_eq!(
        c.nodes[&3].first_index(),
        applied + 1,
        "log replaced by the snapshot"
    );
    assert_eq!(
        keel_consensus::Storage::snapshot(c.nodes[&3].store())
            .unwrap()
            .data,
        b"state"
    );
}

/// Thesis §3.10: leadership transfer; proposals are refused while it is in progress, and it
/// is abandoned after an election timeout.
#[test]
fn leadership_transfer_hands_over_and_blocks_proposals_meanwhile() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.node(1).transfer_leader(2).unwrap();
    c.stabilize();
    assert_eq!(c.role(2), Role::Leader);
    assert_eq!(c.role(1), Role::Follower);

    // Transfer to an unreachable member: proposals are dropped until the timeout.
    c.isolate(3);
    c.node(2).transfer_leader(3).unwrap();
    assert!(matches!(
        c.node(2).propose(b"x".to_vec()),
        Err(Error::ProposalDropped(_))
    ));
    for _ in 0..10 {
        c.node(2).tick();
        c.stabilize();
    }
    assert_eq!(c.nodes[&2].status().lead_transferee, None);
    c.node(2).propose(b"x".to_vec()).unwrap();
    assert!(matches!(
        c.node(1).transfer_leader(3),
        Err(Error::NotLeader { leader: Some(2) })
    ));
}

/// Thesis §4.1, §4.2.1: add a learner, which replicates without voting, then promote it.
#[test]
fn learner_is_added_then_promoted() {
    let mut c = Cluster::new(3, |_| {});
    c.nodes.insert(4, node(4, &[1, 2, 3], |_| {}));
    c.elect(1);
    c.node(1).propose(b"a".to_vec()).unwrap();
    c.node(1)
        .propose_conf_change(&cc(ConfChangeType::AddLearner, 4))
        .unwrap();
    c.stabilize();
    c.tick_all(2);
    let st = c.nodes[&1].status();
    assert_eq!(st.conf_state.learners, vec![4]);
    assert!(st.progress[&4].is_learner);
    assert_eq!(c.commit(4), c.commit(1), "learner receives the log");
    c.node(4).campaign();
    c.stabilize();
    assert_eq!(c.role(4), Role::Follower, "learners never campaign");

    c.node(1)
        .propose_conf_change(&cc(ConfChangeType::AddNode, 4))
        .unwrap();
    c.stabilize();
    assert_eq!(c.nodes[&4].status().conf_state.voters, vec![1, 2, 3, 4]);
    c.node(1).transfer_leader(4).unwrap();
    c.stabilize();
    assert_eq!(c.role(4), Role::Leader, "promoted member can lead");
}

/// Thesis §4.1: one membership change at a time; a second is refused until the first is
/// applied. Invalid changes are refused up front.
#[test]
fn only_one_membership_change_may_be_pending() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.node(1)
        .propose_conf_change(&cc(ConfChangeType::AddLearner, 4))
        .unwrap();
    assert!(matches!(
        c.node(1)
            .propose_conf_change(&cc(ConfChangeType::AddLearner, 5)),
        Err(Error::ProposalDropped(_))
    ));
    c.stabilize();
    c.node(1)
        .propose_conf_change(&cc(ConfChangeType::AddLearner, 5))
        .unwrap();
    c.stabilize();
    assert!(matches!(
        c.node(1)
            .propose_conf_change(&cc(ConfChangeType::RemoveNode, 9)),
        Err(Error::ConfChangeInvalid(_))
    ));
}

/// A leader that removes itself steps down and the rest elect a new leader.
#[test]
fn removed_leader_steps_down() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.node(1)
        .propose_conf_change(&cc(ConfChangeType::RemoveNode, 1))
        .unwrap();
    c.stabilize();
    assert_eq!(c.role(1), Role::Follower);
    c.nodes.remove(&1);
    c.tick_all(30);
    assert!([2, 3].iter().any(|&id| c.role(id) == Role::Leader));
}

/// Proposals are dropped with a typed error when there is no leader or the uncommitted log
/// exceeds its bound.
#[test]
fn proposals_are_dropped_without_leader_or_beyond_the_uncommitted_bound() {
    let mut n = node(1, &[1, 2, 3], |_| {});
    assert!(matches!(
        n.propose(b"x".to_vec()),
        Err(Error::ProposalDropped("no leader"))
    ));

    let mut n = node(1, &[1, 2, 3], |c| c.max_uncommitted_entries_size = 100);
    make_leader(&mut n);
    n.propose(vec![0; 60]).unwrap();
    assert!(matches!(
        n.propose(vec![0; 60]),
        Err(Error::ProposalDropped(_))
    ));
}

fn sync_follower_2(n: &mut keel_consensus::RawNode<keel_consensus::MemStorage>) {
    handle(n);
    let mut r = Message::new(MessageType::AppendResponse, 2, 1);
    r.term = n.raft().term;
    r.index = n.last_index();
    n.step(r).unwrap();
    handle(n);
}

/// Flow control: in Replicate state at most `max_inflight_msgs` appends are outstanding; in
/// Probe state one at a time.
#[test]
fn inflight_window_bounds_pipelining() {
    let mut n = node(1, &[1, 2, 3], |c| c.max_inflight_msgs = 2);
    make_leader(&mut n);
    // Probe: after the first append, nothing more until a reply.
    n.propose(b"a".to_vec()).unwrap();
    n.propose(b"b".to_vec()).unwrap();
    let to2 = msgs(&mut n).iter().filter(|m| m.to == 2).count();
    assert_eq!(to2, 1, "probe sends one append");
    sync_follower_2(&mut n);
    assert_eq!(n.status().progress[&2].state, ProgressState::Replicate);
    for i in 0..5u8 {
        n.propose(vec![i]).unwrap();
    }
    let to2 = msgs(&mut n)
        .iter()
        .filter(|m| m.to == 2 && m.msg_type == MessageType::Append)
        .count();
    assert_eq!(to2, 2, "window of two");
}

/// Byte-bounded window and per-message size limit (batching).
#[test]
fn inflight_bytes_and_message_size_are_bounded() {
    let mut n = node(1, &[1, 2, 3], |c| {
        c.max_inflight_bytes = 250;
        c.max_size_per_msg = 100;
    });
    make_leader(&mut n);
    sync_follower_2(&mut n);
    n.propose_batch((0..10).map(|_| vec![0; 60]).collect())
        .unwrap();
    let appends: Vec<_> = msgs(&mut n)
        .into_iter()
        .filter(|m| m.to == 2 && m.msg_type == MessageType::Append)
        .collect();
    assert!(
        appends.iter().all(|m| m.entries.len() == 1),
        "100-byte messages fit one entry"
    );
    assert!(
        appends.len() >= 4 && appends.len() <= 5,
        "{} appends",
        appends.len()
    );
}

/// §5.3 fast backtracking: a follower with a long divergent suffix is repaired in a few round
/// trips, not one per entry.
#[test]
fn rejected_appends_backtrack_a_term_at_a_time() {
    let leader_log: Vec<u64> = [1u64; 3].into_iter().chain([5; 50]).collect();
    let follower_log: Vec<u64> = [1u64; 3]
        .into_iter()
        .chain([2; 40])
        .chain([3; 40])
        .collect();
    let mut c = Cluster::from_nodes(vec![
        node_with_log(1, &[1, 2, 3], &leader_log, 5),
        node_with_log(2, &[1, 2, 3], &follower_log, 5),
        node_with_log(3, &[1, 2, 3], &leader_log, 5),
    ]);
    c.node(1).campaign();
    let mut rejections = 0;
    for _ in 0..10_000 {
        c.process_all();
        let Some(m) = c.queue.pop_front() else { break };
        if m.msg_type == MessageType::AppendResponse && m.from == 2 && m.reject {
            rejections += 1;
        }
        let to = m.to;
        let _ = c.node(to).step(m);
    }
    assert_eq!(c.log_terms(2)[..53], c.log_terms(1)[..53]);
    assert!(rejections <= 3, "{rejections} rejections");
}

/// Figure 2: a follower's election timer restarts on a leader's AppendEntries or on granting a
/// vote — not on rejecting a stale candidate that merely has a higher term. (The simulator
/// found the livelock this prevents: a fast-ticking member with a stale log kept bumping the
/// term and so kept resetting the timer of the only member that could win; seed 14686.)
#[test]
fn rejecting_a_stale_candidate_does_not_restart_the_election_timer() {
    let mut counts = Vec::new();
    for seed in 0..20 {
        let mut s = keel_consensus::MemStorage::new_with_conf_state(
            keel_consensus::ConfState::with_voters(&[1, 2, 3]),
        );
        s.append(&[keel_consensus::Entry::normal(1, 1, vec![])]);
        s.set_hard_state(keel_consensus::HardState {
            term: 1,
            vote: 0,
            commit: 0,
        });
        let mut n = keel_consensus::RawNode::new(&config(1), s, seed).unwrap();
        for _ in 0..9 {
            n.tick();
        }
        let mut m = Message::new(MessageType::RequestVote, 2, 1);
        m.term = 5;
        n.step(m).unwrap(); // empty log: rejected
        assert_eq!(n.raft().term, 5);
        assert_eq!(n.raft().vote, 0);
        let mut ticks = 0;
        while n.raft().role == Role::Follower {
            n.tick();
            ticks += 1;
        }
        counts.push(ticks);
    }
    assert!(counts.iter().all(|&c| c <= 10), "{counts:?}");
    assert!(
        counts.iter().any(|&c| c < 10),
        "timer was restarted: {counts:?}"
    );
}

/// Thesis §6.4 step 1 holds for a single voter too: "If the leader has not yet marked an
/// entry from its current term committed, it waits until it has done so." A restarted single
/// voter may have a persisted commit index below entries that were committed (and acknowledged
/// to clients) before the crash — a commit-only hard state need not be synced — so answering
/// with the commit index at once would let a read miss an acknowledged write.
#[test]
fn single_voter_read_index_waits_for_the_first_commit_of_the_term() {
    // Entries 1..=3 of term 1 are durable; the hard state's commit lags at 1.
    let mut s =
        keel_consensus::MemStorage::new_with_conf_state(keel_consensus::ConfState::with_voters(&[
            1,
        ]));
    let ents: Vec<keel_consensus::Entry> = (1..=3)
        .map(|i| keel_consensus::Entry::normal(1, i, vec![i as u8]))
        .collect();
    s.append(&ents);
    s.set_hard_state(keel_consensus::HardState {
        term: 1,
        vote: 1,
        commit: 1,
    });
    let mut n = keel_consensus::RawNode::new(&config(1), s, 1).unwrap();
    n.campaign();
    assert_eq!(n.raft().role, Role::Leader);
    n.read_index(b"r".to_vec()).unwrap();
    let mut reads = Vec::new();
    for _ in 0..5 {
        reads.extend(handle(&mut n).read_states);
    }
    assert_eq!(
        reads.len(),
        1,
        "the read is answered once the term's entry commits"
    );
    assert!(
        reads[0].index >= 3,
        "read index {} misses entries 2..=3, committed before the restart",
        reads[0].index
    );
}
