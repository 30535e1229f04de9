//! # The linearizability checker
//!
//! Decides whether a recorded history of reads, writes, compare-and-sets and deletes on a set
//! of keys could have come from a store where every call took effect atomically at one instant
//! between its invocation and its return (Herlihy & Wing's *linearizability*), each key
//! behaving as a single register that starts absent (see `model.rs`).
//!
//! ```
//! use keel_jepsen::checker::{check, Event, Op, OkValue, Outcome, Verdict};
//! use std::time::Duration;
//!
//! let history = [
//!     Event { client: 1, key: 7, op: Op::Write(1), invoked: 0, returned: 10, outcome: Outcome::Ok(OkValue::Written) },
//!     // Invoked after the write returned, yet it sees the key absent: a stale read.
//!     Event { client: 2, key: 7, op: Op::Read, invoked: 20, returned: 30, outcome: Outcome::Ok(OkValue::Read(None)) },
//! ];
//! match check(&history, Duration::from_secs(10)) {
//!     Verdict::NotLinearizable(anomaly) => assert_eq!(anomaly.key, 7),
//!     other => panic!("expected a violation, got {other:?}"),
//! }
//! ```
//!
//! ## How
//! - **One key at a time** ("P-compositionality", Herlihy & Wing §3.3; Horn & Kroening 2015):
//!   a history is linearizable iff each key's sub-history is, so keys are checked separately,
//!   which turns one huge search into several small ones.
//! - **Calls that constrain nothing are dropped**: `Failed` calls (they did not happen),
//!   indeterminate reads (nobody saw their answer), and indeterminate writes whose effect no
//!   later call could have observed (`prune.rs`).
//! - **The search** is Wing & Gong's with Lowe's cache, as in Porcupine (`wgl.rs`): depth-first
//!   over which pending call to linearize next, with undo on backtrack and a cache of
//!   (linearized set, register value) pairs already explored.
//! - **Explaining a violation** (`explain.rs`): the failing key's history is cut at the first
//!   return that makes it impossible, then reduced to the few calls the contradiction needs.
//!
//! Indeterminate calls (timeouts, lost connections) may take effect at any time after their
//! invocation or never; intervals are closed, so calls that touch at a nanosecond overlap.
//!
//! Linearizability checking is NP-complete; a time limit turns a search that runs too long into
//! [`Verdict::Unknown`]. Measured speed: see `src/checker/README.md`.

mod explain;
mod history;
mod model;
mod prune;
mod wgl;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use history::{validate, Event, HistoryError, OkValue, Op, Outcome};

use model::Operation;
use wgl::SearchResult;

/// Reducing a violation to an [`Anomaly`] may take at least this long (if the time limit
/// allows), or 20 times what finding it took, whichever is longer.
const EXPLAIN_AT_LEAST: Duration = Duration::from_secs(1);

/// What [`check`] concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's history can be linearized.
    Linearizable,
    /// Some key's history cannot be (the smallest such key is reported).
    NotLinearizable(Anomaly),
    /// The time limit was hit before every key was decided, and no violation was found in the
    /// keys that were.
    Unknown,
}

/// Evidence that one key's history is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// The key whose history cannot be linearized.
    pub key: u64,
    /// The events (exactly as recorded, in invocation order) that together cannot be
    /// linearized: the key's history cut at the first return that makes it impossible, then
    /// reduced to the calls the contradiction needs. Checking just these events is
    /// `NotLinearizable` too.
    pub ops: Vec<Event>,
    /// A readable account: the events with their times and results, and which call's return
    /// made the history impossible.
    pub explanation: String,
}

/// Checks whether `history` is linearizable, each key behaving as a register that starts
/// absent.
///
/// Gives up with [`Verdict::Unknown`] once `time_limit` has passed. When a violation is found,
/// reducing it to a readable [`Anomaly`] takes at most 20 times as long as finding it, at least
/// one second, and never more than `time_limit` (a reduction cut short is less reduced, never
/// wrong). A malformed history (see [`validate`]) is reported as an anomaly naming the bad
/// event; call [`validate`] first to tell a broken harness from a broken store.
pub fn check(history: &[Event], time_limit: Duration) -> Verdict {
    let start = Instant::now();
    let far_future = start + Duration::from_secs(100 * 365 * 24 * 3600);
    let deadline = start.checked_add(time_limit).unwrap_or(far_future);
    if let Err(error) = validate(history) {
        let event = match &error {
            HistoryError::ReturnedBeforeInvoked { event, .. }
            | HistoryError::OutcomeDoesNotMatchOp { event, .. } => *event,
        };
        return Verdict::NotLinearizable(Anomaly {
            key: event.key,
            ops: vec![event],
            explanation: format!("malformed history: {error}"),
        });
    }

    let mut by_key: BTreeMap<u64, Vec<Operation>> = BTreeMap::new();
    for index in 0..history.len() {
        if let Some(operation) = Operation::from_event(history, index) {
            by_key
                .entry(history[index].key)
                .or_default()
                .push(operation);
        }
    }
    let mut timed_out = false;
    for (key, operations) in by_key {
        let search_start = Instant::now();
        match check_key(&operations, deadline) {
            SearchResult::Linearizable => {}
            // Keep going: a later key may still be decided (and fail) quickly.
            SearchResult::TimedOut => timed_out = true,
            SearchResult::NotLinearizable => {
                let search_time = search_start.elapsed();
                let budget = (search_time * 20).max(EXPLAIN_AT_LEAST).min(time_limit);
                let explain_deadline = Instant::now().checked_add(budget).unwrap_or(far_future);
                let anomaly =
                    explain::explain(history, key, &operations, search_time, explain_deadline);
                return Verdict::NotLinearizable(anomaly);
            }
        }
    }
    if timed_out {
        Verdict::Unknown
    } else {
        Verdict::Linearizable
    }
}

/// Checks one key's operations: drops the indeterminate calls nobody could observe, then
/// searches.
fn check_key(operations: &[Operation], deadline: Instant) -> SearchResult {
    let mut operations = operations.to_vec();
    prune::drop_unobserved_indeterminate(&mut operations);
    wgl::search(&operations, deadline)
}
