//! One test per claim of the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable
//! Consensus Algorithm", extended version) and of Ongaro's thesis, in the spirit of
//! etcd-raft's raft_paper_test.go. Each test quotes the claim, sets up the situation, and
//! checks the behaviour.

mod common;

use common::*;
use keel_consensus::{Entry, Message, MessageType, Role, NONE};

fn msg(t: MessageType, from: u64, to: u64, term: u64) -> Message {
    let mut m = Message::new(t, from, to);
    m.term = term;
    m
}

fn append(
    from: u64,
    to: u64,
    term: u64,
    prev: (u64, u64),
    ents: &[(u64, u64)],
    commit: u64,
) -> Message {
    let mut m = msg(MessageType::Append, from, to, term);
    m.index = prev.0;
    m.log_term = prev.1;
    m.commit = commit;
    m.entries = ents
        .iter()
        .map(|&(i, t)| Entry::normal(t, i, vec![i as u8]))
        .collect();
    m
}

// ------------------------------------------------------------------------------ §5.1

/// §5.1: "If one server's current term is smaller than the other's, then it updates its
/// current term to the larger value. If a candidate or leader discovers that its term is out
/// of date, it immediately reverts to follower state."
#[test]
fn s5_1_every_role_adopts_a_higher_term_and_becomes_follower() {
    for role in [Role::Follower, Role::Candidate, Role::Leader] {
        let mut n = node(1, &[1, 2, 3], |_| {});
        match role {
            Role::Candidate => n.campaign(),
            Role::Leader => make_leader(&mut n),
            _ => {}
        }
        assert_eq!(n.raft().role, role);
        n.step(append(2, 1, 5, (0, 0), &[], 0)).unwrap();
        assert_eq!(n.raft().role, Role::Follower, "{role:?}");
        assert_eq!(n.raft().term, 5);
        assert_eq!(n.raft().leader_id, 2);
    }
}

/// §5.1: "If a server receives a request with a stale term number, it rejects the request";
/// Figure 2: the reply carries "currentTerm, for leader to update itself".
#[test]
fn s5_1_stale_term_requests_are_rejected_with_the_current_term() {
    let mut n = node_with_log(1, &[1, 2, 3], &[1], 2);
    handle(&mut n);
    n.step(append(2, 1, 1, (1, 1), &[(2, 1)], 2)).unwrap();
    assert_eq!(n.last_index(), 1, "stale append must not change the log");
    assert_eq!(n.raft().term, 2);
    let m = msgs(&mut n);
    assert_eq!(m.len(), 1);
    assert_eq!(
        (m[0].msg_type, m[0].to, m[0].term),
        (MessageType::AppendResponse, 2, 2)
    );
    // The reply must acknowledge nothing: its recipient may be leader of term 2 by the time it
    // arrives (regression: seed 4748 lost a committed entry when it carried our last index).
    assert!(m[0].reject && m[0].index == 0, "{:?}", m[0]);

    n.step(msg(MessageType::RequestVote, 3, 1, 1)).unwrap();
    assert_eq!(n.raft().vote, 0, "no vote for a stale candidate");
    let m = msgs(&mut n);
    assert_eq!(
        (m[0].msg_type, m[0].reject, m[0].term),
        (MessageType::RequestVoteResponse, true, 2)
    );

    // The stale leader learns the newer term from the reply and steps down (§5.1).
    let mut leader = node(2, &[1, 2, 3], |_| {});
    make_leader(&mut leader);
    let mut r = msg(MessageType::AppendResponse, 1, 2, 2);
    r.index = 1;
    leader.step(r).unwrap();
    assert_eq!(leader.raft().role, Role::Follower);
    assert_eq!(leader.raft().term, 2);
}

// ------------------------------------------------------------------------------ §5.2

/// §5.2: "When servers start up, they begin as followers."
#[test]
fn s5_2_servers_start_as_followers() {
    let n = node(1, &[1, 2, 3], |_| {});
    assert_eq!(n.raft().role, Role::Follower);
    assert_eq!(n.raft().term, 0);
}

/// §5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no log entries) to
/// all followers in order to maintain their authority."
#[test]
fn s5_2_leader_sends_heartbeats_every_heartbeat_interval() {
    let mut n = node(1, &[1, 2, 3], |c| c.heartbeat_tick = 2);
    make_leader(&mut n);
    handle(&mut n);
    n.tick();
    assert!(msgs(&mut n).is_empty());
    n.tick();
    let m = msgs(&mut n);
    assert_eq!(m.len(), 2);
    for (m, to) in m.iter().zip([2, 3]) {
        assert_eq!(m.msg_type, MessageType::Heartbeat);
        assert_eq!(m.to, to);
        assert!(m.entries.is_empty());
        assert_eq!(m.term, 1);
    }
}

/// §5.2: "If a follower receives no communication over a period of time called the election
/// timeout, then it ... begins an election ... increments its current term and transitions to
/// candidate state. It then votes for itself and issues RequestVote RPCs in parallel".
#[test]
fn s5_2_follower_starts_election_after_timeout() {
    let mut n = node(1, &[1, 2, 3], |_| {});
    for _ in 0..20 {
        n.tick();
    }
    assert_eq!(n.raft().role, Role::Candidate);
    assert_eq!(n.raft().term, 1);
    assert_eq!(n.raft().vote, 1);
    let m = msgs(&mut n);
    assert_eq!(m.len(), 2);
    for (m, to) in m.iter().zip([2, 3]) {
        assert_eq!(
            (m.msg_type, m.to, m.term),
            (MessageType::RequestVote, to, 1)
        );
    }
}

/// §5.2: "If many followers become candidates at the same time, votes could be split ...
/// each candidate will time out and start a new election by incrementing its term".
#[test]
fn s5_2_candidate_restarts_election_after_timeout() {
    let mut n = node(1, &[1, 2, 3], |_| {});
    n.campaign();
    handle(&mut n);
    for _ in 0..20 {
        n.tick();
    }
    assert_eq!(n.raft().role, Role::Candidate);
    assert_eq!(n.raft().term, 2);
}

/// §5.2: "A candidate wins an election if it receives votes from a majority of the servers in
/// the full cluster for the same term."
#[test]
fn s5_2_election_is_won_by_majority_lost_by_majority_of_refusals() {
    type Votes = &'static [(u64, bool)];
    let cases: &[(u64, Votes, Role)] = &[
        (1, &[], Role::Leader),
        (3, &[(2, true), (3, true)], Role::Leader),
        (3, &[(2, true)], Role::Leader),
        (
            5,
            &[(2, true), (3, true), (4, true), (5, true)],
            Role::Leader,
        ),
        (5, &[(2, true), (3, true)], Role::Leader),
        (3, &[(2, false), (3, false)], Role::Follower),
        (5, &[(2, true), (3, false), (4, false)], Role::Candidate),
        (
            5,
            &[(2, true), (3, false), (4, false), (5, false)],
            Role::Follower,
        ),
        (5, &[(2, true)], Role::Candidate),
    ];
    for (size, votes, want) in cases {
        let voters: Vec<u64> = (1..=*size).collect();
        let mut n = node(1, &voters, |_| {});
        n.campaign();
        for &(from, granted) in *votes {
            let mut m = msg(MessageType::RequestVoteResponse, from, 1, 1);
            m.reject = !granted;
            n.step(m).unwrap();
        }
        assert_eq!(n.raft().role, *want, "size {size} votes {votes:?}");
    }
}

/// §5.2: "Each server will vote for at most one candidate in a given term, on a
/// first-come-first-served basis."
#[test]
fn s5_2_one_vote_per_term_first_come_first_served() {
    let mut n = node(1, &[1, 2, 3], |_| {});
    n.step(msg(MessageType::RequestVote, 2, 1, 1)).unwrap();
    n.step(msg(MessageType::RequestVote, 3, 1, 1)).unwrap();
    n.step(msg(MessageType::RequestVote, 2, 1, 1)).unwrap();
    let m = msgs(&mut n);
    let answers: Vec<(u64, bool)> = m.iter().map(|m| (m.to, m.reject)).collect();
    assert_eq!(answers, vec![(2, false), (2, false), (3, true)]);
    assert_eq!(n.raft().vote, 2);
}

/// §5.2: "If the leader's term (included in its RPC) is at least as large as the candidate's
/// current term, then the candidate recognizes the leader as legitimate and returns to
/// follower state."
#[test]
fn s5_2_candidate_yields_to_leader_of_same_or_newer_term() {
    for term in [1, 2] {
        let mut n = node(1, &[1, 2, 3], |_| {});
        n.campaign();
        n.step(append(2, 1, term, (0, 0), &[], 0)).unwrap();
        assert_eq!(n.raft().role, Role::Follower);
        assert_eq!((n.raft().term, n.raft().leader_id), (term, 2));
    }
}

/// §5.2: "Raft uses randomized election timeouts ... chosen randomly from a fixed interval".
#[test]
fn s5_2_election_timeouts_are_randomized() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let mut c = config(1);
        c.election_tick = 10;
        let mut n = keel_consensus::RawNode::new(
            &c,
            keel_consensus::MemStorage::new_with_conf_state(
                keel_consensus::ConfState::with_voters(&[1, 2, 3]),
            ),
            seed,
        )
        .unwrap();
        let mut ticks = 0;
        while n.raft().role == Role::Follower {
            n.tick();
            ticks += 1;
        }
        assert!(
            (10..20).contains(&ticks),
            "timeout {ticks} outside [10, 20)"
        );
        seen.insert(ticks);
    }
    assert!(seen.len() >= 8, "timeouts barely vary: {seen:?}");
}

// ------------------------------------------------------------------------------ §5.3

fn leader_with_synced_followers() -> keel_consensus::RawNode<keel_consensus::MemStorage> {
    let mut n = node(1, &[1, 2, 3], |_| {});
    make_leader(&mut n);
    handle(&mut n);
    for f in [2, 3] {
        let mut r = msg(MessageType::AppendResponse, f, 1, 1);
        r.index = 1;
        n.step(r).unwrap();
    }
    handle(&mut n);
    assert_eq!(n.raft().log.committed, 1);
    n
}

/// §5.3: "The leader appends the command to its log as a new entry, then issues
/// AppendEntries RPCs in parallel to each of the other servers to replicate the entry."
#[test]
fn s5_3_leader_appends_and_replicates_proposals() {
    let mut n = leader_with_synced_followers();
    n.propose(b"x".to_vec()).unwrap();
    assert_eq!(n.last_index(), 2);
    let m = msgs(&mut n);
    assert_eq!(m.len(), 2);
    for m in &m {
        assert_eq!(m.msg_type, MessageType::Append);
        assert_eq!((m.index, m.log_term, m.commit), (1, 1, 1));
        assert_eq!(m.entries.len(), 1);
        assert_eq!((m.entries[0].index, m.entries[0].term), (2, 1));
        assert_eq!(m.entries[0].data, b"x");
    }
}

/// §5.3: "A log entry is committed once the leader that created the entry has replicated it
/// on a majority of the servers ... the leader ... includes that index in future
/// AppendEntries RPCs (including heartbeats) so that the other servers eventually find out."
#[test]
fn s5_3_leader_commits_on_majority_and_tells_followers() {
    let mut n = leader_with_synced_followers();
    n.propose(b"x".to_vec()).unwrap();
    handle(&mut n);
    let mut r = msg(MessageType::AppendResponse, 2, 1, 1);
    r.index = 2;
    n.step(r).unwrap();
    let h = handle(&mut n);
    assert_eq!(n.raft().log.committed, 2);
    assert_eq!(h.committed.len(), 1);
    assert_eq!(h.committed[0].data, b"x");
    assert!(h
        .msgs
        .iter()
        .any(|m| m.to == 3 && m.msg_type == MessageType::Append && m.commit == 2));
}

/// §5.3: the commit decision counts a majority of the *full* cluster (table over 5 members).
#[test]
fn s5_3_commit_requires_majority_acknowledgement() {
    for (acks, committed) in [
        (vec![], false),
        (vec![2], false),
        (vec![2, 3], true),
        (vec![2, 3, 4, 5], true),
    ] {
        let mut n = node(1, &[1, 2, 3, 4, 5], |_| {});
        n.campaign();
        for v in [2, 3] {
            n.step(msg(MessageType::RequestVoteResponse, v, 1, 1))
                .unwrap();
        }
        handle(&mut n);
        for &f in &acks {
            let mut r = msg(MessageType::AppendResponse, f, 1, 1);
            r.index = 1;
            n.step(r).unwrap();
        }
        handle(&mut n);
        assert_eq!(n.raft().log.committed == 1, committed, "acks {acks:?}");
    }
}

/// §5.3: "This also commits all preceding entries in the leader's log, including entries
/// created by previous leaders."
#[test]
fn s5_3_committing_an_entry_commits_all_preceding_entries() {
    let mut n = node_with_log(1, &[1, 2, 3], &[1, 2], 2);
    n.campaign();
    n.step(msg(MessageType::RequestVoteResponse, 2, 1, 3))
        .unwrap();
    handle(&mut n);
    let mut r = msg(MessageType::AppendResponse, 2, 1, 3);
    r.index = 3;
    n.step(r).unwrap();
    let h = handle(&mut n);
    let idx: Vec<(u64, u64)> = h.committed.iter().map(|e| (e.index, e.term)).collect();
    assert_eq!(idx, vec![(1, 1), (2, 2), (3, 3)]);
}

/// §5.3: "Once a follower learns that a log entry is committed, it applies the entry to its
/// local state machine" — and it only commits what it holds (min(leaderCommit, last new)).
#[test]
fn s5_3_follower_commits_what_the_leader_committed() {
    let mut n = node(1, &[1, 2, 3], |_| {});
    n.step(append(2, 1, 1, (0, 0), &[(1, 1), (2, 1)], 1))
        .unwrap();
    let h = handle(&mut n);
    assert_eq!(h.committed.len(), 1);
    n.step(append(2, 1, 1, (2, 1), &[], 5)).unwrap();
    let h = handle(&mut n);
    assert_eq!(
        n.raft().log.committed,
        2,
        "commit capped at the last entry known to match"
    );
    assert_eq!(h.committed.len(), 1);
}

/// §5.3: "If the follower does not find an entry in its log with the same index and term,
/// then it refuses the new entries."
#[test]
fn s5_3_follower_refuses_entries_that_do_not_follow_its_log() {
    // (prev index, prev term, accepted?)
    for (pi, pt, ok) in [
        (0, 0, true),
        (1, 1, true),
        (2, 2, true),
        (2, 1, false),
        (3, 2, false),
    ] {
        let mut n = node_with_log(1, &[1, 2, 3], &[1, 2], 2);
        handle(&mut n);
        n.step(append(2, 1, 2, (pi, pt), &[], 0)).unwrap();
        let m = msgs(&mut n);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].msg_type, MessageType::AppendResponse);
        assert_eq!(!m[0].reject, ok, "prev ({pi}, {pt})");
        if !ok {
            assert_eq!(m[0].index, pi, "the rejected index is echoed");
            assert!(m[0].reject_hint <= 2, "hint within our log");
        }
    }
}

/// §5.3: "If an existing entry conflicts with a new one (same index but different terms),
/// delete the existing entry and all that follow it; append any new entries not already in
/// the log."
#[test]
fn s5_3_follower_deletes_conflicting_suffix() {
    let mut n = node_with_log(1, &[1, 2, 3], &[1, 2, 2], 3);
    handle(&mut n);
    n.step(append(2, 1, 3, (1, 1), &[(2, 3), (3, 3)], 0))
        .unwrap();
    handle(&mut n);
    let terms: Vec<u64> = (1..=n.last_index())
        .map(|i| n.term_at(i).unwrap())
        .collect();
    assert_eq!(terms, vec![1, 3, 3]);
    // Entries already present are not truncated by a stale (shorter) append.
    n.step(append(2, 1, 3, (1, 1), &[(2, 3)], 0)).unwrap();
    handle(&mut n);
    assert_eq!(n.last_index(), 3);
}

/// §5.3, Figure 7: "the leader handles inconsistencies by forcing the followers' logs to
/// duplicate its own" — for each of the follower logs (a)–(f) of the figure.
#[test]
fn s5_3_figure_7_leader_forces_follower_logs_to_match() {
    let leader: &[u64] = &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    let followers: [&[u64]; 6] = [
        &[1, 1, 1, 4, 4, 5, 5, 6, 6],
        &[1, 1, 1, 4],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
        &[1, 1, 1, 4, 4, 4, 4],
        &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    ];
    for (k, f) in followers.iter().enumerate() {
        let mut c = Cluster::from_nodes(vec![
            node_with_log(1, &[1, 2, 3], leader, 8),
            node_with_log(2, &[1, 2, 3], f, 8),
            node_with_log(3, &[1, 2, 3], leader, 8),
        ]);
        c.elect(1);
        let mut want = leader.to_vec();
        want.push(9);
        assert_eq!(
            c.log_terms(2),
            want,
            "follower ({})",
            (b'a' + k as u8) as char
        );
    }
}

// ------------------------------------------------------------------------------ §5.4

/// §5.4.1: "The RequestVote RPC ... includes information about the candidate's log".
#[test]
fn s5_4_1_vote_requests_carry_the_last_log_position() {
    let mut n = node_with_log(1, &[1, 2, 3], &[1, 2], 2);
    handle(&mut n);
    n.campaign();
    let m = msgs(&mut n);
    assert_eq!(m.len(), 2);
    for m in m {
        assert_eq!((m.term, m.index, m.log_term), (3, 2, 2));
    }
}

/// §5.4.1: "the voter denies its vote if its own log is more up-to-date than that of the
/// candidate ... If the logs have last entries with different terms, then the log with the
/// later term is more up-to-date. If the logs end with the same term, then whichever log is
/// longer is more up-to-date."
#[test]
fn s5_4_1_votes_only_for_candidates_at_least_as_up_to_date() {
    // (voter log terms, candidate last index, candidate last term, granted)
    let cases: &[(&[u64], u64, u64, bool)] = &[
        (&[1, 1], 2, 1, true),
        (&[1, 1], 3, 1, true),
        (&[1, 1], 1, 1, false),
        (&[1, 1], 1, 2, true),
        (&[1, 2], 3, 1, false),
        (&[1, 2], 1, 2, false),
        (&[1, 2], 2, 2, true),
        (&[1, 2], 1, 3, true),
    ];
    for &(log, idx, lt, granted) in cases {
        let mut n = node_with_log(1, &[1, 2, 3], log, 2);
        handle(&mut n);
        let mut m = msg(MessageType::RequestVote, 2, 1, 3);
        m.index = idx;
        m.log_term = lt;
        n.step(m).unwrap();
        let m = msgs(&mut n);
        assert_eq!(m[0].msg_type, MessageType::RequestVoteResponse);
        assert_eq!(
            !m[0].reject, granted,
            "voter {log:?} candidate ({idx}, {lt})"
        );
        assert_eq!(n.raft().vote == 2, granted);
    }
}

/// §5.4.2: "Raft never commits log entries from previous terms by counting replicas. Only log
/// entries from the leader's current term are committed by counting replicas" (Figure 8).
#[test]
fn s5_4_2_previous_term_entries_are_not_committed_by_counting() {
    let mut n = node_with_log(1, &[1, 2, 3], &[1, 2], 2);
    n.campaign();
    n.step(msg(MessageType::RequestVoteResponse, 2, 1, 3))
        .unwrap();
    handle(&mut n);
    // Follower 2 acknowledges index 2 (term 2): a majority holds it, but it is not of term 3.
    let mut r = msg(MessageType::AppendResponse, 2, 1, 3);
    r.index = 2;
    n.step(r).unwrap();
    handle(&mut n);
    assert_eq!(n.raft().log.committed, 0);
    // Once the term-3 entry is on a majority, everything up to it is committed.
    let mut r = msg(MessageType::AppendResponse, 2, 1, 3);
    r.index = 3;
    n.step(r).unwrap();
    handle(&mut n);
    assert_eq!(n.raft().log.committed, 3);

    // The same scenario with the rule broken commits index 2 early: the check above can fail.
    let mut c = config(1);
    c.mutations.commit_previous_term_by_counting = true;
    let mut s =
        keel_consensus::MemStorage::new_with_conf_state(keel_consensus::ConfState::with_voters(&[
            1, 2, 3,
        ]));
    s.append(&[Entry::normal(1, 1, vec![]), Entry::normal(2, 2, vec![])]);
    s.set_hard_state(keel_consensus::HardState {
        term: 2,
        vote: 0,
        commit: 0,
    });
    let mut n = keel_consensus::RawNode::new(&c, s, 1).unwrap();
    n.campaign();
    n.step(msg(MessageType::RequestVoteResponse, 2, 1, 3))
        .unwrap();
    handle(&mut n);
    let mut r = msg(MessageType::AppendResponse, 2, 1, 3);
    r.index = 2;
    n.step(r).unwrap();
    assert_eq!(
        n.raft().log.committed,
        2,
        "mutant commits a term-2 entry by counting"
    );
}

/// §5.4.3 Safety argument, end to end: a new leader keeps every committed entry.
#[test]
fn s5_4_leader_completeness_after_leader_change() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.node(1).propose(b"a".to_vec()).unwrap();
    c.stabilize();
    let committed = c.commit(1);
    c.isolate(1);
    c.elect(2);
    assert!(c.commit(2) >= committed);
    assert_eq!(
        c.nodes[&2].term_at(committed),
        c.nodes[&1].term_at(committed)
    );
    assert_eq!(
        c.nodes[&1].raft().leader_id,
        1,
        "isolated old leader still believes it leads"
    );
    assert_ne!(c.nodes[&2].raft().leader_id, NONE);
}
