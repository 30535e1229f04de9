//! The sequential specification every key must look like: a single register.
//!
//! A key starts absent (`None`). `Write(v)` sets it to `Some(v)`, `Delete` to `None`, and
//! `Cas { expect, new }` sets it to `Some(new)` if and only if it holds `Some(expect)` (an etcd
//! transaction comparing the value), answering whether it swapped. A Cas that did not swap is a
//! pure observation: the value was not `expect`.
//!
//! The checker's search asks one question of the model, [`step`]: from this state, can this
//! operation produce this result, and what state follows?

use super::history::{Event, OkValue, Op, Outcome};

/// The value of one key: `None` when absent.
pub(crate) type State = Option<u64>;

/// One call as the search sees it: an [`Event`] with `Failed` calls and unknown reads already
/// dropped, and the result and return time of an indeterminate call unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operation {
    /// What was asked.
    pub(crate) op: Op,
    /// What came back, or `None` if unknown (the call may have taken effect or not).
    pub(crate) result: Option<OkValue>,
    /// When the call was sent (ns).
    pub(crate) invoked: u64,
    /// When the answer arrived (ns), or `None` if it never did: the call may take effect at any
    /// time after `invoked`, or never.
    pub(crate) returned: Option<u64>,
    /// Index of the event in the history passed to [`check`](super::check), to report it.
    pub(crate) event: usize,
}

impl Operation {
    /// A call that returned `result` (event index 0): the unit tests' shorthand.
    #[cfg(test)]
    pub(crate) fn answered(op: Op, result: OkValue, invoked: u64, returned: u64) -> Operation {
        Operation {
            op,
            result: Some(result),
            invoked,
            returned: Some(returned),
            event: 0,
        }
    }

    /// The search's view of `history[index]`, or `None` if the event constrains nothing: a
    /// `Failed` call (it did not happen) or an indeterminate `Read` (it changes nothing and
    /// nobody saw its answer).
    pub(crate) fn from_event(history: &[Event], index: usize) -> Option<Operation> {
        let event = &history[index];
        match event.outcome {
            Outcome::Failed => None,
            Outcome::Indeterminate if event.op == Op::Read => None,
            Outcome::Indeterminate => Some(Operation {
                op: event.op,
                result: None,
                invoked: event.invoked,
                returned: None,
                event: index,
            }),
            Outcome::Ok(value) => Some(Operation {
                op: event.op,
                result: Some(value),
                invoked: event.invoked,
                returned: Some(event.returned),
                event: index,
            }),
        }
    }

    /// False for operations that only observe: reads, and Cas calls known not to have swapped.
    pub(crate) fn may_change_state(&self) -> bool {
        !matches!(
            (self.op, self.result),
            (Op::Read, _) | (Op::Cas { .. }, Some(OkValue::Cas(false)))
        )
    }

    /// The state this operation leaves behind if it takes effect and changes the key
    /// (`Write(v)`/`Cas` → `Some(v)`, `Delete` → `None`); `None` for reads.
    pub(crate) fn written_state(&self) -> Option<State> {
        match self.op {
            Op::Read => None,
            Op::Write(v) => Some(Some(v)),
            Op::Cas { new, .. } => Some(Some(new)),
            Op::Delete => Some(None),
        }
    }

    /// The state the operation shows it saw, if it shows one: an ok `Read` saw its value; a
    /// swapping Cas (or one whose result is unknown, should it swap) saw `Some(expect)`.
    pub(crate) fn observed_state(&self) -> Option<State> {
        match (self.op, self.result) {
            (Op::Read, Some(OkValue::Read(seen))) => Some(seen),
            (Op::Cas { expect, .. }, Some(OkValue::Cas(true)) | None) => Some(Some(expect)),
            _ => None,
        }
    }
}

/// Applies `operation` to a key holding `state`. Returns the next state if the register can
/// give the recorded result from `state`, or `None` if that result is impossible there.
///
/// An unknown result (`None`) is taken to mean "the call took effect here"; the search models
/// "it never took effect" by simply not linearizing it.
pub(crate) fn step(state: State, operation: &Operation) -> Option<State> {
    match (operation.op, operation.result) {
        (Op::Read, Some(OkValue::Read(seen))) => (seen == state).then_some(state),
        (Op::Write(v), Some(OkValue::Written) | None) => Some(Some(v)),
        (Op::Delete, Some(OkValue::Deleted) | None) => Some(None),
        (Op::Cas { expect, new }, Some(OkValue::Cas(true))) => {
            (state == Some(expect)).then_some(Some(new))
        }
        (Op::Cas { expect, .. }, Some(OkValue::Cas(false))) => {
            (state != Some(expect)).then_some(state)
        }
        (Op::Cas { expect, new }, None) => Some(if state == Some(expect) {
            Some(new)
        } else {
            state
        }),
        // An unknown read constrains nothing; it is normally dropped before the search.
        (Op::Read, None) => Some(state),
        // A result of the wrong kind (`validate` rejects these): no state can produce it.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(op: Op, result: Option<OkValue>) -> Operation {
        Operation {
            op,
            result,
            invoked: 0,
            returned: result.map(|_| 1),
            event: 0,
        }
    }

    #[test]
    fn reads_must_see_the_current_value() {
        let read_5 = operation(Op::Read, Some(OkValue::Read(Some(5))));
        assert_eq!(step(Some(5), &read_5), Some(Some(5)));
        assert_eq!(step(Some(4), &read_5), None);
        assert_eq!(step(None, &read_5), None);
        let read_absent = operation(Op::Read, Some(OkValue::Read(None)));
        assert_eq!(step(None, &read_absent), Some(None));
        assert_eq!(step(Some(1), &read_absent), None);
    }

    #[test]
    fn writes_and_deletes_always_apply() {
        let write = operation(Op::Write(7), Some(OkValue::Written));
        assert_eq!(step(None, &write), Some(Some(7)));
        assert_eq!(step(Some(3), &write), Some(Some(7)));
        let delete = operation(Op::Delete, Some(OkValue::Deleted));
        assert_eq!(step(Some(3), &delete), Some(None));
        assert_eq!(step(None, &delete), Some(None));
    }

    #[test]
    fn cas_swaps_only_on_the_expected_value() {
        let cas = Op::Cas { expect: 1, new: 2 };
        let swapped = operation(cas, Some(OkValue::Cas(true)));
        assert_eq!(step(Some(1), &swapped), Some(Some(2)));
        assert_eq!(step(Some(3), &swapped), None);
        assert_eq!(step(None, &swapped), None);
        let not_swapped = operation(cas, Some(OkValue::Cas(false)));
        assert_eq!(step(Some(1), &not_swapped), None);
        assert_eq!(step(Some(3), &not_swapped), Some(Some(3)));
        assert_eq!(step(None, &not_swapped), Some(None));
        let unknown = operation(cas, None);
        assert_eq!(step(Some(1), &unknown), Some(Some(2)));
        assert_eq!(step(Some(3), &unknown), Some(Some(3)));
    }

    #[test]
    fn a_result_of_the_wrong_kind_is_impossible() {
        let read_written = operation(Op::Read, Some(OkValue::Written));
        assert_eq!(step(None, &read_written), None);
        let write_cas = operation(Op::Write(1), Some(OkValue::Cas(true)));
        assert_eq!(step(None, &write_cas), None);
    }
}
