//! The Ready contract of [`keel_consensus::RawNode`].

mod common;

use common::*;
use keel_consensus::{
    ConfState, Config, Entry, HardState, MemStorage, Message, MessageType, RawNode, Role,
};

/// Votes promise durable state: a vote response only leaves after the Ready is persisted.
#[test]
fn vote_responses_wait_for_persistence() {
    let mut n = node(1, &[1, 2, 3], |_| {});
    let mut m = Message::new(MessageType::RequestVote, 2, 1);
    m.term = 1;
    n.step(m).unwrap();
    let rd = n.ready();
    assert!(rd.messages.is_empty());
    assert_eq!(rd.persisted_messages.len(), 1);
    assert_eq!(
        rd.persisted_messages[0].msg_type,
        MessageType::RequestVoteResponse
    );
    let hs = rd.hard_state.expect("term and vote changed");
    assert_eq!((hs.term, hs.vote), (1, 2));
    assert!(rd.must_sync);
    n.advance();
}

/// Nothing leaves before a new term/vote is durable: a candidate's vote requests are in
/// `persisted_messages`.
#[test]
fn messages_after_a_term_change_wait_for_persistence() {
    let mut n = node(1, &[1, 2, 3], |_| {});
    n.campaign();
    let rd = n.ready();
    assert!(rd.messages.is_empty());
    assert_eq!(rd.persisted_messages.len(), 2);
    assert!(rd.must_sync);
}

/// Thesis §10.2.1: the leader sends appends in parallel with its own disk write, and counts
/// itself towards the commit majority only after the write (advance).
#[test]
fn leader_sends_before_its_own_write_and_counts_itself_after() {
    let mut n = node(1, &[1, 2, 3], |_| {});
    make_leader(&mut n);
    handle(&mut n);
    let mut r = Message::new(MessageType::AppendResponse, 2, 1);
    r.term = 1;
    r.index = 1;
    n.step(r).unwrap();
    handle(&mut n);
    n.propose(b"x".to_vec()).unwrap();
    let rd = n.ready();
    assert_eq!(rd.entries.len(), 1, "entry to persist");
    assert!(
        rd.messages
            .iter()
            .any(|m| m.msg_type == MessageType::Append && m.entries.len() == 1),
        "append may leave before the local write"
    );
    // Follower 2 acknowledges before the leader's own write completes: 1 of 3 is not a
    // majority, since the leader does not count its unwritten entry.
    let mut r = Message::new(MessageType::AppendResponse, 2, 1);
    r.term = 1;
    r.index = 2;
    n.step(r).unwrap();
    assert_eq!(n.raft().log.committed, 1);
    n.store_mut().append(&rd.entries);
    n.advance();
    assert_eq!(
        n.raft().log.committed,
        2,
        "committed once the leader's own write is done"
    );
}

/// `ready` must not be called twice without `advance`; `has_ready` is false meanwhile.
#[test]
fn one_ready_at_a_time() {
    let mut n = node(1, &[1, 2, 3], |_| {});
    n.campaign();
    assert!(n.has_ready());
    let _rd = n.ready();
    assert!(!n.has_ready());
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| n.ready()));
    assert!(again.is_err());
}

/// A single-member cluster elects itself and commits through the Ready loop alone.
#[test]
fn single_member_commits_through_the_ready_loop() {
    let mut n = node(1, &[1], |_| {});
    n.campaign();
    handle(&mut n);
    assert_eq!(n.raft().role, Role::Leader);
    n.propose(b"solo".to_vec()).unwrap();
    let h = handle(&mut n);
    assert_eq!(h.committed.last().unwrap().data, b"solo");
    n.read_index(b"r".to_vec()).unwrap();
    let h = handle(&mut n);
    assert_eq!(h.read_states[0].index, 2);
}

/// A member restarted from its storage resumes with its term, vote and log, and re-applies
/// committed entries after the snapshot.
#[test]
fn restart_resumes_from_storage() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.node(1).propose(b"a".to_vec()).unwrap();
    c.stabilize();
    let store = c.nodes[&2].store().clone();
    let term = c.term(2);
    let mut n = keel_consensus::RawNode::new(&config(2), store, 7).unwrap();
    assert_eq!(n.raft().term, term);
    let h = handle(&mut n);
    assert_eq!(
        h.committed.last().unwrap().data,
        b"a",
        "re-applies committed entries"
    );
}

/// Messages addressed elsewhere and term-less peer messages are typed errors.
#[test]
fn invalid_messages_are_rejected() {
    let mut n = node(1, &[1, 2, 3], |_| {});
    let m = Message::new(MessageType::Append, 2, 9);
    assert!(n.step(m).is_err());
    let m = Message::new(MessageType::Append, 2, 1);
    assert!(n.step(m).is_err(), "append without a term");
}

/// Figure 2: lastApplied ≤ commitIndex, so every entry the application reports as applied
/// (`Config::applied`) was committed. A restarted member whose persisted commit index lags
/// its applied index (a commit-only hard state need not be synced) must not hand those
/// entries out again.
#[test]
fn restart_with_applied_beyond_persisted_commit_does_not_reapply() {
    let mut s = MemStorage::new_with_conf_state(ConfState::with_voters(&[1]));
    let ents: Vec<Entry> = (1..=5)
        .map(|i| Entry::normal(1, i, vec![i as u8]))
        .collect();
    s.append(&ents);
    s.set_hard_state(HardState {
        term: 1,
        vote: 1,
        commit: 2,
    });
    let mut cfg = Config::new(1);
    cfg.applied = 4;
    let mut n = RawNode::new(&cfg, s, 1).unwrap();
    assert_eq!(n.status().applied, 4);
    n.campaign();
    let mut applied = Vec::new();
    for _ in 0..5 {
        if !n.has_ready() {
            break;
        }
        let rd = n.ready();
        n.store_mut().append(&rd.entries);
        if let Some(hs) = rd.hard_state {
            n.store_mut().set_hard_state(hs);
        }
        applied.extend(rd.committed_entries.iter().map(|e| e.index));
        n.advance();
    }
    assert_eq!(applied, vec![5, 6], "entries 3..=4 were already applied");
}

/// §7 with membership (thesis §4.1, changes take effect when applied): a snapshot stepped in
/// while committed entries are out for applying (an event loop that receives messages while
/// it applies a Ready) must not replace the configuration underneath them. Here entry 1
/// adds learner 4 and the snapshot at 3 already reflects 4's later removal: applying entry 1
/// after the snapshot's configuration was installed resurrected 4 in the configuration.
/// The configuration must always be the one of what the member has applied.
#[test]
fn snapshot_arriving_while_committed_entries_are_applied_keeps_the_configuration() {
    use keel_consensus::{ConfChange, ConfChangeType, EntryKind, Snapshot, SnapshotMeta};
    let mut n = node(2, &[1, 2, 3], |_| {});
    let add4 = ConfChange {
        change_type: ConfChangeType::AddLearner,
        node_id: 4,
        context: Vec::new(),
    };
    let mut app = Message::new(MessageType::Append, 1, 2);
    app.term = 1;
    app.entries.push(Entry {
        term: 1,
        index: 1,
        kind: EntryKind::ConfChange,
        data: add4.to_bytes(),
    });
    app.commit = 1;
    n.step(app).unwrap();
    let snapshot_msg = || {
        let mut m = Message::new(MessageType::Snapshot, 1, 2);
        m.term = 1;
        m.snapshot = Some(Snapshot {
            meta: SnapshotMeta {
                index: 3,
                term: 1,
                conf_state: ConfState::with_voters(&[1, 2, 3]),
            },
            data: b"state at 3".to_vec(),
        });
        m
    };
    let with_learner_4 = ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4],
    };

    // Ready 1: persist entry 1, then — before applying it — the snapshot arrives.
    let rd = n.ready();
    assert_eq!(rd.committed_entries.len(), 1);
    n.store_mut().append(&rd.entries);
    n.store_mut().set_hard_state(rd.hard_state.unwrap());
    n.advance_append();
    n.step(snapshot_msg()).unwrap();
    let cs =
        n.apply_conf_change(&keel_consensus::conf_change_of(&rd.committed_entries[0]).unwrap());
    n.advance();
    assert_eq!(
        cs.ok(),
        Some(with_learner_4.clone()),
        "entry 1 applies normally"
    );
    handle(&mut n);
    let st = n.status();
    let expected = if st.applied >= 3 {
        ConfState::with_voters(&[1, 2, 3])
    } else {
        with_learner_4
    };
    assert_eq!(
        st.conf_state, expected,
        "the configuration must be that of the applied prefix (applied {})",
        st.applied
    );

    // Sent again once nothing is being applied, the snapshot installs with its configuration.
    n.step(snapshot_msg()).unwrap();
    handle(&mut n);
    assert_eq!(n.status().applied, 3);
    assert_eq!(n.status().conf_state, ConfState::with_voters(&[1, 2, 3]));
}

/// §7: a snapshot covers only committed entries. The Ready contract persists the snapshot
/// before the hard state, so a crash between the two leaves a hard state whose commit index
/// is below the snapshot: that is a torn write, not a lost log, and the member must restart.
#[test]
fn restart_after_a_torn_snapshot_write_uses_the_snapshot_as_commit() {
    use keel_consensus::{Snapshot, SnapshotMeta};
    let mut s = MemStorage::new_with_conf_state(ConfState::with_voters(&[1, 2, 3]));
    s.set_hard_state(HardState {
        term: 1,
        vote: 1,
        commit: 2,
    });
    let hs_before = s.hard_state();
    s.apply_snapshot(Snapshot {
        meta: SnapshotMeta {
            index: 5,
            term: 1,
            conf_state: ConfState::with_voters(&[1, 2, 3]),
        },
        data: Vec::new(),
    })
    .unwrap();
    // The hard state write after the snapshot never happened.
    s.set_hard_state(hs_before);
    let n = RawNode::new(&Config::new(1), s, 1).expect("restart after a torn write");
    assert_eq!(n.status().hard_state.commit, 5);
    assert_eq!(n.status().applied, 5);
}

/// `restore_conf_state` replaces the configuration outright (a member whose state machine came
/// from a snapshot image newer than the snapshot's metadata): voters and learners follow it,
/// a vote then needs the new majority, and a leader no longer listed as a voter steps down.
#[test]
fn restore_conf_state_replaces_the_configuration() {
    let mut n = node(1, &[1, 2, 3], |_| {});
    let cs = ConfState {
        voters: vec![1, 2, 3, 4, 5],
        learners: vec![6],
    };
    let got = n.restore_conf_state(&cs);
    assert_eq!(got.voters, vec![1, 2, 3, 4, 5]);
    assert_eq!(got.learners, vec![6]);
    assert_eq!(n.status().conf_state, got);
    // A campaign now asks the four other voters, not the learner.
    n.campaign();
    let rd = n.ready();
    let mut asked: Vec<u64> = rd.persisted_messages.iter().map(|m| m.to).collect();
    asked.sort();
    assert_eq!(asked, vec![2, 3, 4, 5]);

    let mut l = node(1, &[1, 2, 3], |_| {});
    make_leader(&mut l);
    handle(&mut l);
    l.restore_conf_state(&ConfState {
        voters: vec![2, 3],
        learners: vec![],
    });
    assert_ne!(l.status().soft_state.role, Role::Leader);
}
