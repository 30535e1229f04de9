//! Network partitions as Jepsen describes them: a *grudge* says, for every node, which nodes'
//! packets it drops. Symmetric partitions come from splitting the nodes into components; the
//! "majorities ring" gives every node a majority view that no two nodes share. This module only
//! computes grudges (pure, tested); [`crate::netns`] installs them.

use crate::rng::Rng;

/// Which partition to make (Jepsen's `grudge` specs and `nemesis.clj` helpers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionKind {
    /// One node cut off from all others (`:one`, `partition-random-node`).
    IsolateOne,
    /// A clean split into a majority and a minority (`:majority`, `partition-random-halves`).
    Halves,
    /// Every node sees a majority, no two the same one (`:majorities-ring`); with fewer than 4
    /// nodes no such ring cuts anything, and [`Halves`](PartitionKind::Halves) is made instead.
    MajoritiesRing,
    /// Two halves plus one node that sees both (`bridge`).
    Bridge,
}

impl PartitionKind {
    /// Every kind, for random choice.
    pub const ALL: [PartitionKind; 4] = [
        PartitionKind::IsolateOne,
        PartitionKind::Halves,
        PartitionKind::MajoritiesRing,
        PartitionKind::Bridge,
    ];
}

/// For node `i`, `drops[i]` lists the nodes whose packets `i` drops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grudge {
    /// Indexed by node; each list sorted.
    pub drops: Vec<Vec<usize>>,
}

impl Grudge {
    /// The symmetric grudge in which nodes talk only within their own component.
    pub fn from_components(n: usize, components: &[Vec<usize>]) -> Grudge {
        let mut component_of = vec![usize::MAX; n];
        for (c, members) in components.iter().enumerate() {
            for &m in members {
                component_of[m] = c;
            }
        }
        let drops = (0..n)
            .map(|i| {
                (0..n)
                    .filter(|&j| j != i && component_of[j] != component_of[i])
                    .collect()
            })
            .collect();
        Grudge { drops }
    }

    /// True if `a` drops what `b` sends.
    pub fn drops(&self, a: usize, b: usize) -> bool {
        self.drops[a].contains(&b)
    }

    /// A short description for the test's log: `n0 drops [n1, n2]; n1 drops [n0]; …`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .drops
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.is_empty())
            .map(|(i, d)| {
                let names: Vec<String> = d.iter().map(|j| format!("n{j}")).collect();
                format!("n{i} drops [{}]", names.join(", "))
            })
            .collect();
        parts.join("; ")
    }
}

/// A random partition of `kind` over `n` nodes.
pub fn grudge(kind: PartitionKind, n: usize, rng: &mut Rng) -> Grudge {
    let mut nodes: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut nodes);
    match kind {
        PartitionKind::IsolateOne => {
            let (one, rest) = nodes.split_at(1);
            Grudge::from_components(n, &[one.to_vec(), rest.to_vec()])
        }
        PartitionKind::Halves => {
            let (minority, majority) = nodes.split_at(n / 2);
            Grudge::from_components(n, &[minority.to_vec(), majority.to_vec()])
        }
        // With 3 nodes every majority view is everyone: a ring cuts nothing, so split instead.
        PartitionKind::MajoritiesRing if n < 4 => grudge(PartitionKind::Halves, n, rng),
        PartitionKind::MajoritiesRing => majorities_ring(&nodes),
        PartitionKind::Bridge => {
            // Two halves, plus `nodes[0]` in both: it drops nothing, the halves drop each other.
            let rest = &nodes[1..];
            let (a, b) = rest.split_at(rest.len() / 2);
            let mut drops = vec![Vec::new(); n];
            for &x in a {
                drops[x] = b.to_vec();
            }
            for &y in b {
                drops[y] = a.to_vec();
            }
            for d in &mut drops {
                d.sort_unstable();
            }
            Grudge { drops }
        }
    }
}

/// Nodes in a ring (the shuffled order); each sees the nodes within ring distance `r` of it
/// and drops the rest, with `r` the smallest distance for which that view (`2r + 1` nodes) is a
/// majority. Symmetric (distance is), and with ≥ 4 nodes no two views are the same.
fn majorities_ring(ring: &[usize]) -> Grudge {
    let n = ring.len();
    let r = (n / 2).div_ceil(2);
    let mut drops = vec![Vec::new(); n];
    for (pos, &node) in ring.iter().enumerate() {
        for (other_pos, &other) in ring.iter().enumerate() {
            let d = pos.abs_diff(other_pos);
            if d.min(n - d) > r {
                drops[node].push(other);
            }
        }
        drops[node].sort_unstable();
    }
    Grudge { drops }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sees(g: &Grudge, i: usize) -> usize {
        g.drops.len() - g.drops[i].len()
    }

    #[test]
    fn components_drop_exactly_the_other_components() {
        let g = Grudge::from_components(5, &[vec![0, 3], vec![1, 2, 4]]);
        assert_eq!(g.drops[0], vec![1, 2, 4]);
        assert_eq!(g.drops[3], vec![1, 2, 4]);
        assert_eq!(g.drops[1], vec![0, 3]);
        assert!(!g.drops(1, 2));
        assert_eq!(g.describe().matches("drops").count(), 5);
    }

    #[test]
    fn every_kind_is_symmetric_and_cuts_something() {
        for n in [3usize, 5, 7] {
            for kind in PartitionKind::ALL {
                for seed in 0..20 {
                    let g = grudge(kind, n, &mut Rng::new(seed));
                    for a in 0..n {
                        assert!(!g.drops(a, a), "{kind:?} n={n}: a node drops itself");
                        for b in 0..n {
                            assert_eq!(g.drops(a, b), g.drops(b, a), "{kind:?} n={n} {g:?}");
                        }
                    }
                    assert!(
                        g.drops.iter().any(|d| !d.is_empty()),
                        "{kind:?} n={n} cuts nothing"
                    );
                }
            }
        }
    }

    #[test]
    fn halves_leave_exactly_one_majority() {
        for n in [3usize, 5] {
            let g = grudge(PartitionKind::Halves, n, &mut Rng::new(9));
            let majority = (0..n).filter(|&i| sees(&g, i) > n / 2).count();
            assert_eq!(majority, n / 2 + 1);
        }
    }

    #[test]
    fn in_a_majorities_ring_every_node_sees_a_majority_and_no_two_the_same() {
        for n in [4usize, 5, 6, 7] {
            let g = grudge(PartitionKind::MajoritiesRing, n, &mut Rng::new(4));
            let views: Vec<Vec<usize>> = (0..n)
                .map(|i| (0..n).filter(|&j| !g.drops(i, j)).collect())
                .collect();
            for v in &views {
                assert!(v.len() > n / 2, "n={n}: view {v:?} is not a majority");
            }
            assert!(views.iter().any(|v| v.len() < n), "n={n}: nothing cut");
            let mut distinct = views.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), n, "n={n}: two nodes share a view");
        }
    }

    #[test]
    fn the_bridge_node_drops_nothing_and_the_halves_drop_each_other() {
        let g = grudge(PartitionKind::Bridge, 5, &mut Rng::new(2));
        let bridges: Vec<usize> = (0..5).filter(|&i| g.drops[i].is_empty()).collect();
        assert_eq!(bridges.len(), 1);
        assert!((0..5)
            .filter(|&i| i != bridges[0])
            .all(|i| g.drops[i].len() == 2));
    }
}
