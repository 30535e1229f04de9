//! Dropping indeterminate calls that nobody could have observed.
//!
//! An indeterminate call never returns, so the search may linearize it anywhere after its
//! invocation, or nowhere. Every such call therefore doubles the orderings to consider: a
//! history with many timeouts can make the search exponentially slower. Most of them do not
//! matter, though: a write of a unique value that no later operation ever reads changes nothing
//! anyone saw.
//!
//! **Rule.** An indeterminate mutation `m` that would leave state `x` (`Write(v)`/`Cas` →
//! `Some(v)`, `Delete` → `None`) is removed if
//! 1. every operation that could observe `x` (an ok read of `x`, a swapping or unknown Cas
//!    expecting `x`) returned strictly before `m` was invoked, and
//! 2. every Cas known not to have swapped returned strictly before `m` was invoked.
//!
//! **Why removing it keeps the verdict.** A linearization without `m` is still one with `m`
//! (an indeterminate call may never take effect), so removal never turns "impossible" into
//! "possible" wrongly in that direction. Conversely, take a linearization `L` that places `m`.
//! Between `m` and the next operation that changes the key, the key holds `x`. Nothing placed
//! there observes `x` (rule 1: such ops finished before `m` started), and no failed Cas is
//! placed there (rule 2). An unknown Cas placed there that did not swap changed nothing and can
//! be left out as well. The next change is a write or delete (which does not care what it
//! overwrote) or a Cas that swapped, and a swap would have observed `x`. So `L` without `m` (and
//! without those no-op Cas calls) is a valid linearization too, with every later state
//! unchanged. Removing `m` never hides a violation.
//!
//! Removing one call can make another unobserved (an unknown Cas stops "observing" its
//! `expect`), so the rule is applied until nothing changes.

use std::collections::HashMap;

use super::history::{OkValue, Op};
use super::model::{Operation, State};

/// Removes, until none is left, every indeterminate mutation no remaining operation could
/// have observed (see the module doc for the rule and why it is sound).
pub(crate) fn drop_unobserved_indeterminate(operations: &mut Vec<Operation>) {
    loop {
        // For each state, the latest return time of an operation that observes it (u64::MAX if
        // the observer never returns), and the latest return of a Cas known not to have swapped.
        let mut latest_observer: HashMap<State, u64> = HashMap::new();
        let mut latest_failed_cas = None::<u64>;
        for operation in operations.iter() {
            let returned = operation.returned.unwrap_or(u64::MAX);
            if let Some(seen) = operation.observed_state() {
                let latest = latest_observer.entry(seen).or_insert(returned);
                *latest = (*latest).max(returned);
            }
            if matches!(
                (operation.op, operation.result),
                (Op::Cas { .. }, Some(OkValue::Cas(false)))
            ) {
                // It swapped nothing and shows only "the value was not `expect`".
                latest_failed_cas = Some(latest_failed_cas.map_or(returned, |t| t.max(returned)));
            }
        }
        let observable_after = |operation: &Operation| -> bool {
            let written = operation
                .written_state()
                .expect("indeterminate calls mutate");
            let observed = latest_observer
                .get(&written)
                .is_some_and(|&t| t >= operation.invoked);
            let failed_cas = latest_failed_cas.is_some_and(|t| t >= operation.invoked);
            observed || failed_cas
        };
        let before = operations.len();
        operations.retain(|operation| operation.returned.is_some() || observable_after(operation));
        if operations.len() == before {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(op: Op, result: OkValue, invoked: u64, returned: u64) -> Operation {
        Operation {
            op,
            result: Some(result),
            invoked,
            returned: Some(returned),
            event: 0,
        }
    }

    fn unknown(op: Op, invoked: u64) -> Operation {
        Operation {
            op,
            result: None,
            invoked,
            returned: None,
            event: 0,
        }
    }

    #[test]
    fn an_unread_indeterminate_write_is_dropped() {
        let mut ops = vec![
            ok(Op::Read, OkValue::Read(Some(1)), 0, 1),
            unknown(Op::Write(9), 2),
            ok(Op::Read, OkValue::Read(None), 3, 4),
        ];
        drop_unobserved_indeterminate(&mut ops);
        assert_eq!(ops.len(), 2);
        assert!(ops.iter().all(|o| o.returned.is_some()));
    }

    #[test]
    fn a_read_indeterminate_write_is_kept() {
        let mut ops = vec![
            unknown(Op::Write(9), 2),
            ok(Op::Read, OkValue::Read(Some(9)), 3, 4),
        ];
        drop_unobserved_indeterminate(&mut ops);
        assert_eq!(ops.len(), 2);
    }

    #[test]
    fn a_read_that_finished_before_the_write_started_does_not_keep_it() {
        let mut ops = vec![
            ok(Op::Read, OkValue::Read(Some(9)), 0, 1),
            unknown(Op::Write(9), 2),
        ];
        drop_unobserved_indeterminate(&mut ops);
        assert_eq!(ops.len(), 1);
        // Concurrent (closed intervals: returned == invoked overlaps): kept.
        let mut ops = vec![
            ok(Op::Read, OkValue::Read(Some(9)), 0, 2),
            unknown(Op::Write(9), 2),
        ];
        drop_unobserved_indeterminate(&mut ops);
        assert_eq!(ops.len(), 2);
    }

    #[test]
    fn a_later_failed_cas_keeps_every_earlier_indeterminate_call() {
        // The write may be what made the Cas fail (key held 2, not 1).
        let mut ops = vec![
            ok(Op::Write(1), OkValue::Written, 0, 1),
            unknown(Op::Write(2), 2),
            ok(Op::Cas { expect: 1, new: 3 }, OkValue::Cas(false), 3, 4),
        ];
        drop_unobserved_indeterminate(&mut ops);
        assert_eq!(ops.len(), 3);
    }

    #[test]
    fn dropping_an_unknown_cas_can_unobserve_another_call() {
        // The unknown Cas expecting 5 keeps Write(5) alive until the Cas itself is dropped.
        let mut ops = vec![
            unknown(Op::Write(5), 0),
            unknown(Op::Cas { expect: 5, new: 6 }, 1),
            ok(Op::Read, OkValue::Read(None), 2, 3),
        ];
        drop_unobserved_indeterminate(&mut ops);
        // Cas(5 -> 6) is not observed (nobody reads 6) and goes first; then Write(5) follows.
        assert_eq!(ops.len(), 1);
        // A read of None keeps an unknown delete.
        let mut ops = vec![
            unknown(Op::Delete, 0),
            ok(Op::Read, OkValue::Read(None), 2, 3),
        ];
        drop_unobserved_indeterminate(&mut ops);
        assert_eq!(ops.len(), 2);
    }
}
