//! Turning "key 3 is not linearizable" into a handful of operations a human can read.
//!
//! A failing key may have thousands of operations. The explanation keeps only what the
//! contradiction needs, in two steps, each confirmed by re-running the search:
//!
//! 1. **Shortest failing prefix.** Linearizability is prefix-closed: if a history can be
//!    linearized, so can the history cut at any time `T` (operations invoked after `T`
//!    dropped, those still running at `T` made indeterminate). A binary search over the return
//!    times finds the first return after which the history is impossible.
//! 2. **Weakening.** Within that prefix, results are given up while the history stays
//!    impossible: an ok read or a Cas that did not swap is dropped (it only constrains), an ok
//!    write, delete or swapping Cas is made indeterminate (it may now happen anywhere after its
//!    invocation, or not at all). Both changes only allow more orders, so whatever stays
//!    impossible proves the original impossible too. Weakened writes that nobody observes then
//!    disappear by the rule in `prune.rs`. Candidates are tried in halving chunks
//!    (as in delta debugging), observations first, then mutations, down to one by one, so
//!    unless a trial ran out of time the result is 1-minimal: giving up any one more result
//!    would make it linearizable.
//!
//! Every step is sound on its own, so when the time budget runs out the explanation is simply
//! less reduced, never wrong.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::history::{describe_op, describe_outcome, Event, OkValue, Op, Outcome};
use super::model::{Operation, State};
use super::wgl::SearchResult;
use super::{check_key, Anomaly};

/// Builds the anomaly for `key`, whose `operations` (from `history`) the search found not
/// linearizable in `search_time`. Reduction stops at `deadline`.
pub(crate) fn explain(
    history: &[Event],
    key: u64,
    operations: &[Operation],
    search_time: Duration,
    deadline: Instant,
) -> Anomaly {
    let mut complete = true;
    // A trial that runs out of time proves nothing and is not applied. Each trial gets twice
    // what the search of the whole key took (at least 10 ms) and at most a quarter of what is
    // left, so a few hard trials cannot eat the whole budget.
    let trial_budget = (search_time * 2).max(Duration::from_millis(10));
    let mut proven_impossible = |candidate: &[Operation]| {
        let now = Instant::now();
        if now >= deadline {
            complete = false;
            return false;
        }
        let budget = trial_budget.min((deadline - now) / 4);
        match check_key(candidate, now + budget) {
            SearchResult::NotLinearizable => true,
            SearchResult::Linearizable => false,
            SearchResult::TimedOut => {
                complete = false;
                false
            }
        }
    };

    // 1. The first return time at which the cut history is impossible.
    let mut return_times: Vec<u64> = operations.iter().filter_map(|o| o.returned).collect();
    return_times.sort_unstable();
    return_times.dedup();
    let (mut lo, mut hi) = (0, return_times.len().saturating_sub(1));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if proven_impossible(&cut_at(operations, return_times[mid])) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let cut_time = return_times.get(hi).copied().unwrap_or(u64::MAX);
    let prefix = cut_at(operations, cut_time);

    // 2. Give up results while the prefix stays impossible: first the observations (dropping
    // failed Cas calls lets `prune.rs` remove the indeterminate writes they kept alive), then
    // the mutations whose value no remaining result observes (made indeterminate, they
    // vanish), then the others (each kept indeterminate call makes later trials slower).
    let mut weakened = vec![false; prefix.len()];
    for phase in [
        Phase::Observations,
        Phase::UnobservedMutations,
        Phase::ObservedMutations,
    ] {
        let observed: HashSet<State> = weaken(&prefix, &weakened)
            .iter()
            .filter(|o| o.returned.is_some())
            .filter_map(Operation::observed_state)
            .collect();
        let in_phase = |o: &Operation| match phase {
            Phase::Observations => !o.may_change_state(),
            Phase::UnobservedMutations => {
                o.may_change_state() && !o.written_state().is_some_and(|x| observed.contains(&x))
            }
            Phase::ObservedMutations => o.may_change_state(),
        };
        let candidates: Vec<usize> = (0..prefix.len())
            .filter(|&i| prefix[i].result.is_some() && !weakened[i] && in_phase(&prefix[i]))
            .collect();
        let mut chunk = candidates.len().div_ceil(2).max(1);
        while !candidates.is_empty() {
            for group in candidates.chunks(chunk) {
                if group.iter().all(|&i| weakened[i]) {
                    continue;
                }
                let mut trial = weakened.clone();
                for &i in group {
                    trial[i] = true;
                }
                if proven_impossible(&weaken(&prefix, &trial)) {
                    weakened = trial;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }
    let mut kept = weaken(&prefix, &weakened);
    super::prune::drop_unobserved_indeterminate(&mut kept);
    kept.sort_by_key(|o| (o.invoked, o.event));

    let trigger = prefix
        .iter()
        .filter(|o| o.returned == Some(cut_time))
        .min_by_key(|o| o.event)
        .map(|o| history[o.event]);
    let explanation = describe(history, key, &kept, trigger, operations.len(), complete);
    Anomaly {
        key,
        ops: kept.iter().map(|o| history[o.event]).collect(),
        explanation,
    }
}

/// The order in which results are given up.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Ok reads and Cas calls that did not swap.
    Observations,
    /// Ok mutations whose value no remaining known result observes.
    UnobservedMutations,
    /// The remaining ok mutations.
    ObservedMutations,
}

/// The history as it stood at time `cut`: operations invoked after it are gone, those still
/// running then have an unknown result (and running reads, which change nothing, are gone).
fn cut_at(operations: &[Operation], cut: u64) -> Vec<Operation> {
    operations
        .iter()
        .filter(|o| o.invoked <= cut)
        .filter_map(|o| match o.returned {
            Some(returned) if returned <= cut => Some(*o),
            _ if o.op == Op::Read => None,
            _ => Some(Operation {
                result: None,
                returned: None,
                ..*o
            }),
        })
        .collect()
}

/// `operations` with the results marked in `weakened` given up: reads and Cas calls that did
/// not swap are dropped, mutations become indeterminate.
fn weaken(operations: &[Operation], weakened: &[bool]) -> Vec<Operation> {
    operations
        .iter()
        .zip(weakened)
        .filter_map(|(o, &weak)| {
            if !weak {
                return Some(*o);
            }
            match (o.op, o.result) {
                (Op::Read, _) | (Op::Cas { .. }, Some(OkValue::Cas(false))) => None,
                _ => Some(Operation {
                    result: None,
                    returned: None,
                    ..*o
                }),
            }
        })
        .collect()
}

/// The human-readable text of an anomaly.
fn describe(
    history: &[Event],
    key: u64,
    kept: &[Operation],
    trigger: Option<Event>,
    total: usize,
    complete: bool,
) -> String {
    let origin = kept.iter().map(|o| o.invoked).min().unwrap_or(0);
    let at = |t: u64| format!("+{:.6} ms", t.saturating_sub(origin) as f64 / 1e6);
    let what = match kept.len() {
        1 => "this operation cannot be linearized: no order of it".to_string(),
        n => format!("these {n} operations cannot be linearized: no order of them"),
    };
    let mut text = format!(
        "key {key}: {what} that respects real time (an operation that returned before another \
         was invoked comes first) lets a register that starts absent give every result shown."
    );
    if let Some(event) = trigger {
        text.push_str(&format!(
            " The history of this key first becomes impossible when client {}'s {} returns ({}) at {}.",
            event.client,
            describe_op(&event.op),
            describe_outcome(&event.outcome),
            at(event.returned)
        ));
    }
    text.push_str(&format!(" Reduced from {total} operations on this key"));
    if !complete {
        text.push_str(" (the time limit stopped the reduction early)");
    }
    text.push_str(".\n");
    for operation in kept {
        let event = &history[operation.event];
        let returned = match event.outcome {
            Outcome::Indeterminate => "never returned".to_string(),
            _ => at(event.returned),
        };
        text.push_str(&format!(
            "  [{}, {}] client {}: {} {}",
            at(event.invoked),
            returned,
            event.client,
            describe_op(&event.op),
            describe_outcome(&event.outcome)
        ));
        if operation.result.is_none() && event.outcome != Outcome::Indeterminate {
            text.push_str("  (result not needed: treated as unknown)");
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "Times are relative to the first invocation shown ({origin} ns)."
    ));
    text
}
