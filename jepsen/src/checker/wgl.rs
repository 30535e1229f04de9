//! The search: Wing & Gong's linearizability check with Lowe's memoization, as Porcupine
//! implements it (`checkSingle` in anishathalye/porcupine's `checker.go`).
//!
//! A history of one key is turned into a list of entries, one *call* entry per operation and
//! one *return* entry per operation that returned, sorted by time. Intervals are closed: at
//! equal times calls come before returns, so an operation invoked at the very nanosecond
//! another returned counts as concurrent with it.
//!
//! The search walks the list from the head, keeping the register's state and a stack of the
//! operations it has linearized so far:
//! - at a **call**, it tries to linearize that operation now: if the model accepts its result
//!   from the current state, and the pair (set of linearized operations, new state) was never
//!   reached before, the operation is pushed, its call and return entries are *lifted* out of
//!   the list, and the walk restarts at the head. Otherwise it moves on to the next entry
//!   (trying a later-invoked concurrent operation first).
//! - at a **return**, the operation that returned was not linearized although everything
//!   after it must come after it: the last choice was wrong. The search pops it, restores the
//!   state, puts the entries back (*unlift*, in reverse order, like dancing links) and resumes
//!   just after that operation's call entry, trying the next candidate.
//! - it succeeds once every operation that returned has been linearized (operations that never
//!   returned may stay out: they may never have taken effect), and fails when it must
//!   backtrack with nothing on the stack.
//!
//! The cache of (linearized set, state) pairs is what makes this practical (Lowe, "Testing for
//! linearizability", 2017): two paths that linearized the same operations and left the same
//! value have the same future, so the second one is skipped.

use std::collections::HashSet;
use std::time::Instant;

use super::model::{step, Operation, State};

/// What the search concluded about one key's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SearchResult {
    /// Some order of the operations respects real time and the register's rules.
    Linearizable,
    /// No such order exists.
    NotLinearizable,
    /// The deadline passed before the search finished.
    TimedOut,
}

/// How many entries the search walks between two looks at the clock.
const STEPS_BETWEEN_CLOCK_CHECKS: u64 = 1024;

/// "No entry": the end of the list.
const NONE: usize = usize::MAX;

/// The head of the list, a sentinel that is never lifted.
const HEAD: usize = 0;

/// One node of the doubly linked list of calls and returns.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Index of the operation in the slice being checked.
    operation: usize,
    /// True for a call entry, false for a return entry.
    is_call: bool,
    /// For a call: its return entry, or [`NONE`] if the operation never returned.
    return_entry: usize,
    prev: usize,
    next: usize,
}

/// The call/return list with O(1) lift and unlift.
struct EntryList {
    entries: Vec<Entry>,
}

impl EntryList {
    /// Builds the time-sorted list for `operations`, behind a [`HEAD`] sentinel.
    fn new(operations: &[Operation]) -> EntryList {
        // (time, 0 = call / 1 = return, operation): calls before returns at equal times.
        let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(operations.len() * 2);
        for (i, operation) in operations.iter().enumerate() {
            events.push((operation.invoked, 0, i));
            if let Some(returned) = operation.returned {
                events.push((returned, 1, i));
            }
        }
        events.sort_unstable();
        let sentinel = Entry {
            operation: NONE,
            is_call: false,
            return_entry: NONE,
            prev: NONE,
            next: NONE,
        };
        let mut entries = vec![sentinel; events.len() + 1];
        let mut call_entry_of = vec![NONE; operations.len()];
        for (position, &(_, kind, operation)) in events.iter().enumerate() {
            let index = position + 1;
            entries[index].operation = operation;
            entries[index].is_call = kind == 0;
            if kind == 0 {
                call_entry_of[operation] = index;
            } else {
                entries[call_entry_of[operation]].return_entry = index;
            }
        }
        let last = entries.len() - 1;
        for (index, entry) in entries.iter_mut().enumerate() {
            entry.prev = if index == HEAD { NONE } else { index - 1 };
            entry.next = if index == last { NONE } else { index + 1 };
        }
        EntryList { entries }
    }

    fn first(&self) -> usize {
        self.entries[HEAD].next
    }

    fn unlink(&mut self, index: usize) {
        let Entry { prev, next, .. } = self.entries[index];
        self.entries[prev].next = next;
        if next != NONE {
            self.entries[next].prev = prev;
        }
    }

    fn relink(&mut self, index: usize) {
        let Entry { prev, next, .. } = self.entries[index];
        self.entries[prev].next = index;
        if next != NONE {
            self.entries[next].prev = index;
        }
    }

    /// Takes a call entry and its return entry out of the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        let ret = self.entries[call].return_entry;
        if ret != NONE {
            self.unlink(ret);
        }
    }

    /// Undoes the matching [`lift`](Self::lift); lifts must be undone in reverse order.
    fn unlift(&mut self, call: usize) {
        let ret = self.entries[call].return_entry;
        if ret != NONE {
            self.relink(ret);
        }
        self.relink(call);
    }
}

/// A fixed-size set of operation indices.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Bitset(Box<[u64]>);

impl Bitset {
    fn new(bits: usize) -> Bitset {
        Bitset(vec![0; bits.div_ceil(64)].into_boxed_slice())
    }
    fn set(&mut self, bit: usize) {
        self.0[bit / 64] |= 1 << (bit % 64);
    }
    fn clear(&mut self, bit: usize) {
        self.0[bit / 64] &= !(1 << (bit % 64));
    }
    fn contains(&self, bit: usize) -> bool {
        self.0[bit / 64] & (1 << (bit % 64)) != 0
    }
}

/// For each never-returning operation, the previous never-returning operation with exactly the
/// same request (in invocation order), if any.
///
/// Such twins are interchangeable once both are invoked: any linearization that uses the later
/// one while the earlier one is unused can use the earlier one at the same point instead. So the
/// search only linearizes a twin after its predecessor, which prunes the orderings that differ
/// only in which twin was used (without it, k identical timed-out writes multiply the search by
/// up to 2^k). Since lifts are undone in reverse order, the linearized twins of a chain are
/// always a prefix of it.
fn earlier_twins(operations: &[Operation]) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..operations.len())
        .filter(|&i| operations[i].returned.is_none())
        .collect();
    order.sort_by_key(|&i| (operations[i].invoked, i));
    let mut last_of_kind = std::collections::HashMap::new();
    let mut twin = vec![None; operations.len()];
    for i in order {
        twin[i] = last_of_kind.insert(operations[i].op, i);
    }
    twin
}

/// Decides whether `operations` (all on one key) can be linearized against a register that
/// starts absent, giving up with [`SearchResult::TimedOut`] at `deadline`.
pub(crate) fn search(operations: &[Operation], deadline: Instant) -> SearchResult {
    let mut unreturned_left = operations.iter().filter(|o| o.returned.is_some()).count();
    if unreturned_left == 0 {
        return SearchResult::Linearizable;
    }
    let mut list = EntryList::new(operations);
    let twin = earlier_twins(operations);
    let mut linearized = Bitset::new(operations.len());
    let mut seen: HashSet<(Bitset, State)> = HashSet::new();
    // The linearized calls, with the state from before each.
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state: State = None;
    let mut entry = list.first();
    let mut steps: u64 = 0;
    loop {
        steps += 1;
        if steps % STEPS_BETWEEN_CLOCK_CHECKS == 0 && Instant::now() >= deadline {
            return SearchResult::TimedOut;
        }
        if entry == NONE {
            // Everything before the current position is a call that could not be linearized
            // there, and no return entry is left: only never-returning calls remain, and
            // `unreturned_left` counted down to zero before we got here.
            debug_assert_eq!(unreturned_left, 0);
            return SearchResult::Linearizable;
        }
        let Entry {
            operation: index,
            is_call,
            ..
        } = list.entries[entry];
        if is_call {
            let operation = &operations[index];
            // An identical earlier call that is still pending goes first (see `earlier_twins`).
            let twin_waits = twin[index].is_some_and(|earlier| !linearized.contains(earlier));
            let next = if twin_waits {
                None
            } else {
                step(state, operation)
            };
            if let Some(next_state) = next {
                linearized.set(index);
                if seen.insert((linearized.clone(), next_state)) {
                    stack.push((entry, state));
                    state = next_state;
                    list.lift(entry);
                    if operation.returned.is_some() {
                        unreturned_left -= 1;
                        if unreturned_left == 0 {
                            return SearchResult::Linearizable;
                        }
                    }
                    entry = list.first();
                    continue;
                }
                linearized.clear(index);
            }
            entry = list.entries[entry].next;
        } else {
            // This operation returned but is not linearized: undo the last choice.
            let Some((call, previous_state)) = stack.pop() else {
                return SearchResult::NotLinearizable;
            };
            let undone = list.entries[call].operation;
            linearized.clear(undone);
            state = previous_state;
            list.unlift(call);
            if operations[undone].returned.is_some() {
                unreturned_left += 1;
            }
            entry = list.entries[call].next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::history::{OkValue, Op};
    use std::time::Duration;

    fn ok(op: Op, result: OkValue, invoked: u64, returned: u64) -> Operation {
        Operation::answered(op, result, invoked, returned)
    }

    fn run(operations: &[Operation]) -> SearchResult {
        search(operations, Instant::now() + Duration::from_secs(10))
    }

    #[test]
    fn empty_and_sequential_histories() {
        assert_eq!(run(&[]), SearchResult::Linearizable);
        let ops = [
            ok(Op::Read, OkValue::Read(None), 0, 1),
            ok(Op::Write(1), OkValue::Written, 2, 3),
            ok(Op::Read, OkValue::Read(Some(1)), 4, 5),
            ok(Op::Delete, OkValue::Deleted, 6, 7),
            ok(Op::Read, OkValue::Read(None), 8, 9),
        ];
        assert_eq!(run(&ops), SearchResult::Linearizable);
    }

    #[test]
    fn the_search_reorders_concurrent_calls() {
        // The read is invoked first but must be linearized after the write.
        let ops = [
            ok(Op::Read, OkValue::Read(Some(1)), 0, 10),
            ok(Op::Write(1), OkValue::Written, 1, 2),
        ];
        assert_eq!(run(&ops), SearchResult::Linearizable);
    }

    #[test]
    fn equal_times_count_as_concurrent() {
        // The read returns at the nanosecond the write is invoked: closed intervals overlap.
        let ops = [
            ok(Op::Read, OkValue::Read(Some(1)), 0, 5),
            ok(Op::Write(1), OkValue::Written, 5, 6),
        ];
        assert_eq!(run(&ops), SearchResult::Linearizable);
        let ops = [
            ok(Op::Read, OkValue::Read(Some(1)), 0, 4),
            ok(Op::Write(1), OkValue::Written, 5, 6),
        ];
        assert_eq!(run(&ops), SearchResult::NotLinearizable);
    }

    #[test]
    fn backtracking_finds_the_only_order() {
        // Writes 1 and 2 overlap; reads show 2 then 1, so the order must be 2, read, 1, read.
        let ops = [
            ok(Op::Write(1), OkValue::Written, 0, 10),
            ok(Op::Write(2), OkValue::Written, 0, 10),
            ok(Op::Read, OkValue::Read(Some(2)), 1, 2),
            ok(Op::Read, OkValue::Read(Some(1)), 3, 4),
        ];
        assert_eq!(run(&ops), SearchResult::Linearizable);
        let ops = [
            ok(Op::Write(1), OkValue::Written, 0, 10),
            ok(Op::Write(2), OkValue::Written, 0, 10),
            ok(Op::Read, OkValue::Read(Some(2)), 1, 2),
            ok(Op::Read, OkValue::Read(Some(1)), 3, 4),
            ok(Op::Read, OkValue::Read(Some(2)), 5, 6),
        ];
        assert_eq!(run(&ops), SearchResult::NotLinearizable);
    }

    #[test]
    fn never_returning_calls_may_be_left_out_or_placed_late() {
        let unknown = Operation {
            op: Op::Write(7),
            result: None,
            invoked: 0,
            returned: None,
            event: 0,
        };
        let ops = [unknown, ok(Op::Read, OkValue::Read(None), 1, 2)];
        assert_eq!(run(&ops), SearchResult::Linearizable);
        let ops = [
            unknown,
            ok(Op::Read, OkValue::Read(None), 1, 2),
            ok(Op::Read, OkValue::Read(Some(7)), 3, 4),
        ];
        assert_eq!(run(&ops), SearchResult::Linearizable);
        let ops = [
            unknown,
            ok(Op::Read, OkValue::Read(Some(7)), 1, 2),
            ok(Op::Read, OkValue::Read(None), 3, 4),
        ];
        assert_eq!(run(&ops), SearchResult::NotLinearizable);
    }

    #[test]
    fn identical_timed_out_calls_do_not_multiply_the_search() {
        // 40 identical timed-out writes and an impossible read: without treating the writes as
        // interchangeable the search would try all 2^40 subsets of them.
        let unknown = Operation {
            op: Op::Write(1),
            result: None,
            invoked: 0,
            returned: None,
            event: 0,
        };
        let mut ops = vec![unknown; 40];
        ops.push(ok(Op::Write(2), OkValue::Written, 0, 10));
        ops.push(ok(Op::Read, OkValue::Read(Some(3)), 20, 21));
        assert_eq!(run(&ops), SearchResult::NotLinearizable);
        // And they still count: the read of 1 after the write of 2 is explained by one of them.
        ops.pop();
        ops.push(ok(Op::Read, OkValue::Read(Some(1)), 20, 21));
        ops.push(ok(Op::Read, OkValue::Read(Some(2)), 22, 23));
        assert_eq!(run(&ops), SearchResult::NotLinearizable);
        ops.pop();
        ops.push(ok(Op::Write(2), OkValue::Written, 22, 23));
        ops.push(ok(Op::Read, OkValue::Read(Some(1)), 24, 25));
        assert_eq!(run(&ops), SearchResult::Linearizable);
    }

    #[test]
    fn a_passed_deadline_gives_up() {
        // 40 overlapping writes of distinct values and a read of a value nobody wrote: the
        // search must explore every order of the writes (the cache bounds it to 2^40 subsets).
        let mut ops: Vec<Operation> = (0..40)
            .map(|v| ok(Op::Write(v), OkValue::Written, 0, 100))
            .collect();
        ops.push(ok(Op::Read, OkValue::Read(Some(999)), 200, 201));
        assert_eq!(search(&ops, Instant::now()), SearchResult::TimedOut);
    }
}
