//! A tiny synchronous in-memory cluster for unit tests: members process every Ready fully
//! (persist, send, apply) and messages are delivered in FIFO order unless a link is cut.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use keel_consensus::{
    conf_change_of, ConfState, Config, Entry, EntryKind, MemStorage, Message, RawNode, ReadState,
    Role,
};

pub fn config(id: u64) -> Config {
    let mut c = Config::new(id);
    c.pre_vote = false;
    c.check_quorum = false;
    c
}

/// A member with `voters` as its initial configuration.
pub fn node(id: u64, voters: &[u64], cfg: impl FnOnce(&mut Config)) -> RawNode<MemStorage> {
    let mut c = config(id);
    cfg(&mut c);
    RawNode::new(
        &c,
        MemStorage::new_with_conf_state(ConfState::with_voters(voters)),
        id,
    )
    .unwrap()
}

/// A member whose persisted log holds `terms[i]` at index `i + 1` and whose hard state has
/// `term` (vote none).
pub fn node_with_log(id: u64, voters: &[u64], terms: &[u64], term: u64) -> RawNode<MemStorage> {
    let mut s = MemStorage::new_with_conf_state(ConfState::with_voters(voters));
    let ents: Vec<Entry> = terms
        .iter()
        .enumerate()
        .map(|(i, &t)| Entry::normal(t, i as u64 + 1, vec![i as u8]))
        .collect();
    s.append(&ents);
    let mut hs = s.hard_state();
    hs.term = term;
    s.set_hard_state(hs);
    RawNode::new(&config(id), s, id).unwrap()
}

/// What one Ready produced, after it was fully handled.
#[derive(Default, Debug)]
pub struct Handled {
    pub msgs: Vec<Message>,
    pub committed: Vec<Entry>,
    pub read_states: Vec<ReadState>,
}

/// Persists, applies and advances every pending Ready; returns everything it produced.
pub fn handle(raw: &mut RawNode<MemStorage>) -> Handled {
    let mut out = Handled::default();
    while raw.has_ready() {
        let mut rd = raw.ready();
        out.msgs.append(&mut rd.messages);
        let store = raw.store_mut();
        if let Some(s) = &rd.snapshot {
            store.apply_snapshot(s.clone()).unwrap();
        }
        store.append(&rd.entries);
        if let Some(hs) = rd.hard_state {
            store.set_hard_state(hs);
        }
        out.msgs.append(&mut rd.persisted_messages);
        for e in &rd.committed_entries {
            if e.kind == EntryKind::ConfChange {
                if let Some(cc) = conf_change_of(e) {
                    let _ = raw.apply_conf_change(&cc);
                }
            }
        }
        out.committed.extend(rd.committed_entries);
        out.read_states.extend(rd.read_states);
        raw.advance();
    }
    out
}

/// Handles the Ready and returns only the messages, sorted by recipient.
pub fn msgs(raw: &mut RawNode<MemStorage>) -> Vec<Message> {
    let mut m = handle(raw).msgs;
    m.sort_by_key(|m| m.to);
    m
}

pub struct Cluster {
    pub nodes: BTreeMap<u64, RawNode<MemStorage>>,
    pub cut: BTreeSet<(u64, u64)>,
    pub queue: VecDeque<Message>,
    pub applied: BTreeMap<u64, Vec<Entry>>,
    pub read_states: BTreeMap<u64, Vec<ReadState>>,
}

impl Cluster {
    pub fn new(n: u64, cfg: impl Fn(&mut Config)) -> Cluster {
        let voters: Vec<u64> = (1..=n).collect();
        let nodes = voters
            .iter()
            .map(|&id| (id, node(id, &voters, &cfg)))
            .collect();
        Cluster {
            nodes,
            cut: BTreeSet::new(),
            queue: VecDeque::new(),
            applied: BTreeMap::new(),
            read_states: BTreeMap::new(),
        }
    }

    pub fn node(&mut self, id: u64) -> &mut RawNode<MemStorage> {
        self.nodes.get_mut(&id).unwrap()
    }

    pub fn role(&self, id: u64) -> Role {
        self.nodes[&id].raft().role
    }

    pub fn term(&self, id: u64) -> u64 {
        self.nodes[&id].raft().term
    }

    pub fn commit(&self, id: u64) -> u64 {
        self.nodes[&id].raft().log.committed
    }

    /// Handles every member's Ready, queueing their messages.
    pub fn process_all(&mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            let h = handle(self.nodes.get_mut(&id).unwrap());
            self.applied.entry(id).or_default().extend(h.committed);
            self.read_states
                .entry(id)
                .or_default()
                .extend(h.read_states);
            self.queue.extend(h.msgs);
        }
    }

    /// Delivers messages until the cluster is quiet.
    pub fn stabilize(&mut self) {
        for _ in 0..10_000 {
            self.process_all();
            let Some(m) = self.queue.pop_front() else {
                return;
            };
            if self.cut.contains(&(m.from, m.to)) || !self.nodes.contains_key(&m.to) {
                continue;
            }
            let _ = self.node(m.to).step(m);
        }
        panic!("cluster did not stabilize");
    }

    pub fn isolate(&mut self, id: u64) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for other in ids {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    pub fn recover(&mut self) {
        self.cut.clear();
    }

    /// Makes `id` campaign and runs the election to completion.
    pub fn elect(&mut self, id: u64) {
        self.node(id).campaign();
        self.stabilize();
        assert_eq!(self.role(id), Role::Leader, "{id} did not win");
    }

    /// Ticks every member `n` times, stabilizing after each tick.
    pub fn tick_all(&mut self, n: usize) {
        for _ in 0..n {
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for id in ids {
                self.node(id).tick();
            }
            self.stabilize();
        }
    }
}

impl Cluster {
    /// A cluster of already-built members.
    pub fn from_nodes(nodes: Vec<RawNode<MemStorage>>) -> Cluster {
        Cluster {
            nodes: nodes.into_iter().map(|n| (n.raft().id, n)).collect(),
            cut: BTreeSet::new(),
            queue: VecDeque::new(),
            applied: BTreeMap::new(),
            read_states: BTreeMap::new(),
        }
    }

    /// The terms of member `id`'s log from its first index on.
    pub fn log_terms(&self, id: u64) -> Vec<u64> {
        let n = &self.nodes[&id];
        (n.first_index()..=n.last_index())
            .map(|i| n.term_at(i).unwrap())
            .collect()
    }
}

/// Makes a stand-alone member of [1, 2, 3] leader by feeding it one granted vote.
pub fn make_leader(raw: &mut RawNode<MemStorage>) {
    raw.campaign();
    handle(raw);
    let term = raw.raft().term;
    let id = raw.raft().id;
    let voter = if id == 2 { 3 } else { 2 };
    let mut m = Message::new(keel_consensus::MessageType::RequestVoteResponse, voter, id);
    m.term = term;
    raw.step(m).unwrap();
    assert_eq!(raw.raft().role, Role::Leader);
}
