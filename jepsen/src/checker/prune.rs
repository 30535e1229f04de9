//! Dropping indeterminate calls that nobody could have observed.
//!
//! An indeterminate call never returns, so the search may linearize it anywhere after its
//! invocation, or nowhere. Every such call therefore doubles the orderings to consider: a
//! history with many timeouts can make the search exponentially slower. Most of them do not
//! matter, though: a write of a unique value that no later operation ever reads changes nothing
//! anyone saw.
//!
//! **Rule.** Say an indeterminate mutation `m` *writes* `x` (`Write(v)`/`Cas` → `Some(v)`,
//! `Delete` → `None`). `m` is *needed* if
//! 1. a call with a known result that observes `x` (an ok read of `x`, a swapped Cas expecting
//!    `x`) returned at or after `m`'s invocation, or
//! 2. a Cas known not to have swapped returned at or after `m`'s invocation (`m` may be why it
//!    failed), or
//! 3. a *needed* indeterminate Cas expects `x` (it never returns, so it can always come later).
//!
//! Every indeterminate mutation that is not needed (the least set closed under 1-3) is removed.
//!
//! **Why removing them keeps the verdict.** A linearization without them is still one with
//! them (an indeterminate call may never take effect), so removal never hides a valid order.
//! Conversely, take a linearization `L` of the full history and delete from it the removed
//! calls, and every indeterminate Cas that did not swap (a no-op). A kept call `o` now sees a
//! different state only if the last mutation `p` before it in `L` was removed. But `o` was
//! placed after `p`, so `o` returned at or after `p`'s invocation: if `o` observed `p`'s value
//! (a read or a swapped Cas, known or indeterminate and kept) or was a failed Cas, `p` would be
//! needed. So `o` is a write or delete, which does not care what it overwrote. Every kept call
//! sees the same state as in `L`: the shorter order is valid too, and removal never hides a
//! violation.

use std::collections::{HashMap, HashSet};

use super::history::{OkValue, Op};
use super::model::{Operation, State};

/// Removes every indeterminate mutation that is not needed (see the module doc for the rule
/// and why it is sound).
pub(crate) fn drop_unobserved_indeterminate(operations: &mut Vec<Operation>) {
    // For each state, the latest return of a call with a known result that observed it; and
    // the latest return of a Cas known not to have swapped.
    let mut latest_observer: HashMap<State, u64> = HashMap::new();
    let mut latest_failed_cas = None::<u64>;
    for operation in operations.iter() {
        let Some(returned) = operation.returned else {
            continue;
        };
        if let Some(seen) = operation.observed_state() {
            let latest = latest_observer.entry(seen).or_insert(returned);
            *latest = (*latest).max(returned);
        }
        if matches!(
            (operation.op, operation.result),
            (Op::Cas { .. }, Some(OkValue::Cas(false)))
        ) {
            latest_failed_cas = Some(latest_failed_cas.map_or(returned, |t| t.max(returned)));
        }
    }
    // Rules 1 and 2, then rule 3 until nothing changes.
    let mut needed: Vec<bool> = operations
        .iter()
        .map(|operation| {
            let Some(written) = operation.written_state() else {
                return false; // an indeterminate read changes nothing
            };
            let observed = latest_observer
                .get(&written)
                .is_some_and(|&t| t >= operation.invoked);
            let failed_cas = latest_failed_cas.is_some_and(|t| t >= operation.invoked);
            operation.returned.is_none() && (observed || failed_cas)
        })
        .collect();
    let mut expected_by_needed_cas: HashSet<State> = HashSet::new();
    loop {
        for (operation, &is_needed) in operations.iter().zip(&needed) {
            if let (true, Op::Cas { expect, .. }) = (is_needed, operation.op) {
                expected_by_needed_cas.insert(Some(expect));
            }
        }
        let mut changed = false;
        for (operation, is_needed) in operations.iter().zip(needed.iter_mut()) {
            let newly = !*is_needed
                && operation.returned.is_none()
                && operation
                    .written_state()
                    .is_some_and(|written| expected_by_needed_cas.contains(&written));
            if newly {
                *is_needed = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut index = 0;
    operations.retain(|operation| {
        let keep = operation.returned.is_some() || needed[index];
        index += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(op: Op, result: OkValue, invoked: u64, returned: u64) -> Operation {
        Operation::answered(op, result, invoked, returned)
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
    fn indeterminate_calls_that_only_observe_each_other_are_dropped() {
        // A cycle of unknown Cas calls keeps nothing alive unless a known result observes it.
        let cycle = vec![
            unknown(Op::Write(0), 0),
            unknown(Op::Cas { expect: 0, new: 1 }, 1),
            unknown(Op::Cas { expect: 1, new: 0 }, 2),
            ok(Op::Read, OkValue::Read(Some(7)), 3, 4),
        ];
        let mut ops = cycle.clone();
        drop_unobserved_indeterminate(&mut ops);
        assert_eq!(ops.len(), 1);
        // Once a read sees 1, the Cas writing 1 is needed, so is the write of 0 it expects.
        let mut ops = cycle;
        ops.push(ok(Op::Read, OkValue::Read(Some(1)), 5, 6));
        drop_unobserved_indeterminate(&mut ops);
        assert_eq!(ops.len(), 5);
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
