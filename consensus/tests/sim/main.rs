//! The deterministic cluster simulator (one seed drives everything) and its tests.
//!
//! * `simulation_holds_all_invariants`: many seeds (KEEL_SIM_SEEDS=N for a soak,
//!   KEEL_SIM_SEED=x to replay one); after every step the checker verifies election safety,
//!   log matching, leader completeness, state machine safety, that no committed entry is lost,
//!   that ReadIndex reads are linearizable and that configurations never allow disjoint
//!   majorities; after faults heal, a proposal must commit everywhere within a bound.
//! * `mutation_*`: the same simulator must catch a core with one rule deliberately broken.

mod checker;
mod cluster;
mod network;

use cluster::{Sim, SimParams, Stats};
use keel_consensus::Mutations;

fn run_seed(seed: u64, mutations: Mutations) -> Result<Stats, String> {
    let p = SimParams::random(seed, mutations);
    let outcome = std::panic::catch_unwind(|| Sim::new(p).run());
    match outcome {
        Ok(r) => r,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panic: {msg}"))
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

const CI_SEEDS: u64 = 5000;

#[test]
fn simulation_holds_all_invariants() {
    let seeds: Vec<u64> = match env_u64("KEEL_SIM_SEED") {
        Some(s) => vec![s],
        None => {
            let first = env_u64("KEEL_SIM_FIRST").unwrap_or(1);
            (first..first + env_u64("KEEL_SIM_SEEDS").unwrap_or(CI_SEEDS)).collect()
        }
    };
    let mut total = Stats::default();
    for &seed in &seeds {
        match run_seed(seed, Mutations::default()) {
            Ok(s) => total.add(&s),
            Err(e) => panic!(
                "seed {seed} failed: {e}\nreplay with: KEEL_SIM_SEED={seed} cargo test --release \
                 -p keel-consensus --test sim simulation_holds_all_invariants"
            ),
        }
    }
    eprintln!("{} seeds: {total:?}", seeds.len());
    // The runs must actually exercise the interesting paths, or the checks prove nothing.
    if seeds.len() >= 100 {
        assert!(total.elections > seeds.len() as u64, "too few elections");
    }
    if seeds.len() >= 1000 {
        // Every fault and every kind of event the checkers depend on must actually occur
        // (measured over the CI budget of 5,000 seeds; see the README for the figures).
        let zero: Vec<&str> = total
            .counters()
            .iter()
            .filter(|(_, v)| *v == 0)
            .map(|(k, _)| *k)
            .collect();
        assert!(
            zero.is_empty(),
            "never exercised over {} seeds: {zero:?}",
            seeds.len()
        );
    }
}

#[test]
fn same_seed_replays_identically() {
    for seed in [7, 99, 12345] {
        let a = run_seed(seed, Mutations::default()).unwrap();
        let b = run_seed(seed, Mutations::default()).unwrap();
        assert_eq!(a, b, "seed {seed} is not deterministic");
    }
    let a = run_seed(1, Mutations::default()).unwrap();
    let b = run_seed(2, Mutations::default()).unwrap();
    assert_ne!(a.fingerprint, b.fingerprint, "different seeds, same run?");
}

/// Runs seeds until the checker reports a violation; returns (seed, message).
fn find_violation(mutations: Mutations, budget: u64) -> Option<(u64, String)> {
    for seed in 1..=budget {
        if let Err(e) = run_seed(seed, mutations) {
            return Some((seed, e));
        }
    }
    None
}

fn mutation_budget() -> u64 {
    env_u64("KEEL_MUTATION_SEEDS").unwrap_or(1500)
}

#[test]
fn mutation_commit_previous_term_by_counting_is_caught() {
    let m = Mutations {
        commit_previous_term_by_counting: true,
        ..Default::default()
    };
    let found = find_violation(m, mutation_budget());
    eprintln!("commit_previous_term_by_counting: {found:?}");
    let (seed, msg) = found.expect("§5.4.2 violation went undetected");
    assert!(
        msg.contains("committed entry lost")
            || msg.contains("state machine safety")
            || msg.contains("leader completeness")
            || msg.contains("conflicts with committed"),
        "seed {seed}: unexpected failure kind: {msg}"
    );
}

#[test]
fn mutation_vote_without_log_check_is_caught() {
    let m = Mutations {
        vote_without_log_check: true,
        ..Default::default()
    };
    let found = find_violation(m, mutation_budget());
    eprintln!("vote_without_log_check: {found:?}");
    let (seed, msg) = found.expect("§5.4.1 violation went undetected");
    assert!(
        msg.contains("committed entry lost")
            || msg.contains("state machine safety")
            || msg.contains("leader completeness")
            || msg.contains("conflicts with committed"),
        "seed {seed}: unexpected failure kind: {msg}"
    );
}

#[test]
fn mutation_read_index_without_heartbeat_is_caught() {
    let m = Mutations {
        read_index_without_heartbeat: true,
        ..Default::default()
    };
    let found = find_violation(m, mutation_budget());
    eprintln!("read_index_without_heartbeat: {found:?}");
    let (seed, msg) = found.expect("§6.4 violation went undetected");
    assert!(
        msg.contains("linearizability"),
        "seed {seed}: unexpected failure kind: {msg}"
    );
}

/// Soak tool (KEEL_MUTATION_RATE=N): how many of seeds 1..=N catch each mutation.
#[test]
fn mutation_detection_rate() {
    let Some(n) = env_u64("KEEL_MUTATION_RATE") else {
        return;
    };
    let all = [
        Mutations {
            commit_previous_term_by_counting: true,
            ..Default::default()
        },
        Mutations {
            vote_without_log_check: true,
            ..Default::default()
        },
        Mutations {
            read_index_without_heartbeat: true,
            ..Default::default()
        },
    ];
    for m in all {
        let caught: Vec<u64> = (1..=n).filter(|&s| run_seed(s, m).is_err()).collect();
        eprintln!(
            "{m:?}: {} of {n} seeds, first {:?}",
            caught.len(),
            &caught[..caught.len().min(5)]
        );
    }
}
