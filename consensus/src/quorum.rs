//! Majority arithmetic (§5.2, §5.3): the commit index a majority has reached, and the outcome
//! of an election. Pure functions over a voter set.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::NodeId;

/// The outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A majority granted: the candidate wins (§5.2).
    Won,
    /// A majority refused: the candidate cannot win this term.
    Lost,
    /// Still undecided.
    Pending,
}

/// The size of a majority of `n` voters.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// The largest index that a majority of `voters` has acknowledged, given each voter's match
/// index (missing voters count as 0). §5.3: "a log entry is committed once the leader that
/// created the entry has replicated it on a majority of the servers".
pub fn committed_index(voters: &BTreeSet<NodeId>, matched: impl Fn(NodeId) -> u64) -> u64 {
    if voters.is_empty() {
        // No voters means no quorum can be formed; nothing can be committed by counting.
        return 0;
    }
    let mut idx: Vec<u64> = voters.iter().map(|&id| matched(id)).collect();
    idx.sort_unstable_by(|a, b| b.cmp(a));
    // Sorted descending, the value at position majority-1 is held by a majority.
    idx[majority(idx.len()) - 1]
}

/// Counts `votes` (true = granted) among `voters` (§5.2: "a candidate wins an election if it
/// receives votes from a majority of the servers in the full cluster for the same term").
pub fn vote_result(voters: &BTreeSet<NodeId>, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    let q = majority(voters.len());
    let (mut granted, mut rejected) = (0, 0);
    for id in voters {
        match votes.get(id) {
            Some(true) => granted += 1,
            Some(false) => rejected += 1,
            None => {}
        }
    }
    if granted >= q {
        VoteResult::Won
    } else if voters.len() - rejected >= q {
        VoteResult::Pending
    } else {
        VoteResult::Lost
    }
}

/// True if some majority of `a` and some majority of `b` are disjoint: two leaders could then
/// be elected or two commits made without hearing of each other. A safe membership change
/// never allows this between configurations that can be in force at the same time (§6 thesis
/// §4.1: adding or removing one server at a time keeps majorities overlapping).
pub fn disjoint_majorities_possible(a: &BTreeSet<NodeId>, b: &BTreeSet<NodeId>) -> bool {
    let common = a.intersection(b).count();
    let only_a = a.len() - common;
    let only_b = b.len() - common;
    // Each side picks its majority from members the other side lacks first; it needs the
    // shared members only for the remainder. Disjoint iff the remainders fit into `common`.
    let need_a = majority(a.len()).saturating_sub(only_a);
    let need_b = majority(b.len()).saturating_sub(only_b);
    need_a + need_b <= common
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn committed_index_is_the_majority_match() {
        let v = set(&[1, 2, 3]);
        let m = |id| [0, 5, 3, 1][id as usize];
        assert_eq!(committed_index(&v, m), 3);
        let v = set(&[1, 2, 3, 4]);
        let m = |id| [0, 5, 3, 1, 9][id as usize];
        assert_eq!(committed_index(&v, m), 3, "4 voters need 3 acks");
    }

    #[test]
    fn vote_result_counts_majorities() {
        let v = set(&[1, 2, 3]);
        let mut votes = BTreeMap::new();
        votes.insert(1, true);
        assert_eq!(vote_result(&v, &votes), VoteResult::Pending);
        votes.insert(2, false);
        assert_eq!(vote_result(&v, &votes), VoteResult::Pending);
        votes.insert(3, true);
        assert_eq!(vote_result(&v, &votes), VoteResult::Won);
        votes.insert(3, false);
        assert_eq!(vote_result(&v, &votes), VoteResult::Lost);
    }

    #[test]
    fn one_server_changes_keep_majorities_overlapping() {
        assert!(!disjoint_majorities_possible(
            &set(&[1, 2, 3]),
            &set(&[1, 2, 3, 4])
        ));
        assert!(!disjoint_majorities_possible(
            &set(&[1, 2, 3, 4]),
            &set(&[1, 2, 3])
        ));
        assert!(!disjoint_majorities_possible(
            &set(&[1, 2, 3]),
            &set(&[1, 2])
        ));
        // Two changes at once can split: {1,2} vs {3,4,5} ⊂ {1..5} with majority {3,4,5}.
        assert!(disjoint_majorities_possible(
            &set(&[1, 2, 3]),
            &set(&[1, 2, 3, 4, 5])
        ));
        assert!(disjoint_majorities_possible(&set(&[1, 2]), &set(&[3, 4])));
    }
}
