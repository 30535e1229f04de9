//! The invariants of Raft (§5.2 Figure 3, thesis §6.4, §4.1), checked after every step.
//! A violation is returned as a message; the simulator stops and prints the seed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use keel_consensus::quorum::disjoint_majorities_possible;
use keel_consensus::Entry;

/// A digest of an entry's identity and content.
pub fn entry_digest(e: &Entry) -> u64 {
    let mut h = mix(0x51_7c_c1_b7_27_22_0a_95, e.term);
    h = mix(h, e.index);
    h = mix(h, e.kind as u64);
    for chunk in e.data.chunks(8) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        h = mix(h, u64::from_le_bytes(b));
    }
    mix(h, e.data.len() as u64)
}

pub fn mix(h: u64, v: u64) -> u64 {
    let mut z = (h ^ v)
        .wrapping_add(0x9E37_79B9_7F4A_7C15)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Default)]
pub struct Checker {
    /// Election Safety: term -> the one leader of that term.
    leaders: HashMap<u64, u64>,
    /// Log Matching: (index, term) -> (digest, term of the previous entry).
    entries: HashMap<(u64, u64), (u64, u64)>,
    /// Committed log: index -> term (index 0 unused).
    committed_terms: Vec<u64>,
    /// For each committed index, the term of the member that first saw it committed.
    /// Leader Completeness: every leader of a later term holds the entry.
    committed_seen_in_term: BTreeMap<u64, u64>,
    /// State Machine Safety: index -> (entry digest, state hash after applying it).
    applied: HashMap<u64, (u64, u64)>,
    /// Who first applied each index, and the entry's term (for failure reports).
    applied_by: HashMap<u64, (u64, u64)>,
    /// The largest commit index any member knows: a read started now must see it.
    pub max_commit_known: u64,
    /// Pending reads: context -> minimum acceptable read index.
    pub reads: HashMap<Vec<u8>, u64>,
    pub reads_checked: u64,
    /// Configurations in log order: index -> voters.
    confs: BTreeMap<u64, BTreeSet<u64>>,
}

impl Checker {
    pub fn new(initial_voters: &[u64]) -> Checker {
        let mut c = Checker {
            committed_terms: vec![0],
            ..Default::default()
        };
        c.confs.insert(0, initial_voters.iter().copied().collect());
        c
    }

    /// §5.2 Election Safety: at most one leader can be elected in a given term.
    pub fn leader(&mut self, term: u64, id: u64) -> Result<(), String> {
        match self.leaders.insert(term, id) {
            Some(prev) if prev != id => Err(format!(
                "election safety: both {prev} and {id} are leaders of term {term}"
            )),
            _ => Ok(()),
        }
    }

    /// §5.3 Log Matching: an (index, term) pair identifies the entry and its whole prefix;
    /// checked inductively on each entry with the term of its predecessor.
    pub fn appended(&mut self, node: u64, e: &Entry, prev_term: u64) -> Result<(), String> {
        let d = (entry_digest(e), prev_term);
        match self.entries.insert((e.index, e.term), d) {
            Some(old) if old != d => Err(format!(
                "log matching: member {node} holds entry ({}, term {}) with different content or \
                 predecessor (prev term {} vs {})",
                e.index, e.term, prev_term, old.1
            )),
            _ => Ok(()),
        }
    }

    /// A member at `member_term` reports that `index` with `term` is committed.
    pub fn committed(
        &mut self,
        node: u64,
        index: u64,
        term: u64,
        member_term: u64,
    ) -> Result<(), String> {
        let i = index as usize;
        if i < self.committed_terms.len() {
            let t = self.committed_terms[i];
            if t != 0 && t != term {
                return Err(format!(
                    "committed entry lost: index {index} was committed with term {t}, member \
                     {node} now has term {term} there as committed"
                ));
            }
            if t == 0 {
                self.committed_terms[i] = term;
            }
        } else {
            self.committed_terms.resize(i + 1, 0);
            self.committed_terms[i] = term;
        }
        self.max_commit_known = self.max_commit_known.max(index);
        let e = self.committed_seen_in_term.entry(member_term).or_insert(0);
        *e = (*e).max(index);
        Ok(())
    }

    /// The committed term at `index`, if known.
    pub fn committed_term(&self, index: u64) -> Option<u64> {
        self.committed_terms
            .get(index as usize)
            .copied()
            .filter(|&t| t != 0)
    }

    /// §5.4 Leader Completeness: "if a log entry is committed in a given term, then that entry
    /// will be present in the logs of the leaders for all higher-numbered terms". Returns the
    /// highest index a leader of `term` must hold.
    pub fn must_hold(&self, term: u64) -> u64 {
        self.committed_seen_in_term
            .range(..term)
            .map(|(_, &i)| i)
            .max()
            .unwrap_or(0)
    }

    /// §5.4.3 State Machine Safety: no two members apply different entries at an index, and
    /// their states agree after it.
    pub fn applied(&mut self, node: u64, e: &Entry, state_after: u64) -> Result<(), String> {
        let d = (entry_digest(e), state_after);
        self.applied_by.entry(e.index).or_insert((node, e.term));
        match self.applied.insert(e.index, d) {
            Some(old) if old != d => Err(format!(
                "state machine safety: member {node} applied a different entry or reached a \
                 different state at index {} (term {}): entry digest {:x} vs {:x} first \
                 applied by {:?} (member, term), state {:x} vs {:x}",
                e.index,
                e.term,
                d.0,
                old.0,
                self.applied_by.get(&e.index),
                d.1,
                old.1
            )),
            _ => Ok(()),
        }
    }

    /// A snapshot at `index` must carry the state every member reached there.
    pub fn snapshot_installed(&self, node: u64, index: u64, state: u64) -> Result<(), String> {
        match self.applied.get(&index) {
            Some(&(_, s)) if s != state => Err(format!(
                "state machine safety: member {node} installed a snapshot at {index} whose state \
                 differs from the applied state there"
            )),
            _ => Ok(()),
        }
    }

    /// Thesis §6.4: a read must observe every write committed before it started.
    /// Returns whether the answer was checked (false for a duplicate).
    pub fn read_answered(&mut self, node: u64, ctx: &[u8], index: u64) -> Result<bool, String> {
        let Some(min) = self.reads.remove(ctx) else {
            return Ok(false); // duplicate answer (the network duplicates messages)
        };
        self.reads_checked += 1;
        if index < min {
            return Err(format!(
                "linearizability: read {:?} at member {node} got read index {index}, but index \
                 {min} was already committed when the read started",
                String::from_utf8_lossy(ctx)
            ));
        }
        Ok(true)
    }

    /// Thesis §4.1: consecutive configurations must not allow two disjoint majorities.
    pub fn conf_applied(&mut self, index: u64, voters: BTreeSet<u64>) -> Result<(), String> {
        if let Some(old) = self.confs.get(&index) {
            if *old != voters {
                return Err(format!(
                    "membership: two configurations at index {index}: {old:?} vs {voters:?}"
                ));
            }
            return Ok(());
        }
        if let Some((pi, prev)) = self.confs.range(..index).next_back() {
            if disjoint_majorities_possible(prev, &voters) {
                return Err(format!(
                    "membership: configuration {voters:?} at {index} and {prev:?} at {pi} allow \
                     two disjoint majorities"
                ));
            }
        }
        if let Some((ni, next)) = self.confs.range(index + 1..).next() {
            if disjoint_majorities_possible(next, &voters) {
                return Err(format!(
                    "membership: configuration {voters:?} at {index} and {next:?} at {ni} allow \
                     two disjoint majorities"
                ));
            }
        }
        self.confs.insert(index, voters);
        Ok(())
    }
}
